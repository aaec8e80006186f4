/**
 * The readers' held arrays (lookup.ts, `pidsOf`): each thread keeps the members of the
 * block it last read of a group as a JS array and hands out copies of it. These tests
 * pin down what that cache must never do: hand out a stale array after the group
 * changed (even when the new block reuses the old one's offset), hand out an array
 * that a caller can change under another caller, or grow without bound.
 */
import { execFile } from 'node:child_process';
import test, { type ExecutionContext } from 'ava';
import {
  encodeGroup,
  type Group,
  IndexReader,
  IndexWriter,
  makePid,
  type Pid,
} from '../src/index.js';
import { ROOT_CHAIN, ROOT_MAX_CHANGED } from '../src/shared-index/layout.js';
import { HELD_WORDS, TAGGED_GROUP } from '../src/shared-index/lookup.js';

const key = encodeGroup;
const pid = (node: number, serial: number): Pid => makePid(node, serial);
const pids = (node: number, from: number, n: number): Pid[] =>
  Array.from({ length: n }, (_, i) => pid(node, from + i));

/** A writer with a reader on its own thread and a reader opened from its handle. */
function open(options?: ConstructorParameters<typeof IndexWriter>[0]) {
  const w = new IndexWriter(options);
  return { w, readers: [new IndexReader(w), new IndexReader(w.handle)] as const };
}

/** Every read of `group` on `r` (refreshed first) agrees with `expected`. */
function agrees(
  t: ExecutionContext,
  r: IndexReader,
  group: Group,
  expected: readonly Pid[],
  what: string,
): void {
  r.refresh();
  t.deepEqual(r.members(group), [...expected], `members, ${what}`);
  t.is(r.count(group), expected.length, `count, ${what}`);
  t.is(r.memberAt(group, expected.length - 1), expected.at(-1), `memberAt, ${what}`);
}

test('a read after a write never returns the held array of the block before it', (t) => {
  const { w, readers } = open();
  let members = pids(1, 1, 8);
  w.join(key('g'), members);
  for (const r of readers) agrees(t, r, 'g', members, 'at first');
  for (let round = 0; round < 50; round++) {
    // Grow, shrink, and replace one member: each a new block, each read in between.
    const extra = pid(2, 1000 + round);
    w.join(key('g'), [extra]);
    for (const r of readers) agrees(t, r, 'g', [...members, extra], `round ${round} grown`);
    w.leave(key('g'), [members[0]!]);
    members = [...members.slice(1), extra];
    for (const r of readers) agrees(t, r, 'g', members, `round ${round} replaced`);
  }
});

test('a block that reuses the offset of a held one is not taken for it (the tag tells them apart)', (t) => {
  // The group keeps its size and changes its members twice between two reads, and
  // the writer reuses retired blocks at once (the readers are offline), so the second
  // new block lands at the offset of the block the readers hold an array of.
  const { w, readers } = open();
  let reused = 0;
  let serial = 1;
  const write = () => {
    w.syncNode(1, [[key('g'), pids(1, serial++, 8)]]);
    w.reclaim();
  };
  write();
  for (let round = 0; round < 100; round++) {
    for (const r of readers) r.refresh();
    const before = readers.map((r) => r.members('g'));
    for (const r of readers) r.refresh();
    write();
    write();
    const expected = pids(1, serial - 1, 8);
    for (const [i, r] of readers.entries()) {
      r.refresh();
      const read = r.members('g');
      if (read[0] === before[i]![0]) reused++;
      t.deepEqual(read, expected, `round ${round}`);
    }
  }
  t.is(reused, 0);
});

test('a reader renews a held array only when its block changed', (t) => {
  const { w, readers } = open();
  w.join(key('g'), pids(1, 1, 8));
  for (const r of readers) {
    r.refresh();
    r.members('g');
    const held = r.heldWords;
    // Other groups change: new versions, but the same block for 'g'.
    for (let i = 0; i < 10; i++) {
      w.join(key(`other-${i}`), [pid(2, 1)]);
      r.refresh();
      t.deepEqual(r.members('g'), pids(1, 1, 8));
    }
    t.is(r.heldWords > held ? 'grew' : 'kept', 'kept', 'no new array for an unchanged block');
  }
});

test('members() hands out independent copies that the caller may change', (t) => {
  const { w, readers } = open();
  const members = pids(1, 1, 8);
  const big = pids(3, 1, 1024);
  w.join(key('g'), members);
  w.join(key(['tuple', 1]), members);
  w.join(key(7), members);
  w.join(key('big'), big);
  for (const [group, expected] of [
    ['g', members],
    [['tuple', 1], members],
    [7, members],
    ['big', big],
  ] as [Group, Pid[]][]) {
    for (const r of readers) {
      r.refresh();
      const first = r.members(group);
      const second = r.members(group);
      t.not(first, second);
      first[0] = pid(9, 9);
      first.push(pid(9, 10));
      second.length = 0;
      t.deepEqual(r.members(group), expected, `${JSON.stringify(group)} after the copies changed`);
      t.is(r.count(group), expected.length);
      t.is(r.memberAt(group, 0), expected[0]);
    }
  }
});

test('held arrays stay bounded while group names churn', (t) => {
  const { w, readers } = open({ initialBytes: 1 << 22 });
  const shared = readers[1];
  const local = readers[0];
  const size = 256;
  const members = pids(1, 1, size);
  // Enough distinct groups that their arrays together pass the bound four times over.
  const groups = Math.ceil((4 * HELD_WORDS) / size);
  let most = 0;
  let dropped = 0;
  for (let i = 0; i < groups; i++) {
    const g = `churn-${i}`;
    w.join(key(g), members);
    for (const r of [shared, local]) {
      r.refresh();
      const before = r.heldWords;
      const read = r.members(g);
      if (read.length !== size) t.fail(`${g} read ${read.length} members`);
      if (r.heldWords < before) dropped++;
      most = Math.max(most, r.heldWords);
    }
    w.leave(key(g), members);
  }
  t.true(most <= HELD_WORDS, `held ${most} words at most, bound ${HELD_WORDS}`);
  t.true(most > HELD_WORDS / 2, 'the bound was approached');
  t.true(dropped >= 4, `held arrays were dropped ${dropped} times`);
  // Every group is gone, and reads say so, held arrays or not.
  for (const r of [shared, local]) {
    r.refresh();
    t.deepEqual(r.members('churn-0'), []);
    t.is(r.count(`churn-${groups - 1}`), 0);
  }
});

test('a group too large to hold is read correctly, and holds nothing', (t) => {
  const { w, readers } = open({ initialBytes: 1 << 23 });
  const n = HELD_WORDS / 4 + 1;
  const members = pids(1, 1, n);
  w.join(key('huge'), members);
  for (const r of readers) {
    r.refresh();
    const before = r.heldWords;
    const a = r.members('huge');
    t.is(a.length, n);
    t.is(a[n - 1], members[n - 1]);
    t.is(r.memberAt('huge', n - 2), members[n - 2]);
    t.is(r.memberAt('huge', 2 * n + 3), members[3]);
    t.is(r.heldWords, before);
    a.length = 0;
    t.is(r.members('huge').length, n);
  }
  w.leave(key('huge'), [members[0]!]);
  for (const r of readers) {
    r.refresh();
    t.is(r.members('huge')[0], members[1]);
  }
});

test('once a version has lasted, reads of it come from a map of its arrays, which the next version never sees', (t) => {
  const { w, readers } = open();
  const groups = 64;
  for (let g = 0; g < groups; g++) w.join(key(`v-${g}`), pids(1, 1 + g, 4));
  for (const r of readers) {
    r.refresh();
    for (let round = 0; round < 3; round++) {
      // Enough reads of one version to start its map (lookup.ts, LIST_AFTER).
      for (let i = 0; i < 4096; i++) {
        const g = i % groups;
        const read = r.members(`v-${g}`);
        if (read[0] !== pid(1, 1 + g + round) || read.length !== 4)
          t.fail(`round ${round}: v-${g} read ${read.join()}`);
        if (r.memberAt(`v-${g}`, 0) !== read[0]) t.fail(`round ${round}: memberAt of v-${g}`);
      }
      // Every group loses its first member and gains one: the next version.
      w.batch(() => {
        for (let g = 0; g < groups; g++) {
          w.leave(key(`v-${g}`), [pid(1, 1 + g + round)]);
          w.join(key(`v-${g}`), [pid(1, 5 + g + round)]);
        }
      });
      r.refresh();
      for (let g = 0; g < groups; g++)
        t.deepEqual(r.members(`v-${g}`), pids(1, 2 + g + round, 4), `round ${round}, v-${g}`);
    }
    // Put the groups back for the next reader.
    w.batch(() => {
      w.syncNode(1, []);
      for (let g = 0; g < groups; g++) w.join(key(`v-${g}`), pids(1, 1 + g, 4));
    });
  }
});

test('dropping the held arrays in the middle of a version leaves every read right', (t) => {
  const { w, readers } = open({ initialBytes: 1 << 24 });
  const size = 512;
  // One version whose arrays together pass the bound.
  const groups = Math.ceil((1.5 * HELD_WORDS) / size);
  w.batch(() => {
    for (let g = 0; g < groups; g++) w.join(key(`d-${g}`), pids(1 + (g % 7), 1 + g, size));
  });
  for (const r of readers) {
    r.refresh();
    for (let pass = 0; pass < 3; pass++) {
      for (let g = 0; g < groups; g++) {
        const read = r.members(`d-${g}`);
        if (read.length !== size || read[size - 1] !== pid(1 + (g % 7), g + size))
          t.fail(`pass ${pass}: d-${g}`);
        if (r.memberAt(`d-${g}`, 1) !== pid(1 + (g % 7), 2 + g)) t.fail(`memberAt d-${g}`);
      }
      t.true(r.heldWords <= HELD_WORDS);
    }
  }
  t.pass();
});

test('a reader that reads a newer version keeps what it knows of the groups that did not change, and of no group that did', (t) => {
  // Readers relate a new version to the one they read through the chain of root records
  // (lookup.ts, `#catchUp`): only what changed in between is checked again. Every way
  // the chain can be cut is here: a reader further back than ROOT_CHAIN versions, a
  // version that changed more than ROOT_MAX_CHANGED slots, slots that change hands.
  const { w, readers } = open();
  const names = Array.from({ length: 48 }, (_, i) => `c-${i}`);
  const model = new Map<string, Pid[]>();
  let seed = 12345;
  const random = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) | 0;
    return (seed >>> 8) % n;
  };
  let serial = 1;
  /** One change to a random group, published as a version of its own. */
  const change = () => {
    const name = names[random(names.length)]!;
    const members = model.get(name) ?? [];
    if (members.length > 0 && random(3) === 0) {
      // Empty it: its slot is freed, and the next new group may take it.
      w.leave(key(name), members);
      model.delete(name);
    } else if (members.length > 0 && random(2) === 0) {
      w.leave(key(name), [members[0]!]);
      model.set(name, members.slice(1));
      if (members.length === 1) model.delete(name);
    } else {
      const p = pid(1 + random(3), serial++);
      w.join(key(name), [p]);
      model.set(name, [...members, p]);
    }
  };
  const check = (what: string) => {
    for (const r of readers) {
      r.refresh();
      // Reads enough to list arrays (LIST_AFTER), so that the next version starts
      // with a full map of them.
      for (let pass = 0; pass < 30; pass++) {
        for (const name of names) {
          const expected = model.get(name) ?? [];
          const read = r.members(name);
          if (read.length !== expected.length || read.some((p, i) => p !== expected[i]))
            return t.fail(`${what}: ${name} read [${read.join()}], not [${expected.join()}]`);
          if (r.count(name) !== expected.length) return t.fail(`${what}: count of ${name}`);
          if (r.memberAt(name, pass) !== expected[pass % expected.length])
            return t.fail(`${what}: memberAt of ${name}`);
        }
      }
    }
  };
  for (const name of names) {
    w.join(key(name), [pid(1, serial)]);
    model.set(name, [pid(1, serial++)]);
  }
  check('at first');
  for (const versions of [
    1,
    2,
    7,
    31,
    ROOT_CHAIN - 2,
    ROOT_CHAIN - 1,
    ROOT_CHAIN,
    ROOT_CHAIN + 1,
    3,
  ]) {
    for (let round = 0; round < 4; round++) {
      for (let v = 0; v < versions; v++) change();
      check(`${versions} versions later, round ${round}`);
    }
  }
  // One version that changes more slots than a root record lists.
  w.batch(() => {
    for (let i = 0; i < ROOT_MAX_CHANGED + 5; i++) change();
  });
  check('after a version with too many changes to list');
  for (let i = 0; i < 200; i++) {
    change();
    if (i % 9 === 0) check(`after change ${i}`);
  }
  t.pass();
});

// The fast path of `pick` (lookup.ts, `pidsOf`): the held array of a small group has
// tagged elements, so that `memberAt` hands out the number boxed when the array was built
// instead of boxing a new one per read, as a double array would for a worker node's pid
// (≥ 2^32); a larger group stays a double array, cheaper to build again when it changes.
// V8 shows an array's elements kind only to natives syntax, hence a child process.
test('a small group is held as tagged elements, so that a pick allocates no number; a larger one as doubles', async (t) => {
  const index = new URL('../src/index.js', import.meta.url).href;
  const script = `
    const { IndexWriter, IndexReader, makePid, encodeGroup } = await import(${JSON.stringify(index)});
    const w = new IndexWriter();
    const pids = Array.from({ length: 8 }, (_, i) => makePid(3, 100 + i));
    const many = Array.from({ length: ${TAGGED_GROUP + 1} }, (_, i) => makePid(3, 200 + i));
    w.join(encodeGroup('g'), pids);
    w.join(encodeGroup('many'), many);
    const out = [];
    for (const r of [new IndexReader(w), new IndexReader(w.handle)]) {
      r.refresh();
      const copy = r.members('g');
      const large = r.members('many');
      out.push({
        tagged: %HasObjectElements(copy),
        doubles: %HasDoubleElements(copy),
        holey: %HasHoleyElements(copy),
        members: copy,
        at: r.memberAt('g', 11),
        largeDoubles: %HasDoubleElements(large),
        large,
      });
    }
    console.log(JSON.stringify({ pids, many, out }));
  `;
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(
      process.execPath,
      ['--allow-natives-syntax', '--input-type=module', '-e', script],
      { timeout: 60_000 },
      (error, out, stderr) =>
        error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(out),
    ),
  );
  const { pids, many, out } = JSON.parse(stdout) as {
    pids: number[];
    many: number[];
    out: {
      tagged: boolean;
      doubles: boolean;
      holey: boolean;
      members: number[];
      at: number;
      largeDoubles: boolean;
      large: number[];
    }[];
  };
  t.true(pids[0]! >= 2 ** 32, 'the pids are not small integers');
  t.is(out.length, 2);
  for (const [i, r] of out.entries()) {
    const which = i === 0 ? "on the writer's thread" : 'from the handle';
    t.deepEqual(r.members, pids, `members, ${which}`);
    t.is(r.at, pids[11 % 8]!, `memberAt, ${which}`);
    t.true(r.tagged, `tagged elements, ${which}`);
    t.false(r.doubles, `not doubles, ${which}`);
    t.false(r.holey, `packed, ${which}`);
    t.deepEqual(r.large, many, `members of ${many.length}, ${which}`);
    t.true(r.largeDoubles, `${many.length} members: doubles, ${which}`);
  }
});
