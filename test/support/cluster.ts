/**
 * Shared helpers of the tests that run a cluster: starting it, agents (worker nodes
 * running test/fixtures/agent.ts, driven by the commands of commands.ts), barriers,
 * node events and rejections.
 */
import type { Worker } from 'node:worker_threads';
import type { ExecutionContext } from 'ava';
import {
  type Cluster,
  type ClusterOptions,
  makePid,
  type Node,
  type Pid,
  type SpawnNodeOptions,
  startCluster,
} from '../../src/index.js';
import { type Command, SIDE_SERIAL } from './commands.js';
import type { Kind } from './processes.js';
import { outcome } from './wait.js';
import { fixture } from './workers.js';
import { barrierOf } from '../../src/coordinator/cluster.js';

/** The worker node every suite drives by commands (test/fixtures/agent.ts). */
export const AGENT = fixture('agent');

/**
 * Where `start()` puts the coordinator when the test does not say:
 * `PROCGROUPS_TEST_COORDINATOR=thread` runs a suite with a coordinator thread
 * (test/coordinator-thread/ imports suites that way).
 */
export function withTestCoordinator(options: ClusterOptions = {}): ClusterOptions {
  const where = process.env['PROCGROUPS_TEST_COORDINATOR'];
  if (where !== 'thread' || options.coordinator !== undefined || options.transport !== undefined)
    return options;
  return { ...options, coordinator: 'thread' };
}

/** Starts a cluster that is stopped when the test ends, whatever happens. */
export async function start(t: ExecutionContext, options?: ClusterOptions): Promise<Cluster> {
  const cluster = await startCluster(withTestCoordinator(options));
  t.teardown(() => cluster.stop());
  return cluster;
}

/** A worker node running the agent fixture. */
export interface Agent {
  readonly id: number;
  readonly worker: Worker;
  /** Its root process, which runs commands one at a time. */
  readonly root: Pid;
  /** Its side process, which runs commands concurrently (in arrival order up to their first await). */
  readonly side: Pid;
  terminate(): Promise<void>;
  /** Runs a command on the root process. */
  cmd<R = unknown>(command: Command): Promise<R>;
  /** Runs a command on the side process. */
  sideCmd<R = unknown>(command: Command): Promise<R>;
  /** Spawns one process of the given kind on the agent. */
  spawn(kind: Kind, concurrency?: number): Promise<Pid>;
}

export async function spawnAgent(cluster: Cluster, options: SpawnNodeOptions = {}): Promise<Agent> {
  const w = await cluster.spawn(AGENT, options);
  const root = makePid(w.id, 1);
  const side = makePid(w.id, SIDE_SERIAL);
  const cmd = <R>(command: Command) => cluster.node.call<R>(root, command);
  return {
    id: w.id,
    worker: w.worker,
    root,
    side,
    terminate: () => w.terminate(),
    cmd,
    sideCmd: <R>(command: Command) => cluster.node.call<R>(side, command),
    spawn: (kind, concurrency) => cmd<Pid>({ cmd: 'spawn', kind, concurrency }),
  };
}

/** Spawns `n` agents, one after the other (node ids in order). */
export async function spawnAgents(
  cluster: Cluster,
  n: number,
  options: SpawnNodeOptions = {},
): Promise<Agent[]> {
  const out: Agent[] = [];
  for (let i = 0; i < n; i++) out.push(await spawnAgent(cluster, options));
  return out;
}

/** Starts `n` processes on `node` that answer every call with 'pong'. */
export function spawnLocal(node: Node, n = 1): Pid[] {
  return Array.from({ length: n }, () => node.spawn(() => 'pong'));
}

/**
 * A round trip over `node`'s control port: when it resolves, the node has handled
 * every coordinator message sent to it before (a `discover`, an event, say), and the
 * coordinator has applied every message the node posted before its answer (a `sync`, a
 * join, say). This is pg_SUITE's `sync({Scope, Peer})` followed by `sync(Scope)`.
 * Immediate for a node that is gone.
 */
export function barrier(cluster: Cluster, node: number): Promise<void> {
  return barrierOf(cluster, node);
}

/** A barrier to every node that is up. */
export async function barrierAll(cluster: Cluster): Promise<void> {
  await Promise.all(cluster.nodes().map((id) => barrier(cluster, id)));
}

/**
 * Barriers to every node of `ids` (default: every node up), twice: after it, what
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

/** Resolves when `node` sees `event` for node `id`. Register it before causing the event. */
export function nodeEvent(node: Node, event: 'nodeup' | 'nodedown', id: number): Promise<void> {
  return new Promise((resolve) => {
    const on = (n: number) => {
      if (n !== id) return;
      node.off(event, on);
      resolve();
    };
    node.on(event, on);
  });
}

/** Resolves with the exit code when the worker's 'exit' event fires. */
export function exitOf(worker: Worker): Promise<number> {
  return new Promise((resolve) => worker.once('exit', resolve));
}

/** An async handler that records when it runs, to check overlap and order. */
export function tracker() {
  let active = 0;
  let maxActive = 0;
  const started: number[] = [];
  const finished: number[] = [];
  return {
    get maxActive() {
      return maxActive;
    },
    started,
    finished,
    async run(n: number, turns: number): Promise<number> {
      active++;
      maxActive = Math.max(maxActive, active);
      started.push(n);
      for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
      finished.push(n);
      active--;
      return n;
    },
  };
}

export interface ErrorExpectation {
  instanceOf?: abstract new (...args: never[]) => unknown;
  name?: string;
  message?: string | RegExp;
  code?: unknown;
  /** What was tried, for the assertion messages. */
  label?: string;
}

/**
 * Awaits a promise that must reject and checks its error. Unlike `t.throwsAsync`, it
 * accepts rejections that are not native error objects (Node's DOMException for an
 * abort, the Error Node builds for a worker's uncaught exception), and it checks the
 * error against `instanceOf` with a message naming what came instead.
 */
export async function rejects<E = Error & { code?: unknown }>(
  t: ExecutionContext,
  promise: Promise<unknown>,
  expected: ErrorExpectation = {},
): Promise<E> {
  const what = expected.label === undefined ? '' : `${expected.label}: `;
  const result = await outcome(promise);
  if (result.ok) {
    t.fail(`${what}expected a rejection, got the value ${String(result.value)}`);
    return undefined as E;
  }
  const e = result.error as Error & { code?: unknown };
  if (expected.instanceOf !== undefined)
    t.true(
      e instanceof expected.instanceOf,
      `${what}expected an instance of ${expected.instanceOf.name}, got ${String(e)}`,
    );
  if (expected.name !== undefined) t.is(e?.name, expected.name, expected.label);
  if (typeof expected.message === 'string') t.is(e?.message, expected.message, expected.label);
  else if (expected.message !== undefined)
    t.regex(e?.message ?? '', expected.message, expected.label);
  if ('code' in expected) t.is(e?.code, expected.code, expected.label);
  return e as E;
}
