/**
 * Helpers of the dispatch tests (test/dispatch-*.test.ts).
 *
 * A test cluster ("rig") has node 0 on the test thread and worker nodes running
 * test/fixtures/dispatch-node.ts. On every node, members are processes with a
 * behaviour the test controls (`Kind`): they record each message that reaches their
 * handler (the per-member counter the backpressure tests read), the blocking kinds tell
 * a probe process on node 0 when a message reaches them (so a test waits for an event,
 * never for time), and `gate` members hold every message until the test opens their gate.
 *
 * A worker's root process only answers with the pid of its control process, which runs
 * the commands (`DispatchCommand`) with a high concurrency, so that a command that waits
 * (a dispatch to a gated member, a churn) never holds up another (`open`, `ping`).
 *
 * This module is imported by the fixture too, so it must not import ava at run time.
 */
import type { ExecutionContext } from 'ava';
import {
  type Cluster,
  type DispatchOptions,
  type DispatchStats,
  type Group,
  makePid,
  type Node,
  type Pid,
  type Scope,
  startCluster,
} from '../../src/index.js';

/** The worker script of the dispatch tests. */
export const DISPATCH_NODE = new URL('../fixtures/dispatch-node.js', import.meta.url);

/**
 * What a member does with each message:
 * - `echo`: answers `{ pid, node, msg }` at once;
 * - `gate`: tells the probe, waits until its gate opens, then answers like `echo`;
 * - `hang`: tells the probe, never answers;
 * - `mortal`: tells the probe, then exits (reason `'killed'`) before answering;
 * - `thrower`: throws a `BusinessError` (an ordinary handler error).
 */
export type Kind = 'echo' | 'gate' | 'hang' | 'mortal' | 'thrower';

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
  kind: Kind;
  msg: unknown;
}

/** The error a `thrower` member throws: a plain handler failure, never a member going away. */
export class BusinessError extends Error {
  override readonly name = 'BusinessError';
  readonly code = 'E_BUSINESS';
}

/** The members of one node, with their counters and gates. */
export class Members {
  readonly #node: Node;
  readonly #probe: Pid | undefined;
  readonly #received = new Map<Pid, unknown[]>();
  readonly #waiting = new Map<Pid, (() => void)[]>();
  readonly #openForGood = new Set<Pid>();
  #allOpen = false;

  constructor(node: Node, probe: Pid | undefined) {
    this.#node = node;
    this.#probe = probe;
  }

  /** Starts `n` members of `kind`. The default concurrency lets every delivered message reach the handler. */
  spawn(kind: Kind, n = 1, concurrency = 1024): Pid[] {
    const out: Pid[] = [];
    for (let i = 0; i < n; i++) out.push(this.#node.spawn(this.#behaviour(kind), { concurrency }));
    return out;
  }

  /** Every message that reached the handler of `pid`, in order. */
  received(pid: Pid): unknown[] {
    return [...(this.#received.get(pid) ?? [])];
  }

  /** Every member that got a message, with its messages. */
  receivedAll(): [Pid, unknown[]][] {
    return [...this.#received].map(([pid, list]) => [pid, [...list]]);
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

  #arrive(pid: Pid, kind: Kind, msg: unknown, notify: boolean): void {
    let list = this.#received.get(pid);
    if (list === undefined) {
      list = [];
      this.#received.set(pid, list);
    }
    list.push(msg);
    if (notify && this.#probe !== undefined)
      this.#node.send(this.#probe, { pid, node: this.#node.id, kind, msg } satisfies Arrival);
  }

  #behaviour(kind: Kind): (msg: unknown, ctx: { self: Pid }) => unknown {
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

/** A process on node 0 that hears every arrival at a blocking member, on any node. */
export class Probe {
  readonly pid: Pid;
  readonly arrivals: Arrival[] = [];
  readonly #waiters = new Set<() => void>();

  constructor(node: Node) {
    this.pid = node.spawn((m: unknown) => {
      this.arrivals.push(m as Arrival);
      for (const w of [...this.#waiters]) w();
    });
  }

  /** Arrivals heard so far, in total or at `pid`. */
  count(pid?: Pid): number {
    if (pid === undefined) return this.arrivals.length;
    let n = 0;
    for (const a of this.arrivals) if (a.pid === pid) n++;
    return n;
  }

  /** Resolves when `check()` holds, re-checking after each arrival. */
  until(check: () => boolean): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve) => {
      const w = () => {
        if (!check()) return;
        this.#waiters.delete(w);
        resolve();
      };
      this.#waiters.add(w);
    });
  }

  /** Resolves once `n` arrivals were heard, in total or at `pid`. */
  arrived(n: number, pid?: Pid): Promise<void> {
    return this.until(() => this.count(pid) >= n);
  }
}

// Commands understood by the fixture -------------------------------------------------

/** A strategy a worker can be asked to use (functions do not cross threads). */
export type NamedStrategy = 'random' | 'round-robin' | 'local-first' | 'least-loaded' | 'hash';

export type DispatchCommand =
  /** Starts members, and joins them to `join` if given. → Pid[] */
  | { cmd: 'spawn'; kind: Kind; n?: number; concurrency?: number; join?: Group }
  /** → 'ok' */
  | { cmd: 'join'; group: Group; pids: Pid[] }
  /** → 'ok' | 'not_joined' */
  | { cmd: 'leave'; group: Group; pids: Pid[] }
  /** Ends local processes. → boolean[] */
  | { cmd: 'exit'; pids: Pid[]; reason?: unknown }
  /** → unknown[]: the messages that reached the member */
  | { cmd: 'received'; pid: Pid }
  /** → [Pid, unknown[]][] */
  | { cmd: 'receivedAll' }
  /** Opens gates (see `Members.open`). → number released */
  | { cmd: 'open'; pid?: Pid; n?: number; forever?: boolean }
  /** `n` picks on the worker. → (Pid | undefined)[] */
  | { cmd: 'picks'; group: Group; strategy: NamedStrategy; n: number; key?: string | number }
  /** One 'hash' pick per key on the worker. → (Pid | undefined)[] */
  | { cmd: 'hashPicks'; group: Group; keys: (string | number)[] }
  /** `node.loadOf(pid)` as this worker reads it. → number */
  | { cmd: 'loadOf'; pid: Pid }
  /** `node.load(pid)`: the owner's own count. → number */
  | { cmd: 'load'; pid: Pid }
  /** A dispatch from the worker. → its answer (rejects with its error) */
  | { cmd: 'dispatch'; group: Group; msg: unknown; options?: Omit<DispatchOptions, 'signal'> }
  /** → DispatchStats of the worker's thread */
  | { cmd: 'stats'; group: Group }
  /** Toggles the membership of random `pids` in `group`, `steps` times. → Pid[] joined at the end */
  | { cmd: 'churn'; group: Group; pids: Pid[]; steps: number; seed: number }
  /** Spawns, joins, leaves and exits echo members of `group` at random. → Pid[] alive and joined at the end */
  | { cmd: 'lifeChurn'; group: Group; steps: number; seed: number }
  /** A round trip: every message this node got before from the caller's node was handled. → true */
  | { cmd: 'ping' }
  /** → Pid[] as read on the worker */
  | { cmd: 'members'; group: Group };

/** A worker node running the dispatch fixture. */
export interface DispatchNode {
  readonly id: number;
  /** Its control process, which runs the commands. */
  readonly control: Pid;
  terminate(): Promise<void>;
  cmd<R = unknown>(command: DispatchCommand): Promise<R>;
  /** Starts members of `kind` there, joined to `join` if given. */
  spawn(kind: Kind, n?: number, join?: Group, concurrency?: number): Promise<Pid[]>;
  join(group: Group, pids: Pid[]): Promise<void>;
  leave(group: Group, pids: Pid[]): Promise<'ok' | 'not_joined'>;
  received(pid: Pid): Promise<unknown[]>;
  open(pid?: Pid, n?: number, forever?: boolean): Promise<number>;
  /** Returns once everything node 0 sent to this node before was handled. */
  ping(): Promise<void>;
}

/** Milliseconds a command may take before it fails (it never should). */
const CMD_TIMEOUT = 20_000;

export async function spawnNode(cluster: Cluster, probe: Pid): Promise<DispatchNode> {
  const w = await cluster.spawn(DISPATCH_NODE, { workerData: { probe } });
  const node = cluster.node;
  const control = await node.call<Pid>(makePid(w.id, 1), 'control', { timeout: CMD_TIMEOUT });
  const cmd = <R>(command: DispatchCommand) =>
    node.call<R>(control, command, { timeout: CMD_TIMEOUT });
  return {
    id: w.id,
    control,
    terminate: () => w.terminate(),
    cmd,
    spawn: (kind, n = 1, join, concurrency) => {
      const c: DispatchCommand = { cmd: 'spawn', kind, n };
      if (join !== undefined) c.join = join;
      if (concurrency !== undefined) c.concurrency = concurrency;
      return cmd<Pid[]>(c);
    },
    join: async (group, pids) => {
      await cmd({ cmd: 'join', group, pids });
    },
    leave: (group, pids) => cmd<'ok' | 'not_joined'>({ cmd: 'leave', group, pids }),
    received: (pid) => cmd<unknown[]>({ cmd: 'received', pid }),
    open: (pid, n, forever) => {
      const c: DispatchCommand = { cmd: 'open' };
      if (pid !== undefined) c.pid = pid;
      if (n !== undefined) c.n = n;
      if (forever !== undefined) c.forever = forever;
      return cmd<number>(c);
    },
    ping: async () => {
      await cmd({ cmd: 'ping' });
    },
  };
}

/** A cluster for one test: node 0 with its probe and members, and worker nodes. */
export interface Rig {
  readonly cluster: Cluster;
  readonly node: Node;
  readonly pg: Scope;
  readonly probe: Probe;
  /** Node 0's members. */
  readonly local: Members;
  readonly workers: DispatchNode[];
  /** Starts members of `kind` on node 0 and joins them to `group`. */
  spawnLocal(kind: Kind, n: number, group?: Group, concurrency?: number): Promise<Pid[]>;
  /** Opens every gate, on every node, for good (so that nothing waits when the test ends). */
  openAll(): Promise<void>;
}

/** Starts a cluster with `workers` worker nodes (spawned one after another, so node ids are 1, 2, …); stopped when the test ends. */
export async function rig(t: ExecutionContext, workers = 0): Promise<Rig> {
  const cluster = await startCluster();
  t.teardown(() => cluster.stop());
  const node = cluster.node;
  const probe = new Probe(node);
  const local = new Members(node, probe.pid);
  const ws: DispatchNode[] = [];
  for (let i = 0; i < workers; i++) ws.push(await spawnNode(cluster, probe.pid));
  return {
    cluster,
    node,
    pg: node.pg,
    probe,
    local,
    workers: ws,
    spawnLocal: async (kind, n, group, concurrency) => {
      const pids = local.spawn(kind, n, concurrency);
      if (group !== undefined) await node.pg.join(group, pids);
      return pids;
    },
    openAll: async () => {
      local.open(undefined, Number.POSITIVE_INFINITY, true);
      await Promise.all(
        ws.map((w) => w.open(undefined, Number.POSITIVE_INFINITY, true).catch(() => 0)),
      );
    },
  };
}

// Small helpers ----------------------------------------------------------------------

/** How many times each value occurs. */
export function tally<T>(values: Iterable<T>): Map<T, number> {
  const out = new Map<T, number>();
  for (const v of values) out.set(v, (out.get(v) ?? 0) + 1);
  return out;
}

/** Pids in ascending order (a copy). */
export function sorted(pids: Iterable<Pid>): Pid[] {
  return [...pids].sort((a, b) => a - b);
}

/** The outcome of a promise, tracked as it settles (read `state` at any time). */
export interface Tracked<T> {
  readonly promise: Promise<T>;
  readonly state: 'pending' | 'fulfilled' | 'rejected';
  readonly value: T | undefined;
  readonly error: unknown;
}

export function track<T>(promise: Promise<T>): Tracked<T> {
  const t: {
    promise: Promise<T>;
    state: Tracked<T>['state'];
    value: T | undefined;
    error: unknown;
  } = { promise, state: 'pending', value: undefined, error: undefined };
  promise.then(
    (v) => {
      t.state = 'fulfilled';
      t.value = v;
    },
    (e) => {
      t.state = 'rejected';
      t.error = e;
    },
  );
  return t;
}

/**
 * Marks a promise as handled, so that a test that stops at a failed assertion before it
 * awaits it does not also report an unhandled rejection (when the cluster stops under
 * it). Awaiting it still throws.
 */
export function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}

/** Resolves after `n` turns of the event loop (each a `setImmediate`): lets pending I/O and timers of zero run. */
export function turns(n: number): Promise<void> {
  return new Promise((resolve) => {
    let left = n;
    const step = () => (--left <= 0 ? resolve() : setImmediate(step));
    setImmediate(step);
  });
}

/** Resolves with the value, or with `fallback` if `ms` pass first: turns a hang into a failed assertion instead of a test timeout. */
export function orAfter<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<F>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
  });
  return Promise.race([promise, guard]).finally(() => clearTimeout(timer));
}

export type { DispatchStats };
