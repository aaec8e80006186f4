/**
 * Backpressure, per calling thread: each member takes at most its window of calls from
 * this thread at once (window.ts; `maxInFlight` fixes it); when every usable member of
 * a group is at its bound, dispatches
 * wait in a bounded FIFO queue for that group (or, for sticky strategies, for their own
 * member), and one that finds the queue full is rejected with `QueueFullError`.
 * Nothing is dropped silently.
 *
 * Waiting dispatches go when a call completes (a slot frees up) or when a member joins
 * (a monitor on the group, held while dispatches wait), and fail at once when the
 * scope stops or the group loses its last member.
 */
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import {
  CallTimeoutError,
  describe,
  NoMembersError,
  NoScopeError,
  QueueFullError,
} from '../core/errors.js';
import { encodeGroup, type Group } from '../core/group.js';
import type { MembershipView } from '../core/membership-view.js';
import type { Pid } from '../core/pid.js';
import { after } from '../core/timer.js';
import { DEFAULT_MAX_QUEUE, type DispatchOptions } from './options.js';
import { Windows } from './window.js';

/** What backpressure needs of its scope: a monitor on a group, to hear joins. */
export interface GroupWatcher {
  monitor(group: Group, options: { onEvent(): void; onEnd(): void }): Promise<{ ref: number }>;
  demonitor(ref: number): Promise<void>;
}

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

export interface GroupState {
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

export class Backpressure {
  readonly #reader: () => MembershipView | undefined;
  readonly #watcher: GroupWatcher;
  readonly #scope: string;
  /** Calls from this thread in flight, and the window, per member. */
  readonly windows: Windows;
  readonly #byString = new Map<string | number, GroupState>();
  readonly #byNumber = new Map<string | number, GroupState>();
  readonly #byTuple = new Map<string | number, GroupState>();
  /** Every group state, for the pumps. */
  readonly #groups = new Set<GroupState>();
  /** Dispatches of this thread waiting, in all groups. */
  #waiting = 0;

  constructor(
    scope: string,
    reader: () => MembershipView | undefined,
    watcher: GroupWatcher,
    maxWindow: number,
  ) {
    this.windows = new Windows(maxWindow);
    this.#scope = scope;
    this.#reader = reader;
    this.#watcher = watcher;
  }

  /** The group's state map and key: strings, numbers and tuples (by their encoding) apart. */
  stateOf(group: Group): [Map<string | number, GroupState>, string | number] {
    if (typeof group === 'string') return [this.#byString, group];
    if (typeof group === 'number') return [this.#byNumber, group];
    return [this.#byTuple, encodeGroup(group)];
  }

  state(group: Group): GroupState {
    const [map, k] = this.stateOf(group);
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
  take(pid: Pid): void {
    this.windows.take(pid);
  }

  /** Gives a slot of `pid` back, and lets waiting dispatches that can now go, go. */
  release(pid: Pid): void {
    this.windows.release(pid);
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
   * The scope stopped, or this node left: every waiting dispatch fails now
   * rather than when (if ever) a call in flight settles.
   */
  detach(): void {
    if (this.#waiting === 0) return;
    for (const state of this.#groups) if (state.waiting > 0) this.#pump(state);
  }

  #start(w: Waiter, pid: Pid): void {
    this.take(pid);
    this.#settleWaiter(w);
    w.resolve(pid);
  }

  #settleWaiter(w: Waiter): void {
    w.done = true;
    w.state.waiting--;
    this.#waiting--;
  }

  /** Waits for a member with room, within `maxQueue`, the deadline and the signal. */
  wait(
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
    const scope = this.#watcher;
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
}
