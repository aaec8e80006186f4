/**
 * The calls a node is waiting on: one promise each (or a sink, for dispatch), settled by
 * a reply, a failure, a timeout, an abort, or the target's node going down.
 */
import { offAbort, onAbort } from '../core/abort.js';
import { CallTimeoutError, checkNumber, describe } from '../core/errors.js';
import { formatPid, type Pid } from '../core/pid.js';
import type { Transferable } from '../core/transfer.js';
import { after } from '../core/timer.js';
import { Waiters } from '../core/waiters.js';
import { cloneLocal, type ReplyTo } from '../protocol/channel.js';
import { CallTable } from './call-table.js';

export interface CallOptions {
  /** Milliseconds before the call rejects with `CallTimeoutError`. Default: no limit. */
  timeout?: number;
  /**
   * Rejects the call with `signal.reason` when aborted. One signal may serve a whole batch:
   * it holds one listener per thread, however many calls share it.
   */
  signal?: AbortSignal;
  /** ArrayBuffers and MessagePorts to move instead of copy. */
  transfer?: readonly Transferable[];
}

export type { Transferable } from '../core/transfer.js';

/** Throws a TypeError or RangeError naming the bad field of call options. */
export function checkCallOptions(options: CallOptions | undefined): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`call options must be an object, got ${describe(options)}`);
  }
  const { timeout, signal, transfer } = options;
  checkNumber('timeout (ms)', timeout, 0);
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(`signal must be an AbortSignal, got ${describe(signal)}`);
  }
  if (transfer !== undefined && !Array.isArray(transfer)) {
    throw new TypeError(
      `transfer must be an array of ArrayBuffers and MessagePorts, got ${describe(transfer)}`,
    );
  }
}

/**
 * Where a call's outcome goes when its caller wants no promise of its own: dispatch,
 * which would otherwise await one promise per attempt inside the one it returns.
 */
export interface CallSink {
  /** `notRun`: the call failed before any handler ran it (see `ReplyTo.fail`). */
  settled(ok: boolean, value: unknown, notRun: boolean): void;
}

interface Pending {
  /** A plain call's promise, or undefined for a call into a sink. */
  resolve: ((value: unknown) => void) | undefined;
  reject: ((error: unknown) => void) | undefined;
  sink: CallSink | undefined;
  node: number;
  pid: Pid;
  timer: ReturnType<typeof setTimeout> | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

export class Calls {
  /**
   * Where a local process's answer goes: settled with a structured-clone copy, as if it
   * had crossed a channel (an answer that cannot be cloned fails the call).
   */
  readonly local: ReplyTo = {
    reply: (id, value, transfer) => {
      let copy: unknown;
      try {
        copy = cloneLocal(value, transfer, 'the answer');
      } catch (error) {
        this.settle(id, false, error);
        return;
      }
      this.settle(id, true, copy);
    },
    fail: (id, error, notRun) => this.settle(id, false, error, notRun),
  };
  readonly #pending = new CallTable<Pending>();
  #seq = 0;
  /** Waiting for the last call to settle (a graceful stop). */
  readonly #empty = new Waiters();

  get size(): number {
    return this.#pending.size;
  }

  /** Registers a call to `pid` on `node`; returns its id and promise. */
  open<R>(node: number, pid: Pid, options: CallOptions | undefined): [number, Promise<R>] {
    let entry!: Pending;
    const promise = new Promise<R>((resolve, reject) => {
      entry = {
        resolve: resolve as (v: unknown) => void,
        reject,
        sink: undefined,
        node,
        pid,
        timer: undefined,
        signal: undefined,
        onAbort: undefined,
      };
    });
    return [this.#register(entry, options?.timeout, options?.signal), promise];
  }

  /** Registers a call to `pid` on `node` whose outcome goes to `sink`; returns its id. */
  openInto(
    node: number,
    pid: Pid,
    timeout: number | undefined,
    signal: AbortSignal | undefined,
    sink: CallSink,
  ): number {
    const entry: Pending = {
      resolve: undefined,
      reject: undefined,
      sink,
      node,
      pid,
      timer: undefined,
      signal: undefined,
      onAbort: undefined,
    };
    return this.#register(entry, timeout, signal);
  }

  #register(entry: Pending, timeout: number | undefined, signal: AbortSignal | undefined): number {
    const id = ++this.#seq;
    this.#pending.set(id, entry);
    // Most calls have no timeout: they skip the closure as well as the timer.
    if (timeout !== undefined) entry.timer = this.#timeoutAfter(id, entry.pid, timeout);
    if (signal !== undefined) {
      entry.signal = signal;
      entry.onAbort = () => this.settle(id, false, signal.reason);
      onAbort(signal, entry.onAbort);
    }
    return id;
  }

  #timeoutAfter(id: number, pid: Pid, timeout: number): ReturnType<typeof setTimeout> | undefined {
    return after(timeout, () => {
      this.settle(
        id,
        false,
        new CallTimeoutError(
          `call to ${formatPid(pid)} got no answer within ${Math.ceil(timeout)} ms: its handler is still busy, ` +
            "or its thread is blocked (a piscina or tinypool thread must be created with atomics: 'disabled' or useAtomics: false to answer calls)",
        ),
      );
    });
  }

  /** Drops call `id` without settling it: it could not be sent, and its caller is told so directly. */
  forget(id: number): void {
    const entry = this.#pending.take(id);
    if (entry === undefined) return;
    this.#unhook(entry);
    this.#emptied();
  }

  /** Settles call `id` (a no-op if it was settled already, e.g. after a timeout). */
  settle(id: number, ok: boolean, value: unknown, notRun = false): void {
    const entry = this.#pending.take(id);
    if (entry === undefined) return;
    this.#unhook(entry);
    if (entry.sink !== undefined) entry.sink.settled(ok, value, notRun);
    else if (ok) entry.resolve!(value);
    else entry.reject!(value);
    this.#emptied();
  }

  #unhook(entry: Pending): void {
    if (entry.timer !== undefined) clearTimeout(entry.timer);
    if (entry.onAbort !== undefined) offAbort(entry.signal!, entry.onAbort);
  }

  #emptied(): void {
    if (this.#pending.size === 0) this.#empty.release();
  }

  /** Resolves once no call is waiting for its answer. */
  whenEmpty(): Promise<void> {
    return this.#empty.until(this.#pending.size === 0);
  }

  /**
   * Fails every call to a pid of `node` (it went down). The calls are listed first: a
   * sink (dispatch) may start a retry while it is told, and that call is not this one.
   */
  failNode(node: number, error: (pid: Pid) => unknown): void {
    // `entries()` is a copy: settling as it goes is safe, as in `failAll`.
    for (const [id, entry] of this.#pending.entries())
      if (entry.node === node) this.settle(id, false, error(entry.pid));
  }

  /** Fails every call (the node is closing). */
  failAll(error: (pid: Pid) => unknown): void {
    for (const [id, entry] of this.#pending.entries()) this.settle(id, false, error(entry.pid));
  }
}
