/**
 * A scope as one node sees it: the pg API (`node.pg`, `node.scope(name)`).
 *
 * The node keeps its own processes' memberships here, like pg's `monitors` map: that
 * is what it syncs to the coordinator, what a process exit leaves, and what
 * `getLocalMembers` answers from. Everything else is read from the scope's shared
 * index, synchronously, on this thread.
 *
 * Writes go to the coordinator and resolve once it applied them; the node then renews
 * its read section, so a thread always reads its own writes.
 */
import { checkGroup, decodeGroup, encodeGroup, type Group, type GroupKey } from '../core/group.js';
import { NoProcessError, NoScopeError, NotLocalError } from '../core/errors.js';
import type { MembershipView } from '../core/membership-view.js';
import { formatPid, nodeOf, type Pid, toPidList } from '../core/pid.js';
import { Dispatcher } from '../dispatch/dispatcher.js';
import type {
  Caller,
  DispatchOptions,
  DispatchStats,
  MultiCallResult,
  Strategy,
} from '../dispatch/options.js';
import type { MonitorEvent, ToCoordinator, ToNode } from '../protocol/messages.js';
import type { CallOptions } from '../runtime/pending-calls.js';
import { createService, type Service, type ServiceOptions } from '../services/index.js';
import { random31 } from '../dispatch/strategies.js';
import { IndexReader } from '../shared-index/reader.js';
import type { IndexHandle } from '../shared-index/types.js';
import { LocalMembers } from './local-members.js';
import {
  checkMonitorOptions,
  EventStream,
  type GroupMonitor,
  type MonitorOptions,
  type ScopeMonitor,
} from './monitor-stream.js';
import { PartitionView } from './partition-view.js';
import { waitForMembers, type WaitForMembersOptions } from './wait-for-members.js';

export type {
  GroupMonitor,
  MembershipEvent,
  MonitorOptions,
  ScopeMonitor,
} from './monitor-stream.js';
export type { WaitForMembersOptions } from './wait-for-members.js';

/** What a scope needs of its node. */
export interface ScopeHost {
  readonly id: number;
  /** True when `pid` is a live process of this node. */
  isLocalAlive(pid: Pid): boolean;
  /** True when `pid` was ever a process of this node (it may have exited). */
  wasSpawned(pid: Pid): boolean;
  /** Sends a request to the coordinator; resolves with its answer. */
  request(scope: string, build: (ref: number) => ToCoordinator): Promise<ToNode>;
  /** A one-way message to the coordinator (dropped once the node left). */
  post(message: ToCoordinator): void;
  /** Fails the requests in flight for this scope (it went down). */
  failRequests(scope: string, error: unknown): void;
}

/** What the node tells a scope: the node's side of it, never on the public class. */
export interface ScopeHooks {
  /** The scope (re)started: read its new index and sync this node's memberships. */
  attach(handle: IndexHandle): void;
  /**
   * The scope stopped (or the node is leaving). Pending writes fail with
   * `NoScopeError`; monitors end. The coordinator's own node forgets its memberships
   * (pg's scope restart loses them); other nodes keep theirs and sync them back.
   */
  detach(forget: boolean): void;
  /** pg's sync: send this node's whole membership. */
  sync(): void;
  /** A local process exited: it leaves every group, once per counted join. */
  processExited(pid: Pid): void;
  /** A monitor event from the coordinator. */
  onEvent(m: MonitorEvent): void;
  /**
   * Test hook, the thread-world netsplit: `cut` stops talking to the coordinator for
   * this scope (writes stay local, reads show the last state); restoring syncs again.
   */
  setPartitioned(cut: boolean): void;
}

interface Subscription {
  stream: EventStream;
  owner: Pid | undefined;
}

/**
 * The pg API of one scope on one node: `node.pg` (scope `'pg'`) or `node.scope(name)`.
 * Writes go through the coordinator; reads come from the scope's shared index on this
 * thread; dispatch picks members there and calls them directly.
 */
export class Scope {
  readonly name: string;
  readonly #node: ScopeHost;
  #reader: IndexReader | undefined;
  /**
   * What reads go to: the reader, or while this node's link to the scope is cut, a view
   * that adds this node's own members (see partition-view.ts). Undefined when the scope
   * does not run.
   */
  #view: MembershipView | undefined;
  #partitioned = false;
  /** This node's own memberships here (pg's `monitors`). */
  readonly #local = new LocalMembers();
  readonly #subs = new Map<number, Subscription>();
  /** Counts the times this node forgot its memberships here (see `#propagate`). */
  #forgets = 0;
  readonly #dispatcher: Dispatcher;

  /**
   * @internal Made by the node, which gets the node's side of the scope through
   * `hooks` (attach, detach, sync, exits, events).
   */
  constructor(host: ScopeHost, caller: Caller, name: string, hooks: (h: ScopeHooks) => void) {
    this.#node = host;
    this.name = name;
    this.#dispatcher = new Dispatcher(caller, this, name, () => this.#view);
    hooks({
      attach: (handle) => this.#attach(handle),
      detach: (forget) => this.#detach(forget),
      sync: () => this.#sync(),
      processExited: (pid) => this.#processExited(pid),
      onEvent: (m) =>
        this.#subs
          .get(m.ref)
          ?.stream.push({ kind: m.kind, group: decodeGroup(m.key), pids: m.pids }),
      setPartitioned: (cut) => this.#setPartitioned(cut),
    });
  }

  /** True while the scope runs and this node is attached to it. */
  get running(): boolean {
    return this.#reader !== undefined;
  }

  // Writes -----------------------------------------------------------------------------

  /**
   * Joins one local pid or a list of them to `group`. Joins are counted: a pid that
   * joins twice is listed twice and must leave twice. Resolves once the coordinator has
   * applied it, so this thread's next read sees it.
   */
  async join(group: Group, pidOrPids: Pid | readonly Pid[]): Promise<void> {
    const key = encodeGroup(group);
    const all = this.#localPids(pidOrPids, 'join');
    this.#assertRunning('join');
    // As in pg, a local pid that already exited may join: it leaves again at once, as
    // its exit is noticed, so it simply never shows.
    const pids = all.filter((p) => this.#node.isLocalAlive(p));
    if (pids.length < all.length) {
      // A pid that never was a process here is a mistake (a number taken for a pid),
      // not a process that exited meanwhile.
      const never = all.find((p) => !this.#node.wasSpawned(p));
      if (never !== undefined)
        throw new NoProcessError(
          `join: ${formatPid(never)} was never a process of this node; pids come from node.spawn() and node.self()`,
          never,
        );
    }
    if (pids.length === 0) return;
    this.#local.add(key, pids);
    if (this.#partitioned) return;
    await this.#propagate((ref) => ({ t: 'join', scope: this.name, ref, key, pids }));
  }

  /**
   * Takes one local pid or a list of them out of `group`, one occurrence each.
   * Resolves `'not_joined'` when none of them was a member.
   */
  async leave(group: Group, pidOrPids: Pid | readonly Pid[]): Promise<'ok' | 'not_joined'> {
    const key = encodeGroup(group);
    const pids = this.#localPids(pidOrPids, 'leave');
    this.#assertRunning('leave');
    const members = this.#local.removable(key, pids);
    if (members.length === 0) return 'not_joined';
    this.#local.remove(key, members);
    if (this.#partitioned) return 'ok';
    await this.#propagate((ref) => ({ t: 'leave', scope: this.name, ref, key, pids: members }));
    return 'ok';
  }

  /**
   * Sends a write that this node already applied to its own memberships, and waits for
   * the coordinator to apply it too. If the scope stops or this node's link to it is cut
   * while the write is on its way, the write still stands here, as a pg join stands on
   * its node whatever the network does, and reaches the index with the next sync; no
   * rollback, which could race with that sync. Only when the node has forgotten its
   * memberships meanwhile (the coordinator's own node, on a scope stop) does it fail.
   */
  async #propagate(build: (ref: number) => ToCoordinator): Promise<void> {
    const forgets = this.#forgets;
    try {
      await this.#request(build);
    } catch (error) {
      if (error instanceof NoScopeError && forgets === this.#forgets) return;
      throw error;
    }
  }

  // Reads (synchronous, from the shared index) ----------------------------------------

  /** Every member of `group` on every node, duplicates included; `[]` if none or the scope is not running. */
  getMembers(group: Group): Pid[] {
    const v = this.#view;
    if (v !== undefined) return v.members(group);
    checkGroup(group);
    return [];
  }

  /** The members of `group` that are processes of this node. */
  getLocalMembers(group: Group): Pid[] {
    return this.#local.members(encodeGroup(group));
  }

  /** Every group with members, anywhere. */
  whichGroups(): Group[] {
    return this.#view?.groups() ?? [];
  }

  /** Every group with members on this node. */
  whichLocalGroups(): Group[] {
    return [...this.#local.byGroup.keys()].map(decodeGroup);
  }

  /** Number of members of `group` (joins counted), without allocating. */
  count(group: Group): number {
    const v = this.#view;
    if (v !== undefined) return v.count(group);
    checkGroup(group);
    return 0;
  }

  /** The member at `index` modulo the member count, without allocating; undefined for an empty group. */
  memberAt(group: Group, index: number): Pid | undefined {
    const v = this.#view;
    if (v !== undefined) return v.memberAt(group, index);
    checkGroup(group);
    return undefined;
  }

  /** Calls `fn` for each member of a consistent copy of `group`; returns the count. */
  forEachMember(group: Group, fn: (pid: Pid, index: number) => void): number {
    const v = this.#view;
    if (v !== undefined) return v.forEach(group, fn);
    checkGroup(group);
    return 0;
  }

  /**
   * Ends this thread's read section: the next read sees the latest version. Reads
   * renew their section on their own (each synchronous job, every 1,024 reads); call
   * this in a loop that polls the index, or before a long computation so that memory
   * the writer retired can be reused meanwhile.
   */
  refresh(): void {
    this.#reader?.refresh();
  }

  // Dispatch ---------------------------------------------------------------------------

  /** One member of `group`, picked by `strategy` (see `Strategy`); synchronous, no allocation for the built-in ones. */
  pick(group: Group, strategy?: Strategy, key?: string | number): Pid | undefined {
    // The fast path of the default strategies: one read of the index (which checks the
    // group), no option checks, no window (a pick takes no slot). It lives here, not in
    // the dispatcher, so that V8 inlines it, with the read, into the caller.
    const v = this.#view;
    if (v !== undefined && key === undefined) {
      if (strategy === undefined || strategy === 'random') return v.memberAt(group, random31());
      if (strategy === 'round-robin') return v.next(group);
    }
    return this.#dispatcher.pick(group, strategy, key);
  }

  /**
   * Calls a member of `group` picked by `options.strategy`, with backpressure and
   * optional retries, and resolves with its handler's answer. Rejects with:
   * - `NoMembersError`: the group is empty (after `waitForMembers` ms if given), or every
   *   member tried failed;
   * - `QueueFullError`: every member is saturated and `maxQueue` dispatches already wait;
   * - `CallTimeoutError`: `timeout` ran out (waiting for a member, in the queue, or in
   *   the call);
   * - `NoScopeError`: the scope is not running, or stopped meanwhile;
   * - the abort reason of `signal`;
   * - whatever the call rejects with: the handler's own error, `ProcessExitError`,
   *   `NodeDownError`, `NoProcessError` (retried on another member with `retries`; a
   *   call that no handler ran goes to another member anyway, see `retries`),
   *   `MessageCloneError`, `NotConnectedError`;
   * - a `TypeError` or `RangeError` for bad options, `InvalidGroupError` for a bad group.
   */
  dispatch<R = unknown>(group: Group, message: unknown, options?: DispatchOptions): Promise<R> {
    return this.#dispatcher.dispatch<R>(group, message, options);
  }

  /** Sends `message` to every member of `group`; returns how many it was sent to. */
  broadcast(group: Group, message: unknown): number {
    return this.#dispatcher.broadcast(group, message);
  }

  /** Calls every member of `group`; resolves with the answers and the failures. */
  multiCall<R = unknown>(
    group: Group,
    message: unknown,
    options?: CallOptions,
  ): Promise<MultiCallResult<R>> {
    return this.#dispatcher.multiCall<R>(group, message, options);
  }

  /**
   * A typed proxy over `group`: `await api.method(...args)` calls a member picked by
   * `options.strategy`, checked by tsc against the interface `T` (see services/).
   */
  service<T>(group: Group, options?: ServiceOptions<T>): Service<T> {
    return createService<T>(this, group, options);
  }

  /**
   * This thread's dispatch counters and latency percentiles for `group`. They are kept
   * for every group this thread has dispatched to, for as long as this node runs: with
   * a group name per request, that is memory without bound.
   */
  dispatchStats(group: Group): DispatchStats {
    return this.#dispatcher.stats(group);
  }

  /**
   * Resolves with the members of `group` once it has at least `count` (default 1),
   * watching it with a monitor rather than polling. Rejects with `NoMembersError`
   * after `timeout` ms (default: no limit), with the reason of `signal`, or with
   * `NoScopeError` when the scope stops (or this node leaves) while it waits.
   */
  waitForMembers(group: Group, options: WaitForMembersOptions = {}): Promise<Pid[]> {
    return waitForMembers(this, group, options);
  }

  // Monitors ---------------------------------------------------------------------------

  /** Subscribes to every group of the scope: an atomic snapshot, then every change after it. */
  async monitorScope(options: MonitorOptions = {}): Promise<ScopeMonitor> {
    const [ref, groups, events] = await this.#subscribe(undefined, options);
    const map = new Map<Group, Pid[]>();
    for (const [key, pids] of groups) map.set(decodeGroup(key), pids);
    return { ref, groups: map, events };
  }

  /** Subscribes to one group: its members now, then every change after it. */
  async monitor(group: Group, options: MonitorOptions = {}): Promise<GroupMonitor> {
    const key = encodeGroup(group);
    const [ref, groups, events] = await this.#subscribe(key, options);
    return { ref, members: groups[0]?.[1] ?? [], events };
  }

  /** Ends a subscription; no event arrives after this resolves, and its iterator finishes. */
  async demonitor(ref: number | { ref: number }): Promise<void> {
    const r = typeof ref === 'number' ? ref : ref?.ref;
    const sub = this.#subs.get(r);
    if (sub === undefined) return;
    this.#subs.delete(r);
    sub.stream.end();
    if (this.#reader !== undefined) {
      await this.#request((req) => ({
        t: 'demonitor',
        scope: this.name,
        ref: req,
        monitor: r,
      })).catch(() => {
        // The scope stopped meanwhile: the monitor is gone with it.
      });
    }
  }

  // The node's side (see ScopeHooks) ---------------------------------------------------

  #attach(handle: IndexHandle): void {
    this.#reader?.release();
    this.#reader = new IndexReader(handle);
    this.#view = this.#reader;
    this.#partitioned = false;
    this.#sync();
  }

  #detach(forget: boolean): void {
    this.#reader?.release();
    this.#reader = undefined;
    this.#view = undefined;
    this.#node.failRequests(this.name, new NoScopeError(`scope '${this.name}' stopped`));
    this.#dispatcher.detach();
    for (const sub of this.#subs.values()) sub.stream.end();
    this.#subs.clear();
    if (forget) {
      this.#forgets++;
      this.#local.clear();
    }
  }

  #sync(): void {
    if (this.#reader === undefined || this.#partitioned) return;
    this.#node.post({ t: 'sync', scope: this.name, groups: this.#local.entries() });
  }

  #processExited(pid: Pid): void {
    for (const [ref, sub] of this.#subs) if (sub.owner === pid) void this.demonitor(ref);
    const keys = this.#local.removePid(pid);
    if (keys !== undefined && this.#reader !== undefined && !this.#partitioned) {
      this.#node.post({ t: 'exit', scope: this.name, pid, keys });
    }
  }

  #setPartitioned(cut: boolean): void {
    if (this.#partitioned === cut) return;
    this.#partitioned = cut;
    if (this.#reader !== undefined)
      this.#view = cut ? new PartitionView(this.#reader, this.#local.byGroup) : this.#reader;
    if (!cut) this.#sync();
  }

  // Internals --------------------------------------------------------------------------

  #localPids(pidOrPids: Pid | readonly Pid[], what: string): Pid[] {
    const pids = toPidList(pidOrPids);
    for (const p of pids) {
      if (nodeOf(p) !== this.#node.id) {
        throw new NotLocalError(
          `${what} takes only pids of this node (${this.#node.id}); ${formatPid(p)} belongs to node ${nodeOf(p)}. ` +
            `Call ${what} on the node that owns it.`,
          p,
        );
      }
    }
    return pids;
  }

  #assertRunning(what: string): void {
    if (this.#reader === undefined) {
      throw new NoScopeError(
        `cannot ${what}: scope '${this.name}' is not running: it was never started (cluster.startScope starts one), or it, its cluster or this node stopped`,
      );
    }
  }

  async #request(build: (ref: number) => ToCoordinator): Promise<ToNode> {
    const answer = await this.#node.request(this.name, build);
    if (answer.t === 'ack' && answer.error !== undefined) {
      throw new NoScopeError(`scope '${this.name}' refused the request: ${answer.error}`);
    }
    this.#reader?.refresh();
    return answer;
  }

  async #subscribe(
    key: GroupKey | undefined,
    options: MonitorOptions,
  ): Promise<[number, [GroupKey, Pid[]][], EventStream]> {
    if (options.owner !== undefined) {
      const [owner] = this.#localPids(options.owner, 'monitor');
      if (!this.#node.isLocalAlive(owner!)) {
        throw new NoProcessError(
          `the owner of a monitor must be alive; ${formatPid(owner!)} is not`,
          owner!,
        );
      }
    }
    const max = checkMonitorOptions(options);
    this.#assertRunning('monitor');
    let ref = 0;
    const stream = new EventStream(
      max,
      () => void this.demonitor(ref),
      options.onEvent,
      options.onEnd,
    );
    // The subscription is registered under the request's ref before the request is
    // sent, so that no event that follows the snapshot can arrive unrouted.
    const answer = await this.#node.request(this.name, (r) => {
      ref = r;
      this.#subs.set(r, { stream, owner: options.owner });
      return key === undefined
        ? { t: 'monitor', scope: this.name, ref: r }
        : { t: 'monitor', scope: this.name, ref: r, key };
    });
    if (answer.t !== 'monitored') {
      this.#subs.delete(ref);
      stream.end();
      throw new NoScopeError(`scope '${this.name}' refused the monitor`);
    }
    return [ref, answer.groups, stream];
  }
}
