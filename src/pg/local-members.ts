/**
 * One node's own memberships in one scope, like pg's `monitors` map: what the node
 * syncs to the coordinator, what a process exit leaves, and what `getLocalMembers`
 * answers from. Joins are counted: a pid joined twice is listed twice.
 */
import type { GroupKey } from '../core/group.js';
import type { Pid } from '../core/pid.js';

export class LocalMembers {
  /** Groups of each local pid, one entry per counted join. */
  readonly #byPid = new Map<Pid, GroupKey[]>();
  /** Local members of each group, with their join counts. */
  readonly byGroup = new Map<GroupKey, Map<Pid, number>>();

  add(key: GroupKey, pids: readonly Pid[]): void {
    let counts = this.byGroup.get(key);
    if (counts === undefined) {
      counts = new Map();
      this.byGroup.set(key, counts);
    }
    for (const p of pids) {
      counts.set(p, (counts.get(p) ?? 0) + 1);
      const keys = this.#byPid.get(p);
      if (keys === undefined) this.#byPid.set(p, [key]);
      else keys.push(key);
    }
  }

  /** Which of `pids` can leave `key`: one occurrence each, as many as were joined. */
  removable(key: GroupKey, pids: readonly Pid[]): Pid[] {
    const counts = this.byGroup.get(key);
    if (counts === undefined) return [];
    if (pids.length === 1) return counts.has(pids[0]!) ? [pids[0]!] : [];
    const used = new Map<Pid, number>();
    const out: Pid[] = [];
    for (const p of pids) {
      const u = used.get(p) ?? 0;
      if (u < (counts.get(p) ?? 0)) {
        out.push(p);
        used.set(p, u + 1);
      }
    }
    return out;
  }

  /** Removes one join of each of `pids` from `key`. */
  remove(key: GroupKey, pids: readonly Pid[]): void {
    this.#removeFromGroup(key, pids);
    for (const p of pids) {
      const keys = this.#byPid.get(p);
      if (keys === undefined) continue;
      const j = keys.indexOf(key);
      if (j >= 0) keys.splice(j, 1);
      if (keys.length === 0) this.#byPid.delete(p);
    }
  }

  /** `pid` exited: it leaves every group, once per counted join. Returns those groups (undefined: none). */
  removePid(pid: Pid): GroupKey[] | undefined {
    const keys = this.#byPid.get(pid);
    if (keys === undefined) return undefined;
    for (const key of keys) this.#removeFromGroup(key, [pid]);
    this.#byPid.delete(pid);
    return keys;
  }

  /** The members of `key`, each repeated as often as it joined. */
  members(key: GroupKey): Pid[] {
    const counts = this.byGroup.get(key);
    return counts === undefined ? [] : expand(counts);
  }

  /** Every group and its members: the body of pg's `sync`. */
  entries(): [GroupKey, Pid[]][] {
    return [...this.byGroup].map(([key, counts]) => [key, expand(counts)]);
  }

  clear(): void {
    this.#byPid.clear();
    this.byGroup.clear();
  }

  #removeFromGroup(key: GroupKey, pids: readonly Pid[]): void {
    const counts = this.byGroup.get(key);
    if (counts === undefined) return;
    for (const p of pids) {
      const n = counts.get(p) ?? 0;
      if (n > 1) counts.set(p, n - 1);
      else counts.delete(p);
    }
    if (counts.size === 0) this.byGroup.delete(key);
  }
}

/** A pid → count map as a list with each pid repeated `count` times. */
export function expand(counts: Map<Pid, number>): Pid[] {
  const out: Pid[] = [];
  for (const [p, n] of counts) for (let i = 0; i < n; i++) out.push(p);
  return out;
}
