/**
 * One dispatch, from its pick to its answer, as a small state machine rather than an
 * async function.
 *
 * ## The fast path
 *
 * A dispatch is one object and one promise (the one it returns), however it goes:
 *
 *   run ─► pick ─┬─ a member with room ──► start ─► call ─► settled ─┬─► resolve / reject
 *                │                           │                       ├─► retry: run again
 *                │                           │                       └─► no handler ran it: run again
 *                │                           └─ member known gone, nothing sent: run again
 *                ├─ all saturated ─► queued ─► start (from the queue, when a slot frees)
 *                └─ no member ─► waitForMembers, then run again; or reject
 *
 * The call's outcome comes back through `settled` (a `CallSink`), synchronously, while
 * the node handles the reply frame: the slot is freed, and the waiting dispatches are
 * started in that same job, in one pass at its end (backpressure.ts, `release`). So
 * when a batch of 500 replies arrives, the 500 dispatches waiting behind them go out at
 * once, and leave in one batch (channel.ts). An async function would await a promise
 * per call and resume each waiter a microtask later: the queue then cost 2.5 times the
 * call itself.
 */
import {
  CallTimeoutError,
  describe,
  NodeDownError,
  NoMembersError,
  NoProcessError,
  NoScopeError,
  ProcessExitError,
} from '../core/errors.js';
import type { Group } from '../core/group.js';
import type { MembershipView } from '../core/membership-view.js';
import type { Pid } from '../core/pid.js';
import { offAbort, onAbort } from '../core/abort.js';
import { jobClock } from '../core/clock.js';
import { after } from '../core/timer.js';
import type { CallSink } from '../runtime/pending-calls.js';
import type { Backpressure, GroupState, Waiter } from './backpressure.js';
import { type Caller, DEFAULT_MAX_QUEUE, type DispatchOptions, type Strategy } from './options.js';
import type { Picker } from './strategies.js';
import type { Slot } from './window.js';

/** What every job of a scope shares: one object per dispatcher, not per dispatch. */
export interface JobContext {
  readonly scope: string;
  readonly caller: Caller;
  readonly picker: Picker;
  readonly queue: Backpressure;
  reader(): MembershipView | undefined;
  waitForMembers(group: Group, options: { timeout: number; signal?: AbortSignal }): Promise<Pid[]>;
}

/** A member that died under a call: the only failures `retries` applies to. */
function memberGone(e: unknown): boolean {
  return e instanceof ProcessExitError || e instanceof NodeDownError || e instanceof NoProcessError;
}

export class Job<R> implements Waiter, CallSink {
  readonly group: Group;
  readonly state: GroupState;
  readonly sticky: boolean;
  queued = false;
  readonly #ctx: JobContext;
  readonly #message: unknown;
  readonly #options: DispatchOptions;
  readonly #strategy: Strategy;
  /** `timeout` bounds the whole dispatch: waiting for members, in the queue, and each attempt. */
  readonly #deadline: number | undefined;
  #retriesLeft: number;
  #tried: Set<Pid> | undefined;
  #waited = false;
  /**
   * The slot of the member of the attempt in flight, and when it started (`jobClock()`;
   * -1 for an attempt that sent nothing).
   */
  #slot: Slot | undefined;
  #started = 0;
  /** While queued with a deadline or a signal. */
  #timer: ReturnType<typeof setTimeout> | undefined;
  #onAbort: (() => void) | undefined;
  readonly #resolve: (value: R) => void;
  readonly #reject: (error: unknown) => void;

  constructor(
    ctx: JobContext,
    group: Group,
    message: unknown,
    options: DispatchOptions,
    state: GroupState,
    resolve: (value: R) => void,
    reject: (error: unknown) => void,
  ) {
    this.#ctx = ctx;
    this.group = group;
    this.#message = message;
    this.#options = options;
    this.state = state;
    this.#strategy = options.strategy ?? 'random';
    this.sticky = this.#strategy === 'hash' || typeof this.#strategy === 'function';
    this.#deadline =
      options.timeout === undefined ? undefined : performance.now() + options.timeout;
    this.#retriesLeft = options.retries ?? 0;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  /** Picks a member and calls it, or queues, or waits for members, or fails. */
  run(): void {
    // Dispatches already wait for any member of this group: this one goes behind them,
    // first come first served, without a pick that could only find room a waiter is
    // owed. (Not behind sticky ones: they wait for their own member, and another may
    // have room now.)
    if (!this.sticky && this.state.waitingForAny > 0 && this.#tried === undefined) {
      this.#enqueue();
      return;
    }
    let pid: Pid | undefined;
    try {
      pid = this.pick();
    } catch (error) {
      this.#reject(error); // a strategy function threw
      return;
    }
    if (pid !== undefined) {
      this.start(pid);
      return;
    }
    const ctx = this.#ctx;
    const reader = ctx.reader();
    if (reader === undefined) {
      this.#reject(new NoScopeError(`scope '${ctx.scope}' stopped during the dispatch`));
      return;
    }
    if (
      reader.count(this.group) === 0 ||
      (this.#tried !== undefined && ctx.picker.allTried(this.group, this.#tried))
    ) {
      if (this.#mayWaitForMembers()) return;
      this.#reject(
        new NoMembersError(
          this.#tried === undefined
            ? `group ${describe(this.group)} of scope '${ctx.scope}' has no members; ` +
                'to wait for one, pass { waitForMembers: ms } or await pg.waitForMembers(group) first'
            : `every member of group ${describe(this.group)} tried failed, and no other is left`,
        ),
      );
      return;
    }
    this.#enqueue();
  }

  pick(hint?: Pid): Pid | undefined {
    const o = this.#options;
    return this.#ctx.picker.pick(
      this.group,
      this.#strategy,
      o.key,
      this.#tried,
      o.maxInFlight,
      hint,
    );
  }

  start(pid: Pid): void {
    if (this.#timer !== undefined || this.#onAbort !== undefined) this.#unhook();
    const ctx = this.#ctx;
    this.#slot = ctx.queue.take(pid);
    this.state.calls++;
    this.#started = jobClock();
    const deadline = this.#deadline;
    const left = deadline === undefined ? undefined : Math.max(0, deadline - performance.now());
    const failed = ctx.caller.callInto(pid, this.#message, this.#options, left, this);
    if (failed === undefined) return;
    // Nothing was sent. To a member this thread knows is gone (its process exited, its
    // node is down) while the index, a step behind, still lists it: the work never ran,
    // so another member takes it, without spending a retry. (Not for sticky strategies:
    // which member a key goes to is theirs to say, and their retries decide.)
    if (!this.sticky && memberGone(failed)) {
      this.#elsewhere(this.#slot, jobClock());
      return;
    }
    // Anything else (the message cannot be cloned, the signal aborted…): the same path
    // as a call that failed, retries included, but no latency: there was no call to
    // time, and a run of them read as calls answered in no time.
    this.#started = -1;
    this.settled(false, failed);
  }

  /** The call of this attempt ended (CallSink): free its slot, then answer or retry. */
  settled(ok: boolean, value: unknown, notRun = false): void {
    const slot = this.#slot!;
    const state = this.state;
    const now = jobClock();
    // The member was gone before any handler ran the call: no such process when it
    // arrived (it exited while this thread's index still listed it), or it exited with
    // the call still in its mailbox. As when nothing was sent (`start`), the work never
    // ran, so another member takes it without spending a retry.
    if (!ok && notRun && !this.sticky && memberGone(value)) {
      this.#elsewhere(slot, now);
      return;
    }
    if (this.#started >= 0)
      state.histogram.record(Math.max(1, Math.round((now - this.#started) * 1e6)));
    if (ok) {
      this.#resolve(value as R);
    } else {
      state.failures++;
      if (this.#retriesLeft > 0 && memberGone(value)) {
        this.#retriesLeft--;
        state.retries++;
        (this.#tried ??= new Set()).add(slot.pid);
        this.#ctx.queue.release(slot, now);
        this.run();
        return;
      }
      this.#reject(value);
    }
    // After the answer: the dispatches this frees go out in this same job.
    this.#ctx.queue.release(slot, now);
  }

  /** The attempt on `slot`'s member never ran: it counts as no call, and another member is picked. */
  #elsewhere(slot: Slot, now: number): void {
    this.state.calls--;
    (this.#tried ??= new Set()).add(slot.pid);
    this.#ctx.queue.release(slot, now);
    this.run();
  }

  /** From the queue: this dispatch can never go. */
  fail(error: unknown): void {
    this.#unhook();
    // The group emptied while this dispatch waited: it still has its `waitForMembers`
    // to spend, as a dispatch that found the group empty would.
    if (error instanceof NoMembersError && this.#mayWaitForMembers()) return;
    this.#reject(error);
  }

  /** Waits in the group's queue, within `maxQueue`, the deadline and the signal. */
  #enqueue(): void {
    const { signal, maxQueue = DEFAULT_MAX_QUEUE, timeout } = this.#options;
    if (signal?.aborted) {
      this.#reject(signal.reason);
      return;
    }
    const full = this.#ctx.queue.add(this, maxQueue);
    if (full !== undefined) {
      this.#reject(full);
      return;
    }
    if (this.#deadline !== undefined) {
      this.#timer = after(Math.max(0, this.#deadline - performance.now()), () =>
        this.#leave(
          new CallTimeoutError(
            `dispatch to group ${describe(this.group)} waited ${timeout} ms for a member with room`,
          ),
        ),
      );
    }
    if (signal !== undefined) {
      this.#onAbort = () => this.#leave(signal.reason);
      onAbort(signal, this.#onAbort);
    }
  }

  /** Timed out or aborted while queued. */
  #leave(error: unknown): void {
    if (!this.queued) return;
    this.#ctx.queue.remove(this);
    this.#unhook();
    this.#reject(error);
  }

  #unhook(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#onAbort !== undefined) offAbort(this.#options.signal!, this.#onAbort);
    this.#onAbort = undefined;
  }

  /**
   * Starts the one wait for members this dispatch may make (`waitForMembers`), then runs
   * again; false when it has none left.
   */
  #mayWaitForMembers(): boolean {
    const wanted = this.#options.waitForMembers ?? 0;
    if (this.#waited || wanted <= 0) return false;
    this.#waited = true;
    const deadline = this.#deadline;
    const left = deadline === undefined ? wanted : Math.max(0, deadline - performance.now());
    const { signal } = this.#options;
    const ms = Math.min(wanted, left);
    this.#ctx
      .waitForMembers(this.group, signal === undefined ? { timeout: ms } : { timeout: ms, signal })
      .then(
        () => this.run(),
        (error: unknown) => {
          // `timeout` bounds the whole dispatch, this wait included.
          this.#reject(
            error instanceof NoMembersError && left < wanted
              ? new CallTimeoutError(
                  `dispatch to group ${describe(this.group)} found no member within its timeout of ${this.#options.timeout} ms`,
                )
              : error,
          );
        },
      );
    return true;
  }
}
