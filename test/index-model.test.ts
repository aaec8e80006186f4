/**
 * Model-based test of the shared index: random sequences of writes are applied both to
 * an `IndexWriter` and to a plain in-memory model (a map from group key to a multiset
 * of pids), and after every step every way of reading the index must agree with the
 * model.
 */
import test from 'ava';
import fc from 'fast-check';
import {
  encodeGroup,
  type Group,
  type GroupKey,
  IndexReader,
  IndexWriter,
  InvalidPidError,
  makePid,
  nodeOf,
  type Pid,
} from '../src/index.js';
import { sorted } from './support/views.js';

/** Groups of every kind; `0` and `-0` are the same group, the three look-alikes are not. */
const GROUPS: Group[] = ['a', 'b', '', 0, -0, 7.5, -3, ['a', 1], ['a', '1'], 'a,1', [], ['😀']];
const NODES = [0, 1, 2, 3];
const SERIALS = [1, 2, 3];
const PIDS: Pid[] = NODES.flatMap((n) => SERIALS.map((s) => makePid(n, s)));
const keyOf = (g: Group): GroupKey => encodeGroup(g);

type Write =
  | { op: 'join'; g: number; pids: number[] }
  | { op: 'leave'; g: number; pids: number[] }
  | { op: 'dropNode'; node: number }
  | { op: 'syncNode'; node: number; entries: [number, number[]][] };

type Step =
  | Write
  | { op: 'batch'; writes: Write[] }
  | { op: 'reclaim' }
  | { op: 'badJoin'; g: number; pids: number[]; bad: number; at: number }
  | { op: 'badSync'; node: number; entries: [number, number[]][]; foreign: number };

const groupIndex = fc.nat({ max: GROUPS.length - 1 });
const pidList = (max: number) => fc.array(fc.nat({ max: PIDS.length - 1 }), { maxLength: max });
const node = fc.constantFrom(...NODES, 9); // node 9 never has members
const serialList = fc.array(fc.nat({ max: SERIALS.length - 1 }), { maxLength: 3 });
const entries = fc.array(fc.tuple(groupIndex, serialList), { maxLength: 4 });

const write: fc.Arbitrary<Write> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('join'), g: groupIndex, pids: pidList(4) }) },
  {
    weight: 4,
    arbitrary: fc.record({ op: fc.constant('leave'), g: groupIndex, pids: pidList(4) }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('dropNode'), node }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('syncNode'), node, entries }) },
) as fc.Arbitrary<Write>;

const BAD_PIDS = [0, -1, 1.5, 2 ** 32, Number.NaN, 2 ** 53];

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 12, arbitrary: write },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reclaim') }) },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('batch'), writes: fc.array(write, { maxLength: 6 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('badJoin'),
      g: groupIndex,
      pids: pidList(3),
      bad: fc.nat({ max: BAD_PIDS.length - 1 }),
      at: fc.nat({ max: 3 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('badSync'),
      node: fc.constantFrom(...NODES),
      entries,
      foreign: fc.nat({ max: PIDS.length - 1 }),
    }),
  },
) as fc.Arbitrary<Step>;

/** Removes one occurrence of each of `pids` from `from`; returns what was removed. */
function removeEach(from: Pid[], pids: readonly Pid[]): Pid[] {
  const removed: Pid[] = [];
  for (const p of pids) {
    const i = from.indexOf(p);
    if (i >= 0) {
      from.splice(i, 1);
      removed.push(p);
    }
  }
  return removed;
}

class Model {
  readonly groups = new Map<GroupKey, Pid[]>();

  join(k: GroupKey, pids: Pid[]): void {
    if (pids.length === 0) return;
    this.groups.set(k, [...(this.groups.get(k) ?? []), ...pids]);
  }

  leave(k: GroupKey, pids: Pid[]): Pid[] {
    const list = this.groups.get(k);
    if (list === undefined) return [];
    const removed = removeEach(list, pids);
    if (list.length === 0) this.groups.delete(k);
    return removed;
  }

  dropNode(n: number): Map<GroupKey, Pid[]> {
    const out = new Map<GroupKey, Pid[]>();
    for (const [k, list] of [...this.groups]) {
      const removed = list.filter((p) => nodeOf(p) === n);
      if (removed.length === 0) continue;
      out.set(k, removed);
      const rest = list.filter((p) => nodeOf(p) !== n);
      if (rest.length === 0) this.groups.delete(k);
      else this.groups.set(k, rest);
    }
    return out;
  }

  syncNode(n: number, wanted: Map<GroupKey, Pid[]>): Map<GroupKey, { joined: Pid[]; left: Pid[] }> {
    const changes = new Map<GroupKey, { joined: Pid[]; left: Pid[] }>();
    const keys = new Set([...wanted.keys(), ...this.groups.keys()]);
    for (const k of keys) {
      const list = this.groups.get(k) ?? [];
      const had = list.filter((p) => nodeOf(p) === n);
      const want = wanted.get(k) ?? [];
      const left = [...had];
      const joined = [...want];
      // Cancel what is both had and wanted: the rest is the change.
      for (const p of want) {
        const i = left.indexOf(p);
        if (i >= 0) {
          left.splice(i, 1);
          joined.splice(joined.indexOf(p), 1);
        }
      }
      if (joined.length + left.length > 0) changes.set(k, { joined, left });
      const next = [...list.filter((p) => nodeOf(p) !== n), ...want];
      if (next.length === 0) this.groups.delete(k);
      else this.groups.set(k, next);
    }
    return changes;
  }

  get total(): number {
    let n = 0;
    for (const list of this.groups.values()) n += list.length;
    return n;
  }
}

class Mismatch extends Error {}

function same(what: string, actual: unknown, expected: unknown): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Mismatch(`${what}: got ${a}, expected ${e}`);
}

const wantedOf = (n: number, list: [number, number[]][]): [GroupKey, Pid[]][] =>
  list.map(([g, serials]) => [keyOf(GROUPS[g]!), serials.map((s) => makePid(n, SERIALS[s]!))]);

function mapOfWanted(list: [GroupKey, Pid[]][]): Map<GroupKey, Pid[]> {
  const out = new Map<GroupKey, Pid[]>();
  for (const [k, pids] of list) out.set(k, [...(out.get(k) ?? []), ...pids]);
  return out;
}

const sortedEntries = <V>(m: Map<GroupKey, V>, f: (v: V) => unknown) =>
  [...m].map(([k, v]) => [k, f(v)]).sort(([x], [y]) => String(x).localeCompare(String(y)));

/** Applies one write to both; checks what the writer returned against the model. */
function apply(w: IndexWriter, model: Model, s: Write): void {
  switch (s.op) {
    case 'join': {
      const pids = s.pids.map((i) => PIDS[i]!);
      w.join(keyOf(GROUPS[s.g]!), pids);
      model.join(keyOf(GROUPS[s.g]!), pids);
      return;
    }
    case 'leave': {
      const pids = s.pids.map((i) => PIDS[i]!);
      const got = w.leave(keyOf(GROUPS[s.g]!), pids);
      same('leave result', sorted(got), sorted(model.leave(keyOf(GROUPS[s.g]!), pids)));
      return;
    }
    case 'dropNode': {
      const got = w.dropNode(s.node);
      same(
        'dropNode result',
        sortedEntries(got, sorted),
        sortedEntries(model.dropNode(s.node), sorted),
      );
      return;
    }
    case 'syncNode': {
      const list = wantedOf(s.node, s.entries);
      const got = w.syncNode(s.node, list);
      const expected = model.syncNode(s.node, mapOfWanted(list));
      same(
        'syncNode result',
        sortedEntries(new Map(got.map((c) => [c.key, c])), (c) => [
          sorted(c.joined),
          sorted(c.left),
        ]),
        sortedEntries(expected, (c) => [sorted(c.joined), sorted(c.left)]),
      );
      return;
    }
  }
}

function unchangedAfterThrow(w: IndexWriter, fn: () => unknown): void {
  const before = JSON.stringify(
    w
      .keys()
      .sort()
      .map((k) => [k, w.members(k)]),
  );
  const epoch = w.stats().epoch;
  try {
    fn();
  } catch (err) {
    if (!(err instanceof InvalidPidError)) throw err;
    same(
      'state after a rejected write',
      JSON.stringify(
        w
          .keys()
          .sort()
          .map((k) => [k, w.members(k)]),
      ),
      before,
    );
    same('epoch after a rejected write', w.stats().epoch, epoch);
    return;
  }
  throw new Mismatch('a write with a bad pid did not throw');
}

/** Every way of reading the index must agree with the model. */
function compare(w: IndexWriter, readers: IndexReader[], model: Model): void {
  const expectedKeys = [...model.groups.keys()].sort();
  same('writer keys', w.keys().sort(), expectedKeys);
  const stats = w.stats();
  same('stats().members', stats.members, model.total);
  same('stats().groups', stats.groups, model.groups.size);
  for (const n of NODES) {
    same(
      `writer contribution(${n})`,
      sortedEntries(w.contribution(n), sorted),
      sortedEntries(
        new Map(
          [...model.groups]
            .map(([k, l]) => [k, l.filter((p) => nodeOf(p) === n)] as [GroupKey, Pid[]])
            .filter(([, l]) => l.length > 0),
        ),
        sorted,
      ),
    );
  }
  for (const reader of readers) {
    reader.refresh();
    same('groups()', reader.groups().map(keyOf).sort(), expectedKeys);
    same('groupCount()', reader.groupCount(), expectedKeys.length);
    for (const n of NODES) {
      const expected = expectedKeys.filter((k) =>
        model.groups.get(k)!.some((p) => nodeOf(p) === n),
      );
      same(`groupsOf(${n})`, reader.groupsOf(n).map(keyOf).sort(), expected);
    }
    for (const g of GROUPS) {
      const k = keyOf(g);
      const expected = model.groups.get(k) ?? [];
      const members = reader.members(g);
      same(`members(${k})`, sorted(members), sorted(expected));
      same(`members(${k}) in the writer's order`, members, w.members(k));
      same(`count(${k})`, reader.count(g), expected.length);
      const visited: Pid[] = [];
      same(
        `forEach(${k}) result`,
        reader.forEach(g, (p) => visited.push(p)),
        expected.length,
      );
      same(`forEach(${k}) visits`, visited, members);
      same(
        `memberAt(${k}, 1)`,
        reader.memberAt(g, 1),
        members.length === 0 ? undefined : members[1 % members.length],
      );
      for (const n of NODES) {
        same(
          `membersOf(${k}, ${n})`,
          reader.membersOf(g, n),
          members.filter((p) => nodeOf(p) === n),
        );
      }
    }
  }
}

/**
 * A writer whose hash seed is `seed`. The writer draws its seed from `Math.random()`;
 * making it part of the generated input keeps every run (and its shrinking) reproducible
 * while still covering many seeds, hence many bucket layouts.
 */
function writerWithSeed(seed: number): IndexWriter {
  const random = Math.random;
  Math.random = () => (seed >>> 0) / 2 ** 32;
  try {
    return new IndexWriter({ initialBytes: 1 << 16 });
  } finally {
    Math.random = random;
  }
}

test('random writes agree with a multiset model, for every reader (property)', (t) => {
  let steps = 0;
  let runs = 0;
  fc.assert(
    fc.property(
      fc.integer(),
      fc.array(step, { minLength: 10, maxLength: 80, size: 'large' }),
      (seed, plan) => {
        runs++;
        const w = writerWithSeed(seed);
        const local = new IndexReader(w);
        const shared = new IndexReader(w.handle);
        const model = new Model();
        try {
          for (const s of plan) {
            steps++;
            switch (s.op) {
              case 'batch': {
                const epoch = w.stats().epoch;
                w.batch(() => {
                  for (const inner of s.writes) apply(w, model, inner);
                });
                if (w.stats().epoch - epoch > 1) throw new Mismatch('a batch published twice');
                break;
              }
              case 'reclaim':
                w.reclaim();
                break;
              case 'badJoin': {
                const pids = s.pids.map((i) => PIDS[i]!);
                pids.splice(Math.min(s.at, pids.length), 0, BAD_PIDS[s.bad] as Pid);
                unchangedAfterThrow(w, () => w.join(keyOf(GROUPS[s.g]!), pids));
                unchangedAfterThrow(w, () => w.leave(keyOf(GROUPS[s.g]!), pids));
                break;
              }
              case 'badSync': {
                const foreign = PIDS[s.foreign]!;
                if (nodeOf(foreign) === s.node) break;
                const list = wantedOf(s.node, s.entries);
                list.push([keyOf(GROUPS[0]!), [foreign]]);
                unchangedAfterThrow(w, () => w.syncNode(s.node, list));
                break;
              }
              default:
                apply(w, model, s);
            }
            // Long-lived readers (with warm caches) and a new one that must look everything up.
            compare(w, [local, shared, new IndexReader(w)], model);
          }
        } finally {
          shared.release();
        }
      },
    ),
    { seed: 20240611, numRuns: 200, includeErrorInReport: true },
  );
  t.log(`${runs} runs, ${steps} steps`);
  t.true(steps > 1000);
});
