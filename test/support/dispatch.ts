/**
 * Helpers of the dispatch tests (test/dispatch-*.test.ts).
 *
 * A test cluster ("rig") has node 0 on the test thread and agents (test/fixtures/agent.ts)
 * as worker nodes. On every node, members are processes with a behaviour the test
 * controls (`MemberKind`, in processes.ts): they record each message that reaches their
 * handler (the per-member counter the backpressure tests read), the blocking kinds tell
 * the probe process on node 0 when a message reaches them (so a test waits for an event,
 * never for time), and `gate` members hold every message until the test opens their gate.
 *
 * Commands go to an agent's side process, which runs them concurrently, so that a
 * command that waits (a dispatch to a gated member, a churn) never holds up another
 * (`open`, `ping`).
 */
import type { ExecutionContext } from 'ava';
import {
  type Cluster,
  type ClusterOptions,
  type DispatchStats,
  type Group,
  type Node,
  type Pid,
  type Scope,
  startCluster,
} from '../../src/index.js';
import { type Agent, spawnAgent, withTestCoordinator } from './cluster.js';
import type { Command } from './commands.js';
import { type Arrival, type MemberKind, Members } from './processes.js';
import { Condition } from './wait.js';

/** A process on node 0 that hears every arrival at a blocking member, on any node. */
export class Probe {
  readonly pid: Pid;
  readonly arrivals: Arrival[] = [];
  readonly #heard = new Condition();

  constructor(node: Node) {
    this.pid = node.spawn((m: unknown) => {
      this.arrivals.push(m as Arrival);
      this.#heard.notify();
    });
  }

  /** Arrivals heard so far, in total or at `pid`. */
  count(pid?: Pid): number {
    if (pid === undefined) return this.arrivals.length;
    let n = 0;
    for (const a of this.arrivals) if (a.pid === pid) n++;
    return n;
  }

  /** Resolves once `n` arrivals were heard, in total or at `pid`. */
  arrived(n: number, pid?: Pid): Promise<void> {
    return this.#heard.until(() => this.count(pid) >= n);
  }
}

// Worker nodes ------------------------------------------------------------------------

/** An agent as the dispatch tests drive it: members, gates and commands on its side process. */
export interface DispatchNode {
  readonly id: number;
  readonly agent: Agent;
  terminate(): Promise<void>;
  /** Runs a command on the agent's side process. */
  cmd<R = unknown>(command: Command): Promise<R>;
  /** Starts members of `kind` there, joined to `join` if given. */
  spawn(kind: MemberKind, n?: number, join?: Group, concurrency?: number): Promise<Pid[]>;
  join(group: Group, pids: Pid[]): Promise<void>;
  leave(group: Group, pids: Pid[]): Promise<'ok' | 'not_joined'>;
  received(pid: Pid): Promise<unknown[]>;
  open(pid?: Pid, n?: number, forever?: boolean): Promise<number>;
  /** Returns once everything node 0 sent to this node before was handled. */
  ping(): Promise<void>;
}

/** Spawns an agent whose members tell `probe` of their arrivals. */
export async function spawnNode(cluster: Cluster, probe: Pid): Promise<DispatchNode> {
  const agent = await spawnAgent(cluster, { workerData: { probe } });
  const cmd = agent.sideCmd;
  return {
    id: agent.id,
    agent,
    terminate: () => agent.terminate(),
    cmd,
    spawn: (kind, n = 1, join, concurrency) =>
      cmd<Pid[]>({ cmd: 'spawnMembers', kind, n, join, concurrency }),
    join: async (group, pids) => {
      await cmd({ cmd: 'join', group, pids });
    },
    leave: (group, pids) => cmd<'ok' | 'not_joined'>({ cmd: 'leave', group, pids }),
    received: (pid) => cmd<unknown[]>({ cmd: 'received', pid }),
    open: (pid, n, forever) => cmd<number>({ cmd: 'open', pid, n, forever }),
    ping: async () => {
      await cmd({ cmd: 'ping' });
    },
  };
}

/** A cluster for one test: node 0 with its probe and members, and worker nodes. */
export interface Rig {
  readonly cluster: Cluster;
  readonly node: Node;
  readonly pg: Scope;
  readonly probe: Probe;
  /** Node 0's members. */
  readonly local: Members;
  readonly workers: DispatchNode[];
  /** Starts members of `kind` on node 0 and joins them to `group`. */
  spawnLocal(kind: MemberKind, n: number, group?: Group, concurrency?: number): Promise<Pid[]>;
  /** Opens every gate, on every node, for good (so that nothing waits when the test ends). */
  openAll(): Promise<void>;
}

/**
 * Starts a cluster with `workers` worker nodes (spawned one after another, so node ids
 * are 1, 2, …), with `options` (the suite's coordinator mode unless they name one);
 * stopped when the test ends.
 */
export async function rig(
  t: ExecutionContext,
  workers = 0,
  options?: ClusterOptions,
): Promise<Rig> {
  const cluster = await startCluster(withTestCoordinator(options));
  t.teardown(() => cluster.stop());
  const node = cluster.node;
  const probe = new Probe(node);
  const local = new Members(node, probe.pid);
  const ws: DispatchNode[] = [];
  for (let i = 0; i < workers; i++) ws.push(await spawnNode(cluster, probe.pid));
  return {
    cluster,
    node,
    pg: node.pg,
    probe,
    local,
    workers: ws,
    spawnLocal: async (kind, n, group, concurrency) => {
      const pids = local.spawn(kind, n, concurrency);
      if (group !== undefined) await node.pg.join(group, pids);
      return pids;
    },
    openAll: async () => {
      local.open(undefined, Number.POSITIVE_INFINITY, true);
      await Promise.all(
        ws.map((w) => w.open(undefined, Number.POSITIVE_INFINITY, true).catch(() => 0)),
      );
    },
  };
}

// Small helpers ----------------------------------------------------------------------

/** How many times each value occurs. */
export function tally<T>(values: Iterable<T>): Map<T, number> {
  const out = new Map<T, number>();
  for (const v of values) out.set(v, (out.get(v) ?? 0) + 1);
  return out;
}

/** The outcome of a promise, tracked as it settles (read `state` at any time). */
export interface Tracked<T> {
  readonly promise: Promise<T>;
  readonly state: 'pending' | 'fulfilled' | 'rejected';
  readonly value: T | undefined;
  readonly error: unknown;
}

export function track<T>(promise: Promise<T>): Tracked<T> {
  const t: {
    promise: Promise<T>;
    state: Tracked<T>['state'];
    value: T | undefined;
    error: unknown;
  } = { promise, state: 'pending', value: undefined, error: undefined };
  promise.then(
    (v) => {
      t.state = 'fulfilled';
      t.value = v;
    },
    (e) => {
      t.state = 'rejected';
      t.error = e;
    },
  );
  return t;
}

/** Resolves with the value, or with `fallback` if `ms` pass first: turns a hang into a failed assertion instead of a test timeout. */
export function orAfter<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<F>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
  });
  return Promise.race([promise, guard]).finally(() => clearTimeout(timer));
}

export type { DispatchStats };
