/**
 * Processes: an addressable handler with a mailbox, owned by one node.
 *
 * Messages to a process are handled one at a time, in arrival order, unless the process
 * was spawned with a higher `concurrency`. A handler's return value (or the value its
 * promise resolves to) answers a call; a throw or a rejection fails that call and the
 * process lives on, as a `gen_server` whose `handle_call` returned an error would.
 *
 * The fast path: a synchronous handler is run as soon as the message arrives and its
 * value is answered at once, with no promise, no microtask and no queueing.
 */
import type { LoadTable } from './load-table.js';
import { type Pid, serialOf } from '../core/pid.js';
import { takeTransfer } from '../core/transfer.js';
import { Waiters } from '../core/waiters.js';
import type { ReplyTo } from '../protocol/channel.js';
import { CallTable } from './call-table.js';

/** What a handler gets with each message. */
export interface ProcessContext {
  /** The pid of the process handling the message. */
  readonly self: Pid;
  /**
   * The root pid of the node the message came from. procgroups does not track which
   * process sent a message: put a pid in the message when the handler needs to answer
   * a particular process.
   */
  readonly from: Pid | undefined;
  /** True when the sender awaits an answer (`call`), false for `send`. */
  readonly isCall: boolean;
  /** Aborted when this process exits: pass it on to work that should stop with it. */
  readonly signal: AbortSignal;
}

/**
 * A process's behaviour: called with each message; its return value answers calls.
 * `M` is the message type, `R` the reply type.
 */
export type Handler<M = unknown, R = unknown> = (message: M, ctx: ProcessContext) => R | Promise<R>;

/** Options of `node.spawn()`. */
export interface SpawnOptions {
  /** Messages handled at the same time. Default 1: one at a time, in order. */
  concurrency?: number;
}

/** One message in a mailbox. `id` is 0 for a send. */
/** Handler time one job may spend on mailboxes before the rest waits for the next turn. */
const JOB_BUDGET_MS = 1;

/**
 * Slots a process's table of running calls starts with (made on its first call): small,
 * since a node may hold thousands of processes; it doubles as calls in async handlers
 * pile up.
 */
const RUNNING_SLOTS = 4;

/** When this thread's current job first ran a handler (0: not yet in this job). */
let jobStart = 0;
const endJob = (): void => {
  jobStart = 0;
};

/**
 * True once handlers have run for `JOB_BUDGET_MS` in the current job of this thread.
 * The job's end is a microtask queued at its first handler: it runs once the job's
 * synchronous work (a whole batch of frames, say) is done.
 */
function overBudget(): boolean {
  const now = performance.now();
  if (jobStart === 0) {
    jobStart = now;
    queueMicrotask(endJob);
    return false;
  }
  return now - jobStart > JOB_BUDGET_MS;
}

export interface Envelope {
  message: unknown;
  from: Pid | undefined;
  id: number;
  replyTo: ReplyTo | undefined;
}

export class Process {
  readonly pid: Pid;
  #handler: Handler;
  readonly #concurrency: number;
  readonly #controller = new AbortController();
  /** Called with the error of a handler that failed on a `send` (nobody is waiting for it). */
  readonly #onSendError: (pid: Pid, error: unknown) => void;
  #queue: Envelope[] = [];
  #head = 0;
  /**
   * Calls being handled, from the moment their handler starts until they settle, so
   * that an exit can fail them at once: also a call whose handler ends its own process
   * (`node.exit(ctx.self)`) before it returns. Keyed by `#runs`, in a table of reused
   * slots rather than a `Set`, for the reason call-table.ts gives: a process with many
   * calls in flight in async handlers would otherwise reallocate a hash table with every
   * burst.
   */
  #running: CallTable<Envelope> | undefined;
  /** Calls started by this process so far: the keys of `#running`. */
  #runs = 0;
  #busy = 0;
  #alive = true;
  /** A pump is scheduled for the next turn (see `#pump`). */
  #deferred = false;
  readonly #resume = (): void => {
    this.#deferred = false;
    this.#pump();
  };
  /** Waiting for the mailbox to empty (a graceful stop). */
  readonly #idle = new Waiters();
  /** Where this process publishes its load for other threads (offset -1: nowhere). */
  readonly #loads: LoadTable | undefined;
  readonly #loadAt: number;

  constructor(
    pid: Pid,
    handler: Handler,
    options: SpawnOptions,
    onSendError: (pid: Pid, error: unknown) => void,
    loads?: LoadTable,
  ) {
    this.pid = pid;
    this.#handler = handler;
    this.#concurrency = options.concurrency ?? 1;
    this.#onSendError = onSendError;
    this.#loads = loads;
    this.#loadAt = loads?.claim(serialOf(pid)) ?? -1;
  }

  #publishLoad(): void {
    // After exit the slot is released and may belong to another process already.
    if (this.#loadAt >= 0 && this.#alive) this.#loads!.set(this.#loadAt, this.load);
  }

  get alive(): boolean {
    return this.#alive;
  }

  /** Messages waiting plus messages being handled: the process's load. */
  get load(): number {
    return this.#queue.length - this.#head + this.#busy;
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /**
   * Gives the process a new behaviour. Messages that have not started yet go to the new
   * handler; those already running finish with the old one. The pid, the mailbox and
   * the waiting callers are kept, so nothing is failed by the swap.
   */
  replaceHandler(handler: Handler): void {
    this.#handler = handler;
  }

  deliver(env: Envelope): void {
    const idle = this.#busy < this.#concurrency && this.#head === this.#queue.length;
    if (idle && !this.#deferred && !overBudget()) {
      this.#run(env);
      return;
    }
    this.#queue.push(env);
    this.#publishLoad();
    if (idle && !this.#deferred) this.#deferPump();
  }

  /** Runs the mailbox on the next turn of the event loop, after this job's replies left. */
  #deferPump(): void {
    this.#deferred = true;
    setImmediate(this.#resume);
  }

  #run(env: Envelope): void {
    this.#busy++;
    this.#publishLoad();
    let result: unknown;
    // 0 for a send: nobody waits for it.
    let run = 0;
    if (env.id !== 0)
      (this.#running ??= new CallTable(RUNNING_SLOTS)).set((run = ++this.#runs), env);
    try {
      result = this.#handler(env.message, {
        self: this.pid,
        from: env.from,
        isCall: env.id !== 0,
        signal: this.#controller.signal,
      });
    } catch (error) {
      this.#settle(env, run, false, error);
      return;
    }
    if (
      result !== null &&
      typeof result === 'object' &&
      typeof (result as PromiseLike<unknown>).then === 'function'
    ) {
      (result as PromiseLike<unknown>).then(
        (value) => this.#settle(env, run, true, value),
        (error) => this.#settle(env, run, false, error),
      );
    } else {
      this.#settle(env, run, true, result);
    }
  }

  #settle(env: Envelope, run: number, ok: boolean, value: unknown): void {
    this.#busy--;
    this.#publishLoad();
    // After an exit the caller was already failed; a late answer is dropped.
    if (this.#alive) {
      if (env.id !== 0) {
        this.#running?.take(run);
        if (ok) env.replyTo?.reply(env.id, value, takeTransfer(value));
        else env.replyTo?.fail(env.id, value);
      } else if (!ok) {
        this.#onSendError(this.pid, value);
      }
    }
    this.#pump();
    if (this.#idle.any && this.load === 0) this.#idle.release();
  }

  /** Resolves once the mailbox is empty and no handler runs (at once if so, or if the process ended). */
  idle(): Promise<void> {
    return this.#idle.until(!this.#alive || this.load === 0);
  }

  /**
   * Runs queued messages while there is room. Synchronous handlers run back to back in
   * one job, which is what makes no-op calls cheap; but the replies of a job leave
   * together at its end (channels batch per job), so once this thread's handlers have
   * run for `JOB_BUDGET_MS` in the job, the rest waits for the next turn of the event
   * loop: the replies so far go out, and a caller sees its first result after one
   * job's time, not after a whole batch's. (`deliver` keeps the same budget.)
   */
  #pump(): void {
    while (
      !this.#deferred &&
      this.#alive &&
      this.#busy < this.#concurrency &&
      this.#head < this.#queue.length
    ) {
      if (overBudget()) {
        this.#deferPump();
        break;
      }
      const env = this.#queue[this.#head]!;
      this.#queue[this.#head++] = undefined as unknown as Envelope;
      if (this.#head === this.#queue.length) {
        this.#queue = [];
        this.#head = 0;
      } else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      this.#run(env);
    }
  }

  /**
   * Ends the process, and fails the calls it leaves with `error(replyTo)`: those it was
   * running, and those still waiting in its mailbox, which no handler ran and which the
   * caller may therefore run elsewhere (`ReplyTo.fail`, `notRun`).
   */
  exit(reason: unknown, error: (to: ReplyTo) => unknown): void {
    if (!this.#alive) return;
    this.#alive = false;
    const running = this.#running?.entries() ?? [];
    const queue = this.#queue;
    const head = this.#head;
    this.#queue = [];
    this.#head = 0;
    this.#running = undefined;
    if (this.#loadAt >= 0) this.#loads!.release(this.#loadAt);
    this.#controller.abort(reason);
    this.#idle.release();
    for (const [, { id, replyTo }] of running) replyTo?.fail(id, error(replyTo));
    for (let i = head; i < queue.length; i++) {
      const { id, replyTo } = queue[i]!;
      replyTo?.fail(id, error(replyTo), true);
    }
  }
}
