/**
 * Reader records and reclamation: both sides of the protocol that lets the single
 * writer reuse a block only once no reader can still be reading it (quiescent-state
 * based reclamation). Why it is sound under the ECMAScript memory model is argued in
 * layout.ts ("Why plain reads are enough"); this file is that argument's code, the
 * writer's side first, then the reader's.
 *
 * - A reader claims a record (a compare-and-swap of its owner word) when it first
 *   reads, and gives it back with `release()`, when it is garbage-collected, or through
 *   the writer's `releaseReadersOf` when its thread is gone.
 * - A read section opens with `Atomics.load(H_EPOCH)`, then the `Atomics.store` of that
 *   epoch in the record, and only then `Atomics.load(H_ROOT)`. It ends (`0` stored)
 *   with the synchronous job (a microtask) or on `refresh()`; the reader renews it
 *   every `READ_BUDGET` reads, so a long job does not hold an old epoch forever.
 * - The writer frees at once a block allocated since the last publish (no reader can
 *   reach it). Any other block it gives up is retired with the epoch of the next
 *   publish, the first version that no longer references it.
 * - Every `RECLAIM_EVERY` publishes, and whenever it runs short of room, the writer
 *   loads every record and reuses the retired blocks that every announced epoch has
 *   passed.
 * - A reader on the writer's own thread takes no record: it reads between the writer's
 *   operations and follows every publish, so it always holds the last published
 *   version. A block that version reaches is retired, if at all, with the next epoch,
 *   which no scan passes before the next publish.
 */
import { threadId } from 'node:worker_threads';
import { IndexFullError, TooManyReadersError } from '../core/errors.js';
import { Allocator, type AllocatorStats } from './allocator.js';
import type { Arena } from './arena.js';
import { FreshSet } from './fresh.js';
import * as layout from './layout.js';
import { epochAtOrAfter, nextEpoch } from './layout.js';
import type { RadixHost } from './radix.js';

// Module-local copies of the layout constants: V8 folds a module's own constants into
// optimized code but loads an imported binding on every use.
const {
  H_EPOCH,
  H_MAX_READERS,
  H_READERS_USED,
  H_ROOT,
  READERS_BASE,
  READER_STRIDE,
  ROOT_CHAIN,
  ROOT_WORDS,
  R_EPOCH,
  R_OWNER,
} = layout;

/** Publishes between two scans of the reader records for reclamation. */
const RECLAIM_EVERY = 64;

// The writer's side ----------------------------------------------------------------

/**
 * The writer's blocks: allocation, the choice between freeing a block at once and
 * retiring it, and the scan of the reader records that decides when retired blocks
 * may be reused. It is also what the radix and bucket helpers write through.
 */
export class WriterBlocks implements RadixHost {
  readonly arena: Arena;
  /** First word of the arena: no block lies below it. */
  readonly base: number;
  readonly #alloc: Allocator;
  readonly #maxReaders: number;
  /** Blocks allocated since the last publish: no reader can reach them yet. */
  readonly #fresh = new FreshSet();
  #epoch = 0;
  #root = 0;
  /**
   * The last `ROOT_CHAIN` root records published, oldest first from `#rootsHead`, with
   * their sizes: a ring, so that a publish allocates nothing here.
   */
  readonly #roots = new Int32Array(ROOT_CHAIN);
  readonly #rootWords = new Int32Array(ROOT_CHAIN);
  #rootsHead = 0;
  #rootsCount = 0;
  #sinceReclaim = 0;

  constructor(writer: object, arena: Arena, base: number, maxReaders: number) {
    this.arena = arena;
    this.base = base;
    this.#maxReaders = maxReaders;
    this.#alloc = new Allocator(arena, base);
    byWriter.set(writer, this);
  }

  /** Epoch of the last published version. */
  get epoch(): number {
    return this.#epoch;
  }

  /** Offset of the last published root record. */
  get root(): number {
    return this.#root;
  }

  /** Current Int32 view (it changes when the arena grows). */
  i32(): Int32Array {
    return this.arena.i32;
  }

  alloc(words: number): number {
    const ptr = this.#alloc.alloc(words);
    this.#fresh.add(ptr);
    return ptr;
  }

  isFresh(ptr: number): boolean {
    return this.#fresh.has(ptr);
  }

  /**
   * Gives up a block: a fresh one is freed at once; one that a published version
   * references is retired with the next epoch, the first version without it.
   */
  discard(ptr: number, words: number): void {
    if (this.#fresh.delete(ptr)) this.#alloc.release(ptr, words);
    else this.#alloc.retire(ptr, words, nextEpoch(this.#epoch));
  }

  /**
   * Called once `root` (of `words` words) has been published as version `epoch`: what
   * was fresh is now reachable. Root records are retired late: the one published
   * `ROOT_CHAIN` versions before this one is retired with it, because readers follow the
   * chain of root records back that far (layout.ts, "Catching up").
   */
  published(root: number, words: number, epoch: number): void {
    const ring = this.#roots;
    if (this.#rootsCount === ROOT_CHAIN) {
      const oldest = this.#rootsHead;
      this.#alloc.retire(ring[oldest]!, this.#rootWords[oldest]!, epoch);
      ring[oldest] = root;
      this.#rootWords[oldest] = words;
      this.#rootsHead = (oldest + 1) % ROOT_CHAIN;
    } else {
      const at = (this.#rootsHead + this.#rootsCount++) % ROOT_CHAIN;
      ring[at] = root;
      this.#rootWords[at] = words;
    }
    this.#root = root;
    this.#epoch = epoch;
    this.#fresh.clear();
  }

  /** Called after each publish: every `RECLAIM_EVERY` publishes, reuses what it can. */
  tick(): void {
    if (++this.#sinceReclaim >= RECLAIM_EVERY && this.#alloc.pending) this.reclaim();
  }

  /**
   * Makes sure every block in `sizes` (plus a root record) can be allocated, so that an
   * operation cannot fail half-way. Reclaims first if it must; throws `IndexFullError`,
   * having changed nothing, if there is still no room.
   */
  reserve(sizes: number[]): void {
    sizes.push(ROOT_WORDS);
    if (this.#alloc.fits(sizes)) return;
    this.reclaim();
    if (this.#alloc.fits(sizes)) return;
    this.#alloc.coalesce();
    if (!this.#alloc.fits(sizes)) {
      throw new IndexFullError(
        `the shared index has no room for this change below its maxBytes (${this.arena.buffer.maxByteLength} bytes); ` +
          'start the scope with a larger maxBytes, or remove members',
      );
    }
  }

  /** True when a block of `words` can be allocated now, without reclaiming anything. */
  fits(words: number): boolean {
    return this.#alloc.fitsOne(words);
  }

  /** True when `sizes` fit, reclaiming and coalescing first if they do not; never throws. */
  makeRoom(sizes: readonly number[]): boolean {
    if (this.#alloc.fits(sizes)) return true;
    this.reclaim();
    this.#alloc.coalesce();
    return this.#alloc.fits(sizes);
  }

  /**
   * Frees the retired blocks that every reader has moved past. Returns words freed.
   *
   * A record that announces `e` (loaded with `Atomics.load`) belongs to a reader whose
   * root is of epoch `e` or later, so blocks retired at or before `e` are out of its
   * reach. An offline record (`0`) holds nothing back: its reader's next load of the
   * root follows its next announcement, which comes after this load of `0` in the total
   * order of atomics, so it returns the writer's current root or a later one. The scan
   * starts from the writer's own epoch, so blocks retired in a batch not yet published
   * (with the next epoch) always wait.
   */
  reclaim(): number {
    this.#sinceReclaim = 0;
    const i32 = this.arena.i32;
    let oldest = this.#epoch;
    const used = Math.min(this.#maxReaders, Atomics.load(i32, H_READERS_USED));
    for (let r = 0; r < used; r++) {
      const rec = READERS_BASE + r * READER_STRIDE;
      if (Atomics.load(i32, rec + R_OWNER) === 0) continue;
      const e = Atomics.load(i32, rec + R_EPOCH);
      if (e !== 0 && !epochAtOrAfter(e, oldest)) oldest = e;
    }
    return this.#alloc.reclaim(oldest);
  }

  /**
   * Frees the reader records that a thread left behind (it exited while reading, or
   * never called `release()`), then reclaims what they held back. Only for threads
   * that are gone: a live reader would go on reading blocks that get reused.
   */
  releaseReadersOf(threadId: number): number {
    const i32 = this.arena.i32;
    let n = 0;
    for (let r = 0; r < this.#maxReaders; r++) {
      const rec = READERS_BASE + r * READER_STRIDE;
      if (Atomics.load(i32, rec + R_OWNER) === threadId + 1) {
        Atomics.store(i32, rec + R_EPOCH, 0);
        Atomics.store(i32, rec + R_OWNER, 0);
        n++;
      }
    }
    if (n > 0) this.reclaim();
    return n;
  }

  stats(): AllocatorStats {
    return this.#alloc.stats();
  }
}

/**
 * Each writer's blocks, found from the writer, so that a reader on the writer's thread
 * can share its arena and follow its root without the writer exposing either.
 */
const byWriter = new WeakMap<object, WriterBlocks>();

/** What a reader on the writer's own thread reads from it. */
export interface LocalWriter {
  readonly arena: Arena;
  /** The last published root record: always the version to read, with no announcement. */
  readonly root: number;
}

/** The blocks of `writer` (an `IndexWriter`: typed `object` here so that this module does not import the writer). */
export function localWriter(writer: object): LocalWriter {
  return byWriter.get(writer)!;
}

// The reader's side ----------------------------------------------------------------

/** Frees the record of a reader that was garbage-collected without `release()`. */
const orphans = new FinalizationRegistry<{ i32: Int32Array; record: number }>(({ i32, record }) => {
  Atomics.store(i32, record + R_EPOCH, 0);
  Atomics.store(i32, record + R_OWNER, 0);
});

/**
 * The reader record of one reader on another thread than the writer's: claimed on the
 * first announcement, online from an announcement to the end of the synchronous job.
 * The reader counts its reads itself (it is the hot path); `ended` is called whenever
 * the section ends, so that its next read announces again.
 */
export class ReaderRecord {
  readonly #arena: Arena;
  readonly #ended: () => void;
  #record = -1;
  #online = false;
  /** Ends the section: the record goes offline and holds nothing back any more. */
  readonly #offline = (): void => {
    if (this.#online) {
      this.#online = false;
      this.#ended();
      if (this.#record >= 0) Atomics.store(this.#arena.i32, this.#record + R_EPOCH, 0);
    }
  };

  constructor(arena: Arena, ended: () => void) {
    this.#arena = arena;
    this.#ended = ended;
  }

  /**
   * Opens (or renews) a read section and returns the root to read. The order is the
   * argument: load the epoch, announce it, and only then load the root, so that a
   * writer that sees this announcement knows the root loaded is at least that recent.
   * The arena's views follow the growth published with that epoch or before it.
   */
  announce(): number {
    if (this.#record < 0) this.#claim();
    const arena = this.#arena;
    const i32 = arena.i32;
    const epoch = Atomics.load(i32, H_EPOCH);
    Atomics.store(i32, this.#record + R_EPOCH, epoch);
    arena.refresh();
    const root = Atomics.load(arena.i32, H_ROOT);
    if (!this.#online) {
      this.#online = true;
      queueMicrotask(this.#offline);
    }
    return root;
  }

  /** Ends the section now (`refresh()`): the next read announces the latest epoch. */
  offline(): void {
    this.#offline();
  }

  /** Gives the record back; the next announcement claims one again. */
  release(): void {
    if (this.#record < 0) return;
    this.#online = false;
    this.#ended();
    const i32 = this.#arena.i32;
    Atomics.store(i32, this.#record + R_EPOCH, 0);
    Atomics.store(i32, this.#record + R_OWNER, 0);
    orphans.unregister(this);
    this.#record = -1;
  }

  #claim(): void {
    const i32 = this.#arena.i32;
    const max = Atomics.load(i32, H_MAX_READERS);
    for (let r = 0; r < max; r++) {
      const record = READERS_BASE + r * READER_STRIDE;
      if (Atomics.compareExchange(i32, record + R_OWNER, 0, threadId + 1) === 0) {
        Atomics.store(i32, record + R_EPOCH, 0);
        // Raise the high-water mark the writer scans up to (a CAS loop: claims are rare).
        for (let used = Atomics.load(i32, H_READERS_USED); used < r + 1;) {
          const seen = Atomics.compareExchange(i32, H_READERS_USED, used, r + 1);
          if (seen === used) break;
          used = seen;
        }
        this.#record = record;
        orphans.register(this, { i32, record }, this);
        return;
      }
    }
    throw new TooManyReadersError(
      `all ${max} reader records of this index are taken; start the scope with a larger maxReaders ` +
        'or call release() on readers of threads that no longer read',
    );
  }
}
