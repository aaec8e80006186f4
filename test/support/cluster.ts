/**
 * Shared helpers of the cluster tests (test/cluster-*.test.ts).
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
import { outcome } from './wait.js';

/** The generic worker node (test/fixtures/cluster-agent.ts). */
export const AGENT = new URL('../fixtures/cluster-agent.js', import.meta.url);

export function fixture(name: string): URL {
  return new URL(`../fixtures/cluster-${name}.js`, import.meta.url);
}

/** Starts a cluster that is stopped when the test ends, whatever happens. */
export async function start(t: ExecutionContext, options?: ClusterOptions): Promise<Cluster> {
  const cluster = await startCluster(options);
  t.teardown(() => cluster.stop());
  return cluster;
}

/** A worker node running the agent fixture. */
export interface Agent {
  readonly id: number;
  readonly worker: Worker;
  /** Its root process, which runs commands. */
  readonly root: Pid;
  terminate(): Promise<void>;
  /** Runs a command on the agent (see the fixture for the list). */
  cmd<R = unknown>(command: { cmd: string; [k: string]: unknown }): Promise<R>;
  /** Spawns one process of the given kind on the agent. */
  spawn(kind: string, concurrency?: number): Promise<Pid>;
}

export async function spawnAgent(cluster: Cluster, options: SpawnNodeOptions = {}): Promise<Agent> {
  const w = await cluster.spawn(AGENT, options);
  const root = makePid(w.id, 1);
  const cmd = <R>(command: { cmd: string; [k: string]: unknown }) =>
    cluster.node.call<R>(root, command);
  return {
    id: w.id,
    worker: w.worker,
    root,
    terminate: () => w.terminate(),
    cmd,
    spawn: (kind, concurrency) =>
      cmd<Pid>(
        concurrency === undefined ? { cmd: 'spawn', kind } : { cmd: 'spawn', kind, concurrency },
      ),
  };
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
  const result = await outcome(promise);
  if (result.ok) {
    t.fail(`expected a rejection, got the value ${String(result.value)}`);
    return undefined as E;
  }
  const e = result.error as Error & { code?: unknown };
  if (expected.instanceOf !== undefined)
    t.true(
      e instanceof expected.instanceOf,
      `expected an instance of ${expected.instanceOf.name}, got ${String(e)}`,
    );
  if (expected.name !== undefined) t.is(e?.name, expected.name);
  if (typeof expected.message === 'string') t.is(e?.message, expected.message);
  else if (expected.message !== undefined) t.regex(e?.message ?? '', expected.message);
  if ('code' in expected) t.is(e?.code, expected.code);
  return e as E;
}

/**
 * Marks promises as handled, so that a test that stops at a failed assertion before it
 * awaits them all does not also report unhandled rejections. Awaiting them still throws.
 */
export function handled<T extends Promise<unknown>[]>(...promises: T): T {
  for (const p of promises) p.catch(() => {});
  return promises;
}
