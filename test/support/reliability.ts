/**
 * Shared helpers of the reliability tests (test/reliability-*.test.ts) and their
 * fixtures (test/fixtures/reliability-*.ts): seeds, the invariant checker that reader
 * threads and the main thread run on every read, and the commands the reliability
 * worker node executes. Views and multisets are in views.ts, the PRNG in random.ts.
 *
 * Fixtures import this module too, so it must not import ava at run time.
 */
import type { ExecutionContext } from 'ava';
import {
  type Cluster,
  encodeGroup,
  type Group,
  isPid,
  type MembershipEvent,
  type Node,
  nodeOf,
  type Pid,
  type Scope,
} from '../../src/index.js';
import { Rebuild, type View, viewDiff, viewOf, localViewOf } from './views.js';

// Fixtures -------------------------------------------------------------------------------

/** `test/fixtures/reliability-<name>.ts`, compiled. */
export function fixtureUrl(name: string): URL {
  return new URL(`../fixtures/reliability-${name}.js`, import.meta.url);
}

/** Serial of the command process of a reliability node (concurrent, in arrival order). */
export const CMD_SERIAL = 2;

// Seeds and randomness -------------------------------------------------------------------

/** The seed of a randomized test: `PROCGROUPS_SEED` when set, else `fallback`. */
export function seedFromEnv(fallback: number): number {
  const raw = process.env.PROCGROUPS_SEED;
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new Error(`PROCGROUPS_SEED must be an integer, got ${raw}`);
  return n;
}

/** True when the long variants are asked for (`PROCGROUPS_LONG=1`). */
export const LONG = process.env.PROCGROUPS_LONG === '1';

// Waiting ----------------------------------------------------------------------------------

export function errorName(e: unknown): string {
  return e instanceof Error ? e.name : `non-error ${String(e)}`;
}

/** A barrier to every node that is up: each has handled all the coordinator sent it. */
export async function barrierAll(cluster: Cluster): Promise<void> {
  await Promise.all(cluster.nodes().map((id) => cluster.coordinator.barrier(id)));
}

// The invariant checker ---------------------------------------------------------------

export interface CheckReport {
  checks: number;
  violations: number;
  samples: string[];
  rounds: number;
}

/** Reads of one check round beyond which the index version may change under it (READ_BUDGET is 1,024). */
const ROUND_READS = 900;

/**
 * What any thread can check on every read of a scope, whatever the writers do at the
 * same time. Only what is guaranteed:
 *
 * - inside one read section (after `refresh()`, fewer than READ_BUDGET reads, one
 *   synchronous job) every read sees the same version, so `count(g)` equals
 *   `getMembers(g).length`, a listed group has members, a picked member is a member,
 *   `memberAt(g, i)` is `getMembers(g)[i % n]`, and a group of the universe has members
 *   exactly when `whichGroups()` lists it;
 * - every member is a pid of a node this thread was told may have members before that
 *   node was given anything to join (`allowed`);
 * - no member belongs to a node whose `nodedown` this thread has received (the
 *   coordinator drops a node's members before it tells anyone the node is down);
 * - no member of `scope` belongs to a node cut off from it (`cut`, main thread only:
 *   the coordinator detaches synchronously and ignores the node until it is healed).
 */
export class Checker {
  readonly allowed = new Set<number>();
  readonly dead = new Set<number>();
  /** Scope → nodes cut off from it. */
  readonly cut = new Map<string, Set<number>>();
  checks = 0;
  violations = 0;
  rounds = 0;
  readonly samples: string[] = [];
  readonly #universe: Group[];
  readonly #label: string;

  constructor(label: string, universe: readonly Group[]) {
    this.#label = label;
    this.#universe = [...universe];
  }

  /** Counts a violation; keeps up to 20 distinct messages as samples. */
  fail(message: string): void {
    this.violations++;
    const m = `${this.#label}: ${message}`;
    if (this.samples.length < 20 && !this.samples.includes(m)) this.samples.push(m);
  }

  #ok(cond: boolean, message: () => string): void {
    this.checks++;
    if (!cond) this.fail(message());
  }

  /** One round of checks of `scope` in one read section. */
  check(scope: Scope): void {
    this.rounds++;
    scope.refresh();
    let reads = 1;
    let sameSection = true;
    const groups = scope.whichGroups();
    const listed = new Set<string>();
    const cut = this.cut.get(scope.name);
    for (const g of groups) {
      if (reads + 4 > ROUND_READS - this.#universe.length) {
        // Too many groups for one section: the rest are checked pairwise, each pair
        // in a section of its own.
        scope.refresh();
        reads = 0;
        sameSection = false;
      }
      const key = encodeGroup(g);
      listed.add(key);
      const c = scope.count(g);
      const m = scope.getMembers(g);
      const p = scope.pick(g);
      const at = scope.memberAt(g, 7);
      reads += 4;
      this.#ok(c === m.length, () => `${scope.name} ${key}: count ${c} ≠ getMembers ${m.length}`);
      if (sameSection) this.#ok(c > 0, () => `${scope.name} ${key}: listed by whichGroups, empty`);
      this.#ok(
        m.length === 0 ? p === undefined : m.includes(p as Pid),
        () => `${scope.name} ${key}: pick ${p} not a member`,
      );
      this.#ok(
        m.length === 0 ? at === undefined : at === m[7 % m.length],
        () => `${scope.name} ${key}: memberAt(7) ${at} ≠ getMembers[7 % ${m.length}]`,
      );
      for (const pid of m) {
        this.checks++;
        if (!isPid(pid)) {
          this.fail(`${scope.name} ${key}: member ${String(pid)} is not a pid`);
          continue;
        }
        const n = nodeOf(pid);
        if (!this.allowed.has(n))
          this.fail(`${scope.name} ${key}: member ${pid} of node ${n}, which never was a writer`);
        else if (this.dead.has(n))
          this.fail(`${scope.name} ${key}: member ${pid} of node ${n}, known to be down`);
        else if (cut?.has(n))
          this.fail(`${scope.name} ${key}: member ${pid} of node ${n}, cut off from the scope`);
      }
    }
    if (sameSection) {
      for (const g of this.#universe) {
        const key = encodeGroup(g);
        const c = scope.count(g);
        this.#ok(
          c > 0 === listed.has(key),
          () => `${scope.name} ${key}: count ${c}, listed ${listed.has(key)}`,
        );
      }
    }
  }

  /** Starts the counts over (a new phase); what is allowed, dead or cut stays. */
  reset(): void {
    this.checks = 0;
    this.violations = 0;
    this.rounds = 0;
    this.samples.length = 0;
  }

  report(): CheckReport {
    return {
      checks: this.checks,
      violations: this.violations,
      samples: [...this.samples],
      rounds: this.rounds,
    };
  }
}

// Commands of the reliability node ---------------------------------------------------

export type NodeCommand =
  /** Starts `n` processes (each answers every call with its message). → Pid[] */
  | { cmd: 'spawn'; n: number }
  /**
   * → 'ok'. With `signal`, the node raises it once the request has left for the
   * coordinator (see `raiseAfterPost` and `waitSignal`).
   */
  | { cmd: 'join'; scope: string; group: Group; pids: Pid | Pid[]; signal?: SharedArrayBuffer }
  /** → 'ok' | 'not_joined' */
  | { cmd: 'leave'; scope: string; group: Group; pids: Pid | Pid[]; signal?: SharedArrayBuffer }
  /** → boolean[] */
  | { cmd: 'exit'; pids: Pid[] }
  /** This node's memberships in each scope. → View[] */
  | { cmd: 'local'; scopes: string[] }
  /** The index as read here. → View */
  | { cmd: 'view'; scope: string }
  /** Starts a scope monitor that rebuilds the membership from its snapshot and events. → id */
  | { cmd: 'monitorStart'; scope: string }
  /** → { view, events, anomalies, samples } */
  | { cmd: 'monitorView'; id: number }
  /** An uncaught throw in the worker (it dies). → 'crashing' */
  | { cmd: 'crash' }
  /** Allocates until the worker runs out of heap. → never answers */
  | { cmd: 'oom' }
  /** Posts each message raw on this node's control port (as the node). → count */
  | { cmd: 'raw'; messages: unknown[] }
  /** → node.stats() */
  | { cmd: 'stats' }
  /** Heap of this thread after a full GC when available. → bytes */
  | { cmd: 'heap' }
  /** `cycles` join/leave cycles over changing group names, `window` in flight. → cycles */
  | { cmd: 'churn'; scope: string; cycles: number; window: number; groups: number }
  /** Joins `pids` to `group` in chunks of `chunk`, one list join each, `window` in flight. → joins */
  | { cmd: 'joinChunks'; scope: string; group: Group; pids: Pid[]; chunk: number; window: number }
  /** Leaves `pids` from `group` in chunks of `chunk`, one list leave each. → leaves */
  | { cmd: 'leaveChunks'; scope: string; group: Group; pids: Pid[]; chunk: number; window: number }
  /** Joins `pid` to groups `prefix:0..n-1`, `window` in flight. → n */
  | { cmd: 'joinMany'; scope: string; prefix: string; n: number; pid: Pid; window: number }
  /** → count(group) as read here */
  | { cmd: 'count'; scope: string; group: Group }
  /** Calls `pid` `n` times, `window` in flight. → n */
  | { cmd: 'callLoop'; pid: Pid; n: number; window: number };

export interface MonitorReport {
  view: View;
  events: number;
  anomalies: number;
  samples: string[];
}

/** Runs `fs` at most `window` at a time, in order; resolves when all resolved. */
export async function pipeline(
  n: number,
  window: number,
  f: (i: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  let failed: unknown;
  const lane = async (): Promise<void> => {
    while (next < n && failed === undefined) {
      const i = next++;
      try {
        await f(i);
      } catch (e) {
        failed = e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, n) }, lane));
  if (failed !== undefined) throw failed;
}

/**
 * The command interpreter of a reliability node. The main thread runs the same one for
 * node 0. Everything up to the first `await` of a command runs synchronously, so that
 * commands sent in a row take effect on the node in that order.
 */
export class Commands {
  readonly #node: Node;
  readonly #monitors = new Map<number, Rebuild>();
  #nextMonitor = 0;
  /** Raw poster for the node's control port, when the fixture kept it. */
  raw: ((m: unknown) => void) | undefined;

  constructor(node: Node) {
    this.#node = node;
  }

  scope(name: string): Scope {
    return name === 'pg' ? this.#node.pg : this.#node.scope(name);
  }

  run(c: NodeCommand): unknown {
    const node = this.#node;
    switch (c.cmd) {
      case 'spawn': {
        const out: Pid[] = new Array(c.n);
        for (let i = 0; i < c.n; i++) out[i] = node.spawn((m) => m);
        return out;
      }
      case 'join': {
        const p = this.scope(c.scope)
          .join(c.group, c.pids)
          .then(() => 'ok');
        if (c.signal !== undefined) raiseAfterPost(c.signal);
        return p;
      }
      case 'leave': {
        const p = this.scope(c.scope).leave(c.group, c.pids);
        if (c.signal !== undefined) raiseAfterPost(c.signal);
        return p;
      }
      case 'exit':
        return c.pids.map((p) => node.exit(p, 'chaos'));
      case 'local':
        return c.scopes.map((s) => localViewOf(this.scope(s)));
      case 'view':
        return viewOf(this.scope(c.scope));
      case 'monitorStart':
        return this.#monitorStart(c.scope);
      case 'monitorView': {
        const m = this.#monitors.get(c.id);
        if (m === undefined) throw new Error(`no monitor ${c.id}`);
        const report: MonitorReport = {
          view: m.state.view(),
          events: m.events,
          anomalies: m.anomalies,
          samples: m.samples,
        };
        return report;
      }
      case 'crash':
        setImmediate(() => {
          throw new Error('reliability: deliberate uncaught throw');
        });
        return 'crashing';
      case 'oom': {
        const hoard: unknown[] = [];
        const grow = (): void => {
          for (let i = 0; i < 2000; i++) hoard.push(new Array(1000).fill(i));
          setImmediate(grow);
        };
        grow();
        return new Promise(() => {});
      }
      case 'raw': {
        const post = this.raw;
        if (post === undefined) throw new Error('this node has no raw control port');
        for (const m of c.messages) post(m);
        return c.messages.length;
      }
      case 'stats':
        return node.stats();
      case 'heap': {
        const gc = (globalThis as { gc?: () => void }).gc;
        gc?.();
        return process.memoryUsage().heapUsed;
      }
      case 'churn': {
        const scope = this.scope(c.scope);
        const pid = node.spawn((m) => m);
        return pipeline(c.cycles, c.window, async (i) => {
          const g = `churn:${i % c.groups}:${Math.floor(i / c.groups)}`;
          await scope.join(g, pid);
          const r = await scope.leave(g, pid);
          if (r !== 'ok') throw new Error(`churn leave ${g}: ${r}`);
        }).then(() => {
          node.exit(pid);
          return c.cycles;
        });
      }
      case 'joinChunks': {
        const scope = this.scope(c.scope);
        const chunks = Math.ceil(c.pids.length / c.chunk);
        return pipeline(chunks, c.window, (i) =>
          scope.join(c.group, c.pids.slice(i * c.chunk, (i + 1) * c.chunk)),
        ).then(() => chunks);
      }
      case 'leaveChunks': {
        const scope = this.scope(c.scope);
        const chunks = Math.ceil(c.pids.length / c.chunk);
        return pipeline(chunks, c.window, async (i) => {
          const r = await scope.leave(c.group, c.pids.slice(i * c.chunk, (i + 1) * c.chunk));
          if (r !== 'ok') throw new Error(`leave of chunk ${i}: ${r}`);
        }).then(() => chunks);
      }
      case 'joinMany': {
        const scope = this.scope(c.scope);
        return pipeline(c.n, c.window, (i) => scope.join(`${c.prefix}:${i}`, c.pid)).then(
          () => c.n,
        );
      }
      case 'count':
        this.scope(c.scope).refresh();
        return this.scope(c.scope).count(c.group);
      case 'callLoop':
        return pipeline(c.n, c.window, (i) => node.call(c.pid, i)).then(() => c.n);
    }
  }

  async #monitorStart(scopeName: string): Promise<number> {
    const scope = this.scope(scopeName);
    // eslint-disable-next-line prefer-const -- assigned after the subscription, read by its callback
    let model: Rebuild | undefined;
    const early: MembershipEvent[] = [];
    const m = await scope.monitorScope({
      onEvent: (e) => {
        if (model === undefined) early.push(e);
        else model.apply(e);
      },
    });
    model = new Rebuild(m.groups);
    for (const e of early) model.apply(e);
    const id = ++this.#nextMonitor;
    this.#monitors.set(id, model);
    return id;
  }

  /** The monitor's model, for node 0 (the main thread reads it directly). */
  monitor(id: number): Rebuild | undefined {
    return this.#monitors.get(id);
  }

  monitorStart(scopeName: string): Promise<number> {
    return this.#monitorStart(scopeName);
  }
}

// Signals across threads ---------------------------------------------------------------

/** A flag another thread raises (see `raiseAfterPost`). */
export function newSignal(): SharedArrayBuffer {
  return new SharedArrayBuffer(4);
}

/**
 * Raises `signal` on the next turn of this thread's event loop, that is after the
 * messages queued in this job (a request to the coordinator) have been posted.
 */
export function raiseAfterPost(signal: SharedArrayBuffer): void {
  setImmediate(() => {
    const i32 = new Int32Array(signal);
    Atomics.store(i32, 0, 1);
    Atomics.notify(i32, 0);
  });
}

/**
 * Blocks this thread until `signal` is raised: nothing that arrives meanwhile is
 * handled, so what this thread does right after happens before it handles the
 * messages posted before the signal. True when it was raised (false after 30 s: a
 * deadlock guard, never a timing assumption).
 */
export function waitSignal(signal: SharedArrayBuffer): boolean {
  const i32 = new Int32Array(signal);
  Atomics.wait(i32, 0, 0, 30_000);
  return Atomics.load(i32, 0) === 1;
}

// Assertions --------------------------------------------------------------------------

/** Asserts two views are equal, with a readable difference in the message. */
export function sameView(t: ExecutionContext, actual: View, expected: View, what: string): boolean {
  const diff = viewDiff(actual, expected);
  t.deepEqual(diff, [], `${what}:\n${diff.join('\n')}`);
  return diff.length === 0;
}
