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
import { type CallOptions, checkCallOptions } from '../runtime/pending-calls.js';
import {
  checkNumber,
  describe,
  NodeDownError,
  NoMembersError,
  NoProcessError,
  NoScopeError,
  ProcessExitError,
  CallTimeoutError,
  QueueFullError,
} from '../core/errors.js';
import { checkGroup, encodeGroup, type Group, type GroupKey, hashKey } from '../core/group.js';
import type { Node } from '../runtime/node.js';
import { nodeOf, type Pid } from '../core/pid.js';
import type { MembershipView } from '../pg/partition-view.js';

import { after } from '../core/timer.js';

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
   * run twice.
   */
  retries?: number;
  /**
   * Milliseconds to wait for a member when the group is empty, then `NoMembersError`.
   * Default 0: reject at once. A shorter `timeout` ends the wait first, with
   * `CallTimeoutError`.
   */
  waitForMembers?: number;
  /** Calls from this thread in flight to one member before it counts as saturated. Default 1,024. */
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
  /** Latency percentiles in microseconds (of calls that completed, either way). */
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

/** A dispatch waiting for a member with room. */
interface Waiter {
  /** Picks a member with room for this dispatch, or undefined. */
  pick(): Pid | undefined;
  /** Hands it the member picked (its slot is already taken), or fails it. */
  resolve(pid: Pid): void;
  reject(error: unknown): void;
  /** Settled (started, timed out, aborted): skipped and dropped by the pumps. */
  done: boolean;
  state: GroupState;
  group: Group;
}

interface GroupState {
  calls: number;
  failures: number;
  retries: number;
  histogram: RecordableHistogram;
  /** Dispatches waiting for any member with room, FIFO from `queueHead`. */
  queue: Waiter[];
  queueHead: number;
  /** Dispatches waiting for one member in particular ('hash', or a function strategy). */
  sticky: Waiter[];
  /** Waiting dispatches of this group, in every queue (the bound `maxQueue` applies to). */
  waiting: number;
  /** The monitor on the group while dispatches wait (see `#watchJoins`), if any. */
  joins: JoinWatch | undefined;
}

/** One monitor of `#watchJoins`; its ref is known once the coordinator has answered. */
interface JoinWatch {
  ref: number | undefined;
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
  readonly #byString = new Map<string | number, GroupState>();
  readonly #byNumber = new Map<string | number, GroupState>();
  readonly #byTuple = new Map<string | number, GroupState>();
  /** Every group state, for the pumps. */
  readonly #groups = new Set<GroupState>();
  /** Dispatches of this thread waiting, in all groups. */
  #waiting = 0;
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
    // `timeout` bounds the whole dispatch: waiting in a queue, then each attempt.
    const deadline =
      options.timeout === undefined ? undefined : performance.now() + options.timeout;
    const state = this.#state(group);
    let retriesLeft = options.retries ?? 0;
    let tried: Set<Pid> | undefined;
    let waited = false;
    for (;;) {
      let pid = this.#pick(group, strategy, options.key, tried, maxInFlight);
      if (pid !== undefined) {
        this.#take(pid);
      } else {
        const reader = this.#reader();
        if (reader === undefined)
          throw new NoScopeError(`scope '${this.#scope}' stopped during the dispatch`);
        if (reader.count(group) === 0 || (tried !== undefined && this.#allTried(group, tried))) {
          if (!waited && (options.waitForMembers ?? 0) > 0) {
            waited = true;
            await this.#waitForMembers(group, options, deadline);
            continue;
          }
          throw new NoMembersError(
            tried === undefined
              ? `group ${describe(group)} of scope '${this.#scope}' has no members`
              : `every member of group ${describe(group)} tried failed, and no other is left`,
          );
        }
        // Every usable member is at its bound: wait for one (the waiter takes its slot).
        const t = tried;
        try {
          pid = await this.#wait(
            state,
            group,
            options,
            deadline,
            () => this.#pick(group, strategy, options.key, t, maxInFlight),
            strategy === 'hash' || typeof strategy === 'function',
          );
        } catch (error) {
          // The group emptied while this dispatch waited: it still has its
          // `waitForMembers` to spend, as a dispatch that found the group empty would.
          if (error instanceof NoMembersError && !waited && (options.waitForMembers ?? 0) > 0)
            continue;
          throw error;
        }
      }
      state.calls++;
      const start = process.hrtime.bigint();
      try {
        const left = deadline === undefined ? undefined : Math.max(0, deadline - performance.now());
        return await this.#node.call<R>(
          pid,
          message,
          left === undefined ? options : { ...options, timeout: left },
        );
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
        this.#release(pid);
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
    const [map, k] = this.#stateOf(group);
    const s = map.get(k);
    if (s === undefined)
      return { calls: 0, failures: 0, retries: 0, queued: 0, p50: 0, p90: 0, p99: 0, max: 0 };
    const h = s.histogram;
    const us = (ns: number) => (s.calls === 0 ? 0 : ns / 1000);
    return {
      calls: s.calls,
      failures: s.failures,
      retries: s.retries,
      queued: s.waiting,
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

  /** The group's state map and key: strings, numbers and tuples (by their encoding) apart. */
  #stateOf(group: Group): [Map<string | number, GroupState>, string | number] {
    if (typeof group === 'string') return [this.#byString, group];
    if (typeof group === 'number') return [this.#byNumber, group];
    return [this.#byTuple, encodeGroup(group)];
  }

  #state(group: Group): GroupState {
    const [map, k] = this.#stateOf(group);
    let s = map.get(k);
    if (s === undefined) {
      s = {
        calls: 0,
        failures: 0,
        retries: 0,
        histogram: createHistogram(),
        queue: [],
        queueHead: 0,
        sticky: [],
        waiting: 0,
        joins: undefined,
      };
      map.set(k, s);
      this.#groups.add(s);
    }
    return s;
  }

  /** Takes a slot of `pid` for a call from this thread. */
  #take(pid: Pid): void {
    this.#inFlight.set(pid, (this.#inFlight.get(pid) ?? 0) + 1);
  }

  /** Gives a slot of `pid` back, and lets waiting dispatches that can now go, go. */
  #release(pid: Pid): void {
    const n = this.#inFlight.get(pid)! - 1;
    if (n === 0) this.#inFlight.delete(pid);
    else this.#inFlight.set(pid, n);
    // A member may belong to several groups, and a sticky dispatch can only use its own
    // member: every group with waiters gets a look, not only the one this call was for.
    if (this.#waiting > 0)
      for (const state of this.#groups.values()) if (state.waiting > 0) this.#pump(state);
  }

  /**
   * Starts the waiting dispatches of `state` that have a member with room now. Any-member
   * waiters go in FIFO order, and the first that finds no room stops the others behind it
   * (they would find none either). Sticky waiters are each looked at: one whose member
   * just freed up goes, whatever waits before it.
   */
  #pump(state: GroupState): void {
    const q = state.queue;
    let head = state.queueHead;
    while (head < q.length) {
      const w = q[head]!;
      if (!w.done) {
        const pid = this.#pickFor(w);
        if (w.done) {
          head++;
          continue;
        }
        if (pid === undefined) {
          const hopeless = this.#hopeless(w.group);
          if (hopeless === undefined) break;
          w.reject(hopeless);
          head++;
          continue;
        }
        this.#start(w, pid);
      }
      head++;
    }
    // Drop the started ones from the front without shifting the array on every call.
    if (head === q.length) {
      state.queue = [];
      state.queueHead = 0;
    } else if (head > 1024 && head * 2 > q.length) {
      state.queue = q.slice(head);
      state.queueHead = 0;
    } else {
      state.queueHead = head;
    }
    if (state.sticky.length > 0) {
      let kept = 0;
      for (const w of state.sticky) {
        if (w.done) continue;
        const pid = this.#pickFor(w);
        if (w.done) continue;
        if (pid !== undefined) this.#start(w, pid);
        else {
          const hopeless = this.#hopeless(w.group);
          if (hopeless === undefined) state.sticky[kept++] = w;
          else w.reject(hopeless);
        }
      }
      state.sticky.length = kept;
    }
  }

  /**
   * A waiter's pick. A strategy function that throws fails that dispatch with its
   * error, here rather than in whoever ran the pump (another dispatch, a monitor event).
   */
  #pickFor(w: Waiter): Pid | undefined {
    try {
      return w.pick();
    } catch (error) {
      w.reject(error);
      return undefined;
    }
  }

  /**
   * Why a dispatch waiting for `group` can never go, or undefined while it still can:
   * the scope stopped, or the group lost its last member while it waited (nobody will
   * ever free up for it).
   */
  #hopeless(group: Group): Error | undefined {
    const reader = this.#reader();
    if (reader === undefined)
      return new NoScopeError(`scope '${this.#scope}' stopped while dispatches waited`);
    if (reader.count(group) === 0)
      return new NoMembersError(
        `group ${describe(group)} lost its last member while dispatches waited`,
      );
    return undefined;
  }

  /**
   * @internal The scope stopped, or this node left: every waiting dispatch fails now
   * rather than when (if ever) a call in flight settles.
   */
  detach(): void {
    if (this.#waiting === 0) return;
    for (const state of this.#groups) if (state.waiting > 0) this.#pump(state);
  }

  #start(w: Waiter, pid: Pid): void {
    this.#take(pid);
    this.#settleWaiter(w);
    w.resolve(pid);
  }

  #settleWaiter(w: Waiter): void {
    w.done = true;
    w.state.waiting--;
    this.#waiting--;
  }

  /** Waits for a member with room, within `maxQueue`, the deadline and the signal. */
  #wait(
    state: GroupState,
    group: Group,
    options: DispatchOptions,
    deadline: number | undefined,
    pick: () => Pid | undefined,
    sticky: boolean,
  ): Promise<Pid> {
    const maxQueue = options.maxQueue ?? DEFAULT_MAX_QUEUE;
    if (state.waiting >= maxQueue) {
      return Promise.reject(
        new QueueFullError(
          `every member of group ${describe(group)} is at its in-flight bound and ${maxQueue} dispatches already wait; ` +
            'add members, raise maxInFlight or maxQueue, or slow down',
        ),
      );
    }
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<Pid>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const onAbort = () => fail(signal!.reason);
      const cleanup = () => {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const fail = (error: unknown) => {
        if (w.done) return;
        this.#settleWaiter(w);
        cleanup();
        reject(error);
      };
      const w: Waiter = {
        pick,
        resolve: (pid) => {
          cleanup();
          resolve(pid);
        },
        reject: fail,
        done: false,
        state,
        group,
      };
      if (deadline !== undefined) {
        timer = after(Math.max(0, deadline - performance.now()), () =>
          fail(
            new CallTimeoutError(
              `dispatch to group ${describe(group)} waited ${options.timeout} ms for a member with room`,
            ),
          ),
        );
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      (sticky ? state.sticky : state.queue).push(w);
      state.waiting++;
      this.#waiting++;
      if (state.joins === undefined) this.#watchJoins(state, group);
    });
  }

  /**
   * Dispatches wait because every member is saturated; they go when a call completes
   * (`#release`), or when a member joins: a thread started to take the load must get
   * the queued work at once, not when some call on a busy member ends (and when the
   * last member leaves, they fail at once). Joins and leaves are heard through a
   * monitor on the group, held while dispatches wait and dropped at the
   * first event after the queue drained (so that a group that keeps filling and
   * draining does not subscribe again each time).
   */
  #watchJoins(state: GroupState, group: Group): void {
    // A fresh object per monitor: a callback of an older one never touches this one.
    const watch: JoinWatch = { ref: undefined };
    state.joins = watch;
    const scope = this.#node.scope(this.#scope);
    scope
      .monitor(group, {
        onEvent: () => {
          if (state.joins !== watch) return;
          if (state.waiting > 0) {
            this.#pump(state); // a join brings room; a leave may empty the group
            return;
          }
          state.joins = undefined;
          if (watch.ref !== undefined) void scope.demonitor(watch.ref);
          // (else the answer below, still on its way, sees it is no longer current)
        },
        onEnd: () => {
          if (state.joins === watch) state.joins = undefined;
        },
      })
      .then(
        (m) => {
          if (state.joins !== watch) {
            void scope.demonitor(m.ref); // dropped, or the scope stopped, meanwhile
            return;
          }
          watch.ref = m.ref;
          // A member may have joined between the last pick and the snapshot. If the
          // queue has drained already, the monitor stays until the next event.
          if (state.waiting > 0) this.#pump(state);
        },
        () => {
          if (state.joins === watch) state.joins = undefined;
        },
      );
  }

  /**
   * Resolves when `group` has a member. Rejects with `NoMembersError` after
   * `waitForMembers` ms, or with `CallTimeoutError` when the dispatch's own `timeout`
   * comes first: `timeout` bounds the whole dispatch, this wait included.
   */
  async #waitForMembers(
    group: Group,
    options: DispatchOptions,
    deadline: number | undefined,
  ): Promise<void> {
    const wanted = options.waitForMembers!;
    const left = deadline === undefined ? wanted : Math.max(0, deadline - performance.now());
    const ms = Math.min(wanted, left);
    const { signal } = options;
    const scope = this.#node.scope(this.#scope);
    try {
      await scope.waitForMembers(
        group,
        signal === undefined ? { timeout: ms } : { timeout: ms, signal },
      );
    } catch (error) {
      if (error instanceof NoMembersError && left < wanted) {
        throw new CallTimeoutError(
          `dispatch to group ${describe(group)} found no member within its timeout of ${options.timeout} ms`,
        );
      }
      throw error;
    }
  }
}

export type { GroupKey };
