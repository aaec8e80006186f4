/**
 * Lock-free, wait-free reads of a shared index, from any thread that holds its buffer:
 * the public `IndexReader`, and when it opens a read section.
 *
 * ## The fast path
 *
 * A hot read is: a counter decrement (the check that the thread is inside a read
 * section), and one `Map.get`. For `members` and `memberAt` of a string group, that is
 * a get in the map of the arrays held for the version this thread reads
 * (`Lookup.arrays`), and `members` returns a `slice()` of the array: one allocation
 * and one bulk copy, the same work as copying a `Map`'s array. Otherwise it is a get
 * in this thread's key cache and one comparison that says the entry was checked in the
 * version read; the entry then holds the member block, its member count (`count`),
 * and the held array once built. No atomic operation, no loads down the slot table,
 * no decoding of pids.
 *
 * The cached entry is renewed only when the thread reads a newer version that changed
 * its group's slot, so a read costs the same whatever the writer does to other groups
 * meanwhile. The three atomics that open a section (reclamation.ts, argued in
 * layout.ts) are paid on the first read of each synchronous job and every
 * `READ_BUDGET` reads after that; a new version then costs one walk down the chain of
 * root records back to the version read before (lookup.ts, `#catchUp`), a walk down the
 * slot table for each group it changed, on its next read, and a new array only if the
 * group's own block changed (layout.ts, "Catching up" and "Per-thread copies").
 *
 * The way from a group to its block, with the key cache, is in lookup.ts.
 */
import type { Group } from '../core/group.js';
import type { Pid } from '../core/pid.js';
import { Arena } from './arena.js';
import * as layout from './layout.js';
import { type CacheEntry, Lookup, MAX_HELD_GROUP } from './lookup.js';
import { type LocalWriter, localWriter, ReaderRecord } from './reclamation.js';
import type { IndexHandle } from './types.js';
import type { IndexWriter } from './writer.js';

// Module-local copies of the layout constants: V8 folds a module's own constants into
// optimized code but loads an imported binding on every use, which the hot paths feel.
const { B_PIDS, READ_BUDGET } = layout;

/** 2^32, as a literal: V8 folds it, while an imported binding is loaded on each use. */
const NODE_FACTOR = 0x1_0000_0000;

/** Budget of a reader on the writer's thread: it never announces, so it never runs out. */
const LOCAL_BUDGET = 0x3fff_ffff;

/**
 * Reads a shared index on any thread that holds its handle: synchronous, lock-free,
 * wait-free. See the module comment for the fast path and the read sections.
 */
export class IndexReader {
  readonly #lookup: Lookup;
  /** `Lookup.arrays`, the same map for the reader's life: the hot reads' one `Map.get`. */
  readonly #arrays: Map<Group, Pid[]>;
  /** This reader's record, on a thread other than the writer's. */
  readonly #record: ReaderRecord | undefined;
  /** The writer, when reading on its own thread. */
  readonly #local: LocalWriter | undefined;
  /** Stops following the writer's publishes (readers on the writer's thread only). */
  #unsubscribe: (() => void) | undefined;
  /** One counter does both jobs: 0 when offline, and reads left in this section. */
  #budget = 0;
  #scratch = new Float64Array(64);
  #scratchBusy = false;

  /**
   * Opens an index for reading. Pass the writer itself when reading on the writer's own
   * thread: reads then follow each version as it is published, with no announcements.
   */
  constructor(source: IndexHandle | IndexWriter) {
    if ('onPublish' in source) {
      const local = localWriter(source);
      this.#local = local;
      this.#record = undefined;
      this.#lookup = new Lookup(local.arena);
      this.#arrays = this.#lookup.arrays;
      this.#unsubscribe = source.onPublish(() => this.#follow());
      this.#follow();
    } else {
      const arena = Arena.open(source.buffer);
      this.#local = undefined;
      this.#record = new ReaderRecord(arena, () => {
        this.#budget = 0;
      });
      this.#lookup = new Lookup(arena);
      this.#arrays = this.#lookup.arrays;
    }
  }

  // Reads ----------------------------------------------------------------------------

  /**
   * The members of `group` as a fresh array, duplicates included; `[]` for an unknown group.
   *
   * The fast path: the group's cache entry holds the members of its current block as a
   * JS array, built once per block on this thread (`Lookup.pidsOf`), and the answer is
   * a `slice()` of it, which V8 does as one bulk copy. The caller owns the copy; the
   * held array is never handed out, so nothing a caller does to its array can reach
   * another read.
   */
  members(group: Group): Pid[] {
    if (--this.#budget < 0) this.#announce();
    const held = this.#arrays.get(group);
    if (held !== undefined) return held.slice();
    const lookup = this.#lookup;
    const entry = lookup.find(group);
    if (entry === undefined) return [];
    return lookup.arrayOf(group, entry).slice();
  }

  /** Number of members of `group` (joins are counted). Allocates nothing. */
  count(group: Group): number {
    const entry = this.#find(group);
    return entry === undefined ? 0 : entry.len;
  }

  /**
   * The next member in this thread's round-robin over `group`, or `undefined` for an
   * empty group. Allocates nothing: the position lives in the thread's key cache.
   */
  next(group: Group): Pid | undefined {
    const entry = this.#find(group);
    if (entry === undefined) return undefined;
    const len = entry.len;
    if (len === 0) return undefined;
    let i = entry.rr;
    if (i >= len) i = 0;
    entry.rr = i + 1;
    // The held array, when there is one, hands out a number boxed once (`Lookup.pidsOf`).
    const held = entry.pids;
    return held !== undefined ? held[i] : this.#at(entry.block, i);
  }

  /**
   * Copies the members of `group` into `out` (as many as fit) and returns the member
   * count, so that a caller can pick among them without allocating.
   */
  membersInto(group: Group, out: Float64Array): number {
    const entry = this.#find(group);
    if (entry === undefined) return 0;
    const len = entry.len;
    const n = Math.min(len, out.length);
    const i32 = this.#lookup.i32;
    for (let i = 0, at = entry.block + B_PIDS; i < n; i++, at += 2)
      out[i] = i32[at]! * NODE_FACTOR + (i32[at + 1]! >>> 0);
    return len;
  }

  /**
   * The member at position `index` (taken modulo the member count; indexes beyond
   * 2^32 wrap), or `undefined` for an empty group. Allocates nothing.
   */
  memberAt(group: Group, index: number): Pid | undefined {
    if (--this.#budget < 0) this.#announce();
    const held = this.#arrays.get(group);
    if (held === undefined) return this.#memberAtMiss(group, index);
    // A listed array is never empty (`Lookup.arrayOf`).
    const len = held.length;
    let i = index >>> 0;
    if (i >= len) i %= len;
    return held[i];
  }

  /**
   * `memberAt` of a group whose array is not listed in the version read: its own
   * method so that `memberAt`, which V8 inlines into every pick, carries only the hot path.
   */
  #memberAtMiss(group: Group, index: number): Pid | undefined {
    const lookup = this.#lookup;
    const entry = lookup.find(group);
    if (entry === undefined) return undefined;
    const len = entry.len;
    if (len === 0) return undefined;
    let i = index >>> 0;
    if (i >= len) i %= len;
    // Too large to hold: one member straight from the block, not a whole array.
    if (entry.pids === undefined && len > MAX_HELD_GROUP) return this.#at(entry.block, i);
    return lookup.arrayOf(group, entry)[i];
  }

  /**
   * Calls `fn` for each member. The members are copied into a reusable buffer before
   * the first call, so `fn` sees one consistent version even if it writes to the
   * index, and nothing is allocated (except on re-entrant calls).
   */
  forEach(group: Group, fn: (pid: Pid, index: number) => void): number {
    const entry = this.#find(group);
    if (entry === undefined) return 0;
    const len = entry.len;
    const nested = this.#scratchBusy;
    let buf = this.#scratch;
    if (nested) buf = new Float64Array(len);
    else if (buf.length < len)
      buf = this.#scratch = new Float64Array(Math.max(len, buf.length * 2));
    const i32 = this.#lookup.i32;
    for (let i = 0, at = entry.block + B_PIDS; i < len; i++, at += 2) {
      buf[i] = i32[at]! * NODE_FACTOR + (i32[at + 1]! >>> 0);
    }
    this.#scratchBusy = true;
    try {
      for (let i = 0; i < len; i++) fn(buf[i] as Pid, i);
    } finally {
      this.#scratchBusy = nested;
    }
    return len;
  }

  /** Members of `group` that belong to `node`. */
  membersOf(group: Group, node: number): Pid[] {
    const entry = this.#find(group);
    const out: Pid[] = [];
    if (entry === undefined) return out;
    const i32 = this.#lookup.i32;
    const end = entry.block + B_PIDS + 2 * entry.len;
    for (let at = entry.block + B_PIDS; at < end; at += 2) {
      if (i32[at] === node) out.push((node * NODE_FACTOR + (i32[at + 1]! >>> 0)) as Pid);
    }
    return out;
  }

  /** Every non-empty group, in no particular order. */
  groups(): Group[] {
    this.#enter();
    return this.#lookup.scan(-1);
  }

  /** Every group that has a member on `node`. */
  groupsOf(node: number): Group[] {
    this.#enter();
    return this.#lookup.scan(node);
  }

  /** Number of non-empty groups. */
  groupCount(): number {
    this.#enter();
    return this.#lookup.groupCount;
  }

  /**
   * @internal Words (8 bytes) that this reader's held arrays take, plus a small overhead
   * per array (lookup.ts, `pidsOf`): for the tests of their bound.
   */
  get heldWords(): number {
    return this.#lookup.heldWords;
  }

  /**
   * Ends this thread's read section now: the next read sees the latest version, and
   * the writer may reuse what this thread was reading. Call it after learning that a
   * write you care about was applied, or before a long computation.
   */
  refresh(): void {
    this.#record?.offline();
  }

  /** Gives this thread's reader record back. The reader stays usable and claims one again if used. */
  release(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#record?.release();
  }

  // Sections ---------------------------------------------------------------------------

  /**
   * The cache entry of `group` in the version this thread reads (undefined for an empty
   * group), opening or renewing the read section first when its budget ran out.
   */
  #find(group: Group): CacheEntry | undefined {
    if (--this.#budget < 0) this.#announce();
    return this.#lookup.find(group);
  }

  /** The member at position `i` (in range) of the block at `block`. */
  #at(block: number, i: number): Pid {
    const i32 = this.#lookup.i32;
    const at = block + B_PIDS + 2 * i;
    return (i32[at]! * NODE_FACTOR + (i32[at + 1]! >>> 0)) as Pid;
  }

  #enter(): void {
    if (--this.#budget < 0) this.#announce();
  }

  /** Opens (or renews) a read section: on the writer's thread, just its latest version. */
  #announce(): void {
    if (this.#local !== undefined) {
      this.#follow();
      return;
    }
    this.#lookup.adopt(this.#record!.announce());
    this.#budget = READ_BUDGET;
  }

  /** On the writer's thread: read the version it published last. */
  #follow(): void {
    this.#budget = LOCAL_BUDGET;
    this.#lookup.adopt(this.#local!.root);
  }
}
