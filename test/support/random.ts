/**
 * A small seeded PRNG (mulberry32): the same seed gives the same sequence, so that a
 * randomized test or fixture replays from its seed. Every test and fixture uses this
 * one generator.
 */
export class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed | 0;
  }

  /** A uniform 32-bit unsigned integer. */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) | 0;
    let t = Math.imul(this.#state ^ (this.#state >>> 15), 1 | this.#state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A uniform integer in `[0, n)`. */
  below(n: number): number {
    return this.next() % n;
  }

  /** A uniform float in `[0, 1)`. */
  float(): number {
    return this.next() / 0x1_0000_0000;
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** One of `items`, uniformly. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.below(items.length)]!;
  }

  /** Shuffles `items` in place and returns it. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.below(i + 1);
      const tmp = items[i]!;
      items[i] = items[j]!;
      items[j] = tmp;
    }
    return items;
  }

  /** `k` distinct integers from `[0, n)`. */
  sample(n: number, k: number): number[] {
    const all = Array.from({ length: n }, (_, i) => i);
    return this.shuffle(all).slice(0, k);
  }
}
