/**
 * Work by role: pick a member of a group and call it, send to all of them, or call
 * all of them. Picks read the shared index on the calling thread, synchronously and
 * without allocating; the call then goes straight to the member's node.
 *
 * Backpressure is per calling thread: each member takes at most `maxInFlight` calls
 * from it at once; when every member of a group is at its bound, dispatches wait in a
 * bounded FIFO queue for that group, and one that finds the queue full is rejected
 * with `QueueFullError`. Nothing is dropped silently.
 */
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { type CallOptions, checkCallOptions } from './calls.js';
import {
  checkNumber,
  describe,
  NodeDownError,
  NoMembersError,
  NoProcessError,
  NoScopeError,
  ProcessExitError,
} from './errors.js';
import { encodeGroup, type Group, type GroupKey, hashKey } from './group.js';
import type { Node } from './node.js';
import { nodeOf, type Pid } from './pid.js';
import type { MembershipView } from './partition-view.js';
import { checkGroup } from './shared-index/reader.js';

/** A user strategy: gets the members (a fresh array) and returns one of them, or undefined. */
export type PickFunction = (
  members: readonly Pid[],
  ctx: { node: Node; key: unknown },
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

export interface DispatchOptions extends CallOptions {
  strategy?: Strategy;
  /** The routing key of the `'hash'` strategy (passed to a function strategy too). */
  key?: string | number;
  /**
   * Further members to try when the picked one dies during the call (its process
   * exits, its node goes down). Default 0: only the caller knows whether the work may
   * run twice.
   */
  retries?: number;
  /** Milliseconds to wait for a member when the group is empty. Default 0: reject at once with `NoMembersError`. */
  waitForMembers?: number;
  /** Calls from this thread in flight to one member before it counts as saturated. Default 1,024. */
  maxInFlight?: number;
  /** Dispatches of this thread that may wait for a saturated group. Default 100,000. */
  maxQueue?: number;
}

/** Every member of the group is saturated and the group's wait queue is full. */
export class QueueFullError extends Error {
  override readonly name = 'QueueFullError';
  readonly code = 'ERR_PG_QUEUE_FULL';
}

/** Counters and latency percentiles of one group's dispatches from this thread. */
export interface DispatchStats {
  calls: number;
  failures: number;
  retries: number;
  queued: number;
  /** Latency percentiles in microseconds (of calls that completed, either way). */
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface MultiCallResult<R> {
  replies: [Pid, R][];
  failures: [Pid, Error][];
}

const DEFAULT_MAX_IN_FLIGHT = 1024;
const STRATEGIES = new Set(['random', 'round-robin', 'local-first', 'least-loaded', 'hash']);

function checkStrategy(strategy: unknown, key: unknown): void {
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

/** Throws a TypeError or RangeError naming the bad field of dispatch options. */
function checkDispatchOptions(o: DispatchOptions): void {
  if (typeof o !== 'object' || o === null)
    throw new TypeError(`dispatch options must be an object, got ${describe(o)}`);
  checkCallOptions(o);
  checkStrategy(o.strategy ?? 'random', o.key);
  checkNumber('retries', o.retries, 0, { integer: true });
  checkNumber('maxInFlight', o.maxInFlight, 1, { integer: true });
  checkNumber('maxQueue', o.maxQueue, 0, { integer: true });
  checkNumber('waitForMembers (ms)', o.waitForMembers, 0);
}
const DEFAULT_MAX_QUEUE = 100_000;

interface GroupState {
  calls: number;
  failures: number;
  retries: number;
  histogram: RecordableHistogram;
  /** Dispatches waiting for a member to have room, FIFO. */
  queue: (() => void)[];
  queueHead: number;
}

/** A member that died under a call: the only failures `retries` applies to. */
function memberGone(e: unknown): boolean {
  return e instanceof ProcessExitError || e instanceof NodeDownError || e instanceof NoProcessError;
}

let seed = (Math.random() * 0x1_0000_0000) | 0 || 1;
/** xorshift32: a fast per-thread random source for picks (not for anything that needs secrecy). */
function random32(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return seed >>> 0;
}

/** Mixes a key hash and a pid into a score (rendezvous hashing). */
function score(keyHash: number, pid: number): number {
  let h = Math.imul(keyHash ^ (pid >>> 0), 0x9e3779b1);
  h ^= Math.imul((pid / 0x1_0000_0000) | 0, 0x85ebca6b);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  return h >>> 0;
}

export class Dispatcher {
  readonly #node: Node;
  readonly #reader: () => MembershipView | undefined;
  readonly #scope: string;
  /** Calls from this thread in flight, per member. */
  readonly #inFlight = new Map<Pid, number>();
  readonly #groups = new Map<string | number, GroupState>();
  #scratch = new Float64Array(64);
  #localRr = 0;

  constructor(node: Node, scope: string, reader: () => MembershipView | undefined) {
    this.#node = node;
    this.#scope = scope;
    this.#reader = reader;
  }

  /** One member of `group` by `strategy`, or undefined for an empty group. Synchronous. */
  pick(group: Group, strategy: Strategy = 'random', key?: string | number): Pid | undefined {
    checkStrategy(strategy, key);
    if (this.#reader() === undefined) checkGroup(group);
    return this.#pick(group, strategy, key, undefined, Number.POSITIVE_INFINITY);
  }

  /**
   * Calls a member picked by `options.strategy`. Rejects with `NoMembersError` for an
   * empty group (after `waitForMembers` ms if given), `QueueFullError` when every
   * member is saturated and the queue is full, or whatever the call rejects with.
   */
  async dispatch<R>(group: Group, message: unknown, options: DispatchOptions = {}): Promise<R> {
    checkDispatchOptions(options);
    const strategy = options.strategy ?? 'random';
    const maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    if (this.#reader() === undefined) {
      checkGroup(group);
      throw new NoScopeError(`cannot dispatch: scope '${this.#scope}' is not running`);
    }
    const state = this.#state(group);
    let retriesLeft = options.retries ?? 0;
    let tried: Set<Pid> | undefined;
    let waited = false;
    for (;;) {
      const pid = this.#pick(group, strategy, options.key, tried, maxInFlight);
      if (pid === undefined) {
        const reader = this.#reader();
        if (reader === undefined)
          throw new NoScopeError(`scope '${this.#scope}' stopped during the dispatch`);
        if (reader.count(group) === 0 || (tried !== undefined && this.#allTried(group, tried))) {
          if (!waited && (options.waitForMembers ?? 0) > 0) {
            waited = true;
            await this.#waitForMembers(group, options.waitForMembers!, options.signal);
            continue;
          }
          throw new NoMembersError(
            tried === undefined
              ? `group ${describe(group)} of scope '${this.#scope}' has no members`
              : `every member of group ${describe(group)} tried failed, and no other is left`,
          );
        }
        await this.#enqueue(state, options.maxQueue ?? DEFAULT_MAX_QUEUE, group);
        continue;
      }
      this.#inFlight.set(pid, (this.#inFlight.get(pid) ?? 0) + 1);
      state.calls++;
      const start = process.hrtime.bigint();
      try {
        return await this.#node.call<R>(pid, message, options);
      } catch (error) {
        state.failures++;
        if (retriesLeft > 0 && memberGone(error)) {
          retriesLeft--;
          state.retries++;
          tried ??= new Set();
          tried.add(pid);
          continue;
        }
        throw error;
      } finally {
        state.histogram.record(Math.max(1, Number(process.hrtime.bigint() - start)));
        const n = this.#inFlight.get(pid)! - 1;
        if (n === 0) this.#inFlight.delete(pid);
        else this.#inFlight.set(pid, n);
        this.#wake(state);
      }
    }
  }

  /** Sends `message` to every member of `group`; returns how many (syn's `publish`). */
  broadcast(group: Group, message: unknown): number {
    const reader = this.#reader();
    if (reader === undefined) checkGroup(group);
    const members = reader?.members(group) ?? [];
    let sent = 0;
    for (const pid of members) if (this.#node.send(pid, message)) sent++;
    return sent;
  }

  /** Calls every member of `group`; collects answers and failures (syn's `multi_call`). */
  async multiCall<R>(
    group: Group,
    message: unknown,
    options: CallOptions = {},
  ): Promise<MultiCallResult<R>> {
    checkCallOptions(options);
    const reader = this.#reader();
    if (reader === undefined) checkGroup(group);
    const members = reader?.members(group) ?? [];
    const settled = await Promise.allSettled(
      members.map((pid) => this.#node.call<R>(pid, message, options)),
    );
    const out: MultiCallResult<R> = { replies: [], failures: [] };
    settled.forEach((r, i) => {
      const pid = members[i]!;
      if (r.status === 'fulfilled') out.replies.push([pid, r.value]);
      else
        out.failures.push([
          pid,
          r.reason instanceof Error ? r.reason : new Error(String(r.reason)),
        ]);
    });
    return out;
  }

  /** This thread's dispatch statistics for `group`. */
  stats(group: Group): DispatchStats {
    const s = this.#groups.get(this.#statsKey(group));
    if (s === undefined)
      return { calls: 0, failures: 0, retries: 0, queued: 0, p50: 0, p90: 0, p99: 0, max: 0 };
    const h = s.histogram;
    const us = (ns: number) => (s.calls === 0 ? 0 : ns / 1000);
    return {
      calls: s.calls,
      failures: s.failures,
      retries: s.retries,
      queued: s.queue.length - s.queueHead,
      p50: us(h.percentile(50)),
      p90: us(h.percentile(90)),
      p99: us(h.percentile(99)),
      max: us(h.max),
    };
  }

  // Picking ------------------------------------------------------------------------------

  #pick(
    group: Group,
    strategy: Strategy,
    key: string | number | undefined,
    tried: Set<Pid> | undefined,
    maxInFlight: number,
  ): Pid | undefined {
    const reader = this.#reader();
    if (reader === undefined) return undefined;
    // The fast paths: one read of the index, no copy, when the pick has room.
    if (tried === undefined) {
      let pid: Pid | undefined;
      if (strategy === 'random') pid = reader.memberAt(group, random32());
      else if (strategy === 'round-robin') pid = reader.next(group);
      if (pid !== undefined && (this.#inFlight.get(pid) ?? 0) < maxInFlight) return pid;
      if (pid === undefined && (strategy === 'random' || strategy === 'round-robin'))
        return undefined;
    }
    // Otherwise look at every member.
    let n = reader.membersInto(group, this.#scratch);
    if (n > this.#scratch.length) {
      this.#scratch = new Float64Array(Math.max(n, this.#scratch.length * 2));
      n = reader.membersInto(group, this.#scratch);
    }
    if (n === 0) return undefined;
    const members = this.#scratch;
    const usable = (pid: Pid) =>
      (this.#inFlight.get(pid) ?? 0) < maxInFlight && (tried === undefined || !tried.has(pid));
    if (typeof strategy === 'function') {
      const list = Array.from(members.subarray(0, n)) as Pid[];
      const pid = strategy(
        list.filter((p) => usable(p)),
        { node: this.#node, key },
      );
      return pid !== undefined && usable(pid) ? pid : undefined;
    }
    switch (strategy) {
      case 'hash': {
        if (key === undefined) throw new TypeError("the 'hash' strategy needs a `key` to route by");
        const h = hashKey(typeof key === 'string' ? key : `n${key}`, 0x5bd1e995);
        let best: Pid | undefined;
        let bestScore = -1;
        for (let i = 0; i < n; i++) {
          const pid = members[i] as Pid;
          if (tried?.has(pid)) continue;
          const s = score(h, pid);
          if (s > bestScore) {
            bestScore = s;
            best = pid;
          }
        }
        // Sticky means sticky: a saturated owner makes the dispatch wait, not move.
        return best !== undefined && (this.#inFlight.get(best) ?? 0) < maxInFlight
          ? best
          : undefined;
      }
      case 'local-first': {
        const self = this.#node.id;
        const local = (pid: Pid) => nodeOf(pid) === self && usable(pid);
        let pool = 0;
        for (let i = 0; i < n; i++) if (local(members[i] as Pid)) pool++;
        const take = pool > 0 ? local : usable;
        if (pool === 0) for (let i = 0; i < n; i++) if (usable(members[i] as Pid)) pool++;
        if (pool === 0) return undefined;
        let k = this.#localRr++ % pool;
        for (let i = 0; i < n; i++) {
          const pid = members[i] as Pid;
          if (take(pid) && k-- === 0) return pid;
        }
        return undefined;
      }
      case 'least-loaded':
        return this.#least(members, n, usable);
      default:
        // random or round-robin whose first pick was saturated or already tried.
        return this.#least(members, n, usable);
    }
  }

  /** The usable member with the least load (its node's published load plus this thread's calls to it). */
  #least(members: Float64Array, n: number, usable: (pid: Pid) => boolean): Pid | undefined {
    let best: Pid | undefined;
    let bestLoad = Number.POSITIVE_INFINITY;
    const start = random32() % n;
    for (let k = 0; k < n; k++) {
      const pid = members[(start + k) % n] as Pid;
      if (!usable(pid)) continue;
      const load = this.#node.loadOf(pid) + (this.#inFlight.get(pid) ?? 0);
      if (load < bestLoad) {
        bestLoad = load;
        best = pid;
        if (load === 0) break;
      }
    }
    return best;
  }

  #allTried(group: Group, tried: Set<Pid>): boolean {
    const members = this.#reader()?.members(group) ?? [];
    return members.every((p) => tried.has(p));
  }

  // Queueing and waiting -----------------------------------------------------------------

  #statsKey(group: Group): string | number {
    return typeof group === 'string' || typeof group === 'number' ? group : encodeGroup(group);
  }

  #state(group: Group): GroupState {
    const k = this.#statsKey(group);
    let s = this.#groups.get(k);
    if (s === undefined) {
      s = {
        calls: 0,
        failures: 0,
        retries: 0,
        histogram: createHistogram(),
        queue: [],
        queueHead: 0,
      };
      this.#groups.set(k, s);
    }
    return s;
  }

  #enqueue(state: GroupState, maxQueue: number, group: Group): Promise<void> {
    if (state.queue.length - state.queueHead >= maxQueue) {
      return Promise.reject(
        new QueueFullError(
          `every member of group ${describe(group)} is at its in-flight bound and ${maxQueue} dispatches already wait; ` +
            'add members, raise maxInFlight or maxQueue, or slow down',
        ),
      );
    }
    return new Promise((resolve) => state.queue.push(resolve));
  }

  #wake(state: GroupState): void {
    if (state.queueHead === state.queue.length) return;
    const next = state.queue[state.queueHead++]!;
    if (state.queueHead === state.queue.length) {
      state.queue = [];
      state.queueHead = 0;
    }
    next();
  }

  /** Resolves when `group` has a member, rejects with `NoMembersError` after `ms`. */
  async #waitForMembers(group: Group, ms: number, signal: AbortSignal | undefined): Promise<void> {
    await this.#node
      .scope(this.#scope)
      .waitForMembers(group, signal === undefined ? { timeout: ms } : { timeout: ms, signal });
  }
}

export type { GroupKey };
