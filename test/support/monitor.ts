/**
 * Helpers of the pg monitor tests (test/monitor-*.test.ts): events compared as
 * multisets, collectors of a monitor's events, monitors on this thread, a random
 * workload, and a node whose control port the test listens to. On a worker, the
 * `watch…` commands of commands.ts hold monitors the same way.
 *
 * Waiting is done with round trips, never with timers: see `flush` in cluster.ts.
 *
 * The agent fixture imports this module too (through commands.ts): it must not import
 * ava at run time.
 */
import type { MessagePort } from 'node:worker_threads';
import {
  type Cluster,
  connect,
  encodeGroup,
  type Group,
  type MembershipEvent,
  type MonitorOptions,
  type Node,
  type Pid,
  type Scope,
} from '../../src/index.js';
import { Rng } from './random.js';
import { sorted } from './views.js';
import { Condition, errorName } from './wait.js';

// Events ------------------------------------------------------------------------------------

const noop = (): void => {};

/** A join event, as a monitor delivers it. */
export function join(group: Group, pids: Pid[]): MembershipEvent {
  return { kind: 'join', group, pids };
}

/** A leave event, as a monitor delivers it. */
export function leave(group: Group, pids: Pid[]): MembershipEvent {
  return { kind: 'leave', group, pids };
}

/** An event with its pids sorted: for comparing events whose pid order is not specified. */
export function sortedEvent(e: MembershipEvent): MembershipEvent {
  return { kind: e.kind, group: e.group, pids: sorted(e.pids) };
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
  readonly #changed = new Condition();

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
    this.#changed.notify();
  }

  /** Resolves once `test(events)` holds, the stream ends, or `orWhen` settles. */
  until(test: (events: MembershipEvent[]) => boolean, orWhen?: Promise<unknown>): Promise<void> {
    const reached = this.#changed.until(() => this.ended || test(this.events));
    if (orWhen === undefined) return reached;
    return Promise.race([reached, orWhen.then(noop, noop)]);
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
    this.#changed.notify();
  }
}

/** A monitor started by the test on this thread, with its events collected. */
export interface Watch {
  ref: number;
  /** The snapshot as `[group, pids]` entries (one entry for a group monitor). */
  snapshot: [Group, Pid[]][];
  c: Collector;
  /** For an `idle` monitor: its iterator, not consumed. */
  events: AsyncIterable<MembershipEvent> | undefined;
}

export interface WatchOptions extends Omit<MonitorOptions, 'onEvent'> {
  /** Collect through `onEvent` instead of the iterator. */
  callback?: boolean;
  /** A callback that throws on every event (after collecting it). */
  throwing?: boolean;
  /** Do not consume the iterator (to make it overflow): it is left in `Watch.events`. */
  idle?: boolean;
}

/**
 * Starts a scope monitor (no `group`) or a group monitor on `scope` and collects its
 * events, through the iterator, or through `onEvent` when `callback` or `throwing` is
 * set.
 */
export async function watch(
  scope: Scope,
  group?: Group,
  options: WatchOptions = {},
): Promise<Watch> {
  const { callback, throwing, idle, ...rest } = options;
  const [byCallback, onEvent] = Collector.callback();
  const opts: MonitorOptions = { ...rest };
  if (callback === true) opts.onEvent = onEvent;
  if (throwing === true) {
    opts.onEvent = (e) => {
      onEvent(e);
      throw new Error('a monitor callback failed');
    };
  }
  const m = group === undefined ? await scope.monitorScope(opts) : await scope.monitor(group, opts);
  return {
    ref: m.ref,
    snapshot: 'groups' in m ? [...m.groups] : [[group as Group, m.members]],
    c: callback || throwing || idle ? byCallback : new Collector(m.events),
    events: idle ? m.events : undefined,
  };
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

// Monitors held on a worker (the `watch` command) --------------------------------------------

/** A monitor for a worker to start and hold (`watchDrain` reads an `idle` one). */
export interface MonitorSpec extends WatchOptions {
  /** A name the test gives the monitor, to query it later. */
  name: string;
  /** A group monitor when given, else a scope monitor. */
  group?: Group;
}

export interface Started {
  ref: number;
  /** The snapshot: every group and its members (one entry for a group monitor). */
  snapshot: [Group, Pid[]][];
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
