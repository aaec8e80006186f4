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
import { describe, NoMembersError, NoScopeError, QueueFullError } from '../core/errors.js';
import { encodeGroup, type Group } from '../core/group.js';
import type { MembershipView } from '../core/membership-view.js';
import type { Pid } from '../core/pid.js';
import { LatencyHistogram } from './latency-histogram.js';
import { type Slot, Windows } from './window.js';

/** What backpressure needs of its scope: a monitor on a group, to hear joins. */
export interface GroupWatcher {
  monitor(group: Group, options: { onEvent(): void; onEnd(): void }): Promise<{ ref: number }>;
  demonitor(ref: number): Promise<void>;
}

/**
 * A dispatch waiting for a member with room (a `Job`, job.ts). The queue calls it back
 * synchronously, from whatever freed a slot: a settled call, a join, a stop.
 */
export interface Waiter {
  readonly group: Group;
  readonly state: GroupState;
  /** Waits for its own member ('hash', a function strategy) rather than for any. */
  readonly sticky: boolean;
  /** True while it waits here; the queue clears it before calling `start` or `fail`. */
  queued: boolean;
  /**
   * A member with room for it, or undefined. May throw (a strategy function). `hint`:
   * a member of its group that had room for the waiter before it in this pass.
   */
  pick(hint?: Pid): Pid | undefined;
  /** Goes to `pid` (and takes its slot). */
  start(pid: Pid): void;
  /** Can never go: the scope stopped, the group emptied, or its pick threw. */
  fail(error: unknown): void;
}

export interface GroupState {
  calls: number;
  failures: number;
  retries: number;
  histogram: LatencyHistogram;
  /** Dispatches waiting for any member with room, FIFO from `queueHead`. */
  queue: Waiter[];
  queueHead: number;
  /** Dispatches waiting for one member in particular ('hash', or a function strategy). */
  sticky: Waiter[];
  /** Waiting dispatches of this group, in both lists (the bound `maxQueue` applies to). */
  waiting: number;
  /** Of those, the ones in `queue` (waiting for any member): a new dispatch goes behind them. */
  waitingForAny: number;
  /** The monitor on the group while dispatches wait (see `#watchJoins`), if any. */
  joins: JoinWatch | undefined;
  /** In `#waitingIn`. */
  listed: boolean;
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
  /**
   * The groups that have dispatches waiting: what a freed slot looks at. An array
   * walked by index (a freed slot is the hottest path here, and a Set's iterator is an
   * allocation); a group whose queue drained leaves it when the pumps next pass.
   */
  #waitingIn: GroupState[] = [];
  /**
   * Set while the pumps run. Whatever starts a pass while one runs (a strategy function
   * that stops the scope, say) only marks `#again`, and the running one goes round once
   * more, so that one queue is never walked by two loops at once.
   */
  #pumping = false;
  #again = false;
  /** Slots freed so far: a pass sees whether a start freed its slot at once. */
  #released = 0;
  /** A pass is queued for the end of this job (see `release`). */
  #pumpQueued = false;
  readonly #pumpLater = (): void => {
    this.#pumpQueued = false;
    if (this.#waitingIn.length > 0) this.#pumpAll();
  };

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
  #mapOf(group: Group): [Map<string | number, GroupState>, string | number] {
    if (typeof group === 'string') return [this.#byString, group];
    if (typeof group === 'number') return [this.#byNumber, group];
    return [this.#byTuple, encodeGroup(group)];
  }

  /** The group's state, if it has one yet. */
  existing(group: Group): GroupState | undefined {
    // A string group, the common case, without the pair `#mapOf` allocates.
    if (typeof group === 'string') return this.#byString.get(group);
    const [map, k] = this.#mapOf(group);
    return map.get(k);
  }

  /** The group's state, made on first use. */
  state(group: Group): GroupState {
    const found = this.existing(group);
    if (found !== undefined) return found;
    const s: GroupState = {
      calls: 0,
      failures: 0,
      retries: 0,
      histogram: new LatencyHistogram(),
      queue: [],
      queueHead: 0,
      sticky: [],
      waiting: 0,
      waitingForAny: 0,
      joins: undefined,
      listed: false,
    };
    const [map, k] = this.#mapOf(group);
    map.set(k, s);
    return s;
  }

  /** Takes a slot of `pid` for a call from this thread. */
  take(pid: Pid): Slot {
    return this.windows.take(pid);
  }

  /**
   * Gives a slot back at `now`; the waiting dispatches that can now go start at the end
   * of this job.
   *
   * Why not at once: replies arrive in batches (channel.ts), hundreds to a frame, and
   * each frees a slot. One pass over the queue per freed slot starts one waiter and then
   * asks the next, which finds no room; under a deep burst that failed pick (a random
   * member, then every member) cost as much as the dispatch it stood for. One pass at the
   * end of the job, queued with the first slot freed, starts every waiter the frame made
   * room for and asks one more. The calls still leave in this job, batched: the
   * channel sends its batch from a microtask too, queued by the first frame put in it.
   */
  release(slot: Slot, now: number): void {
    this.#released++;
    this.windows.release(slot, now);
    if (this.#waitingIn.length > 0 && !this.#pumpQueued) {
      this.#pumpQueued = true;
      queueMicrotask(this.#pumpLater);
    }
  }

  /**
   * Puts `w` in its group's queue; returns `QueueFullError` (and queues nothing) when
   * `maxQueue` dispatches of the group already wait.
   */
  add(w: Waiter, maxQueue: number): QueueFullError | undefined {
    const state = w.state;
    if (state.waiting >= maxQueue) {
      return new QueueFullError(
        `every member of group ${describe(w.group)} is at its in-flight bound and ${maxQueue} dispatches already wait; ` +
          'add members, raise maxInFlight or maxQueue, or slow down',
      );
    }
    (w.sticky ? state.sticky : state.queue).push(w);
    w.queued = true;
    state.waiting++;
    if (!w.sticky) state.waitingForAny++;
    if (!state.listed) {
      state.listed = true;
      this.#waitingIn.push(state);
    }
    if (state.joins === undefined) this.#watchJoins(state, w.group);
    return undefined;
  }

  /**
   * Takes `w` out of the queue (it timed out or was aborted). It stays in its list, and
   * the pumps skip it and drop it when they pass.
   */
  remove(w: Waiter): void {
    if (!w.queued) return;
    w.queued = false;
    w.state.waiting--;
    if (!w.sticky) w.state.waitingForAny--;
  }

  /**
   * The scope stopped, or this node left: every waiting dispatch fails now
   * rather than when (if ever) a call in flight settles.
   */
  detach(): void {
    if (this.#waitingIn.length > 0) this.#pumpAll();
  }

  #pumpAll(): void {
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#again = false;
        // A member may belong to several groups, and a sticky dispatch can only use its
        // own member: every group with waiters gets a look, not only the freed call's.
        const groups = this.#waitingIn;
        for (let i = 0; i < groups.length; i++) {
          const state = groups[i]!;
          if (state.waiting > 0) this.#pump(state);
        }
      } while (this.#again);
    } finally {
      this.#pumping = false;
      if (this.#waitingIn.some((state) => state.waiting === 0)) {
        this.#waitingIn = this.#waitingIn.filter((state) => {
          if (state.waiting > 0) return true;
          state.listed = false;
          return false;
        });
      }
    }
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
    // The member the last waiter went to. Under a burst, a pass runs because one member
    // answered a batch: the waiters go there, each asking it first, until it is full.
    let hint: Pid | undefined;
    while (head < q.length) {
      const w = q[head]!;
      if (w.queued) {
        const pid = this.#pickFor(w, hint);
        if (pid === undefined && w.queued) {
          const hopeless = this.#hopeless(w.group);
          if (hopeless === undefined) break;
          this.#fail(w, hopeless);
        } else if (pid !== undefined) {
          this.remove(w);
          const released = this.#released;
          w.start(pid);
          // A slot freed during the start: its call failed at once (the member is gone).
          hint = this.#released === released ? pid : undefined;
        }
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
      const sticky = state.sticky;
      state.sticky = [];
      let kept = 0;
      for (const w of sticky) {
        if (!w.queued) continue;
        const pid = this.#pickFor(w);
        if (!w.queued) continue;
        if (pid !== undefined) {
          this.remove(w);
          w.start(pid);
        } else {
          const hopeless = this.#hopeless(w.group);
          if (hopeless === undefined) sticky[kept++] = w;
          else this.#fail(w, hopeless);
        }
      }
      sticky.length = kept;
      // Sticky waiters queued while this ran (a retry) go after those kept.
      state.sticky = state.sticky.length === 0 ? sticky : sticky.concat(state.sticky);
    }
  }

  /**
   * A waiter's pick. A strategy function that throws fails that dispatch with its
   * error, here rather than in whoever ran the pump (another dispatch, a monitor event).
   */
  #pickFor(w: Waiter, hint?: Pid): Pid | undefined {
    try {
      return w.pick(hint);
    } catch (error) {
      this.#fail(w, error);
      return undefined;
    }
  }

  #fail(w: Waiter, error: unknown): void {
    this.remove(w);
    w.fail(error);
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
        `group ${describe(group)} lost its last member while dispatches waited (its members left or their nodes went down, as they all do when the cluster stops)`,
      );
    return undefined;
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
            this.#pumpAll(); // a join brings room; a leave may empty the group
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
          if (state.waiting > 0) this.#pumpAll();
        },
        () => {
          if (state.joins === watch) state.joins = undefined;
        },
      );
  }
}
