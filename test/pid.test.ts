/**
 * Pids: makePid, nodeOf and serialOf round-trip over the whole range, isPid tells pids
 * from everything else, and bad input is refused (RangeError, InvalidPidError).
 */
import test from 'ava';
import fc from 'fast-check';
import { formatPid, InvalidPidError, isPid, makePid, nodeOf, serialOf } from '../src/index.js';
import { MAX_NODE_ID, MAX_SERIAL, NODE_FACTOR, toPid, toPidList } from '../src/core/pid.js';

test('makePid, nodeOf and serialOf round-trip at the edges', (t) => {
  const cases: [number, number][] = [
    [0, 1],
    [0, MAX_SERIAL],
    [1, 1],
    [1, 2 ** 32 - 1],
    [7, 42],
    [MAX_NODE_ID, 1],
    [MAX_NODE_ID, MAX_SERIAL],
  ];
  for (const [node, serial] of cases) {
    const pid = makePid(node, serial);
    t.is<number, number>(pid, node * 2 ** 32 + serial);
    t.is(nodeOf(pid), node);
    t.is(serialOf(pid), serial);
    t.true(isPid(pid));
    t.true(Number.isSafeInteger(pid));
  }
  t.is(MAX_SERIAL, 2 ** 32 - 1);
  t.is(NODE_FACTOR, 2 ** 32);
  t.is<number, number>(makePid(MAX_NODE_ID, MAX_SERIAL), Number.MAX_SAFE_INTEGER);
  t.is(formatPid(makePid(3, 42)), '<3.42>');
  t.is(formatPid(makePid(0, 1)), '<0.1>');
});

test('makePid round-trips for any node and serial (property)', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: MAX_NODE_ID }),
      fc.integer({ min: 1, max: MAX_SERIAL }),
      (node, serial) => {
        const pid = makePid(node, serial);
        return isPid(pid) && nodeOf(pid) === node && serialOf(pid) === serial;
      },
    ),
    { seed: 11, numRuns: 5000 },
  );
  t.pass();
});

test('makePid rejects out-of-range parts with a RangeError', (t) => {
  const bad: [number, number][] = [
    [-1, 1],
    [1.5, 1],
    [MAX_NODE_ID + 1, 1],
    [Number.NaN, 1],
    [Number.POSITIVE_INFINITY, 1],
    [0, 0],
    [0, -1],
    [0, 1.5],
    [0, 2 ** 32],
    [0, Number.NaN],
  ];
  for (const [node, serial] of bad) {
    t.throws(() => makePid(node, serial), { instanceOf: RangeError }, `${node}, ${serial}`);
  }
});

test('isPid accepts pids and rejects everything else', (t) => {
  for (const ok of [1, 2 ** 32 + 1, 2 ** 32 - 1, 5 * 2 ** 32 + 9, Number.MAX_SAFE_INTEGER]) {
    t.true(isPid(ok), String(ok));
  }
  const rejected: unknown[] = [
    0,
    -0,
    -1,
    -(2 ** 32) - 1,
    0.5,
    1.5,
    2 ** 32 + 0.5,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    2 ** 53, // unsafe
    2 ** 53 + 2,
    Number.MAX_VALUE,
    2 ** 32, // serial 0 on node 1
    3 * 2 ** 32, // serial 0 on node 3
    '1',
    '4294967297',
    1n,
    null,
    undefined,
    true,
    {},
    [1],
    new Number(1),
  ];
  for (const value of rejected) t.false(isPid(value), String(value));
});

test('toPid and toPidList throw an InvalidPidError naming the bad value', (t) => {
  t.is(toPid(makePid(2, 5)), makePid(2, 5));
  const err = t.throws(() => toPid(2 ** 32), { instanceOf: InvalidPidError });
  t.true(err instanceof TypeError);
  t.is((err as InvalidPidError).code, 'ERR_PG_INVALID_PID');
  t.regex(err.message, /4294967296/);
  t.regex(t.throws(() => toPid('7'), { instanceOf: InvalidPidError }).message, /"7"/);
  t.regex(
    t.throws(() => toPidList([makePid(1, 1), 1.5]), { instanceOf: InvalidPidError }).message,
    /pids\[1\].*1\.5/,
  );
  const input = [makePid(1, 1), makePid(1, 2)];
  const copy = toPidList(input);
  t.deepEqual(copy, input);
  t.not(copy, input);
  t.deepEqual(toPidList(makePid(4, 4)), [makePid(4, 4)]);
});
