/**
 * Measuring primitives shared by the benchmarks.
 *
 * Every measured operation gets a loop of its own, compiled with `new Function`, so
 * that V8 keeps separate type feedback per operation. A single shared loop would see
 * many different callees, go megamorphic, stop inlining, and make whichever operation
 * ran first look faster than the others.
 */
import { performance } from 'node:perf_hooks';

/** An operation under test: gets a key and the iteration number, returns something to sum. */
export type Op<K> = (key: K, i: number) => number | undefined;

type Loop<K> = (op: Op<K>, keys: readonly K[], mask: number, from: number, to: number) => number;

function makeLoop<K>(): Loop<K> {
  return new Function(
    'op',
    'keys',
    'mask',
    'from',
    'to',
    'let acc = 0; for (let i = from; i < to; i++) acc += op(keys[i & mask], i) ?? 0; return acc;',
  ) as Loop<K>;
}

/** Keeps results alive so that the optimizer cannot drop the measured work. */
export let sink = 0;

/**
 * Runs `op` over `keys` (length a power of two) for about `ms` milliseconds and
 * returns operations per second. Time is read every `chunk` operations only.
 */
export function throughput<K>(op: Op<K>, keys: readonly K[], ms: number, chunk = 20_000): number {
  if ((keys.length & (keys.length - 1)) !== 0)
    throw new Error('keys.length must be a power of two');
  const loop = makeLoop<K>();
  const mask = keys.length - 1;
  // Warm up so that the loop and the op are optimized before the clock starts.
  for (let w = 0; w < 5; w++) sink += loop(op, keys, mask, 0, chunk);
  let done = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    sink += loop(op, keys, mask, done, done + chunk);
    done += chunk;
    now = performance.now();
  }
  return (done / (now - start)) * 1000;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
}

/** Median, minimum and maximum of some samples. */
export function spread(samples: readonly number[]): Spread {
  const s = [...samples].sort((a, b) => a - b);
  if (s.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN };
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]! };
}

/** A deterministic pseudo-random sequence (xorshift32), so that every run reads the same keys. */
export function randomSequence(n: number, bound: number, seed = 0x9e3779b9): number[] {
  const out = new Array<number>(n);
  let x = seed | 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (x >>> 0) % bound;
  }
  return out;
}

/** `xs` rotated left by `t` places: trial t's order, so that no item always goes first. */
export function rotate<T>(xs: readonly T[], t: number): T[] {
  return xs.map((_, k) => xs[(k + t) % xs.length]!);
}
