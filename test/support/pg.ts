/**
 * Helpers for the port of OTP's pg_SUITE (test/pg-*.test.ts).
 *
 * pg_SUITE drives peer Erlang nodes over RPC; here a peer is a worker thread running
 * test/fixtures/pg-node.ts, driven by calls to its root process (`PgWorker.cmd`).
 * pg_SUITE's `sync(Scope)` (wait until a gen_server handled its queue) becomes either a
 * poll of a synchronous read that yields to the event loop between reads (`settle`, in
 * wait.ts),
 * or `barrier(cluster, node)`: a round trip over the node's control port, after which
 * everything that node posted to the coordinator before it has been applied.
 *
 * This module is also imported by the fixture, so it must not import ava at run time.
 */
import type { ExecutionContext } from 'ava';
import { type Cluster, encodeGroup, type Group, makePid, type Pid } from '../../src/index.js';
import { type View, viewFromKeys } from './views.js';

/** The worker script every pg test spawns. */
export const PG_NODE = new URL('../fixtures/pg-node.js', import.meta.url);

/** Milliseconds a command to a worker may take before the call fails (it never should). */
export const CMD_TIMEOUT = 20_000;

/** A scope name no test uses: `heal` on it is a no-op round trip through a node's control port. */
const BARRIER_SCOPE = 'pg-suite-barrier';

// Commands understood by the fixture -------------------------------------------------

export type PgCommand =
  /** Starts `n` processes (their handler answers every call with 'pong'). → Pid[] */
  | { cmd: 'spawn'; n?: number }
  /** → 'ok' (rejects with the pg error) */
  | { cmd: 'join'; scope?: string; group: Group; pids: Pid | Pid[] }
  /** → 'ok' | 'not_joined' */
  | { cmd: 'leave'; scope?: string; group: Group; pids: Pid | Pid[] }
  /** Ends local processes. → boolean[] (false: was not alive) */
  | { cmd: 'exit'; pids: Pid[]; reason?: unknown }
  /** → Pid[] as read on the worker */
  | { cmd: 'members'; scope?: string; group: Group }
  | { cmd: 'localMembers'; scope?: string; group: Group }
  | { cmd: 'count'; scope?: string; group: Group }
  /** → Group[] */
  | { cmd: 'whichGroups'; scope?: string }
  | { cmd: 'whichLocalGroups'; scope?: string }
  /** → View of every group and its members, as read on the worker */
  | { cmd: 'view'; scope?: string }
  /** → View of the worker's local memberships */
  | { cmd: 'localView'; scope?: string }
  /** Polls getMembers on the worker until it equals `expected` (sorted). → PollResult<Pid[]> */
  | { cmd: 'waitMembers'; scope?: string; group: Group; expected: Pid[]; limit?: number }
  /** Polls the whole view on the worker until it equals `expected`. → PollResult<View> */
  | { cmd: 'waitView'; scope?: string; expected: View; limit?: number }
  /** Tries bad group keys on every API of the worker. → BadGroupReport[] */
  | { cmd: 'badGroups'; scope?: string }
  /** Leaves the cluster (after answering). → true */
  | { cmd: 'close' }
  /** Ends the worker thread with process.exit (after answering). → true */
  | { cmd: 'processExit'; code?: number };

export interface BadGroupReport {
  label: string;
  /** Error name each API failed with, or 'none' when it did not fail. */
  join: string;
  leave: string;
  getMembers: string;
  getLocalMembers: string;
  count: string;
}

// The local model -----------------------------------------------------------------------

/**
 * What a node should hold locally, kept by the test next to the real thing: pg's
 * counted joins, one occurrence removed per leave, all occurrences on exit.
 */
export class LocalModel {
  readonly #groups = new Map<string, Pid[]>();

  join(group: Group, pids: Pid | readonly Pid[]): void {
    const key = encodeGroup(group);
    const list = this.#groups.get(key) ?? [];
    list.push(...(Array.isArray(pids) ? pids : [pids as Pid]));
    this.#groups.set(key, list);
  }

  /** Returns what pg's leave answers. */
  leave(group: Group, pids: Pid | readonly Pid[]): 'ok' | 'not_joined' {
    const key = encodeGroup(group);
    const list = this.#groups.get(key);
    if (list === undefined) return 'not_joined';
    let removed = 0;
    for (const p of Array.isArray(pids) ? pids : [pids as Pid]) {
      const i = list.indexOf(p);
      if (i >= 0) {
        list.splice(i, 1);
        removed++;
      }
    }
    if (list.length === 0) this.#groups.delete(key);
    return removed > 0 ? 'ok' : 'not_joined';
  }

  exit(pid: Pid): void {
    for (const [key, list] of this.#groups) {
      const rest = list.filter((p) => p !== pid);
      if (rest.length === 0) this.#groups.delete(key);
      else this.#groups.set(key, rest);
    }
  }

  /** Forgets everything (the coordinator thread's memberships across a scope restart). */
  clear(): void {
    this.#groups.clear();
  }

  view(): View {
    return viewFromKeys(this.#groups);
  }
}

// Waiting ---------------------------------------------------------------------------------

/**
 * A round trip over `node`'s control port: when it resolves, the node has handled
 * every coordinator message sent to it before (a `discover`, say), and the coordinator
 * has applied every message the node posted before its answer (a `sync`, say). This is
 * pg_SUITE's `sync({Scope, Peer})` followed by `sync(Scope)`.
 */
export function barrier(cluster: Cluster, node: number): Promise<void> {
  return cluster.heal(node, BARRIER_SCOPE);
}

/** A round trip to every node of the cluster (see `barrier`). */
export async function barrierAll(cluster: Cluster): Promise<void> {
  await Promise.all(cluster.nodes().map((id) => barrier(cluster, id)));
}

/**
 * `cluster.startScope`, then a barrier to every node, so that each has attached to the
 * scope (and synced) before the test goes on. `cluster.startScope` alone resolves
 * before the nodes, this thread's included, have heard of it: see the test
 * "startScope resolves once the scope is usable on the calling thread".
 */
export async function startScope(cluster: Cluster, name: string): Promise<boolean> {
  const started = await cluster.startScope(name);
  await barrierAll(cluster);
  return started;
}

/** `cluster.stopScope`, then a barrier to every node (each has detached). */
export async function stopScope(cluster: Cluster, name: string): Promise<boolean> {
  const stopped = await cluster.stopScope(name);
  await barrierAll(cluster);
  return stopped;
}

/**
 * Asserts that `promise` rejects with an instance of `ErrorClass` (checked by
 * `instanceof`, name and code). Errors that crossed a thread are rebuilt by the library
 * as instances of their class, but not as native errors, which `t.throwsAsync` refuses.
 */
export async function rejectsWith(
  t: ExecutionContext,
  promise: Promise<unknown>,
  ErrorClass: abstract new (...args: never[]) => Error,
  what = '',
): Promise<Error | undefined> {
  try {
    const value = await promise;
    t.fail(`${what}: expected a rejection with ${ErrorClass.name}, resolved with ${String(value)}`);
    return undefined;
  } catch (e) {
    const ok = e instanceof ErrorClass && (e as Error).name === ErrorClass.name;
    t.true(
      ok,
      `${what}: expected ${ErrorClass.name}, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`,
    );
    return e as Error;
  }
}

// Clusters and workers ------------------------------------------------------------------

/** Starts a cluster that the test stops in teardown. */
export { start as startPgCluster } from './cluster.js';

export interface PgWorker {
  readonly id: number;
  /** The worker's root process: commands go to it, one at a time. */
  readonly root: Pid;
  /** A second command process that runs commands concurrently (for waits that overlap other commands). */
  readonly side: Pid;
  /** Runs a command on the worker's root process. */
  cmd<R = unknown>(command: PgCommand): Promise<R>;
  /** Runs a command on the worker's concurrent side process. */
  sideCmd<R = unknown>(command: PgCommand): Promise<R>;
  terminate(): Promise<void>;
}

/** Spawns a worker node running the pg fixture. */
export async function spawnPgWorker(cluster: Cluster): Promise<PgWorker> {
  const w = await cluster.spawn(PG_NODE);
  const root = makePid(w.id, 1);
  const side = makePid(w.id, 2);
  const call = <R>(pid: Pid, command: PgCommand) =>
    cluster.node.call<R>(pid, command, { timeout: CMD_TIMEOUT });
  return {
    id: w.id,
    root,
    side,
    cmd: (command) => call(root, command),
    sideCmd: (command) => call(side, command),
    terminate: () => w.terminate(),
  };
}

/** Spawns `n` workers, one after the other (node ids in order). */
export async function spawnPgWorkers(cluster: Cluster, n: number): Promise<PgWorker[]> {
  const out: PgWorker[] = [];
  for (let i = 0; i < n; i++) out.push(await spawnPgWorker(cluster));
  return out;
}

/** Starts `n` forever-processes on this thread's node. */
export function spawnLocal(cluster: Cluster, n = 1): Pid[] {
  const out: Pid[] = [];
  for (let i = 0; i < n; i++) out.push(cluster.node.spawn(() => 'pong'));
  return out;
}

/** Settles a promise into `'ok'`/its value or the error's name, for tables of outcomes. */
export async function outcomeName(p: Promise<unknown>): Promise<string> {
  try {
    const v = await p;
    return v === undefined ? 'ok' : String(v);
  } catch (e) {
    return e instanceof Error ? e.name : `thrown ${String(e)}`;
  }
}
