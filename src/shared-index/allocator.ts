/**
 * The writer's allocator for arena blocks: size classes, free lists, and the retired
 * FIFO that makes reuse safe (see "Why plain reads are enough" in layout.ts). When a
 * block is retired and when the FIFO may be drained is decided in reclamation.ts.
 *
 * All of its bookkeeping lives on the writer's own heap; only the blocks themselves are
 * shared. Sizes come in classes of 4, 6, 8, 12, 16, 24 … words (powers of two and
 * one and a half times them), so a block wastes at most a third of its size and churn
 * over groups of similar sizes finds its own freed blocks again.
 */
import type { Arena } from './arena.js';
import { epochAtOrAfter } from './layout.js';

/** The size class that holds `words` words. */
export function classOf(words: number): number {
  if (words <= 4) return 0;
  const k = 31 - Math.clz32(words - 1); // 2^k < words <= 2^(k+1), k >= 2
  return words <= 3 << (k - 1) ? 2 * (k - 2) + 1 : 2 * (k - 1);
}

/** Words in a block of class `c`. */
export function classWords(c: number): number {
  return (c & 1 ? 6 : 4) << (c >> 1);
}

export interface AllocatorStats {
  /** Words from the start of the arena to its high-water mark. */
  usedWords: number;
  /** Words on free lists, ready for reuse. */
  freeWords: number;
  /** Words retired and waiting until no reader can see them. */
  retiredWords: number;
}

export class Allocator {
  readonly #arena: Arena;
  readonly #maxWords: number;
  #bump: number;
  readonly #free: number[][] = [];
  #freeWords = 0;
  // Retired blocks, oldest first, as (ptr, class, epoch) triples in a ring buffer: the
  // queue turns over millions of times a second and must not allocate. Epochs only
  // grow, so the queue is also sorted by epoch.
  #ring = new Int32Array(3 * 1024);
  #head = 0;
  #count = 0;
  #retiredWords = 0;

  constructor(arena: Arena, start: number) {
    this.#arena = arena;
    this.#maxWords = Math.floor(arena.buffer.maxByteLength / 4);
    this.#bump = start;
  }

  /**
   * A block of at least `words` words. Its contents are whatever was there before.
   * Taken from the free list of its size class, else from the never-used end of the
   * arena, else carved out of a larger free block (the rest goes back to the free lists).
   * Throws `IndexFullError` when none of these has room; `fits` says beforehand.
   */
  alloc(words: number): number {
    const c = classOf(words);
    const size = classWords(c);
    const list = this.#free[c];
    if (list !== undefined && list.length > 0) {
      this.#freeWords -= size;
      return list.pop()!;
    }
    const ptr = this.#bump;
    if (ptr + size <= this.#maxWords) {
      if (ptr + size > this.#arena.words) this.#arena.grow(ptr + size);
      this.#bump = ptr + size;
      return ptr;
    }
    for (let bigger = c + 1; bigger < this.#free.length; bigger++) {
      const from = this.#free[bigger]!;
      if (from.length === 0) continue;
      const block = from.pop()!;
      this.#freeWords -= classWords(bigger);
      this.#freeRest(block + size, classWords(bigger) - size);
      return block;
    }
    this.#arena.grow(ptr + size); // past the cap: throws IndexFullError
    return ptr;
  }

  /** Puts the words `[at, at + words)` back on the free lists, as the largest classes that fit. */
  #freeRest(at: number, words: number): void {
    while (words >= 4) {
      let c = classOf(words);
      if (classWords(c) > words) c--;
      this.release(at, classWords(c));
      at += classWords(c);
      words -= classWords(c);
    }
  }

  /** True when one block of `words` can be allocated now: `fits([words])`, without an array. */
  fitsOne(words: number): boolean {
    const c = classOf(words);
    if (this.#bump + classWords(c) <= this.#maxWords) return true;
    for (let k = c; k < this.#free.length; k++) if ((this.#free[k]?.length ?? 0) > 0) return true;
    return false;
  }

  /**
   * True when blocks of all these sizes can be allocated now, one after the other, the
   * way `alloc` would. The writer asks before an operation so that it never fails half
   * way through.
   */
  fits(sizes: readonly number[]): boolean {
    // The common case, far from the cap: the never-used end takes all of it.
    let total = 0;
    for (let i = 0; i < sizes.length; i++) total += classWords(classOf(sizes[i]!));
    if (this.#bump + total <= this.#maxWords) return true;
    const counts = this.#free.map((l) => l.length);
    let headroom = this.#maxWords - this.#bump;
    const wanted = sizes.map(classOf).sort((x, y) => y - x);
    for (const c of wanted) {
      if ((counts[c] ?? 0) > 0) {
        counts[c]!--;
        continue;
      }
      if (headroom >= classWords(c)) {
        headroom -= classWords(c);
        continue;
      }
      let bigger = c + 1;
      while (bigger < counts.length && counts[bigger] === 0) bigger++;
      if (bigger >= counts.length) return false;
      counts[bigger]!--;
      for (let rest = classWords(bigger) - classWords(c); rest >= 4;) {
        let r = classOf(rest);
        if (classWords(r) > rest) r--;
        while (counts.length <= r) counts.push(0);
        counts[r]!++;
        rest -= classWords(r);
      }
    }
    return true;
  }

  /**
   * Merges adjacent free blocks, gives back to the never-used end whatever free space
   * touches it, and refiles the rest as the largest classes that fit. The fast paths
   * never do this (size classes are enough while there is room to grow); the writer
   * calls it when an operation would not fit below the cap, where small blocks carved
   * out of big ones would otherwise leave no big block for good.
   */
  coalesce(): void {
    const blocks: [number, number][] = [];
    this.#free.forEach((list, c) => {
      for (const ptr of list) blocks.push([ptr, classWords(c)]);
      list.length = 0;
    });
    this.#freeWords = 0;
    blocks.sort((x, y) => x[0] - y[0]);
    const extents: [number, number][] = [];
    for (const [ptr, size] of blocks) {
      const last = extents[extents.length - 1];
      if (last !== undefined && last[0] + last[1] === ptr) last[1] += size;
      else extents.push([ptr, size]);
    }
    const top = extents[extents.length - 1];
    if (top !== undefined && top[0] + top[1] === this.#bump) {
      this.#bump = top[0];
      extents.pop();
    }
    for (const [ptr, size] of extents) this.#freeRest(ptr, size);
  }

  /** True when `words` more words can be taken from the never-used end without passing the cap. */
  headroom(words: number): boolean {
    return this.#bump + words <= this.#maxWords;
  }

  /** Frees a block no reader has ever been able to reach. */
  release(ptr: number, words: number): void {
    const c = classOf(words);
    let list = this.#free[c];
    if (list === undefined) {
      list = [];
      while (this.#free.length < c) this.#free.push([]);
      this.#free[c] = list;
    }
    list.push(ptr);
    this.#freeWords += classWords(c);
  }

  /** Queues a block that readers may still see, for reuse once they have all moved past `epoch`. */
  retire(ptr: number, words: number, epoch: number): void {
    const c = classOf(words);
    const slots = this.#ring.length / 3;
    if (this.#count === slots) this.#growRing();
    const at = 3 * ((this.#head + this.#count) % (this.#ring.length / 3));
    this.#ring[at] = ptr;
    this.#ring[at + 1] = c;
    this.#ring[at + 2] = epoch;
    this.#count++;
    this.#retiredWords += classWords(c);
  }

  #growRing(): void {
    const slots = this.#ring.length / 3;
    const ring = new Int32Array(this.#ring.length * 2);
    for (let k = 0; k < this.#count; k++) {
      const from = 3 * ((this.#head + k) % slots);
      ring.set(this.#ring.subarray(from, from + 3), 3 * k);
    }
    this.#ring = ring;
    this.#head = 0;
  }

  /** True when retired blocks are waiting. */
  get pending(): boolean {
    return this.#count > 0;
  }

  /** Frees every retired block whose epoch is at or before `oldest`, the oldest epoch a reader holds. */
  reclaim(oldest: number): number {
    const ring = this.#ring;
    const slots = ring.length / 3;
    let freed = 0;
    while (this.#count > 0) {
      const at = 3 * this.#head;
      if (!epochAtOrAfter(oldest, ring[at + 2]!)) break;
      const c = ring[at + 1]!;
      this.release(ring[at]!, classWords(c));
      freed += classWords(c);
      this.#head = (this.#head + 1) % slots;
      this.#count--;
    }
    this.#retiredWords -= freed;
    return freed;
  }

  stats(): AllocatorStats {
    return { usedWords: this.#bump, freeWords: this.#freeWords, retiredWords: this.#retiredWords };
  }
}
