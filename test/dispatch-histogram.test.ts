/**
 * The latency histogram behind `dispatchStats` (dispatch/latency-histogram.ts): a pure
 * class, checked against the exact percentiles of known samples, at bucket edges and for
 * latencies past the integer fast path.
 */
import test from 'ava';
import { LatencyHistogram } from '../src/dispatch/latency-histogram.js';

/** The exact `p`th percentile of `values` (nearest rank, as the histogram defines it). */
function exact(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil((sorted.length * p) / 100)) - 1]!;
}

function filled(values: number[]): LatencyHistogram {
  const h = new LatencyHistogram();
  for (const v of values) h.record(v);
  return h;
}

test('empty: every percentile and the max are 0', (t) => {
  const h = new LatencyHistogram();
  t.is(h.count, 0);
  t.is(h.max, 0);
  t.is(h.percentile(50), 0);
  t.is(h.percentile(99), 0);
});

test('values below 32 ns are kept exactly', (t) => {
  const values = Array.from({ length: 31 }, (_, i) => i + 1);
  const h = filled(values);
  for (const p of [1, 10, 50, 90, 99, 100]) t.is(h.percentile(p), exact(values, p), `p${p}`);
  t.is(h.max, 31);
});

test('percentiles are within 1/32 of the exact ones, from nanoseconds to hours', (t) => {
  // A deterministic spread over 14 orders of magnitude (xorshift, fixed seed).
  let seed = 12345;
  const values: number[] = [];
  for (let i = 0; i < 20_000; i++) {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    values.push(Math.max(1, Math.round(10 ** (((seed >>> 0) / 2 ** 32) * 14))));
  }
  const h = filled(values);
  t.is(h.count, values.length);
  t.is(h.max, Math.max(...values));
  for (const p of [1, 25, 50, 75, 90, 99, 99.9, 100]) {
    const want = exact(values, p);
    const got = h.percentile(p);
    t.true(Math.abs(got - want) <= want / 32, `p${p}: ${got} against ${want}`);
  }
});

test('bucket edges: powers of two and their neighbours land in order, above 2^31 too', (t) => {
  const h = new LatencyHistogram();
  const values: number[] = [];
  for (let e = 5; e <= 60; e++) for (const d of [-1, 0, 1]) values.push(2 ** e + d);
  // Recorded in one order, read back as sorted: each value's rank finds a bucket whose
  // value is within 1/32 of it (beyond 2^53, only the top row, and the exact max).
  for (const v of values) h.record(v);
  values.sort((a, b) => a - b);
  values.forEach((v, i) => {
    const got = h.percentile(((i + 0.5) / values.length) * 100);
    if (v < 2 ** 53) t.true(Math.abs(got - v) <= v / 32, `${v}: ${got}`);
  });
  t.is(h.max, 2 ** 60 + 1);
  t.is(h.percentile(100), 2 ** 60 + 1);
});

test('the max caps a percentile: one value reads back as itself', (t) => {
  for (const v of [1, 33, 1000, 123_456_789, 3_000_000_000]) {
    const h = filled([v]);
    t.true(h.percentile(50) <= v, `${v}`);
    t.true(h.percentile(50) >= v - v / 32, `${v}`);
    t.is(h.percentile(100), v);
  }
});
