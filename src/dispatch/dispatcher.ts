/**
 * Work by role: pick a member of a group and call it (`dispatch`), send to all of them
 * (`broadcast`), or call all of them (`multiCall`). The pick reads the shared index on
 * the calling thread (strategies.ts); the call then goes straight to the member's
 * node. Backpressure and waiting are backpressure.ts's.
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
import { checkGroup, type Group } from '../core/group.js';
import type { MembershipView } from '../core/membership-view.js';
import type { Pid } from '../core/pid.js';
import { type CallOptions, checkCallOptions } from '../runtime/pending-calls.js';
import { Backpressure, type GroupWatcher } from './backpressure.js';
import {
  type Caller,
  checkDispatchOptions,
  checkStrategy,
  DEFAULT_MAX_IN_FLIGHT,
  type DispatchOptions,
  type DispatchStats,
  type MultiCallResult,
  type Strategy,
} from './options.js';
import { Picker } from './strategies.js';

/** A member that died under a call: the only failures `retries` applies to. */
function memberGone(e: unknown): boolean {
  return e instanceof ProcessExitError || e instanceof NodeDownError || e instanceof NoProcessError;
}

/** What dispatch needs of its scope: monitors (for backpressure) and `waitForMembers`. */
export interface DispatchScope extends GroupWatcher {
  waitForMembers(group: Group, options: { timeout: number; signal?: AbortSignal }): Promise<Pid[]>;
}

export class Dispatcher {
  readonly #node: Caller;
  readonly #scopeApi: DispatchScope;
  readonly #reader: () => MembershipView | undefined;
  readonly #scope: string;
  readonly #picker: Picker;
  readonly #queue: Backpressure;

  constructor(
    node: Caller,
    scopeApi: DispatchScope,
    scope: string,
    reader: () => MembershipView | undefined,
  ) {
    this.#node = node;
    this.#scopeApi = scopeApi;
    this.#scope = scope;
    this.#reader = reader;
    this.#queue = new Backpressure(scope, reader, scopeApi, DEFAULT_MAX_IN_FLIGHT);
    this.#picker = new Picker(node, reader, this.#queue.windows);
  }

  /**
   * One member of `group` by `strategy`, or undefined for an empty group. Synchronous.
   * (`Scope.pick` serves the default strategies itself, on its fast path.)
   */
  pick(group: Group, strategy: Strategy = 'random', key?: string | number): Pid | undefined {
    checkStrategy(strategy, key);
    if (this.#reader() === undefined) checkGroup(group);
    return this.#picker.pick(group, strategy, key, undefined, Number.POSITIVE_INFINITY);
  }

  /**
   * Calls a member picked by `options.strategy`. Rejects with `NoMembersError` for an
   * empty group (after `waitForMembers` ms if given), `QueueFullError` when every
   * member is saturated and the queue is full, or whatever the call rejects with.
   */
  async dispatch<R>(group: Group, message: unknown, options: DispatchOptions = {}): Promise<R> {
    checkDispatchOptions(options);
    const strategy = options.strategy ?? 'random';
    // Undefined: each member's adaptive window (window.ts).
    const maxInFlight = options.maxInFlight;
    if (this.#reader() === undefined) {
      checkGroup(group);
      throw new NoScopeError(`cannot dispatch: scope '${this.#scope}' is not running`);
    }
    // `timeout` bounds the whole dispatch: waiting in a queue, then each attempt.
    const deadline =
      options.timeout === undefined ? undefined : performance.now() + options.timeout;
    const state = this.#queue.state(group);
    let retriesLeft = options.retries ?? 0;
    let tried: Set<Pid> | undefined;
    let waited = false;
    for (;;) {
      let pid = this.#picker.pick(group, strategy, options.key, tried, maxInFlight);
      if (pid !== undefined) {
        this.#queue.take(pid);
      } else {
        const reader = this.#reader();
        if (reader === undefined)
          throw new NoScopeError(`scope '${this.#scope}' stopped during the dispatch`);
        if (
          reader.count(group) === 0 ||
          (tried !== undefined && this.#picker.allTried(group, tried))
        ) {
          if (!waited && (options.waitForMembers ?? 0) > 0) {
            waited = true;
            await this.#waitForMembers(group, options, deadline);
            continue;
          }
          throw new NoMembersError(
            tried === undefined
              ? `group ${describe(group)} of scope '${this.#scope}' has no members; ` +
                  'to wait for one, pass { waitForMembers: ms } or await pg.waitForMembers(group) first'
              : `every member of group ${describe(group)} tried failed, and no other is left`,
          );
        }
        // Every usable member is at its bound: wait for one (the waiter takes its slot).
        const t = tried;
        try {
          pid = await this.#queue.wait(
            state,
            group,
            options,
            deadline,
            () => this.#picker.pick(group, strategy, options.key, t, maxInFlight),
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
        this.#queue.release(pid);
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
    const [map, k] = this.#queue.stateOf(group);
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

  /**
   * The scope stopped, or this node left: every waiting dispatch fails now rather than
   * when (if ever) a call in flight settles.
   */
  detach(): void {
    this.#queue.detach();
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
    try {
      await this.#scopeApi.waitForMembers(
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
