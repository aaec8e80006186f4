/**
 * What the processes that tests start do. Two catalogues, both on any node (the agent
 * fixture's, or node 0's own):
 *
 * - `Processes`, kinds for the runtime tests (`Kind`): echoes, recorders, throwers,
 *   processes that hang, end themselves or end their thread;
 * - `Members`, group members for the dispatch tests (`MemberKind`): they say who
 *   answered, tell a probe process when a message reaches them (so a test waits for an
 *   event, never for time), and `gate` members hold every message until the test opens
 *   their gate.
 *
 * Every message a recording process gets is kept in the node's `Recorder`, which the
 * test reads back (waiting for a count if it must).
 *
 * The agent fixture imports this module too, so it must not import ava at run time.
 */
import { type MessagePort, workerData } from 'node:worker_threads';
import * as library from '../../src/index.js';
import type { Handler, Node, Pid } from '../../src/index.js';
import { Condition, turns } from './wait.js';

/** Every message that reached a recording process of this node, by pid. */
export class Recorder {
  readonly #lists = new Map<Pid, unknown[]>();
  readonly #changed = new Condition();

  record(pid: Pid, message: unknown): void {
    let list = this.#lists.get(pid);
    if (list === undefined) {
      list = [];
      this.#lists.set(pid, list);
    }
    list.push(message);
    this.#changed.notify();
  }

  /** The messages of `pid` so far, in order (a copy). */
  list(pid: Pid): unknown[] {
    return [...(this.#lists.get(pid) ?? [])];
  }

  /** Every process that got a message, with its messages. */
  all(): [Pid, unknown[]][] {
    return [...this.#lists].map(([pid, list]) => [pid, [...list]]);
  }

  /** The messages of `pid`, once there are at least `count`. */
  async received(pid: Pid, count = 0): Promise<unknown[]> {
    await this.#changed.until(() => (this.#lists.get(pid)?.length ?? 0) >= count);
    return this.list(pid);
  }
}

// Kinds of the runtime tests --------------------------------------------------------------

/** The error a `thrower` process throws: a custom class with a `code`. */
export class ValidationError extends Error {
  override readonly name = 'ValidationError';
  readonly code = 'E_VALIDATION';
}

/**
 * What a process of `Processes` does with each message:
 * - `echo`: answers with the message;
 * - `recorder`: keeps every message it gets (in the recorder) and answers `'recorded'`;
 * - `hang`: keeps the message, never answers (for calls in flight);
 * - `slowEcho`: answers with the message after a few turns of the event loop;
 * - `thrower`: throws a `ValidationError`, or rejects with one for `'async'`, or answers
 *   `'fine'` to `'ok'`; throws a `RangeError` with a code and a cause for `'builtin'`, an
 *   `AggregateError` for `'aggregate'`;
 * - `tracked`: async, answers `{ m, max }` where max is the most messages it has handled at once;
 * - `badReply`: answers with a function (which cannot be cloned); sent `'moved'`, with a
 *   typed array whose buffer was transferred away (detached), which cannot be cloned either;
 * - `mortal`: async echo that exits itself (reason `'race'`) when sent `'die'`;
 * - `portUser`: takes `{ port }` and answers every number posted on it with that number + 1;
 * - `lastWords`: answers with the message, then ends this thread on the next turn, by
 *   `process.exit` (or `node.close()` when the message is `'close'`);
 * - `throwNamed`: throws a new instance of the library's error class named by the message
 *   (`'NodeDownError'`…), made on this thread;
 * - `counter`: after a few turns of the event loop (so that its mailbox fills), adds 1 to
 *   the Int32 at index 0 of `workerData.counter` (a SharedArrayBuffer) and answers
 *   `'counted'`; the test reads the count after the worker is gone.
 */
export type Kind =
  | 'echo'
  | 'recorder'
  | 'hang'
  | 'slowEcho'
  | 'thrower'
  | 'tracked'
  | 'badReply'
  | 'mortal'
  | 'portUser'
  | 'lastWords'
  | 'counter'
  | 'throwNamed';

/** A typed array whose buffer was transferred away: detached, it cannot be cloned. */
export function moved(): Uint8Array {
  const u = new Uint8Array(16);
  structuredClone(u.buffer, { transfer: [u.buffer] });
  return u;
}

/** The processes of the runtime tests on one node. */
export class Processes {
  readonly #node: Node;
  readonly #recorder: Recorder;
  /** Per process of kind `tracked`: messages being handled now, and the most at once. */
  readonly #activity = new Map<Pid, { active: number; max: number }>();

  constructor(node: Node, recorder: Recorder) {
    this.#node = node;
    this.#recorder = recorder;
  }

  spawn(kind: Kind, concurrency?: number): Pid {
    return this.#node.spawn(
      this.#behaviour(kind),
      concurrency === undefined ? {} : { concurrency },
    );
  }

  #behaviour(kind: Kind): Handler {
    const node = this.#node;
    switch (kind) {
      case 'echo':
        return (m) => m;
      case 'recorder':
        return (m, ctx) => {
          this.#recorder.record(ctx.self, m);
          return 'recorded';
        };
      case 'hang':
        return (m, ctx) => {
          this.#recorder.record(ctx.self, m);
          return new Promise(() => {});
        };
      case 'slowEcho':
        return async (m) => {
          await turns(1 + Math.floor(Math.random() * 3));
          return m;
        };
      case 'thrower':
        return (m) => {
          if (m === 'ok') return 'fine';
          if (m === 'async') return Promise.reject(new ValidationError('bad input, later'));
          if (m === 'builtin')
            throw Object.assign(new RangeError('out of range', { cause: new TypeError('why') }), {
              code: 'E_RANGE',
            });
          if (m === 'aggregate')
            throw new AggregateError(
              [new TypeError('first'), new ValidationError('second')],
              'many',
            );
          throw new ValidationError(`bad input: ${String(m)}`);
        };
      case 'tracked':
        return async (m, ctx) => {
          let a = this.#activity.get(ctx.self);
          if (a === undefined) {
            a = { active: 0, max: 0 };
            this.#activity.set(ctx.self, a);
          }
          a.active++;
          a.max = Math.max(a.max, a.active);
          await turns(3);
          a.active--;
          return { m, max: a.max };
        };
      case 'badReply':
        return (m) => (m === 'moved' ? moved() : () => 'a function cannot cross threads');
      case 'mortal':
        return async (m, ctx) => {
          if (m === 'die') {
            node.exit(ctx.self, 'race');
            return 'dying';
          }
          await turns(Math.floor(Math.random() * 3));
          return m;
        };
      case 'portUser':
        return (m) => {
          const { port } = m as { port: MessagePort };
          port.on('message', (v: number) => port.postMessage(v + 1));
          return 'attached';
        };
      case 'lastWords':
        return (m) => {
          setImmediate(() => (m === 'close' ? node.close() : process.exit(0)));
          return m;
        };
      case 'throwNamed':
        return (m) => {
          const Class = (library as unknown as Record<string, new (...a: unknown[]) => Error>)[
            m as string
          ];
          if (Class === undefined) throw new Error(`no error class ${String(m)}`);
          throw new Class(`a ${String(m)} made on node ${node.id}`, 1, 'reason');
        };
      case 'counter':
        return async () => {
          await turns(2);
          const { counter } = workerData as { counter: SharedArrayBuffer };
          Atomics.add(new Int32Array(counter), 0, 1);
          return 'counted';
        };
    }
  }
}

// Members of the dispatch tests -------------------------------------------------------------

/**
 * What a member does with each message (each one is recorded):
 * - `echo`: answers `{ pid, node, msg }` at once;
 * - `gate`: tells the probe, waits until its gate opens, then answers like `echo`;
 * - `hang`: tells the probe, never answers;
 * - `mortal`: tells the probe, then exits (reason `'killed'`) before answering;
 * - `thrower`: throws a `BusinessError` (an ordinary handler error).
 */
export type MemberKind = 'echo' | 'gate' | 'hang' | 'mortal' | 'thrower';

/** The answer of `echo` and `gate` members. */
export interface Reply {
  pid: Pid;
  node: number;
  msg: unknown;
}

/** What the probe hears when a message reaches a blocking member. */
export interface Arrival {
  pid: Pid;
  node: number;
  kind: MemberKind;
  msg: unknown;
}

/** The error a `thrower` member throws: a plain handler failure, never a member going away. */
export class BusinessError extends Error {
  override readonly name = 'BusinessError';
  readonly code = 'E_BUSINESS';
}

/** The members of one node, with their gates. */
export class Members {
  readonly #node: Node;
  readonly #probe: Pid | undefined;
  readonly #recorder: Recorder;
  readonly #waiting = new Map<Pid, (() => void)[]>();
  readonly #openForGood = new Set<Pid>();
  #allOpen = false;

  constructor(node: Node, probe: Pid | undefined, recorder = new Recorder()) {
    this.#node = node;
    this.#probe = probe;
    this.#recorder = recorder;
  }

  /** Starts `n` members of `kind`. The default concurrency lets every delivered message reach the handler. */
  spawn(kind: MemberKind, n = 1, concurrency = 1024): Pid[] {
    const out: Pid[] = [];
    for (let i = 0; i < n; i++) out.push(this.#node.spawn(this.#behaviour(kind), { concurrency }));
    return out;
  }

  /** Every message that reached the handler of `pid`, in order. */
  received(pid: Pid): unknown[] {
    return this.#recorder.list(pid);
  }

  /**
   * Lets up to `n` messages waiting at the gate of `pid` (of every gate member when
   * `pid` is undefined) go on; with `forever`, the gate stays open. Returns how many went.
   */
  open(pid?: Pid, n = Number.POSITIVE_INFINITY, forever = false): number {
    if (forever) {
      if (pid === undefined) this.#allOpen = true;
      else this.#openForGood.add(pid);
    }
    let released = 0;
    const queues = pid === undefined ? [...this.#waiting.values()] : [this.#waiting.get(pid) ?? []];
    for (const q of queues) {
      while (released < n && q.length > 0) {
        q.shift()!();
        released++;
      }
    }
    return released;
  }

  #arrive(pid: Pid, kind: MemberKind, msg: unknown, notify: boolean): void {
    this.#recorder.record(pid, msg);
    if (notify && this.#probe !== undefined)
      this.#node.send(this.#probe, { pid, node: this.#node.id, kind, msg } satisfies Arrival);
  }

  #behaviour(kind: MemberKind): (msg: unknown, ctx: { self: Pid }) => unknown {
    const node = this.#node;
    switch (kind) {
      case 'echo':
        return (msg, ctx) => {
          this.#arrive(ctx.self, kind, msg, false);
          return { pid: ctx.self, node: node.id, msg } satisfies Reply;
        };
      case 'gate':
        return async (msg, ctx) => {
          this.#arrive(ctx.self, kind, msg, true);
          if (!this.#allOpen && !this.#openForGood.has(ctx.self)) {
            await new Promise<void>((resolve) => {
              let q = this.#waiting.get(ctx.self);
              if (q === undefined) {
                q = [];
                this.#waiting.set(ctx.self, q);
              }
              q.push(resolve);
            });
          }
          return { pid: ctx.self, node: node.id, msg } satisfies Reply;
        };
      case 'hang':
        return (msg, ctx) => {
          this.#arrive(ctx.self, kind, msg, true);
          return new Promise(() => {});
        };
      case 'mortal':
        return (msg, ctx) => {
          this.#arrive(ctx.self, kind, msg, true);
          setImmediate(() => node.exit(ctx.self, 'killed'));
          return new Promise(() => {});
        };
      case 'thrower':
        return (msg, ctx) => {
          this.#arrive(ctx.self, kind, msg, false);
          throw new BusinessError(`refused ${JSON.stringify(msg)}`);
        };
    }
  }
}
