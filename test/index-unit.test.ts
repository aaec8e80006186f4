/**
 * The shared index (IndexWriter, IndexReader), one behaviour at a time: joins and leaves
 * as counted multisets, node drops and syncs, reads through every accessor, versions and
 * read sections, batches, capacity and reader limits, bad input, and readers on other
 * threads (test/fixtures/unit-reader.ts).
 */
import test, { type ExecutionContext } from 'ava';
import { hashKey } from '../src/core/group.js';
import {
  decodeGroup,
  encodeGroup,
  type Group,
  type GroupKey,
  IndexFullError,
  IndexLayoutError,
  IndexReader,
  IndexWriter,
  InvalidGroupError,
  InvalidPidError,
  makePid,
  nodeOf,
  type Pid,
  type SyncChange,
  TooManyReadersError,
} from '../src/index.js';
import { H_SEED } from '../src/shared-index/layout.js';
import type { ReadResult, SnapshotResult } from './fixtures/unit-reader.js';
import { sorted } from './support/views.js';
import { turn } from './support/wait.js';
import { ask, nextMessage, startWorker, type Tagged } from './support/workers.js';

const key = (g: Group): GroupKey => encodeGroup(g);
const pid = (node: number, serial: number): Pid => makePid(node, serial);
const a = pid(1, 1);
const b = pid(1, 2);
const c = pid(2, 1);
const d = pid(2, 2);
const e = pid(3, 7);

/** A writer with a reader on its own thread and a reader opened from its handle. */
function open(options?: ConstructorParameters<typeof IndexWriter>[0]) {
  const w = new IndexWriter(options);
  return { w, local: new IndexReader(w), shared: new IndexReader(w.handle) };
}

/**
 * Checks every accessor of `reader` for `group` against `expected` (in member order).
 * A reader opened from a handle is refreshed first, so that it sees the latest version.
 */
function expectGroup(
  t: ExecutionContext,
  reader: IndexReader,
  group: Group,
  expected: readonly Pid[],
  label = '',
): void {
  reader.refresh();
  const what = `${label} ${JSON.stringify(group)}`;
  t.deepEqual(reader.members(group), [...expected], `members of ${what}`);
  t.is(reader.count(group), expected.length, `count of ${what}`);
  for (let i = 0; i < expected.length; i++) t.is(reader.memberAt(group, i), expected[i]);
  if (expected.length === 0) t.is(reader.memberAt(group, 0), undefined);
  const seen: [Pid, number][] = [];
  t.is(
    reader.forEach(group, (p, i) => seen.push([p, i])),
    expected.length,
  );
  t.deepEqual(
    seen,
    expected.map((p, i) => [p, i]),
    `forEach of ${what}`,
  );
  for (const node of [0, 1, 2, 3, 4]) {
    t.deepEqual(
      reader.membersOf(group, node),
      expected.filter((p) => nodeOf(p) === node),
      `membersOf ${what} node ${node}`,
    );
  }
}

/** Checks the writer's own view and both readers for `group`. */
function expectEverywhere(
  t: ExecutionContext,
  ix: ReturnType<typeof open>,
  group: Group,
  expected: readonly Pid[],
): void {
  t.deepEqual(
    ix.w.members(key(group)),
    [...expected],
    `writer members of ${JSON.stringify(group)}`,
  );
  t.is(ix.w.has(key(group)), expected.length > 0);
  expectGroup(t, ix.local, group, expected, 'local');
  expectGroup(t, ix.shared, group, expected, 'shared');
}

/** The set of groups a reader lists, as sorted canonical keys. */
function listed(reader: IndexReader, node?: number): string[] {
  reader.refresh();
  const groups = node === undefined ? reader.groups() : reader.groupsOf(node);
  return groups.map((g) => encodeGroup(g)).sort();
}

/** The whole state as the writer sees it, to compare before and after a failed operation. */
function snapshot(w: IndexWriter) {
  const {
    usedBytes: _u,
    committedBytes: _c,
    freeBytes: _f,
    retiredBytes: _r,
    ...stats
  } = w.stats();
  return {
    stats,
    groups: w
      .keys()
      .sort()
      .map((k) => [k, w.members(k)]),
  };
}

/** What both readers see of every group, to compare with the writer's snapshot. */
function readersAgree(t: ExecutionContext, ix: ReturnType<typeof open>): void {
  const expected = ix.w.keys().sort();
  for (const reader of [ix.local, ix.shared]) {
    t.deepEqual(listed(reader), expected, 'groups()');
    t.is(reader.groupCount(), expected.length);
    for (const k of expected) {
      const group = ix.w.members(k);
      reader.refresh();
      t.deepEqual(reader.members(decodeGroup(k)), group);
    }
  }
}

const KINDS: Group[] = [
  'plain',
  '',
  '😀',
  '\uD800',
  0,
  3.5,
  -7,
  1e21,
  ['shard', 3],
  ['shard', '3'],
  'shard,3',
  [],
  [''],
  ['😀', 5e-324],
];

test('join and read back every kind of group through every accessor', (t) => {
  const ix = open();
  KINDS.forEach((g, i) => {
    ix.w.join(key(g), [pid(1, i + 1), pid(2, i + 1), pid(3, i + 1)]);
  });
  KINDS.forEach((g, i) => {
    expectEverywhere(t, ix, g, [pid(1, i + 1), pid(2, i + 1), pid(3, i + 1)]);
  });
  // -0 is the group 0; the three look-alikes are three groups.
  expectEverywhere(t, ix, -0, [pid(1, 5), pid(2, 5), pid(3, 5)]);
  t.is(new Set(ix.w.keys()).size, KINDS.length);
  const expectedKeys = KINDS.map(key).sort();
  t.deepEqual(listed(ix.local), expectedKeys);
  t.deepEqual(listed(ix.shared), expectedKeys);
  t.is(ix.local.groupCount(), KINDS.length);
  t.is(ix.shared.groupCount(), KINDS.length);
  // groups() hands out copies of tuple groups: changing one changes nothing.
  const tuple = ix.local.groups().find((g) => Array.isArray(g) && g[0] === 'shard') as Group[];
  tuple.push('mutated');
  t.deepEqual(listed(ix.local), expectedKeys);
  const s = ix.w.stats();
  t.is(s.groups, KINDS.length);
  t.is(s.members, 3 * KINDS.length);
  t.true(s.usedBytes <= s.committedBytes);
});

test('joins are counted: the same pid twice is listed twice, one leave removes one', (t) => {
  const ix = open();
  for (const g of KINDS) {
    ix.w.join(key(g), [a]);
    ix.w.join(key(g), [a, b]);
    expectEverywhere(t, ix, g, [a, a, b]);
    t.deepEqual(ix.w.leave(key(g), [a]), [a]);
    expectEverywhere(t, ix, g, [a, b]);
    t.deepEqual(ix.w.leave(key(g), [a]), [a]);
    expectEverywhere(t, ix, g, [b]);
  }
  t.is(ix.w.stats().members, KINDS.length);
});

test('leave of a non-member returns [] and publishes nothing', (t) => {
  const ix = open();
  ix.w.join(key('g'), [a, b]);
  const before = snapshot(ix.w);
  t.deepEqual(ix.w.leave(key('g'), [c]), []);
  t.deepEqual(ix.w.leave(key('g'), []), []);
  t.deepEqual(ix.w.leave(key('unknown'), [a]), []);
  t.deepEqual(ix.w.leave(key(['unknown', 1]), [a, b]), []);
  t.deepEqual(snapshot(ix.w), before);
  expectEverywhere(t, ix, 'g', [a, b]);
  expectEverywhere(t, ix, 'unknown', []);
  t.deepEqual(ix.w.dropNode(9), new Map());
  t.deepEqual(snapshot(ix.w), before);
});

test('a multi-leave removes one occurrence per listed pid and returns them in member order', (t) => {
  const ix = open();
  for (const g of KINDS) {
    ix.w.join(key(g), [a, b, a, c, a, d]);
    // a twice, c once, e (not a member) once, d once.
    t.deepEqual(ix.w.leave(key(g), [d, a, e, c, a]), [a, a, c, d]);
    expectEverywhere(t, ix, g, [b, a]);
    // Asking for more occurrences than there are removes what there is.
    t.deepEqual(ix.w.leave(key(g), [a, a, a, b]), [b, a]);
    expectEverywhere(t, ix, g, []);
  }
  t.is(ix.w.stats().members, 0);
  t.is(ix.w.stats().groups, 0);
});

test('a group disappears when its last member leaves', (t) => {
  const ix = open();
  for (const g of KINDS) ix.w.join(key(g), [a, c]);
  for (const g of KINDS) {
    ix.w.leave(key(g), [a]);
    ix.w.leave(key(g), [c]);
    expectEverywhere(t, ix, g, []);
    t.false(listed(ix.local).includes(key(g)));
    t.false(listed(ix.shared).includes(key(g)));
    t.false(ix.w.keys().includes(key(g)));
    t.deepEqual(ix.w.membersOf(key(g), 1), []);
  }
  t.deepEqual(listed(ix.local), []);
  t.deepEqual(listed(ix.shared), []);
  t.is(ix.local.groupCount(), 0);
  t.is(ix.shared.groupCount(), 0);
  t.deepEqual(ix.w.nodes(), []);
  t.deepEqual(ix.w.contribution(1), new Map());
  const s = ix.w.stats();
  t.is(s.groups, 0);
  t.is(s.members, 0);
  // The names can be used again.
  ix.w.join(key(KINDS[0]!), [e]);
  expectEverywhere(t, ix, KINDS[0]!, [e]);
});

test('dropNode removes only that node’s pids, everywhere, and reports them per group', (t) => {
  const ix = open();
  ix.w.join(key('mixed'), [a, c, b, d, a]);
  ix.w.join(key(7), [c, d]);
  ix.w.join(key(['only', 1]), [b, a]);
  ix.w.join(key('other'), [e]);
  const removed = ix.w.dropNode(1);
  t.deepEqual(
    [...removed.entries()].sort(([x], [y]) => x.localeCompare(y)),
    [
      [key('mixed'), [a, b, a]],
      [key(['only', 1]), [b, a]],
    ].sort(([x], [y]) => String(x).localeCompare(String(y))),
  );
  expectEverywhere(t, ix, 'mixed', [c, d]);
  expectEverywhere(t, ix, 7, [c, d]);
  expectEverywhere(t, ix, ['only', 1], []);
  expectEverywhere(t, ix, 'other', [e]);
  t.deepEqual(listed(ix.local, 1), []);
  t.deepEqual(listed(ix.shared, 1), []);
  t.deepEqual(ix.w.contribution(1), new Map());
  t.deepEqual(ix.w.dropNode(1), new Map());
  t.deepEqual(sorted(ix.w.nodes()), [2, 3]);
  t.is(ix.w.stats().members, 5);
});

function byKey(changes: SyncChange[]) {
  return changes
    .map((ch) => ({ key: ch.key, joined: sorted(ch.joined), left: sorted(ch.left) }))
    .sort((x, y) => x.key.localeCompare(y.key));
}

test('syncNode replaces a node’s whole contribution and reports what changed', (t) => {
  const ix = open();
  const a3 = pid(1, 3);
  const a4 = pid(1, 4);
  ix.w.join(key('g1'), [a, c, b]);
  ix.w.join(key(2), [a]);
  ix.w.join(key(['g', 3]), [d]);
  ix.w.join(key('untouched'), [c, e]);
  const entries: [GroupKey, Pid[]][] = [
    [key('g1'), [a3]],
    [key(['g', 3]), [a, a]],
    [key('g4'), [a4]],
  ];
  const changes = ix.w.syncNode(1, entries);
  t.deepEqual(
    byKey(changes),
    byKey([
      { key: key('g1'), joined: [a3], left: [a, b] },
      { key: key(2), joined: [], left: [a] },
      { key: key(['g', 3]), joined: [a, a], left: [] },
      { key: key('g4'), joined: [a4], left: [] },
    ]),
  );
  // Other nodes' members stay, in their order; the node's members are exactly the wanted ones.
  expectEverywhere(t, ix, 'g1', [c, a3]);
  expectEverywhere(t, ix, 2, []);
  expectEverywhere(t, ix, ['g', 3], [d, a, a]);
  expectEverywhere(t, ix, 'g4', [a4]);
  expectEverywhere(t, ix, 'untouched', [c, e]);
  t.deepEqual(
    new Map([...ix.w.contribution(1)].sort(([x], [y]) => x.localeCompare(y))),
    new Map(
      (
        [
          [key('g1'), [a3]],
          [key(['g', 3]), [a, a]],
          [key('g4'), [a4]],
        ] as [GroupKey, Pid[]][]
      ).sort(([x], [y]) => x.localeCompare(y)),
    ),
  );
  t.deepEqual(listed(ix.shared, 1), [key('g1'), key('g4'), key(['g', 3])].sort());

  // The same sync again changes nothing and publishes nothing.
  const before = snapshot(ix.w);
  t.deepEqual(ix.w.syncNode(1, entries), []);
  t.deepEqual(ix.w.syncNode(1, new Map(entries)), []);
  t.deepEqual(snapshot(ix.w), before);

  // Entries for the same key add up.
  t.deepEqual(
    byKey(
      ix.w.syncNode(1, [
        [key('g4'), [a4]],
        [key('g4'), [a]],
        [key('g1'), [a3]],
        [key(['g', 3]), [a, a]],
      ]),
    ),
    [{ key: key('g4'), joined: [a], left: [] }],
  );
  expectEverywhere(t, ix, 'g4', [a4, a]);

  // An empty sync drops the node; a node with nothing to sync changes nothing.
  t.deepEqual(
    byKey(ix.w.syncNode(1, [])),
    byKey([
      { key: key('g1'), joined: [], left: [a3] },
      { key: key(['g', 3]), joined: [], left: [a, a] },
      { key: key('g4'), joined: [], left: [a4, a] },
    ]),
  );
  expectEverywhere(t, ix, 'g1', [c]);
  expectEverywhere(t, ix, ['g', 3], [d]);
  expectEverywhere(t, ix, 'g4', []);
  t.deepEqual(ix.w.syncNode(1, []), []);
  t.deepEqual(ix.w.syncNode(5, []), []);
  t.is(ix.w.stats().members, 4);
});

test('unknown groups read as empty', (t) => {
  const empty = open();
  const full = open();
  full.w.join(key('known'), [a]);
  for (const ix of [empty, full]) {
    for (const g of ['nope', '', 0, 12.5, ['nope', 1], [], ['known']]) {
      expectEverywhere(t, ix, g, []);
      let called = false;
      t.is(
        ix.shared.forEach(g, () => {
          called = true;
        }),
        0,
      );
      t.false(called);
    }
    t.deepEqual(listed(ix.shared, 9), []);
  }
  t.deepEqual(listed(empty.local), []);
  t.is(empty.shared.groupCount(), 0);
});

const BAD_GROUPS: unknown[] = [
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  undefined,
  null,
  {},
  true,
  5n,
  Symbol('s'),
  () => 1,
  [['nested']],
  [Number.NaN],
  'x'.repeat(4096),
  new Array(5000).fill('a'),
];

test('reader methods reject bad groups with an InvalidGroupError', (t) => {
  const ix = open();
  ix.w.join(key('g'), [a]);
  ix.w.join(key(1), [a]);
  for (const reader of [ix.local, ix.shared]) {
    // Warm the caches first: the hot path must still validate.
    reader.members('g');
    reader.members(1);
    for (const bad of BAD_GROUPS) {
      const g = bad as Group;
      const calls: [string, () => unknown][] = [
        ['members', () => reader.members(g)],
        ['count', () => reader.count(g)],
        ['memberAt', () => reader.memberAt(g, 0)],
        ['forEach', () => reader.forEach(g, () => {})],
        ['membersOf', () => reader.membersOf(g, 1)],
      ];
      for (const [name, call] of calls) {
        t.throws(call, { instanceOf: InvalidGroupError }, `${name}(${String(bad).slice(0, 20)})`);
      }
    }
    t.deepEqual(reader.members('g'), [a]);
  }
});

const BAD_PIDS: unknown[] = [
  0,
  -1,
  1.5,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  2 ** 32,
  2 ** 53,
  '5',
  null,
  undefined,
];

test('bad pids throw an InvalidPidError from every write and change nothing', (t) => {
  const ix = open();
  ix.w.join(key('g'), [a, c]);
  ix.w.join(key(['t', 1]), [b]);
  const before = snapshot(ix.w);
  for (const bad of BAD_PIDS) {
    const p = bad as Pid;
    const writes: [string, () => unknown][] = [
      ['join existing', () => ix.w.join(key('g'), [d, p])],
      ['join new', () => ix.w.join(key('new'), [p])],
      ['leave', () => ix.w.leave(key('g'), [a, p])],
      ['leave unknown', () => ix.w.leave(key('unknown'), [p])],
      ['syncNode', () => ix.w.syncNode(1, [[key('g'), [a, p]]])],
      [
        'syncNode later entry',
        () =>
          ix.w.syncNode(1, [
            [key('g'), [b]],
            [key('h'), [p]],
          ]),
      ],
    ];
    for (const [name, write] of writes) {
      const err = t.throws(write, { instanceOf: InvalidPidError }, `${name} with ${String(bad)}`);
      t.true(err instanceof TypeError);
      t.is((err as InvalidPidError).code, 'ERR_PG_INVALID_PID');
      t.deepEqual(snapshot(ix.w), before, `${name} with ${String(bad)} changed nothing`);
    }
  }
  readersAgree(t, ix);
  expectEverywhere(t, ix, 'g', [a, c]);
});

test('syncNode with a pid of another node throws and changes nothing', (t) => {
  const ix = open();
  ix.w.join(key('g'), [a, c]);
  ix.w.join(key('h'), [b]);
  const before = snapshot(ix.w);
  const err = t.throws(
    () =>
      ix.w.syncNode(1, [
        [key('g'), [b]], // fine on its own
        [key('h'), [a, c]], // c is on node 2
      ]),
    { instanceOf: InvalidPidError },
  );
  t.regex(err.message, /another node/);
  t.deepEqual(snapshot(ix.w), before);
  t.throws(() => ix.w.syncNode(2, [[key('g'), [a]]]), { instanceOf: InvalidPidError });
  t.deepEqual(snapshot(ix.w), before);
  readersAgree(t, ix);
});

test('memberAt takes the index modulo the member count', (t) => {
  const ix = open();
  const members = [a, b, c, d, e];
  ix.w.join(key(['rr', 1]), members);
  for (const reader of [ix.local, ix.shared]) {
    reader.refresh();
    for (const i of [0, 1, 4, 5, 6, 9, 10, 11, 1_000_003, 2 ** 31 + 7, 2 ** 32 - 1]) {
      t.is(reader.memberAt(['rr', 1], i), members[i % members.length], `index ${i}`);
    }
    // Round robin with a counter visits every member in turn.
    const picks = Array.from({ length: 12 }, (_, i) => reader.memberAt(['rr', 1], i));
    t.deepEqual(picks, [...members, ...members, a, b]);
    t.is(reader.memberAt(['rr', 2], 3), undefined);
  }
});

test('forEach visits a consistent copy even when the callback writes to the index', (t) => {
  for (const which of ['local', 'shared'] as const) {
    const ix = open();
    const reader = ix[which];
    ix.w.join(key('g'), [a, b, c]);
    reader.refresh();
    const seen: [Pid, number][] = [];
    const n = reader.forEach('g', (p, i) => {
      seen.push([p, i]);
      if (i === 0) {
        ix.w.leave(key('g'), [a, b, c]);
        ix.w.join(key('g'), [d, e, d, e, d]);
      }
      if (i === 1) {
        // A nested forEach over another version of the same group.
        const inner: Pid[] = [];
        reader.refresh();
        reader.forEach('g', (q) => inner.push(q));
        t.deepEqual(inner, [d, e, d, e, d], `${which}: nested forEach sees the new version`);
      }
    });
    t.is(n, 3);
    t.deepEqual(
      seen,
      [
        [a, 0],
        [b, 1],
        [c, 2],
      ],
      which,
    );
    expectEverywhere(t, ix, 'g', [d, e, d, e, d]);
  }
});

test('membersOf and groupsOf filter by node', (t) => {
  const ix = open();
  ix.w.join(key('x'), [a, c, b, e, a]);
  ix.w.join(key(['y', 0]), [c, d]);
  ix.w.join(key(0), [e]);
  for (const reader of [ix.local, ix.shared]) {
    reader.refresh();
    t.deepEqual(reader.membersOf('x', 1), [a, b, a]);
    t.deepEqual(reader.membersOf('x', 2), [c]);
    t.deepEqual(reader.membersOf('x', 3), [e]);
    t.deepEqual(reader.membersOf('x', 4), []);
    t.deepEqual(reader.membersOf(['y', 0], 2), [c, d]);
    t.deepEqual(reader.membersOf(['y', 0], 1), []);
    t.deepEqual(listed(reader, 1), [key('x')]);
    t.deepEqual(listed(reader, 2), [key('x'), key(['y', 0])].sort());
    t.deepEqual(listed(reader, 3), [key('x'), key(0)].sort());
    t.deepEqual(listed(reader, 4), []);
  }
  t.deepEqual(ix.w.membersOf(key('x'), 1), [a, b, a]);
  t.deepEqual(ix.w.membersOf(key('x'), 4), []);
  t.deepEqual(
    ix.w.contribution(2),
    new Map([
      [key('x'), [c]],
      [key(['y', 0]), [c, d]],
    ]),
  );
  t.deepEqual(sorted(ix.w.nodes()), [1, 2, 3]);
});

test('20,000 groups of every kind are all readable, before and after half of them leave', (t) => {
  const ix = open();
  const N = 20_000;
  const groupOf = (i: number): Group =>
    i % 3 === 0 ? `group-${i}` : i % 3 === 1 ? i + 0.25 : ['g', i, `${i}`];
  const membersOf = (i: number): Pid[] =>
    Array.from({ length: 1 + (i % 5) }, (_, j) => pid(1 + (j % 3), i + 1));
  // Half in one batch, half one join at a time.
  ix.w.batch(() => {
    for (let i = 0; i < N / 2; i++) ix.w.join(key(groupOf(i)), membersOf(i));
  });
  for (let i = N / 2; i < N; i++) ix.w.join(key(groupOf(i)), membersOf(i));
  const check = (live: (i: number) => boolean) => {
    let bad = 0;
    for (const reader of [ix.local, ix.shared]) {
      reader.refresh();
      for (let i = 0; i < N; i++) {
        reader.refresh();
        const got = reader.members(groupOf(i));
        const want = live(i) ? membersOf(i) : [];
        if (got.length !== want.length || got.some((p, j) => p !== want[j])) bad++;
      }
      const expected = Array.from({ length: N }, (_, i) => i)
        .filter(live)
        .map((i) => key(groupOf(i)))
        .sort();
      t.deepEqual(listed(reader), expected);
      t.is(reader.groupCount(), expected.length);
    }
    t.is(bad, 0, 'groups read back wrong');
  };
  check(() => true);
  for (let i = 0; i < N; i += 2) ix.w.leave(key(groupOf(i)), membersOf(i));
  check((i) => i % 2 === 1);
  t.is(ix.w.stats().groups, N / 2);
});

test('a group name reused after deletion reads correctly from a reader that cached it', (t) => {
  for (const [x, y] of [
    ['x', 'y'],
    [17, 18],
    [
      ['x', 1],
      ['y', 1],
    ],
  ] as [Group, Group][]) {
    const ix = open();
    ix.w.join(key(x), [a]);
    // Both readers learn x (slot, gid) and decode it in groups().
    expectGroup(t, ix.local, x, [a]);
    expectGroup(t, ix.shared, x, [a]);
    t.deepEqual(listed(ix.shared), [key(x)]);
    // x goes, y takes its slot, x comes back in another slot.
    ix.w.leave(key(x), [a]);
    ix.w.join(key(y), [b]);
    ix.w.join(key(x), [c]);
    expectEverywhere(t, ix, x, [c]);
    expectEverywhere(t, ix, y, [b]);
    t.deepEqual(listed(ix.local), [key(x), key(y)].sort());
    t.deepEqual(listed(ix.shared), [key(x), key(y)].sort());
    // The same inside one version: x deleted and created again in one batch.
    ix.w.batch(() => {
      ix.w.leave(key(x), [c]);
      ix.w.leave(key(y), [b]);
      ix.w.join(key(y), [d]);
      ix.w.join(key(x), [e]);
    });
    expectEverywhere(t, ix, x, [e]);
    expectEverywhere(t, ix, y, [d]);
    // And gone for good.
    ix.w.leave(key(x), [e]);
    expectEverywhere(t, ix, x, []);
    t.deepEqual(listed(ix.shared), [key(y)]);
  }
});

test('a handle reader on the writer’s thread reads one version until refresh() or the next job', async (t) => {
  const ix = open();
  ix.w.join(key('g'), [a]);
  t.deepEqual(ix.shared.members('g'), [a]);
  ix.w.join(key('g'), [b]);
  ix.w.join(key('h'), [c]);
  // Same synchronous job, same section: still the old version.
  t.deepEqual(ix.shared.members('g'), [a]);
  t.is(ix.shared.count('h'), 0);
  t.is(ix.shared.groupCount(), 1);
  // The reader on the writer itself follows every publish.
  t.deepEqual(ix.local.members('g'), [a, b]);
  ix.shared.refresh();
  t.deepEqual(ix.shared.members('g'), [a, b]);
  t.deepEqual(ix.shared.members('h'), [c]);
  ix.w.leave(key('h'), [c]);
  t.deepEqual(ix.shared.members('h'), [c]);
  await Promise.resolve(); // a microtask checkpoint ends the section
  t.deepEqual(ix.shared.members('h'), []);
  ix.w.join(key('h'), [d]);
  await turn();
  t.deepEqual(ix.shared.members('h'), [d]);
});

test('batch publishes all of its changes as one version', (t) => {
  const ix = open();
  ix.w.join(key('g'), [a]);
  const epoch = ix.w.stats().epoch;
  let inside: Pid[] = [];
  const result = ix.w.batch(() => {
    ix.w.join(key('g'), [b]);
    ix.w.join(key('h'), [c]);
    ix.w.batch(() => {
      ix.w.leave(key('g'), [a]);
      ix.w.dropNode(2);
      ix.w.join(key(['i', 1]), [d]);
    });
    ix.w.syncNode(3, [[key('g'), [e]]]);
    // Nothing is published yet: a refreshed handle reader still sees the old version.
    ix.shared.refresh();
    inside = ix.shared.members('g');
    t.is(ix.shared.count(['i', 1]), 0);
    t.is(ix.w.stats().epoch, epoch);
    return 42;
  });
  t.is(result, 42);
  t.deepEqual(inside, [a]);
  t.is(ix.w.stats().epoch, epoch + 1);
  expectEverywhere(t, ix, 'g', [b, e]);
  expectEverywhere(t, ix, 'h', []);
  expectEverywhere(t, ix, ['i', 1], [d]);
  // A batch that changes nothing publishes nothing.
  ix.w.batch(() => ix.w.leave(key('g'), [a]));
  t.is(ix.w.stats().epoch, epoch + 1);
  // A batch that throws still publishes what it did, consistently for every reader.
  t.throws(
    () =>
      ix.w.batch(() => {
        ix.w.join(key('z'), [a]);
        throw new Error('boom');
      }),
    { message: 'boom' },
  );
  t.is(ix.w.stats().epoch, epoch + 2);
  expectEverywhere(t, ix, 'z', [a]);
  readersAgree(t, ix);
});

test('stats() counts groups and members, and reclaim() frees retired blocks', (t) => {
  const ix = open();
  const s0 = ix.w.stats();
  t.is(s0.groups, 0);
  t.is(s0.members, 0);
  t.is(s0.committedBytes, 1 << 20);
  for (let i = 0; i < 100; i++) ix.w.join(key(`g${i % 10}`), [pid(1 + (i % 3), i + 1)]);
  const s1 = ix.w.stats();
  t.is(s1.groups, 10);
  t.is(s1.members, 100);
  t.true(s1.epoch > s0.epoch);
  t.true(s1.usedBytes > s0.usedBytes);
  t.true(s1.usedBytes <= s1.committedBytes);
  ix.shared.release();
  ix.w.reclaim();
  t.is(ix.w.stats().retiredBytes, 0);
  t.true(ix.w.stats().freeBytes > 0);
});

test('close() empties the index for every reader and refuses writes', (t) => {
  const ix = open();
  ix.w.join(key('g'), [a, c]);
  ix.w.join(key(['h']), [b]);
  ix.w.close();
  ix.w.close(); // twice is fine
  expectEverywhere(t, ix, 'g', []);
  expectEverywhere(t, ix, ['h'], []);
  t.deepEqual(listed(ix.shared), []);
  t.throws(() => ix.w.join(key('g'), [a]), { message: /closed/ });
  t.throws(() => ix.w.leave(key('g'), [a]), { message: /closed/ });
  t.throws(() => ix.w.dropNode(1), { message: /closed/ });
  t.throws(() => ix.w.syncNode(1, []), { message: /closed/ });
  const late = new IndexReader(ix.w.handle);
  t.deepEqual(late.groups(), []);
});

test('options are validated, and a buffer that is not an index is refused', (t) => {
  for (const maxReaders of [0, -1, 1.5, 5000, Number.NaN]) {
    t.throws(() => new IndexWriter({ maxReaders }), { instanceOf: RangeError });
  }
  for (const maxBytes of [0, 65535, 2 ** 32, 1.5]) {
    t.throws(() => new IndexWriter({ maxBytes }), { instanceOf: RangeError });
  }
  t.throws(() => new IndexReader({ buffer: new SharedArrayBuffer(4096) }), {
    instanceOf: IndexLayoutError,
  });
  t.throws(
    () => new IndexReader({ buffer: new SharedArrayBuffer(4096, { maxByteLength: 8192 }) }),
    { instanceOf: IndexLayoutError },
  );
  // A tiny initial size is rounded up to what the header needs, and grows on demand.
  const small = new IndexWriter({ initialBytes: 1, maxBytes: 65536, maxReaders: 1 });
  t.is(small.handle.buffer.maxByteLength, 65536);
  const initial = small.stats().committedBytes;
  small.join(
    key('g'),
    Array.from({ length: 100 }, (_, i) => pid(1, i + 1)),
  );
  t.true(small.stats().committedBytes > initial);
  t.is(new IndexReader(small.handle).count('g'), 100);
});

test('IndexFullError when maxBytes is small, and a failed join changes nothing', (t) => {
  const ix = open({ maxBytes: 65536 });
  ix.w.join(key('g'), [a, b]);
  const before = snapshot(ix.w);
  // One join bigger than the whole buffer.
  const huge = Array.from({ length: 10_000 }, (_, i) => pid(1, i + 1));
  const err = t.throws(() => ix.w.join(key('g'), huge), { instanceOf: IndexFullError });
  t.true(err instanceof RangeError);
  t.is((err as IndexFullError).code, 'ERR_PG_INDEX_FULL');
  t.deepEqual(snapshot(ix.w), before);
  t.throws(() => ix.w.join(key('new'), huge), { instanceOf: IndexFullError });
  t.deepEqual(snapshot(ix.w), before);
  readersAgree(t, ix);
  // Many small joins until it is full: the failing one changes nothing either.
  let n = 0;
  let full: unknown;
  for (; n < 100_000 && full === undefined; n++) {
    const state = snapshot(ix.w);
    try {
      ix.w.join(key(['fill', n]), [pid(1, n + 1), pid(2, n + 1)]);
    } catch (caught) {
      full = caught;
      t.deepEqual(snapshot(ix.w), state);
    }
  }
  t.true(full instanceof IndexFullError, `full after ${n} groups`);
  t.true(n > 50, `full after ${n} groups`);
  t.true(ix.w.stats().committedBytes <= 65536);
  readersAgree(t, ix);
});

/** An index of `maxBytes` 64 KiB filled with two-member groups until a join fails. */
function fillUp(ix: ReturnType<typeof open>): number {
  let n = 0;
  for (;;) {
    try {
      ix.w.join(key(`g${n}`), [pid(1, n + 1), pid(2, n + 1)]);
      n++;
    } catch (err) {
      if (err instanceof IndexFullError) return n;
      throw err;
    }
  }
}

test('dropNode and syncNode that run out of room change nothing (all or nothing)', (t) => {
  const ix = open({ maxBytes: 65536 });
  ix.shared.release();
  const n = fillUp(ix);
  t.true(n > 100);
  const before = snapshot(ix.w);
  const epoch = ix.w.stats().epoch;
  // Removing node 1 rewrites every group: each needs a new, smaller block.
  let dropError: unknown;
  try {
    ix.w.dropNode(1);
  } catch (err) {
    dropError = err;
  }
  if (dropError !== undefined) {
    t.true(dropError instanceof IndexFullError);
    t.is(ix.w.contribution(1).size, n, 'node 1 still has members in every group');
    t.deepEqual(snapshot(ix.w), before, 'a dropNode that failed changed nothing');
    t.is(ix.w.stats().epoch, epoch, 'and published nothing');
  } else {
    t.is(ix.w.contribution(1).size, 0);
  }
  const middle = snapshot(ix.w);
  let syncError: unknown;
  try {
    ix.w.syncNode(2, []);
  } catch (err) {
    syncError = err;
  }
  if (syncError !== undefined) {
    t.true(syncError instanceof IndexFullError);
    t.deepEqual(snapshot(ix.w), middle, 'a syncNode that failed changed nothing');
  } else {
    t.is(ix.w.contribution(2).size, 0);
  }
  readersAgree(t, ix);
});

test('an index that was full takes joins again once its members have left', (t) => {
  const ix = open({ maxBytes: 65536 });
  ix.shared.release();
  const n = fillUp(ix);
  for (let i = 0; i < n; i++) {
    t.deepEqual(ix.w.leave(key(`g${i}`), [pid(1, i + 1), pid(2, i + 1)]).length, 2);
  }
  ix.w.reclaim();
  const s = ix.w.stats();
  t.is(s.groups, 0);
  t.is(s.members, 0);
  t.log(`after emptying: ${JSON.stringify(s)}`);
  // The index is empty and almost all of its space is free: a small join must fit.
  t.notThrows(() => ix.w.join(key('again'), [a]));
  t.notThrows(() => {
    for (let i = 0; i < n / 2; i++) ix.w.join(key(`h${i}`), [pid(1, i + 1), pid(2, i + 1)]);
  });
});

test('a group stays findable when the next group lands in the upper half of the first bucket table', (t) => {
  // The first bucket table has 64 buckets. Pick a group A for bucket x < 32 and a
  // group B for bucket x + 32, then create them in that order, as any index may.
  const ix = open();
  const seed = new Int32Array(ix.w.handle.buffer)[H_SEED]!;
  const bucketOf = (g: string) => hashKey(key(g), seed) & 63;
  let A = '';
  let B = '';
  for (let i = 0; A === ''; i++) if (bucketOf(`a${i}`) < 32) A = `a${i}`;
  for (let i = 0; B === ''; i++) if (bucketOf(`b${i}`) === bucketOf(A) + 32) B = `b${i}`;
  ix.w.join(key(A), [a]);
  ix.w.join(key(B), [b]);
  // Some ordinary traffic: other groups come and go, memory is reused.
  ix.shared.release();
  for (let i = 0; i < 200; i++) {
    ix.w.join(key(`c${i}`), [c]);
    if (i % 7 === 0) ix.w.reclaim();
    if (i % 2 === 0) ix.w.leave(key(`c${i}`), [c]);
  }
  const fresh = new IndexReader(ix.w);
  t.deepEqual(fresh.members(A), [a], `${A} (bucket ${bucketOf(A)}) is still readable`);
  t.deepEqual(fresh.members(B), [b], `${B} (bucket ${bucketOf(B)}) is still readable`);
  readersAgree(t, ix);
  for (let i = 1; i < 200; i += 2) t.deepEqual(fresh.members(`c${i}`), [c], `c${i}`);
});

test('TooManyReadersError when more readers than maxReaders read; release() frees a record', (t) => {
  const w = new IndexWriter({ maxReaders: 2 });
  w.join(key('g'), [a]);
  const r1 = new IndexReader(w.handle);
  const r2 = new IndexReader(w.handle);
  const r3 = new IndexReader(w.handle); // constructing claims nothing
  const locals = [new IndexReader(w), new IndexReader(w), new IndexReader(w)];
  for (const r of locals) t.deepEqual(r.members('g'), [a]); // local readers take no record
  t.deepEqual(r1.members('g'), [a]);
  t.deepEqual(r2.members('g'), [a]);
  const err = t.throws(() => r3.members('g'), { instanceOf: TooManyReadersError });
  t.true(err instanceof RangeError);
  t.is((err as TooManyReadersError).code, 'ERR_PG_TOO_MANY_READERS');
  t.throws(() => r3.groups(), { instanceOf: TooManyReadersError });
  r1.release();
  t.deepEqual(r3.members('g'), [a]);
  t.throws(() => r1.count('g'), { instanceOf: TooManyReadersError });
  r1.release(); // releasing a reader that holds nothing is harmless
  r2.release();
  t.is(r1.count('g'), 1);
  // A released reader keeps working: it claims a record again on its next read.
  r3.release();
  w.join(key('g'), [b]);
  t.deepEqual(r3.members('g'), [a, b]);
});

test('releaseReadersOf frees the records of a thread that is gone', async (t) => {
  const w = new IndexWriter({ maxReaders: 1 });
  w.join(key('g'), [a]);
  const worker = startWorker(t, 'unit-reader', { handle: w.handle });
  const started = await nextMessage<Tagged & { threadId: number }>(worker, 'started');
  const result = await ask<ReadResult>(worker, { type: 'read', groups: ['g'] }, 'result');
  t.deepEqual(result.views[0]?.members, [a]);
  const mine = new IndexReader(w.handle);
  t.throws(() => mine.members('g'), { instanceOf: TooManyReadersError });
  await worker.terminate();
  t.is(w.releaseReadersOf(started.threadId), 1);
  t.is(w.releaseReadersOf(started.threadId), 0);
  t.deepEqual(mine.members('g'), [a]);
});

test('a reader in a worker thread sees writes made before it started and after each message', async (t) => {
  const w = new IndexWriter();
  const groups: Group[] = ['s', 4, ['t', 4], 'later'];
  const f = pid(4, 9);
  w.join(key('s'), [a, c]);
  w.join(key(4), [b]);
  w.join(key(['t', 4]), [e, e]);
  const worker = startWorker(t, 'unit-reader', { handle: w.handle });
  await nextMessage(worker, 'started');
  const read = () => ask<ReadResult>(worker, { type: 'read', groups, nodes: [1, 2, 3] }, 'result');
  let r = await read();
  t.deepEqual(
    r.views.map((v) => v.members),
    [[a, c], [b], [e, e], []],
  );
  t.deepEqual(
    r.views.map((v) => v.count),
    [2, 1, 2, 0],
  );
  t.deepEqual(
    r.views.map((v) => v.visited),
    [[a, c], [b], [e, e], []],
  );
  t.deepEqual(
    r.views.map((v) => v.first),
    [a, b, e, undefined],
  );
  t.deepEqual(r.views[0]?.byNode, [[a], [c], []]);
  t.deepEqual(r.groups.map(key).sort(), [key('s'), key(4), key(['t', 4])].sort());
  t.is(r.groupCount, 3);
  t.deepEqual(r.groupsOf[2]?.map(key), [key(['t', 4])]);
  // Each change is visible to the worker's next job.
  w.join(key('later'), [f]);
  w.leave(key('s'), [a]);
  r = await read();
  t.deepEqual(
    r.views.map((v) => v.members),
    [[c], [b], [e, e], [f]],
  );
  t.is(r.groupCount, 4);
  w.batch(() => {
    w.dropNode(3);
    w.syncNode(2, [[key(4), [d, c]]]);
  });
  r = await read();
  t.deepEqual(
    r.views.map((v) => v.members),
    [[], [b, d, c], [], [f]],
  );
  t.deepEqual(r.groups.map(key).sort(), [key(4), key('later')].sort());
  for (let i = 0; i < 50; i++) {
    w.join(key('later'), [pid(5, i + 1)]);
    r = await read();
    t.is(r.views[3]?.count, i + 2);
    t.is(r.views[3]?.members.at(-1), pid(5, i + 1));
  }
});

test('a worker’s read section keeps one version for the rest of its job', async (t) => {
  const w = new IndexWriter();
  w.join(key('g'), [a]);
  const worker = startWorker(t, 'unit-reader', { handle: w.handle });
  await nextMessage(worker, 'started');
  const gate = new Int32Array(new SharedArrayBuffer(4));
  const done = nextMessage<SnapshotResult>(worker, 'snapshot-result');
  const first = nextMessage(worker, 'first-read');
  worker.postMessage({ type: 'snapshot', group: 'g', gate });
  await first;
  // The worker is blocked inside the same job that did its first read.
  w.join(key('g'), [b]);
  Atomics.store(gate, 0, 1);
  Atomics.notify(gate, 0);
  const result = await done;
  t.deepEqual(result.before, [a]);
  t.deepEqual(result.sameJob, [a]);
  t.deepEqual(result.afterRefresh, [a, b]);
});
