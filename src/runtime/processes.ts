/**
 * A node's process table: its processes by serial, the root process (serial 1, whose
 * handler `node.handle(fn)` swaps in place), and the numbering of new ones (serials are
 * never reused while the node lives).
 */
import { describe, NoProcessError, ProcessExitError } from '../core/errors.js';
import { formatPid, makePid, type Pid } from '../core/pid.js';
import type { LoadTable } from './load-table.js';
import { type Handler, Process, type SpawnOptions } from './process.js';

/** The root process's default handler: it has none until `node.handle(fn)` gives it one. */
const noHandler: Handler = () => {
  throw new Error('the root process of this node has no handler; set one with node.handle(fn)');
};

export class Processes {
  readonly #node: number;
  readonly #loads: LoadTable;
  readonly #onSendError: (pid: Pid, error: unknown) => void;
  readonly #table = new Map<number, Process>();
  #serial = 2;

  constructor(
    node: number,
    loads: LoadTable,
    onSendError: (pid: Pid, error: unknown) => void,
    root: Handler = noHandler,
  ) {
    this.#node = node;
    this.#loads = loads;
    this.#onSendError = onSendError;
    this.#table.set(1, this.#make(1, root, {}));
  }

  get size(): number {
    return this.#table.size;
  }

  /** The live process `serial`, or undefined. */
  alive(serial: number): Process | undefined {
    const p = this.#table.get(serial);
    return p?.alive === true ? p : undefined;
  }

  /** True when `serial` was ever given to a process here (alive or not). */
  wasSpawned(serial: number): boolean {
    return serial >= 1 && serial < this.#serial;
  }

  /** Gives the root process a new handler, in place: its mailbox and callers are kept. */
  handle(handler: Handler): void {
    checkHandler('handle', handler);
    const root = this.alive(1);
    if (root !== undefined) root.replaceHandler(handler);
    else this.#table.set(1, this.#make(1, handler, {}));
  }

  spawn(handler: Handler, options: SpawnOptions): Pid {
    checkHandler('spawn', handler);
    const c = options.concurrency ?? 1;
    if (!Number.isInteger(c) || c < 1) {
      throw new RangeError(`concurrency must be a positive integer, got ${describe(c)}`);
    }
    const serial = this.#serial++;
    this.#table.set(serial, this.#make(serial, handler, options));
    return makePid(this.#node, serial);
  }

  /** Takes process `serial` out of the table (it is exiting); undefined if it was not alive. */
  remove(serial: number): Process | undefined {
    const p = this.alive(serial);
    if (p !== undefined) this.#table.delete(serial);
    return p;
  }

  /** Resolves once every process has handled its mailbox. */
  async idle(): Promise<void> {
    // A handler may send to a process already looked at: look again until all are idle.
    for (;;) {
      const busy = [...this.#table.values()].filter((p) => p.alive && p.load > 0);
      if (busy.length === 0) return;
      await Promise.all(busy.map((p) => p.idle()));
    }
  }

  /** Takes every process out of the table (the node is leaving). */
  removeAll(): Process[] {
    const all = [...this.#table.values()];
    this.#table.clear();
    return all;
  }

  #make(serial: number, handler: Handler, options: SpawnOptions): Process {
    const pid = makePid(this.#node, serial);
    return new Process(pid, handler, options, this.#onSendError, this.#loads);
  }
}

function checkHandler(what: string, handler: unknown): void {
  if (typeof handler !== 'function') {
    throw new TypeError(`${what} needs a handler function, got ${describe(handler)}`);
  }
}

/** The error of a call to a process that is not alive. */
export function noProc(pid: Pid): NoProcessError {
  return new NoProcessError(`no process ${formatPid(pid)}: it exited or never existed`, pid);
}

/** The error of the calls a process leaves unanswered when it exits. */
export function exitError(pid: Pid, reason: unknown): ProcessExitError {
  const why = reason instanceof Error ? `${reason.name}: ${reason.message}` : describe(reason);
  return new ProcessExitError(
    `process ${formatPid(pid)} exited (${why}) before answering`,
    pid,
    reason,
  );
}
