/**
 * Shared helpers of the reliability tests (test/reliability-*.test.ts) and their
 * fixtures (test/fixtures/reliability-*.ts): seeds, the invariant checker that reader
 * threads and the main thread run on every read, work kept in flight, and signals that
 * order what two threads do. The worker nodes are agents (cluster.ts, commands.ts);
 * views and multisets are in views.ts, the PRNG in random.ts.
 *
 * Fixtures import this module too, so it must not import ava at run time.
 */
import type { ExecutionContext } from 'ava';
import { encodeGroup, type Group, isPid, nodeOf, type Pid, type Scope } from '../../src/index.js';
import { type View, viewDiff } from './views.js';

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

// Work in flight ----------------------------------------------------------------------

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

/** Lets the messages queued in this job leave (links and control ports flush in a microtask). */
export async function flushed(): Promise<void> {
  await Promise.resolve();
  await Promise.resolve();
}

// Assertions --------------------------------------------------------------------------

/** Asserts two views are equal, with a readable difference in the message. */
export function sameView(t: ExecutionContext, actual: View, expected: View, what: string): boolean {
  const diff = viewDiff(actual, expected);
  t.deepEqual(diff, [], `${what}:\n${diff.join('\n')}`);
  return diff.length === 0;
}
