/**
 * Dispatch's vocabulary: the strategies, the options and results of `dispatch`,
 * `multiCall` and `dispatchStats`, their checks, and what dispatch needs of the node
 * it runs on (`Caller`), so that it never sees the whole node.
 */
import { checkNumber, describe } from '../core/errors.js';
import type { Pid } from '../core/pid.js';
import { type CallOptions, type CallSink, checkCallOptions } from '../runtime/pending-calls.js';

/** What a strategy function learns of the node it runs on. */
export interface PickNode {
  /** The calling node's id. */
  readonly id: number;
  /** A process's load, read from its node's table in shared memory. */
  loadOf(pid: Pid): number;
  /** True when `pid` is a live local process or a pid of a node that is up. */
  isAlive(pid: Pid): boolean;
  /** Ids of the nodes that are up. */
  nodes(): number[];
}

/** What dispatch needs of its node: calls, sends, and the node that strategy functions see. */
export interface Caller {
  /** The node, as strategy functions get it (`ctx.node`). */
  readonly node: PickNode;
  call<R>(pid: Pid, message: unknown, options?: CallOptions): Promise<R>;
  /**
   * A call whose outcome goes to `sink`, with `timeout` in place of `options.timeout`.
   * Returns the error when nothing was sent (the sink is then not told), else undefined.
   */
  callInto(
    pid: Pid,
    message: unknown,
    options: CallOptions,
    timeout: number | undefined,
    sink: CallSink,
  ): unknown;
  send(pid: Pid, message: unknown): boolean;
}

/** A user strategy: gets the members (a fresh array) and returns one of them, or undefined. */
export type PickFunction = (
  members: readonly Pid[],
  ctx: { node: PickNode; key: unknown },
) => Pid | undefined;

/**
 * How a member is picked:
 * - `'random'` (default): uniformly;
 * - `'round-robin'`: in turn, per calling thread;
 * - `'local-first'`: round-robin over members on this node, over all if there are none;
 * - `'least-loaded'`: fewest messages waiting or running (each node publishes its
 *   processes' loads in shared memory) plus this thread's calls in flight to it;
 * - `'hash'`: by `key`, consistently (rendezvous hashing: when a member comes or goes,
 *   only the keys it gains or loses move), for sticky routing to stateful workers;
 * - a function.
 */
export type Strategy =
  'random' | 'round-robin' | 'local-first' | 'least-loaded' | 'hash' | PickFunction;

/**
 * Options of `dispatch()`: those of `call()`, and these. `timeout` bounds the whole
 * dispatch: the wait for a member (`waitForMembers`), the wait in the queue, and every
 * attempt.
 */
export interface DispatchOptions extends CallOptions {
  /** How the member is picked; default `'random'`. */
  strategy?: Strategy;
  /** The routing key of the `'hash'` strategy (passed to a function strategy too). */
  key?: string | number;
  /**
   * Further members to try when the picked one dies during the call (its process
   * exits, its node goes down). Default 0: only the caller knows whether the work may
   * run twice. A call that no handler ran (the member was gone when it arrived, or it
   * was still in the mailbox when the process exited) goes to another member without
   * spending a retry, except with a `'hash'` or function strategy.
   */
  retries?: number;
  /**
   * Milliseconds to wait for a member when the group is empty, then `NoMembersError`.
   * Default 0: reject at once. A shorter `timeout` ends the wait first, with
   * `CallTimeoutError`.
   */
  waitForMembers?: number;
  /**
   * Calls from this thread in flight to one member before it counts as saturated. By
   * default each member's window adapts to hold about 4 ms of its work (see window.ts),
   * up to 1,024: no-op calls pipeline deeply, CPU jobs go out as members free up. A
   * number fixes the window.
   */
  maxInFlight?: number;
  /** Dispatches of this thread that may wait for a saturated group. Default 100,000. */
  maxQueue?: number;
}

/** Counters and latency percentiles of one group's dispatches from this thread. */
export interface DispatchStats {
  /** Calls made (a retried dispatch counts each attempt). */
  calls: number;
  /** Calls that failed. */
  failures: number;
  /** Attempts made again on another member after a member died. */
  retries: number;
  /** Dispatches waiting now for a member with room. */
  queued: number;
  /**
   * Latency percentiles in microseconds, within 3% (of calls that completed, either way), from
   * the job that made the call to the job that handled its answer: calls made or
   * answered in one job share one clock reading (see core/clock.ts).
   */
  p50: number;
  /** 90th percentile latency, µs. */
  p90: number;
  /** 99th percentile latency, µs. */
  p99: number;
  /** Slowest call, µs. */
  max: number;
}

/** What `multiCall()` resolves with: one entry per member, in either list. */
export interface MultiCallResult<R> {
  /** Members that answered, with their answers. */
  replies: [Pid, R][];
  /** Members whose call failed, with the error (a handler's, or NodeDownError, CallTimeoutError…). */
  failures: [Pid, Error][];
}

export const DEFAULT_MAX_IN_FLIGHT = 1024;
const STRATEGIES = new Set(['random', 'round-robin', 'local-first', 'least-loaded', 'hash']);

export function checkStrategy(strategy: unknown, key: unknown): void {
  if (
    typeof strategy !== 'function' &&
    !(typeof strategy === 'string' && STRATEGIES.has(strategy))
  ) {
    throw new TypeError(
      `strategy must be one of ${[...STRATEGIES].map((s) => `'${s}'`).join(', ')} or a function, got ${describe(strategy)}`,
    );
  }
  if (
    key !== undefined &&
    !(typeof key === 'string' || (typeof key === 'number' && Number.isFinite(key)))
  ) {
    throw new TypeError(`key must be a string or a finite number, got ${describe(key)}`);
  }
  if (strategy === 'hash' && key === undefined)
    throw new TypeError("the 'hash' strategy needs a `key` to route by");
}

/** The options of a dispatch given none: known good, so never checked. */
export const NO_OPTIONS: DispatchOptions = Object.freeze({});

/** Options checked once and frozen (`checkedOptions`): good for ever, so never checked again. */
const checked = new WeakSet<DispatchOptions>([NO_OPTIONS]);

/**
 * A frozen copy of `o`, checked now (throws as `checkDispatchOptions` does): for options
 * used again and again, such as a service proxy's, so that each dispatch with them
 * skips the checks. A frozen object cannot change after its check.
 */
export function checkedOptions(o: DispatchOptions): DispatchOptions {
  checkDispatchOptions(o);
  const copy = Object.freeze({ ...o });
  checked.add(copy);
  return copy;
}

/** True for options that need no check: none given, or made by `checkedOptions`. */
export function isChecked(o: DispatchOptions): boolean {
  return o === NO_OPTIONS || checked.has(o);
}

/** Throws a TypeError or RangeError naming the bad field of dispatch options. */
export function checkDispatchOptions(o: DispatchOptions): void {
  if (typeof o !== 'object' || o === null)
    throw new TypeError(`dispatch options must be an object, got ${describe(o)}`);
  checkCallOptions(o);
  checkStrategy(o.strategy ?? 'random', o.key);
  checkNumber('retries', o.retries, 0, { integer: true });
  checkNumber('maxInFlight', o.maxInFlight, 1, { integer: true });
  checkNumber('maxQueue', o.maxQueue, 0, { integer: true });
  checkNumber('waitForMembers (ms)', o.waitForMembers, 0);
}
export const DEFAULT_MAX_QUEUE = 100_000;
