/**
 * Helpers for the port of OTP's pg_SUITE (test/pg-*.test.ts).
 *
 * pg_SUITE drives peer Erlang nodes over RPC; here a peer is an agent (a worker thread
 * running test/fixtures/agent.ts), driven by calls to its root process (`Agent.cmd`),
 * or, for commands that wait while others run, to its side process (`Agent.sideCmd`).
 * pg_SUITE's `sync(Scope)` (wait until a gen_server handled its queue) becomes either a
 * poll of a synchronous read that yields to the event loop between reads (`settle`, in
 * wait.ts), or `barrier(cluster, node)` (cluster.ts): a round trip over the node's
 * control port, after which everything that node posted to the coordinator before it
 * has been applied.
 */
import { type Cluster, encodeGroup, type Group, type Pid } from '../../src/index.js';
import { barrierAll } from './cluster.js';
import { type View, viewFromKeys } from './views.js';
import { errorName } from './wait.js';

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

// Scopes ---------------------------------------------------------------------------------

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

/** Settles a promise into `'ok'`/its value or the error's name, for tables of outcomes. */
export async function outcomeName(p: Promise<unknown>): Promise<string> {
  try {
    const v = await p;
    return v === undefined ? 'ok' : String(v);
  } catch (e) {
    return errorName(e);
  }
}
