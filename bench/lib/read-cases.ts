/**
 * The public read path, measured the same way on any thread: `pg.getMembers`,
 * `pg.count` and `pg.pick` of the groups a worker node joined, each next to the
 * same-thread `Map` operation that a program without procgroups would do.
 */
import type { Scope } from '../../src/index.js';
import { groupName, sizeGroup } from './index-data.js';
import { type Op, randomSequence, throughput } from './measure.js';

/** 1,000 groups of 8 members; and one group of each large size. */
export const GROUPS = 1000;
export const MEMBERS = 8;
export const LARGE = [64, 1024] as const;

export type ReadCase =
  | 'members'
  | 'slice'
  | 'count'
  | 'pick'
  | 'get'
  | `members-${(typeof LARGE)[number]}`
  | `slice-${(typeof LARGE)[number]}`;

interface Case {
  op: Op<string>;
  keys: readonly string[];
  /** Operations between two reads of the clock. */
  chunk: number;
}

/**
 * The cases on `pg`, once the holder's joins are visible on this thread. The baselines
 * hold the very members the index returned, in a `Map` of arrays (or one array, for
 * the large groups).
 */
export function readCases(pg: Scope): Record<ReadCase, Case> {
  pg.refresh();
  const map = new Map<string, number[]>();
  for (let i = 0; i < GROUPS; i++) {
    const members = pg.getMembers(groupName(i));
    if (members.length !== MEMBERS)
      throw new Error(`${groupName(i)} has ${members.length} members, not ${MEMBERS}`);
    map.set(groupName(i), members);
  }
  // The keys go round the 1,000 groups in a fixed pseudo-random order (the same in every
  // run and on every thread), so that no read is served by the one before it.
  const keys = randomSequence(1 << 16, GROUPS).map(groupName);
  const cases: Partial<Record<ReadCase, Case>> = {
    members: { op: (k) => pg.getMembers(k).length, keys, chunk: 20_000 },
    slice: { op: (k) => map.get(k)!.slice().length, keys, chunk: 20_000 },
    count: { op: (k) => pg.count(k), keys, chunk: 20_000 },
    pick: { op: (k) => pg.pick(k), keys, chunk: 20_000 },
    get: { op: (k) => map.get(k)!.length, keys, chunk: 20_000 },
  };
  for (const n of LARGE) {
    const array: number[] = pg.getMembers(sizeGroup(n));
    if (array.length !== n) throw new Error(`${sizeGroup(n)} has ${array.length} members`);
    const chunk = n > 100 ? 1000 : 20_000;
    const one = [sizeGroup(n)];
    cases[`members-${n}`] = { op: (k) => pg.getMembers(k).length, keys: one, chunk };
    cases[`slice-${n}`] = { op: () => array.slice().length, keys: one, chunk };
  }
  return cases as Record<ReadCase, Case>;
}

/** Operations per second of each case, in the order given, `ms` each. */
export function measureReads(
  cases: Record<ReadCase, Case>,
  which: readonly ReadCase[],
  ms: number,
): number[] {
  return which.map((c) => throughput(cases[c].op, cases[c].keys, ms, cases[c].chunk));
}
