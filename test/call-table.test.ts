/**
 * The table of calls in flight (runtime/call-table.ts): a pure class, checked against a
 * `Map` on random workloads (bursts that end in and out of order, calls that wait while
 * many others come and go, ids past 2^32), and for its bound: one call that never ends
 * does not make it grow.
 */
import test, { type ExecutionContext } from 'ava';
import { CallTable } from '../src/runtime/call-table.js';

/** xorshift32, seeded: the same workload on every run. */
function rng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

function same(t: ExecutionContext, table: CallTable<string>, model: Map<number, string>) {
  t.is(table.size, model.size);
  t.deepEqual(
    table.entries(),
    [...model].sort((a, b) => a[0] - b[0]),
  );
}

for (const [name, start] of [
  ['small ids', 1],
  ['ids past 2^32', 2 ** 32 - 700],
  ['ids near 2^53', Number.MAX_SAFE_INTEGER - 2_000_000],
] as const) {
  test(`agrees with a Map on random bursts, ${name}`, (t) => {
    const random = rng(start % 0x7fff_ffff);
    const table = new CallTable<string>(16);
    const model = new Map<number, string>();
    let next = start;
    for (let round = 0; round < 300; round++) {
      // A burst of 1 to 3,000 calls, then some of those in flight end, in any order.
      const burst = 1 + Math.floor(random() ** 3 * 3000);
      for (let i = 0; i < burst; i++) {
        const id = next++;
        table.set(id, `v${id}`);
        model.set(id, `v${id}`);
      }
      const live = [...model.keys()];
      const ending = Math.floor(random() * live.length);
      for (let i = 0; i < ending; i++) {
        const at = random() < 0.7 ? i : Math.floor(random() * live.length);
        const id = live[at]!;
        t.is(table.take(id), model.get(id));
        model.delete(id);
      }
      if (round % 50 === 0) same(t, table, model);
    }
    // Ids that were never set, or already taken, are not there.
    t.is(table.take(next + 5), undefined);
    for (const id of [...model.keys()]) {
      t.is(table.take(id), `v${id}`);
      t.is(table.take(id), undefined);
      model.delete(id);
    }
    same(t, table, model);
  });
}

test('one call that never ends does not make the table grow', (t) => {
  const table = new CallTable<number>(64);
  table.set(1, 1);
  // A million calls of 10 in flight at a time go by the one that waits.
  for (let id = 2; id < 1_000_002; id += 10) {
    for (let k = 0; k < 10; k++) table.set(id + k, id + k);
    for (let k = 0; k < 10; k++) t.is(table.take(id + k), id + k, `call ${id + k}`);
  }
  t.deepEqual(table.shape, { slots: 64, aside: 1 });
  t.is(table.take(1), 1);
  t.deepEqual(table.shape, { slots: 64, aside: 0 });
  t.is(table.size, 0);
});

test('a burst deeper than the table grows it, and every call is found', (t) => {
  const table = new CallTable<number>(16);
  for (let id = 1; id <= 5000; id++) table.set(id, -id);
  t.is(table.size, 5000);
  t.true(table.shape.slots >= 5000);
  t.is(table.shape.aside, 0);
  // The oldest first: the order failAll and failNode settle them in.
  t.deepEqual(
    table.entries().map(([id]) => id),
    Array.from({ length: 5000 }, (_, i) => i + 1),
  );
  for (let id = 5000; id >= 1; id--) t.is(table.take(id), -id);
  t.is(table.size, 0);
});
