/**
 * The invariant of the concurrency stress test, shared by its writer and reader threads.
 *
 * There are `K` groups, `g0` … `g63`. Each group has a version `v`, and at version `v`
 * group `g` holds exactly `lenOf(v, g)` members; member `j` is `pidOf(v, j)`, whose
 * serial encodes both `v` and `j` and whose node is `1 + j % 4`. So one read of a group
 * is enough to check it: every member must carry the same version, the member count must
 * be the length of that version, and the indices must be exactly `0 … len − 1`, either
 * in join order or in the order `syncNode` leaves them in (by node, then index). A
 * reader that sees half of an update sees two versions at once, or a wrong count.
 *
 * Versions only move forward and readers only move to newer versions, so a reader also
 * checks that the version it sees of each group never goes back.
 *
 * This module is imported by worker fixtures: it must not import ava.
 */
import { type IndexReader, makePid, nodeOf, type Pid, serialOf } from '../../src/index.js';
import { Violations } from './checks.js';

export const K = 64;
export const NODES = 4;
export const MAX_LEN = 13;

/** Control words in the shared Int32Array that the threads coordinate through. */
export const C_DONE = 0; // the writer has finished (and the final versions are written)
export const C_VIOLATIONS = 1; // violations seen by all readers so far
export const C_STOP = 2; // the main thread asks the writer to stop (negative control)
export const C_WORDS = 4;

export const groupName = (g: number): string => `g${g}`;
export const lenOf = (v: number, g: number): number => 1 + ((v * 7 + g) % MAX_LEN);
export const pidOf = (v: number, j: number): Pid => makePid(1 + (j % NODES), v * 64 + j + 1);

/** The members of group `g` at version `v`, in join order. */
export function membersAt(v: number, g: number): Pid[] {
  return Array.from({ length: lenOf(v, g) }, (_, j) => pidOf(v, j));
}

/** The members of node `node` in group `g` at version `v`. */
export function nodeMembersAt(v: number, g: number, node: number): Pid[] {
  return membersAt(v, g).filter((p) => nodeOf(p) === node);
}

/** Index orders a version may be listed in, per length: join order and `syncNode` order. */
const JOIN_ORDER: number[][] = [];
const SYNC_ORDER: number[][] = [];
for (let len = 0; len <= MAX_LEN; len++) {
  const js = Array.from({ length: len }, (_, j) => j);
  JOIN_ORDER.push(js);
  SYNC_ORDER.push([...js].sort((x, y) => (x % NODES) - (y % NODES) || x - y));
}

export const versionOfPid = (p: number): number => Math.floor((serialOf(p as Pid) - 1) / 64);
export const indexOfPid = (p: number): number => (serialOf(p as Pid) - 1) % 64;

/**
 * The version a member list of group `g` is, or -1 if it is not exactly the content of
 * one version (mixed versions, wrong count, wrong index, wrong node, wrong order).
 */
export function versionOfList(g: number, pids: ArrayLike<number>, n = pids.length): number {
  if (n === 0) return -1;
  const v = versionOfPid(pids[0]!);
  if (v < 0 || lenOf(v, g) !== n) return -1;
  const join = JOIN_ORDER[n]!;
  const sync = SYNC_ORDER[n]!;
  let inJoinOrder = true;
  let inSyncOrder = true;
  for (let i = 0; i < n; i++) {
    const p = pids[i]!;
    if (!Number.isSafeInteger(p) || p <= 0) return -1;
    if (versionOfPid(p) !== v) return -1;
    const j = indexOfPid(p);
    if (nodeOf(p as Pid) !== 1 + (j % NODES)) return -1;
    if (j !== join[i]) inJoinOrder = false;
    if (j !== sync[i]) inSyncOrder = false;
  }
  return inJoinOrder || inSyncOrder ? v : -1;
}

/** Counts of one reader thread. */
export interface ReaderReport {
  type: 'report';
  reader: number;
  reads: number;
  /** Reads made while the writer was still writing. */
  readsDuringWrites: number;
  violations: number;
  /** First few violations, described. */
  samples: string[];
  /** Times a group was seen at a newer version than before (progress). */
  advances: number;
  /** Distinct versions observed, summed over groups. */
  versionsSeen: number;
  /** The final check after the writer finished: every group at its final version. */
  finalOk: boolean;
}

/**
 * Checks reads of the stress index. Every call is one or more reads; each failed check
 * counts as one violation (and is published at once in the control array, so that a
 * writer running the negative control can stop as soon as a reader noticed).
 */
export class Checker {
  reads = 0;
  readonly found = new Violations();
  advances = 0;
  readonly #last = new Int32Array(K).fill(-1);
  readonly #seen: Set<number>[] = Array.from({ length: K }, () => new Set<number>());
  readonly #buf = new Float64Array(MAX_LEN * 2 + 2);
  #bufLen = 0;
  readonly #names = Array.from({ length: K }, (_, g) => groupName(g));
  readonly #nameSet = new Set(this.#names);

  constructor(
    readonly reader: IndexReader,
    readonly control: Int32Array,
  ) {}

  violation(what: string): void {
    this.found.add(what);
    Atomics.add(this.control, C_VIOLATIONS, 1);
  }

  /** Records version `v` of group `g` (or a violation for -1, or for going back). */
  #saw(g: number, v: number, what: string, detail: () => unknown): void {
    if (v < 0) {
      this.violation(`${what} of g${g} is no version: ${JSON.stringify(detail())}`);
      return;
    }
    const last = this.#last[g]!;
    if (v < last) {
      this.violation(`${what} of g${g} went back from version ${last} to ${v}`);
      return;
    }
    if (v > last) {
      this.#last[g] = v;
      this.advances++;
      this.#seen[g]!.add(v);
    }
  }

  members(g: number): void {
    this.reads++;
    const pids = this.reader.members(this.#names[g]!);
    this.#saw(g, versionOfList(g, pids), 'members()', () => pids);
  }

  forEach(g: number): void {
    this.reads++;
    this.#bufLen = 0;
    const n = this.reader.forEach(this.#names[g]!, (p, i) => {
      if (i === this.#bufLen && this.#bufLen < this.#buf.length) this.#buf[this.#bufLen++] = p;
    });
    if (n !== this.#bufLen) {
      this.violation(`forEach() of g${g} returned ${n} after ${this.#bufLen} calls`);
      return;
    }
    this.#saw(g, versionOfList(g, this.#buf, n), 'forEach()', () =>
      Array.from(this.#buf.subarray(0, n)),
    );
  }

  /** count() and then memberAt() for every index, all inside one fresh read section. */
  countThenMemberAt(g: number): void {
    const name = this.#names[g]!;
    this.reader.refresh();
    const n = this.reader.count(name);
    this.reads++;
    if (n < 1 || n > MAX_LEN) {
      this.violation(`count() of g${g} is ${n}`);
      return;
    }
    for (let i = 0; i < n; i++) {
      this.#buf[i] = this.reader.memberAt(name, i) ?? 0;
      this.reads++;
    }
    this.#saw(g, versionOfList(g, this.#buf, n), 'count()+memberAt()', () =>
      Array.from(this.#buf.subarray(0, n)),
    );
  }

  /** One memberAt() on its own: the member must sit at its place in some order of its version. */
  memberAt(g: number, index: number): void {
    this.reads++;
    const p = this.reader.memberAt(this.#names[g]!, index);
    if (p === undefined) {
      this.violation(`memberAt() of g${g} is undefined`);
      return;
    }
    const v = versionOfPid(p);
    const len = lenOf(v, g);
    const j = indexOfPid(p);
    const at = index % len;
    if (
      nodeOf(p) !== 1 + (j % NODES) ||
      j >= len ||
      (j !== JOIN_ORDER[len]![at] && j !== SYNC_ORDER[len]![at])
    ) {
      this.violation(`memberAt(g${g}, ${index}) is index ${j} of version ${v} (length ${len})`);
      return;
    }
    this.#saw(g, v, 'memberAt()', () => p);
  }

  /** count() on its own: only its range can be checked. */
  count(g: number): void {
    this.reads++;
    const n = this.reader.count(this.#names[g]!);
    if (n < 1 || n > MAX_LEN) this.violation(`count() of g${g} is ${n}`);
  }

  membersOf(g: number, node: number): void {
    this.reads++;
    const pids = this.reader.membersOf(this.#names[g]!, node);
    if (pids.length === 0) {
      // Node 1 holds index 0 of every version; other nodes may have nothing.
      if (node === 1) this.violation(`membersOf(g${g}, 1) is empty`);
      return;
    }
    const v = versionOfPid(pids[0]!);
    const expected = nodeMembersAt(v, g, node);
    if (pids.length !== expected.length || pids.some((p, i) => p !== expected[i])) {
      this.violation(`membersOf(g${g}, ${node}) is ${JSON.stringify(pids)}`);
      return;
    }
    this.#saw(g, v, 'membersOf()', () => pids);
  }

  groups(): void {
    this.reads++;
    const groups = this.reader.groups();
    let ok = groups.length === K;
    for (const group of groups)
      if (typeof group !== 'string' || !this.#nameSet.has(group)) ok = false;
    if (ok && new Set(groups).size !== K) ok = false;
    if (!ok) this.violation(`groups() is ${JSON.stringify(groups)}`);
  }

  groupCount(): void {
    this.reads++;
    const n = this.reader.groupCount();
    if (n !== K) this.violation(`groupCount() is ${n}`);
  }

  groupsOfNode1(): void {
    this.reads++;
    const n = this.reader.groupsOf(1).length;
    if (n !== K) this.violation(`groupsOf(1) has ${n} groups`);
  }

  /** After the writer finished: every group must be at its final version. */
  final(finals: Int32Array): boolean {
    this.reader.refresh();
    let ok = true;
    for (let g = 0; g < K; g++) {
      this.reads++;
      const pids = this.reader.members(this.#names[g]!);
      const v = versionOfList(g, pids);
      if (v !== finals[g]) {
        ok = false;
        this.violation(`final members() of g${g} is version ${v}, expected ${finals[g]}`);
      }
    }
    return ok;
  }

  get versionsSeen(): number {
    let n = 0;
    for (const s of this.#seen) n += s.size;
    return n;
  }
}
