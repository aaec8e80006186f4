/**
 * Membership views: a scope's state as plain, comparable data. The pg, monitor and
 * reliability tests all compare "what this thread reads" with "what it should be" (a
 * model, the writer's own table, a monitor's rebuild, the union of every node's local
 * view); a view makes that a `t.deepEqual`, whatever order pg leaves unfixed.
 *
 * Fixtures import this module too, so it must not import ava at run time.
 */
import { isDeepStrictEqual } from 'node:util';
import {
  type Cluster,
  encodeGroup,
  type Group,
  type MembershipEvent,
  type Pid,
  type Scope,
} from '../../src/index.js';
import { coordinatorOf } from '../../src/coordinator/cluster.js';

/**
 * A membership view: `[encoded group key, sorted pids]`, sorted by key, empty groups
 * left out. Keys are compared in their canonical encoding, so `['a', 1]` and `'a,1'`
 * stay apart.
 */
export type View = [string, Pid[]][];

/** Pids (or node ids, or any numbers) in ascending order, as a new array. */
export function sorted<T extends number>(values: Iterable<T>): T[] {
  return [...values].sort((a, b) => a - b);
}

function byKey(a: [string, unknown], b: [string, unknown]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/** A view from `[encoded key, pids]` entries (a key listed twice gets both lists). */
export function viewFromKeys(entries: Iterable<readonly [string, readonly Pid[]]>): View {
  const acc = new Map<string, Pid[]>();
  for (const [key, pids] of entries) {
    const list = acc.get(key);
    if (list === undefined) acc.set(key, [...pids]);
    else list.push(...pids);
  }
  const out: View = [];
  for (const [key, pids] of acc) if (pids.length > 0) out.push([key, sorted(pids)]);
  return out.sort(byKey);
}

/** A view from `[group, pids]` entries. */
export function viewFrom(entries: Iterable<readonly [Group, readonly Pid[]]>): View {
  return viewFromKeys([...entries].map(([g, pids]) => [encodeGroup(g), pids] as const));
}

/**
 * Every group of `scope` and its members, as this thread reads them now. The refresh
 * first ends this thread's read section, so that a poll sees the latest version.
 */
export function viewOf(scope: Scope): View {
  scope.refresh();
  return viewFrom(scope.whichGroups().map((g) => [g, scope.getMembers(g)] as const));
}

/** This node's own memberships in `scope`. */
export function localViewOf(scope: Scope): View {
  return viewFrom(scope.whichLocalGroups().map((g) => [g, scope.getLocalMembers(g)] as const));
}

/** The multiset sum of several views. */
export function unionOf(...views: View[]): View {
  return viewFromKeys(views.flat());
}

/** The whole index of a scope, as its writer on the coordinator holds it. */
export function writerView(cluster: Cluster, scope: string): View {
  const server = coordinatorOf(cluster).scope(scope);
  if (server === undefined) return [];
  const w = server.writer;
  return viewFromKeys([...w.keys()].map((key) => [key, w.members(key)] as const));
}

/** A multiset of memberships: key → pid → count. */
export class Multiset {
  readonly groups = new Map<string, Map<Pid, number>>();

  add(key: string, pid: Pid, n = 1): void {
    let g = this.groups.get(key);
    if (g === undefined) {
      g = new Map();
      this.groups.set(key, g);
    }
    const c = (g.get(pid) ?? 0) + n;
    if (c === 0) g.delete(pid);
    else g.set(pid, c);
    if (g.size === 0) this.groups.delete(key);
  }

  /** Removes one occurrence; false when there was none (the count would go negative). */
  remove(key: string, pid: Pid): boolean {
    const g = this.groups.get(key);
    const c = g?.get(pid) ?? 0;
    if (c <= 0) return false;
    this.add(key, pid, -1);
    return true;
  }

  count(key: string, pid: Pid): number {
    return this.groups.get(key)?.get(pid) ?? 0;
  }

  /** Drops every occurrence of `pid`. */
  drop(pid: Pid): void {
    for (const [key, g] of [...this.groups]) {
      g.delete(pid);
      if (g.size === 0) this.groups.delete(key);
    }
  }

  clear(): void {
    this.groups.clear();
  }

  /** Counts that went negative (more leaves than joins), as `key pid ×count`. */
  negative(exclude?: (pid: Pid) => boolean): string[] {
    const out: string[] = [];
    for (const [key, g] of this.groups)
      for (const [p, c] of g) if (c < 0 && !exclude?.(p)) out.push(`${key} ${p} ×${c}`);
    return out;
  }

  /** Pairs with a positive count, for picking a member to leave. */
  entries(): [string, Pid][] {
    const out: [string, Pid][] = [];
    for (const [key, g] of this.groups) for (const [p, c] of g) if (c > 0) out.push([key, p]);
    return out;
  }

  view(exclude?: (pid: Pid) => boolean): View {
    const entries: [string, Pid[]][] = [];
    for (const [key, g] of this.groups) {
      const pids: Pid[] = [];
      for (const [p, c] of g) {
        if (exclude?.(p)) continue;
        for (let i = 0; i < c; i++) pids.push(p);
      }
      entries.push([key, pids]);
    }
    return viewFromKeys(entries);
  }

  static of(view: View): Multiset {
    const m = new Multiset();
    for (const [key, pids] of view) for (const p of pids) m.add(key, p);
    return m;
  }
}

/**
 * Membership rebuilt from a monitor: its snapshot, then every event, as a multiset. A
 * leave of a pid that the rebuilt state does not hold is an anomaly (a join the
 * snapshot or the events missed, or a leave delivered twice): it is counted, and the
 * first few are described in `samples`.
 */
export class Rebuild {
  readonly state = new Multiset();
  events = 0;
  anomalies = 0;
  readonly samples: string[] = [];

  constructor(snapshot: Iterable<readonly [Group, readonly Pid[]]>) {
    for (const [g, pids] of snapshot) for (const p of pids) this.state.add(encodeGroup(g), p);
  }

  apply(e: MembershipEvent): void {
    this.events++;
    const key = encodeGroup(e.group);
    for (const p of e.pids) {
      if (e.kind === 'join') this.state.add(key, p);
      else if (!this.state.remove(key, p)) {
        this.anomalies++;
        if (this.samples.length < 10)
          this.samples.push(
            `event #${this.events}: leave of ${p} from ${key}, which it does not hold`,
          );
      }
    }
  }

  applyAll(events: Iterable<MembershipEvent>): this {
    for (const e of events) this.apply(e);
    return this;
  }

  view(): View {
    return this.state.view();
  }
}

/** Up to `max` lines that say how two views differ (for assertion messages). */
export function viewDiff(actual: View, expected: View, max = 12): string[] {
  const a = new Map(actual);
  const e = new Map(expected);
  const out: string[] = [];
  for (const key of new Set([...a.keys(), ...e.keys()])) {
    const x = a.get(key) ?? [];
    const y = e.get(key) ?? [];
    if (isDeepStrictEqual(x, y)) continue;
    const extra = minus(x, y);
    const missing = minus(y, x);
    out.push(
      `${key}: ${x.length} vs ${y.length} expected; extra [${extra.slice(0, 6).join(', ')}]` +
        ` missing [${missing.slice(0, 6).join(', ')}]`,
    );
    if (out.length >= max) break;
  }
  return out;
}

/** `a` minus `b`, as multisets. */
function minus(a: readonly Pid[], b: readonly Pid[]): Pid[] {
  const counts = new Map<Pid, number>();
  for (const p of b) counts.set(p, (counts.get(p) ?? 0) + 1);
  const out: Pid[] = [];
  for (const p of a) {
    const n = counts.get(p) ?? 0;
    if (n > 0) counts.set(p, n - 1);
    else out.push(p);
  }
  return out;
}
