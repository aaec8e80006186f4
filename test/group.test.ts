/**
 * Group keys: every group (string, number, tuple) encodes to one canonical key and
 * decodes back, distinct groups never share a key, bad groups are refused with
 * InvalidGroupError, and hashKey is a stable seeded hash of a key.
 */
import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import { hashKey, MAX_KEY_UNITS } from '../src/core/group.js';
import {
  decodeGroup,
  encodeGroup,
  type Group,
  InvalidGroupError,
  isGroupKey,
} from '../src/index.js';

/** `-0` is the same group as `0`: compare groups after that one normalisation. */
function normalise(group: Group): Group {
  if (typeof group === 'number') return group === 0 ? 0 : group;
  if (typeof group === 'string') return group;
  return group.map((atom) => (atom === 0 ? 0 : atom));
}

function roundTrip(t: ExecutionContext, group: Group): void {
  const key = encodeGroup(group);
  const back = decodeGroup(key);
  t.deepEqual(back, normalise(group), `round trip of ${JSON.stringify(group)}`);
  t.true(isGroupKey(key), `${JSON.stringify(key)} is canonical`);
  t.is<string, string>(encodeGroup(back), key, 'decoding then encoding gives the same key');
}

test('strings round-trip, including empty, unicode and lone surrogates', (t) => {
  const strings = [
    '',
    'a',
    'shard,3',
    'ts5:shardn1:3', // looks like a tuple key
    'n1', // looks like a number key
    ':',
    '日本語',
    '😀', // a surrogate pair
    '\uD800', // lone high surrogate
    '\uDC00', // lone low surrogate
    'x\uDFFFy\uD801',
    '\u0000nul',
    'x'.repeat(MAX_KEY_UNITS - 1), // the longest string that fits once encoded
  ];
  for (const s of strings) roundTrip(t, s);
  t.is<string, string>(encodeGroup(''), 's');
  t.is<string, string>(encodeGroup('abc'), 'sabc');
});

test('numbers round-trip: integers, floats, negatives, extremes', (t) => {
  const numbers = [
    0,
    1,
    -1,
    42,
    3.14,
    -2.5,
    0.1 + 0.2,
    1e21,
    -1e21,
    5e-324,
    -5e-324,
    Number.MAX_VALUE,
    -Number.MAX_VALUE,
    Number.MAX_SAFE_INTEGER,
    Number.MIN_SAFE_INTEGER,
    2 ** 53 + 2,
  ];
  for (const n of numbers) roundTrip(t, n);
  t.is<string, string>(encodeGroup(1e21), 'n1e+21');
  t.is<string, string>(encodeGroup(5e-324), 'n5e-324');
});

test('-0 is the same group as 0', (t) => {
  t.is<string, string>(encodeGroup(-0), encodeGroup(0));
  t.is<string, string>(encodeGroup(-0), 'n0');
  t.true(Object.is(decodeGroup(encodeGroup(-0)), 0));
  t.is<string, string>(encodeGroup([-0, 'a']), encodeGroup([0, 'a']));
  t.true(Object.is((decodeGroup(encodeGroup([-0])) as number[])[0], 0));
});

test('tuples round-trip, and tuples, strings and numbers never collide', (t) => {
  const tuples: Group[] = [
    [],
    [''],
    ['', ''],
    ['shard', 3],
    ['shard', '3'],
    [3, 'shard'],
    ['a:b', 'c'],
    ['s1:x'],
    [1e21, -0.5, 5e-324],
    ['😀', '\uD800'],
    ['x'.repeat(100), 7],
  ];
  for (const g of tuples) roundTrip(t, g);
  t.is<string, string>(encodeGroup(['shard', 3]), 'ts5:shardn1:3');
  const distinct: Group[] = [
    ['shard', 3],
    'shard,3',
    ['shard', '3'],
    ['shard,3'],
    '1',
    1,
    ['1'],
    [1],
    [],
    '',
    [''],
    ['a', 'b'],
    ['ab'],
    ['a', ''],
    'ts5:shardn1:3',
  ];
  const keys = distinct.map((g) => encodeGroup(g));
  t.is(new Set(keys).size, keys.length, `all distinct: ${JSON.stringify(keys)}`);
});

test('encoding is injective and decoding inverts it (property)', (t) => {
  const atom = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 12 }),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.integer(),
  );
  const group: fc.Arbitrary<Group> = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 20 }),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.array(atom, { maxLength: 5 }),
  );
  fc.assert(
    fc.property(group, (g) => {
      const key = encodeGroup(g);
      return isGroupKey(key) && JSON.stringify(decodeGroup(key)) === JSON.stringify(normalise(g));
    }),
    { seed: 1, numRuns: 2000 },
  );
  fc.assert(
    fc.property(group, group, (a, b) => {
      const same = encodeGroup(a) === encodeGroup(b);
      return same === (JSON.stringify(normalise(a)) === JSON.stringify(normalise(b)));
    }),
    { seed: 2, numRuns: 2000 },
  );
  t.pass();
});

const sparse: unknown[] = [];
sparse[1] = 'a';
const cyclic: unknown[] = [];
cyclic.push(cyclic);
function namedFunction(): void {}

const invalid: [string, unknown, RegExp][] = [
  ['NaN', Number.NaN, /NaN/],
  ['Infinity', Number.POSITIVE_INFINITY, /Infinity/],
  ['-Infinity', Number.NEGATIVE_INFINITY, /-Infinity/],
  ['undefined', undefined, /undefined/],
  ['null', null, /null/],
  ['a symbol', Symbol('sym-desc'), /Symbol\(sym-desc\)/],
  ['a function', namedFunction, /function \(namedFunction\)/],
  ['an object', { a: 1 }, /object \(Object\)/],
  ['a Map', new Map(), /object \(Map\)/],
  ['a bigint', 12n, /12n/],
  ['a boolean', true, /true/],
  ['a nested array', ['a', ['b']], /element 1 is an array of length 1/],
  ['a cyclic array', cyclic, /element 0 is an array of length 1/],
  ['a sparse array', sparse, /element 0 is undefined/],
  ['a tuple holding NaN', ['a', Number.NaN], /element 1 is NaN/],
  ['a tuple holding a boolean', [false], /element 0 is false/],
  ['a tuple holding null', [null], /element 0 is null/],
  ['a string of 4096 units', 'x'.repeat(MAX_KEY_UNITS), /too long: 4097/],
  ['a string of 100000 units', 'y'.repeat(100_000), /too long: 100001/],
  ['a huge tuple', new Array(10_000).fill(1), /too long: 10000/],
  ['a tuple whose encoding is too long', ['x'.repeat(3000), 'y'.repeat(1100)], /too long: 41\d\d/],
];

for (const [what, value, message] of invalid) {
  test(`encodeGroup rejects ${what} with an InvalidGroupError naming it`, (t) => {
    const err = t.throws(() => encodeGroup(value), { instanceOf: InvalidGroupError });
    t.true(err instanceof TypeError);
    t.is(err?.name, 'InvalidGroupError');
    t.is((err as InvalidGroupError | undefined)?.code, 'ERR_PG_INVALID_GROUP');
    t.regex(err?.message ?? '', message);
  });
}

test('the longest tuple that fits is accepted, one unit more is not', (t) => {
  // 't' + 's4083:' + 4083 units = 4090 units; the second element brings it to the limit.
  t.is(encodeGroup(['x'.repeat(4083), 'ab']).length, MAX_KEY_UNITS - 1);
  const full = ['x'.repeat(4083), 'abc'];
  t.is(encodeGroup(full).length, MAX_KEY_UNITS);
  t.deepEqual(decodeGroup(encodeGroup(full)), full);
  t.true(isGroupKey(encodeGroup(full)));
  t.throws(() => encodeGroup(['x'.repeat(4083), 'abcd']), {
    instanceOf: InvalidGroupError,
    message: /too long: 4097/,
  });
});

test('isGroupKey accepts canonical keys only', (t) => {
  for (const key of ['s', 'sabc', 'n0', 'n-1', 'n1e+21', 'n5e-324', 't', 'ts0:', 'ts5:shardn1:3']) {
    t.true(isGroupKey(key), key);
  }
  const rejected: unknown[] = [
    '',
    'x',
    'abc',
    'n',
    'n01',
    'n1.0',
    'n-0',
    'n+1',
    'n 1',
    'n1e21',
    'n0x10',
    'nNaN',
    'nInfinity',
    'n-Infinity',
    'ts1:ab',
    'ts2:a',
    'ts01:a',
    'ts:a',
    'ts-1:',
    'ts1a',
    'tx1:a',
    'tn3:1.0',
    'tn0:',
    'tn2:-0',
    `s${'x'.repeat(MAX_KEY_UNITS)}`,
    42,
    null,
    undefined,
    ['sabc'],
  ];
  for (const value of rejected) t.false(isGroupKey(value), JSON.stringify(value) ?? String(value));
  for (const value of rejected) {
    if (typeof value === 'string' && value.length <= MAX_KEY_UNITS) {
      t.throws(() => decodeGroup(value), { instanceOf: InvalidGroupError }, JSON.stringify(value));
    }
  }
});

test('hashKey is deterministic, seeded, a 32-bit integer, and never 0', (t) => {
  const keys = ['s', 'sa', 'n0', 'ts5:shardn1:3', 's😀', `s${'q'.repeat(4000)}`];
  for (const key of keys) {
    for (const seed of [0, 1, -1, 0x7fffffff, -0x80000000, 123456789]) {
      const h = hashKey(key, seed);
      t.is(h, hashKey(key, seed));
      t.is(h, h | 0, 'an int32');
      t.not(h, 0);
    }
  }
  // Different seeds spread the same key differently.
  const seeds = Array.from({ length: 64 }, (_, i) => hashKey('sgroup', i * 7919));
  t.true(new Set(seeds).size > 60);
  // Seeds chosen so that the raw FNV-1a state is exactly 0: the result must still not be 0.
  t.is(hashKey('', 0x811c9dc5 | 0), 1);
  t.is(hashKey('a', (0x811c9dc5 ^ 97) | 0), 1);
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 30 }), fc.integer(), (s, seed) => {
      const h = hashKey(s, seed);
      return h !== 0 && h === (h | 0) && h === hashKey(s, seed);
    }),
    { seed: 3, numRuns: 3000 },
  );
});
