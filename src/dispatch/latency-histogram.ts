/**
 * Dispatch latencies for `dispatchStats`: a log-linear histogram in one typed array,
 * recorded on every call's answer.
 *
 * Why not `perf_hooks.createHistogram()`: its `record` checks its argument and calls
 * into C++, and that cost about 80 ns per answer on the main thread, measured against a
 * pipelined `node.call` of the same no-op task (which records nothing): a tenth of a
 * no-op dispatch. Here a record is a few integer operations and one increment.
 *
 * The buckets: values below 32 ns each have their own; above, every power of two is cut
 * into 32 equal buckets. So a percentile is within 1/32 (about 3%) of the true value,
 * and the largest value is kept exactly. Counts are float64: a uint32 count would wrap
 * after four billion answers, about an hour of dispatch at full speed.
 */

/** Sub-buckets per power of two: 2^SUB_BITS. */
const SUB_BITS = 5;
const SUB = 1 << SUB_BITS;
/** The largest exponent kept apart: values of 2^53 ns (104 days) and more share the top row. */
const TOP = 52;
const BUCKETS = (TOP - SUB_BITS + 2) * SUB;

/** The bucket of `ns` (an integer ≥ 1). */
function bucketOf(ns: number): number {
  if (ns < SUB) return ns;
  if (ns < 0x8000_0000) {
    // The common case, in integer operations: the exponent is a count of leading zeros.
    const e = 31 - Math.clz32(ns);
    return (e - SUB_BITS + 1) * SUB + (ns >>> (e - SUB_BITS)) - SUB;
  }
  // Calls of 2 s and more. `Math.log2` may round up just below a power of two.
  let e = Math.min(TOP, Math.floor(Math.log2(ns)));
  if (e < TOP && 2 ** e > ns) e--;
  const sub = Math.min(SUB - 1, Math.floor(ns / 2 ** (e - SUB_BITS)) - SUB);
  return (e - SUB_BITS + 1) * SUB + sub;
}

/** The middle of bucket `i`: what a percentile that falls in it reports. */
function valueOf(i: number): number {
  if (i < SUB) return i;
  const e = (i >> SUB_BITS) + SUB_BITS - 1;
  const width = 2 ** (e - SUB_BITS);
  return (SUB + (i & (SUB - 1))) * width + width / 2;
}

export class LatencyHistogram {
  /** Allocated at the first record: most groups of most threads never dispatch. */
  #counts: Float64Array | undefined;
  #count = 0;
  #max = 0;

  /** Records one latency, in nanoseconds (an integer ≥ 1). */
  record(ns: number): void {
    const counts = (this.#counts ??= new Float64Array(BUCKETS));
    counts[bucketOf(ns)]!++;
    this.#count++;
    if (ns > this.#max) this.#max = ns;
  }

  get count(): number {
    return this.#count;
  }

  /** The largest latency recorded, exactly; 0 before the first. */
  get max(): number {
    return this.#max;
  }

  /**
   * The latency under which `p` percent of those recorded fall, within 3% (the nearest
   * rank's bucket, its middle); the max, exactly, for the last rank; 0 before the first.
   */
  percentile(p: number): number {
    const counts = this.#counts;
    if (counts === undefined || this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil((this.#count * p) / 100));
    if (rank >= this.#count) return this.#max;
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += counts[i]!;
      if (seen >= rank) return Math.min(this.#max, valueOf(i));
    }
    return this.#max;
  }
}
