/**
 * Helpers of the pg monitor tests (test/monitor-*.test.ts) and of their worker fixture
 * (test/fixtures/monitor-node.ts).
 *
 * Waiting is done with round trips, never with timers: `flush(cluster, ids)` is a
 * barrier to each node of `ids` (the coordinator has applied everything the node posted
 * before, and the node has handled everything the coordinator sent it before), done
 * twice, so that the events caused by the writes of one node have reached the monitors
 * held by another.
 *
 * This module is also imported by the fixture: it must not import ava at run time.
 */
import type { MessagePort } from 'node:worker_threads';
import {
  type Cluster,
  connect,
  encodeGroup,
  type Group,
  type MembershipEvent,
  type MonitorOptions,
  makePid,
  type Node,
  type Pid,
  type Scope,
} from '../../src/index.js';
import { Rng } from './random.js';
import { sortPids } from './views.js';

/** The worker script of the monitor tests. */
export const MONITOR_NODE = new URL('../fixtures/monitor-node.js', import.meta.url);

/** Milliseconds a command to a worker may take before the call fails (it never should). */
export const CMD_TIMEOUT = 20_000;

// Events ------------------------------------------------------------------------------------

/** An event with its pids sorted: for comparing events whose pid order is not specified. */
export function sortedEvent(e: MembershipEvent): MembershipEvent {
  return { kind: e.kind, group: e.group, pids: sortPids(e.pids) };
}

/** Events in a canonical order (kind, group key, pids): for comparing them as a multiset. */
export function eventMultiset(events: readonly MembershipEvent[]): MembershipEvent[] {
  const tag = (e: MembershipEvent) => `${e.kind}|${encodeGroup(e.group)}|${e.pids.join(',')}`;
  return events.map(sortedEvent).sort((a, b) => (tag(a) < tag(b) ? -1 : tag(a) > tag(b) ? 1 : 0));
}

// Collecting events ----------------------------------------------------------------------------

export interface CollectorState {
  events: MembershipEvent[];
  /** The iterator finished (always false for a callback monitor). */
  ended: boolean;
  /** Name of the error the iterator ended with, if any. */
  error: string | undefined;
}

interface Waiter {
  test: () => boolean;
  resolve: () => void;
}

/**
 * Consumes a monitor's events into an array, as they come. `until` resolves when the
 * events satisfy a predicate, or the stream ends, or `orWhen` settles: whichever first.
 */
export class Collector {
  readonly events: MembershipEvent[] = [];
  ended = false;
  error: unknown;
  /** Settles when the iterator finishes (never rejects). */
  readonly done: Promise<void>;
  #waiters: Waiter[] = [];

  constructor(source?: AsyncIterable<MembershipEvent>) {
    this.done = source === undefined ? new Promise<void>(() => {}) : this.#consume(source);
  }

  /** A collector fed by a callback (`onEvent`). */
  static callback(): [Collector, (e: MembershipEvent) => void] {
    const c = new Collector();
    return [c, (e) => c.push(e)];
  }

  push(e: MembershipEvent): void {
    this.events.push(e);
    this.#check();
  }

  /** Resolves once `test(events)` holds, the stream ends, or `orWhen` settles. */
  until(test: (events: MembershipEvent[]) => boolean, orWhen?: Promise<unknown>): Promise<void> {
    if (test(this.events) || this.ended) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const w = { test: () => test(this.events), resolve };
      this.#waiters.push(w);
      void orWhen?.then(
        () => resolve(),
        () => resolve(),
      );
    });
  }

  state(): CollectorState {
    return {
      events: [...this.events],
      ended: this.ended,
      error: this.error === undefined ? undefined : errorName(this.error),
    };
  }

  async #consume(source: AsyncIterable<MembershipEvent>): Promise<void> {
    try {
      for await (const e of source) this.push(e);
    } catch (error) {
      this.error = error;
    }
    this.ended = true;
    this.#check();
  }

  #check(): void {
    if (this.#waiters.length === 0) return;
    const keep: Waiter[] = [];
    for (const w of this.#waiters) {
      if (this.ended || w.test()) w.resolve();
      else keep.push(w);
    }
    this.#waiters = keep;
  }
}

export function errorName(e: unknown): string {
  return e instanceof Error ? e.name : `thrown ${String(e)}`;
}

/** A monitor started by the test on this thread, with its events collected. */
export interface Watch {
  ref: number;
  /** The snapshot as `[group, pids]` entries (one entry for a group monitor). */
  snapshot: [Group, Pid[]][];
  c: Collector;
}

/**
 * Starts a scope monitor (no `group`) or a group monitor on `scope` and collects its
 * events, through the iterator, or through `onEvent` when `callback` is set.
 */
export async function watch(
  scope: Scope,
  group?: Group,
  options: Omit<MonitorOptions, 'onEvent'> & { callback?: boolean } = {},
): Promise<Watch> {
  const { callback, ...rest } = options;
  const [byCallback, onEvent] = Collector.callback();
  const opts: MonitorOptions = callback === true ? { ...rest, onEvent } : rest;
  if (group === undefined) {
    const m = await scope.monitorScope(opts);
    return {
      ref: m.ref,
      snapshot: [...m.groups],
      c: callback === true ? byCallback : new Collector(m.events),
    };
  }
  const m = await scope.monitor(group, opts);
  return {
    ref: m.ref,
    snapshot: [[group, m.members]],
    c: callback === true ? byCallback : new Collector(m.events),
  };
}

// Waiting --------------------------------------------------------------------------------------

/** A round trip over `id`'s control port (see the module comment). Immediate for a node that is gone. */
export function barrier(cluster: Cluster, id: number): Promise<void> {
  return cluster.coordinator.barrier(id);
}

/**
 * Round trips to every node of `ids` (default: every node up), twice: after it, what
 * those nodes wrote has been applied, and the events it caused have been handled by
 * every monitor held by those nodes.
 */
export async function flush(
  cluster: Cluster,
  ids: readonly number[] = cluster.nodes(),
): Promise<void> {
  await Promise.all(ids.map((id) => barrier(cluster, id)));
  await Promise.all(ids.map((id) => barrier(cluster, id)));
}

// A random workload ------------------------------------------------------------------------------

/** Groups the workload writes to: strings, a number and tuples (a tuple is not its string). */
export const WORKLOAD_GROUPS: readonly Group[] = ['g0', 'g1', 'g2', 'g3', 7, ['t', 1], 't,1'];

export interface WorkloadPlan {
  seed: number;
  /** Operations per chain. */
  ops: number;
  /** Chains run at the same time on the node (overlapping requests of one node). */
  chains: number;
  /** Processes alive at any time (an exit is followed by a spawn). */
  processes: number;
}

export interface WorkloadReport {
  joins: number;
  leaves: number;
  notJoined: number;
  exits: number;
  /** Writes that failed (a partition cut them off mid-flight), by error name. */
  failed: Record<string, number>;
}

/**
 * Joins and leaves random groups with this node's processes, duplicates included, and
 * makes some of them exit. `onOp(i)` runs before the i-th operation of chain 0.
 */
export async function runWorkload(
  node: Node,
  scope: Scope,
  plan: WorkloadPlan,
  onOp?: (i: number) => Promise<void> | void,
): Promise<WorkloadReport> {
  const r = new Rng(plan.seed);
  const slots: Pid[] = [];
  for (let i = 0; i < plan.processes; i++) slots.push(node.spawn(() => 'pong'));
  const report: WorkloadReport = { joins: 0, leaves: 0, notJoined: 0, exits: 0, failed: {} };
  const fail = (e: unknown) => {
    const name = errorName(e);
    report.failed[name] = (report.failed[name] ?? 0) + 1;
  };
  const some = (n: number) => Array.from({ length: n }, () => r.pick(slots));
  const chain = async (c: number) => {
    for (let i = 0; i < plan.ops; i++) {
      if (c === 0 && onOp !== undefined) await onOp(i);
      const x = r.float();
      const group = r.pick(WORKLOAD_GROUPS);
      try {
        if (x < 0.45) {
          // 1 to 3 pids, picked with replacement: duplicates are common.
          await scope.join(group, some(1 + r.below(3)));
          report.joins++;
        } else if (x < 0.85) {
          const local = scope.getLocalMembers(group);
          // Mostly members (some twice), sometimes a pid that may not be one.
          const pids =
            local.length > 0 && r.chance(0.85)
              ? Array.from({ length: 1 + r.below(2) }, () => r.pick(local))
              : some(1);
          if ((await scope.leave(group, pids)) === 'ok') report.leaves++;
          else report.notJoined++;
        } else if (x < 0.95) {
          const k = r.below(slots.length);
          node.exit(slots[k]!, 'kill');
          slots[k] = node.spawn(() => 'pong');
          report.exits++;
          // Nothing to await: give the other chains and the event loop a turn.
          await new Promise<void>((resolve) => setImmediate(resolve));
        } else {
          // The same pid twice in one join.
          const p = r.pick(slots);
          await scope.join(group, [p, p]);
          report.joins++;
        }
      } catch (e) {
        fail(e);
      }
    }
  };
  await Promise.all(Array.from({ length: plan.chains }, (_, c) => chain(c)));
  return report;
}

// Commands of the worker fixture ---------------------------------------------------------------

export interface MonitorSpec {
  /** A name the test gives the monitor, to query it later. */
  name: string;
  /** A group monitor when given, else a scope monitor. */
  group?: Group;
  maxBuffer?: number;
  owner?: Pid;
  /** Collect through `onEvent` instead of the iterator. */
  callback?: boolean;
  /** Do not consume the iterator (to make it overflow); `drain` reads it later. */
  idle?: boolean;
  /** A callback that throws on every event (after recording it). */
  throwing?: boolean;
}

export interface Started {
  ref: number;
  /** The snapshot: every group and its members (one entry for a group monitor). */
  snapshot: [Group, Pid[]][];
}

export type MonitorCommand =
  /** Starts `n` processes. → Pid[] */
  | { cmd: 'spawn'; n?: number }
  | { cmd: 'join'; group: Group; pids: Pid | Pid[] }
  /** → 'ok' | 'not_joined' */
  | { cmd: 'leave'; group: Group; pids: Pid | Pid[] }
  /** → boolean[] */
  | { cmd: 'exit'; pids: Pid[] }
  /** → Started */
  | ({ cmd: 'monitor' } & MonitorSpec)
  /** → CollectorState of the named monitor */
  | { cmd: 'events'; name: string }
  /** The named monitor's snapshot. → Started */
  | { cmd: 'snapshot'; name: string }
  /** Names of the monitors held. → string[] */
  | { cmd: 'names' }
  /** Reads an idle monitor's iterator to its end. → CollectorState */
  | { cmd: 'drain'; name: string }
  | { cmd: 'demonitor'; name: string }
  /** → View of the index, as read on the worker */
  | { cmd: 'view' }
  /** → View of the worker's local memberships */
  | { cmd: 'localView' }
  /**
   * Runs `runWorkload`; before the chain-0 operations listed in `monitorAt`, starts the
   * monitors given there (its mid-stream snapshots). → WorkloadReport
   */
  | { cmd: 'workload'; plan: WorkloadPlan; monitorAt?: [number, MonitorSpec][] }
  /** Leaves the cluster (after answering). → true */
  | { cmd: 'close' };

export interface MonitorWorker {
  readonly id: number;
  /** The command process (serial 2: concurrent, so a long command does not block others). */
  readonly cmdPid: Pid;
  cmd<R = unknown>(command: MonitorCommand): Promise<R>;
  terminate(): Promise<void>;
}

// Clusters ----------------------------------------------------------------------------------------

/** Starts a cluster that the test stops in teardown. */
export { start as startMonitorCluster } from './cluster.js';

export async function spawnMonitorWorker(cluster: Cluster): Promise<MonitorWorker> {
  const w = await cluster.spawn(MONITOR_NODE);
  const cmdPid = makePid(w.id, 2);
  return {
    id: w.id,
    cmdPid,
    cmd: (command) => cluster.node.call(cmdPid, command, { timeout: CMD_TIMEOUT }),
    terminate: () => w.terminate(),
  };
}

export async function spawnMonitorWorkers(cluster: Cluster, n: number): Promise<MonitorWorker[]> {
  const out: MonitorWorker[] = [];
  for (let i = 0; i < n; i++) out.push(await spawnMonitorWorker(cluster));
  return out;
}

/** Starts `n` processes on `node` (their handler answers 'pong'). */
export function spawnLocal(node: Node, n = 1): Pid[] {
  return Array.from({ length: n }, () => node.spawn(() => 'pong'));
}

/** A monitor event as it travels on a control port (for the wire spy). */
export interface WireEvent {
  ref: number;
  kind: 'join' | 'leave';
  key: string;
  pids: Pid[];
}

/**
 * A second node on this thread, attached with `connect(port)`, whose control port is
 * also listened to by the test: `wire` collects every monitor event the coordinator
 * sends it. This is how a test sees that the coordinator no longer sends anything for a
 * monitor that was removed (not merely that the node drops it).
 */
export async function spyNode(cluster: Cluster): Promise<{ node: Node; wire: WireEvent[] }> {
  const port: MessagePort = cluster.connectPort();
  const wire: WireEvent[] = [];
  const one = (m: unknown) => {
    const e = m as { t?: unknown } & WireEvent;
    if (e !== null && typeof e === 'object' && e.t === 'event') {
      wire.push({ ref: e.ref, kind: e.kind, key: e.key, pids: e.pids });
    }
  };
  port.on('message', (raw: unknown) => {
    if (Array.isArray(raw)) for (const m of raw) one(m);
    else one(raw);
  });
  const node = await connect(port, { name: 'spy' });
  return { node, wire };
}
