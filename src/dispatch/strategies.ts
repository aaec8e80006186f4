/**
 * The pick strategies: which member of a group a dispatch goes to. Picks read the
 * shared index on the calling thread, synchronously.
 *
 * The fast path: `'random'` and `'round-robin'` read one member straight from the index
 * (`memberAt`, `next`), with no copy and no allocation, and take it when it has room.
 * Only when that member is saturated, or for the strategies that must see every member
 * (`'least-loaded'`, `'local-first'`, `'hash'`, a function), are the members copied,
 * into a scratch array reused from pick to pick.
 */
import { type Group, hashKey } from '../core/group.js';
import type { MembershipView } from '../core/membership-view.js';
import { nodeOf, type Pid } from '../core/pid.js';
import type { PickNode, Strategy } from './options.js';
import type { Windows } from './window.js';

let seed = (Math.random() * 0x1_0000_0000) | 0 || 1;
/** xorshift32: a fast per-thread random source for picks (not for anything that needs secrecy). */
export function random32(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return seed >>> 0;
}

/**
 * 31 random bits, from the same source: a small integer (a Smi) wherever V8 runs, so
 * that the hot pick passes it unboxed and reduces it with an integer remainder, where
 * `random32()`'s upper half would be a heap number and a floating-point modulo.
 */
export function random31(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return seed & 0x7fff_ffff;
}

/** Mixes a key hash and a pid into a score (rendezvous hashing). */
function score(keyHash: number, pid: number): number {
  let h = Math.imul(keyHash ^ (pid >>> 0), 0x9e3779b1);
  h ^= Math.imul((pid / 0x1_0000_0000) | 0, 0x85ebca6b);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  return h >>> 0;
}

export class Picker {
  readonly #node: PickNode;
  readonly #reader: () => MembershipView | undefined;
  /** Calls from this thread in flight, and the windows (kept by the backpressure). */
  readonly #windows: Windows;
  #scratch = new Float64Array(64);
  #localRr = 0;

  constructor(node: PickNode, reader: () => MembershipView | undefined, windows: Windows) {
    this.#node = node;
    this.#reader = reader;
    this.#windows = windows;
  }

  /**
   * A member of `group` with room for a call from this thread (under `maxInFlight` when
   * given, else under its window), not in `tried`, by `strategy`; undefined when there
   * is none. `hint`: a member of the group the queue's pump just found room in (see
   * `Backpressure.#pump`); a random pick takes it while it has room.
   */
  pick(
    group: Group,
    strategy: Strategy,
    key: string | number | undefined,
    tried: Set<Pid> | undefined,
    maxInFlight: number | undefined,
    hint?: Pid,
  ): Pid | undefined {
    const windows = this.#windows;
    const reader = this.#reader();
    if (reader === undefined) return undefined;
    // The fast paths: one read of the index, no copy, when the pick has room.
    if (tried === undefined) {
      // Which member with room a queued dispatch takes is free: when a pass runs,
      // usually every member but the one that just answered is full, and the hint
      // spares a pick that would mostly land on a full one and then look at them all.
      if (hint !== undefined && strategy === 'random' && windows.hasRoom(hint, maxInFlight))
        return hint;
      let pid: Pid | undefined;
      if (strategy === 'random') pid = reader.memberAt(group, random31());
      else if (strategy === 'round-robin') pid = reader.next(group);
      if (pid !== undefined && windows.hasRoom(pid, maxInFlight)) return pid;
      if (pid === undefined && (strategy === 'random' || strategy === 'round-robin'))
        return undefined;
    }
    // Otherwise look at every member.
    let n = reader.membersInto(group, this.#scratch);
    if (n > this.#scratch.length) {
      this.#scratch = new Float64Array(Math.max(n, this.#scratch.length * 2));
      n = reader.membersInto(group, this.#scratch);
    }
    if (n === 0) return undefined;
    const members = this.#scratch;
    if (typeof strategy === 'function') {
      const list = Array.from(members.subarray(0, n)) as Pid[];
      const pid = strategy(
        list.filter((p) => this.#usable(p, tried, maxInFlight)),
        { node: this.#node, key },
      );
      return pid !== undefined && this.#usable(pid, tried, maxInFlight) ? pid : undefined;
    }
    switch (strategy) {
      case 'hash': {
        if (key === undefined) throw new TypeError("the 'hash' strategy needs a `key` to route by");
        const h = hashKey(typeof key === 'string' ? key : `n${key}`, 0x5bd1e995);
        let best: Pid | undefined;
        let bestScore = -1;
        for (let i = 0; i < n; i++) {
          const pid = members[i] as Pid;
          if (tried?.has(pid)) continue;
          const s = score(h, pid);
          if (s > bestScore) {
            bestScore = s;
            best = pid;
          }
        }
        // Sticky means sticky: a saturated owner makes the dispatch wait, not move.
        return best !== undefined && windows.hasRoom(best, maxInFlight) ? best : undefined;
      }
      case 'local-first': {
        // Round-robin over the usable members of this node; over all usable ones if none.
        const self = this.#node.id;
        let pool = 0;
        for (let i = 0; i < n; i++) {
          const pid = members[i] as Pid;
          if (nodeOf(pid) === self && this.#usable(pid, tried, maxInFlight)) pool++;
        }
        const local = pool > 0;
        if (!local)
          for (let i = 0; i < n; i++)
            if (this.#usable(members[i] as Pid, tried, maxInFlight)) pool++;
        if (pool === 0) return undefined;
        let k = this.#localRr++ % pool;
        for (let i = 0; i < n; i++) {
          const pid = members[i] as Pid;
          if (
            (!local || nodeOf(pid) === self) &&
            this.#usable(pid, tried, maxInFlight) &&
            k-- === 0
          )
            return pid;
        }
        return undefined;
      }
      case 'least-loaded':
        return this.#least(members, n, tried, maxInFlight);
      default: {
        // random or round-robin whose first pick was saturated or tried: the first usable
        // member from a random place. No load reads: under a burst every dispatch past the
        // windows comes here, and the queue's pump too, once per freed slot.
        const start = random31() % n;
        for (let k = 0; k < n; k++) {
          const pid = members[(start + k) % n] as Pid;
          if (this.#usable(pid, tried, maxInFlight)) return pid;
        }
        return undefined;
      }
    }
  }

  /** True when `pid` has room for one more call from this thread and was not tried. */
  #usable(pid: Pid, tried: Set<Pid> | undefined, maxInFlight: number | undefined): boolean {
    return this.#windows.hasRoom(pid, maxInFlight) && (tried === undefined || !tried.has(pid));
  }

  /** The usable member with the least load (its node's published load plus this thread's calls to it). */
  #least(
    members: Float64Array,
    n: number,
    tried: Set<Pid> | undefined,
    maxInFlight: number | undefined,
  ): Pid | undefined {
    let best: Pid | undefined;
    let bestLoad = Number.POSITIVE_INFINITY;
    const start = random32() % n;
    for (let k = 0; k < n; k++) {
      const pid = members[(start + k) % n] as Pid;
      if (!this.#usable(pid, tried, maxInFlight)) continue;
      const load = this.#node.loadOf(pid) + this.#windows.inFlight(pid);
      if (load < bestLoad) {
        bestLoad = load;
        best = pid;
        if (load === 0) break;
      }
    }
    return best;
  }

  /** True when every member of `group` is in `tried`. */
  allTried(group: Group, tried: Set<Pid>): boolean {
    const members = this.#reader()?.members(group) ?? [];
    return members.every((p) => tried.has(p));
  }
}
