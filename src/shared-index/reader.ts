/**
 * Lock-free, wait-free reads of a shared index, from any thread that holds its buffer.
 *
 * ## The fast path
 *
 * A hot read is: one `Map.get` in this thread's key cache (group → slot and gid), a
 * check that the thread is inside a read section, two or three plain loads down the
 * slot table, and the plain loads of the member block. No atomic operation, no
 * allocation besides the returned array. The section check costs a boolean test and a
 * counter decrement; the three atomics that open a section (see layout.ts) are paid on
 * the first read of each synchronous job and every `READ_BUDGET` reads after that.
 *
 * A cache entry is only a hint: the block it leads to must carry the same gid, or the
 * key is looked up again in the bucket table (the slow path), which also learns keys
 * this thread has not met yet.
 */
import { threadId } from 'node:worker_threads';
import { TooManyReadersError } from '../core/errors.js';
import { decodeGroup, encodeGroup, type Group, type GroupKey, hashKey } from '../core/group.js';
import type { Pid } from '../core/pid.js';
import { Arena } from './arena.js';
import * as layout from './layout.js';
import { dataBase } from './layout.js';
import { radixGet, radixWalk } from './radix.js';
import type { IndexHandle } from './types.js';
import type { IndexWriter } from './writer.js';

// Module-local copies of the layout constants: V8 folds a module's own constants into
// optimized code but loads an imported binding on every use, which the hot paths feel.
const {
  B_GID,
  B_KEY,
  B_LEN,
  B_PIDS,
  H_EPOCH,
  H_MAX_READERS,
  H_ROOT,
  H_READERS_USED,
  H_SEED,
  K_CHARS,
  K_HASH,
  K_UNITS,
  RADIX_BITS,
  RADIX_FANOUT,
  RADIX_MASK,
  RADIX_MAX_DEPTH,
  READERS_BASE,
  READER_STRIDE,
  READ_BUDGET,
  ROOT_BUCKETS,
  ROOT_BUCKETS_DEPTH,
  ROOT_BUCKET_BITS,
  ROOT_EPOCH,
  ROOT_GROUPS,
  ROOT_SLOTS,
  ROOT_SLOTS_DEPTH,
  ROOT_WORDS,
  R_EPOCH,
  R_OWNER,
} = layout;

/**
 * What this thread knows of one group: its slot and gid (stable while the group
 * exists), and its member block as of version `epoch` (0 for an empty group).
 */
interface CacheEntry {
  readonly slot: number;
  gid: number;
  block: number;
  epoch: number;
  /** This thread's round-robin position in the group. */
  rr: number;
}

/** 2^32, as a literal: V8 folds it, while an imported binding is loaded on each use. */
const NODE_FACTOR = 0x1_0000_0000;

/** Budget of a reader on the writer's thread: it never announces, so it never runs out. */
const LOCAL_BUDGET = 0x3fff_ffff;

/** Cache entries per key kind before the cache is dropped and rebuilt from use. */
const MAX_CACHE = 1 << 16;

/** Frees the reader record of a reader that was garbage-collected without `release()`. */
const orphans = new FinalizationRegistry<{ i32: Int32Array; record: number }>(({ i32, record }) => {
  Atomics.store(i32, record + R_EPOCH, 0);
  Atomics.store(i32, record + R_OWNER, 0);
});

/**
 * Reads a shared index on any thread that holds its handle: synchronous, lock-free,
 * wait-free. See the module comment for the fast path and the read sections.
 */
export class IndexReader {
  readonly #arena: Arena;
  readonly #base: number;
  readonly #seed: number;
  readonly #writer: IndexWriter | undefined;
  #i32: Int32Array;
  #u16: Uint16Array;
  #limit: number;
  #record = -1;
  /** Stops following the writer's publishes (readers on the writer's thread only). */
  #unsubscribe: (() => void) | undefined;
  #online = false;
  #budget = 0;
  // The version this thread reads (copied from its root record).
  #epoch = 0;
  #slots = 0;
  #slotsDepth = 1;
  #slotCapacity = 0;
  #buckets = 0;
  #bucketsDepth = 1;
  #bucketMask = 0;
  #groupCount = 0;
  readonly #strings = new Map<string, CacheEntry>();
  readonly #numbers = new Map<number, CacheEntry>();
  readonly #tuples = new Map<string, CacheEntry>();
  readonly #decoded = new Map<number, Group>();
  #scratch = new Float64Array(64);
  #scratchBusy = false;
  readonly #offline = (): void => {
    if (this.#online && this.#writer === undefined) {
      this.#online = false;
      this.#budget = 0;
      if (this.#record >= 0) Atomics.store(this.#i32, this.#record + R_EPOCH, 0);
    }
  };

  /**
   * Opens an index for reading. Pass the writer itself when reading on the writer's own
   * thread: reads then follow each version as it is published, with no announcements.
   */
  constructor(source: IndexHandle | IndexWriter) {
    if ('arena' in source) {
      this.#writer = source;
      this.#arena = source.arena;
    } else {
      this.#writer = undefined;
      this.#arena = Arena.open(source.buffer);
    }
    this.#i32 = this.#arena.i32;
    this.#u16 = this.#arena.u16;
    this.#limit = this.#arena.words;
    this.#base = dataBase(this.#i32[H_MAX_READERS]!);
    this.#seed = this.#i32[H_SEED]!;
    if (this.#writer !== undefined) {
      const writer = this.#writer;
      this.#unsubscribe = writer.onPublish(() => this.#adopt(writer.root));
      this.#adopt(writer.root);
      this.#online = true;
      this.#budget = LOCAL_BUDGET;
    }
  }

  // Reads ----------------------------------------------------------------------------

  /** The members of `group` as a fresh array, duplicates included; `[]` for an unknown group. */
  members(group: Group): Pid[] {
    const block = this.#blockOf(group);
    if (block === 0) return [];
    const len = this.#len(block);
    const i32 = this.#i32;
    // `new Array(len)` filled in order is the fastest way V8 (11.x) builds a double array.
    const out: Pid[] = new Array(len);
    for (let i = 0, at = block + B_PIDS; i < len; i++, at += 2) {
      out[i] = (i32[at]! * NODE_FACTOR + (i32[at + 1]! >>> 0)) as Pid;
    }
    return out;
  }

  /** Number of members of `group` (joins are counted). Allocates nothing. */
  count(group: Group): number {
    const block = this.#blockOf(group);
    return block === 0 ? 0 : this.#len(block);
  }

  /**
   * The member at position `index` (taken modulo the member count), or `undefined` for
   * an empty group. Allocates nothing: pass a counter for round-robin, a random integer
   * for a random pick.
   */
  /**
   * The next member in this thread's round-robin over `group`, or `undefined` for an
   * empty group. Allocates nothing: the position lives in the thread's key cache.
   */
  next(group: Group): Pid | undefined {
    const block = this.#blockOf(group);
    if (block === 0) return undefined;
    const len = this.#len(block);
    const entry = this.#entry;
    if (len === 0 || entry === undefined) return undefined;
    let i = entry.rr;
    if (i >= len) i = 0;
    entry.rr = i + 1;
    const at = block + B_PIDS + 2 * i;
    return (this.#i32[at]! * NODE_FACTOR + (this.#i32[at + 1]! >>> 0)) as Pid;
  }

  /**
   * Copies the members of `group` into `out` (as many as fit) and returns the member
   * count, so that a caller can pick among them without allocating.
   */
  membersInto(group: Group, out: Float64Array): number {
    const block = this.#blockOf(group);
    if (block === 0) return 0;
    const len = this.#len(block);
    const n = Math.min(len, out.length);
    const i32 = this.#i32;
    for (let i = 0, at = block + B_PIDS; i < n; i++, at += 2)
      out[i] = i32[at]! * NODE_FACTOR + (i32[at + 1]! >>> 0);
    return len;
  }

  /**
   * The member at position `index` (taken modulo the member count; indexes beyond
   * 2^32 wrap), or `undefined` for an empty group. Allocates nothing.
   */
  memberAt(group: Group, index: number): Pid | undefined {
    const block = this.#blockOf(group);
    if (block === 0) return undefined;
    const len = this.#len(block);
    if (len === 0) return undefined;
    let i = index >>> 0;
    if (i >= len) i %= len;
    const at = block + B_PIDS + 2 * i;
    return (this.#i32[at]! * NODE_FACTOR + (this.#i32[at + 1]! >>> 0)) as Pid;
  }

  /**
   * Calls `fn` for each member. The members are copied into a reusable buffer before
   * the first call, so `fn` sees one consistent version even if it writes to the
   * index, and nothing is allocated (except on re-entrant calls).
   */
  forEach(group: Group, fn: (pid: Pid, index: number) => void): number {
    const block = this.#blockOf(group);
    if (block === 0) return 0;
    const len = this.#len(block);
    const nested = this.#scratchBusy;
    let buf = this.#scratch;
    if (nested) buf = new Float64Array(len);
    else if (buf.length < len)
      buf = this.#scratch = new Float64Array(Math.max(len, buf.length * 2));
    const i32 = this.#i32;
    for (let i = 0, at = block + B_PIDS; i < len; i++, at += 2) {
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
    const block = this.#blockOf(group);
    const out: Pid[] = [];
    if (block === 0) return out;
    const i32 = this.#i32;
    const end = block + B_PIDS + 2 * this.#len(block);
    for (let at = block + B_PIDS; at < end; at += 2) {
      if (i32[at] === node) out.push((node * NODE_FACTOR + (i32[at + 1]! >>> 0)) as Pid);
    }
    return out;
  }

  /** Every non-empty group, in no particular order. */
  groups(): Group[] {
    return this.#scan(-1);
  }

  /** Every group that has a member on `node`. */
  groupsOf(node: number): Group[] {
    return this.#scan(node);
  }

  /** Number of non-empty groups. */
  groupCount(): number {
    this.#enter();
    return this.#groupCount;
  }

  /**
   * Ends this thread's read section now: the next read sees the latest version, and
   * the writer may reuse what this thread was reading. Call it after learning that a
   * write you care about was applied, or before a long computation.
   */
  refresh(): void {
    this.#offline();
  }

  /** Gives this thread's reader record back. The reader stays usable and claims one again if used. */
  release(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    if (this.#writer !== undefined || this.#record < 0) return;
    this.#online = false;
    this.#budget = 0;
    Atomics.store(this.#i32, this.#record + R_EPOCH, 0);
    Atomics.store(this.#i32, this.#record + R_OWNER, 0);
    orphans.unregister(this);
    this.#record = -1;
  }

  // Sections ---------------------------------------------------------------------------

  #enter(): void {
    if (--this.#budget < 0) this.#announce();
  }

  /**
   * Opens (or renews) a read section: announce the epoch, then load the root. The
   * order matters; see "Why plain reads are enough" in layout.ts.
   */
  #announce(): void {
    if (this.#writer !== undefined) {
      // On the writer's thread there is nothing to announce: follow its latest version.
      this.#adopt(this.#writer.root);
      return;
    }
    if (this.#record < 0) this.#claim();
    const i32 = this.#arena.i32;
    const epoch = Atomics.load(i32, H_EPOCH);
    Atomics.store(i32, this.#record + R_EPOCH, epoch);
    this.#arena.refresh();
    this.#adopt(Atomics.load(this.#arena.i32, H_ROOT));
    this.#budget = READ_BUDGET;
    if (!this.#online) {
      this.#online = true;
      queueMicrotask(this.#offline);
    }
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

  /** Reads the root record at `root` (bounded: a bad root reads as an empty index). */
  #adopt(root: number): void {
    if (this.#writer !== undefined) this.#budget = LOCAL_BUDGET;
    const a = this.#arena;
    this.#i32 = a.i32;
    this.#u16 = a.u16;
    this.#limit = a.words;
    const i32 = this.#i32;
    const depth = i32[root + ROOT_SLOTS_DEPTH]!;
    if (
      root < this.#base ||
      root + ROOT_WORDS > this.#limit ||
      depth < 1 ||
      depth > RADIX_MAX_DEPTH
    ) {
      this.#epoch = this.#slots = this.#buckets = this.#slotCapacity = this.#groupCount = 0;
      return;
    }
    this.#epoch = i32[root + ROOT_EPOCH]!;
    this.#slots = i32[root + ROOT_SLOTS]!;
    this.#slotsDepth = depth;
    this.#slotCapacity = 2 ** (RADIX_BITS * depth);
    this.#buckets = i32[root + ROOT_BUCKETS]!;
    this.#bucketsDepth = i32[root + ROOT_BUCKETS_DEPTH]!;
    this.#bucketMask = (1 << (i32[root + ROOT_BUCKET_BITS]! & 31)) - 1;
    this.#groupCount = i32[root + ROOT_GROUPS]!;
  }

  // Lookups ----------------------------------------------------------------------------

  /** Member count of a block, bounded by the view. */
  #len(block: number): number {
    const len = this.#i32[block + B_LEN]!;
    return len > 0 && block + B_PIDS + 2 * len <= this.#limit ? len : 0;
  }

  /** The member block of `slot` in the current version, or 0. */
  #slotBlock(slot: number): number {
    if (slot < 0 || slot >= this.#slotCapacity) return 0;
    const i32 = this.#i32;
    const limit = this.#limit - RADIX_FANOUT;
    let node = this.#slots;
    for (let shift = RADIX_BITS * (this.#slotsDepth - 1); shift > 0; shift -= RADIX_BITS) {
      if (node < this.#base || node > limit) return 0;
      node = i32[node + ((slot >>> shift) & RADIX_MASK)]!;
    }
    if (node < this.#base || node > limit) return 0;
    const block = i32[node + (slot & RADIX_MASK)]!;
    return block >= this.#base && block + B_PIDS <= this.#limit ? block : 0;
  }

  /**
   * The member block of `group` in the current version, or 0. The hot path: when the
   * cache entry was checked in this same version, its block is the answer as it is.
   */
  #blockOf(group: Group): number {
    // One counter does both jobs: 0 when offline, and reads left in this section.
    if (--this.#budget < 0) this.#announce();
    let entry: CacheEntry | undefined;
    if (typeof group === 'string') entry = this.#strings.get(group);
    else if (typeof group === 'number') entry = this.#numbers.get(group);
    else return this.#resolve(group);
    if (entry === undefined) return this.#resolve(group);
    this.#entry = entry;
    if (entry.epoch === this.#epoch) return entry.block;
    return this.#recheck(entry, group);
  }

  /** A cached group in a newer version: follow its slot, or look it up again if the slot changed hands. */
  #recheck(entry: CacheEntry, group: Group): number {
    const block = this.#slotBlock(entry.slot);
    if (block !== 0 && this.#i32[block + B_GID] === entry.gid) {
      entry.block = block;
      entry.epoch = this.#epoch;
      return block;
    }
    return this.#resolve(group);
  }

  /** Slow path: validate and encode the key, find it in the bucket table, and cache the answer. */
  #resolve(group: Group): number {
    const key = encodeGroup(group);
    let cache: Map<string | number, CacheEntry>;
    let cacheKey: string | number;
    if (typeof group === 'string') {
      cache = this.#strings as Map<string | number, CacheEntry>;
      cacheKey = group;
    } else if (typeof group === 'number') {
      cache = this.#numbers as Map<string | number, CacheEntry>;
      cacheKey = group;
    } else {
      cache = this.#tuples as Map<string | number, CacheEntry>;
      cacheKey = key;
      const entry = cache.get(key);
      this.#entry = entry;
      if (entry !== undefined) {
        if (entry.epoch === this.#epoch) return entry.block;
        const block = this.#slotBlock(entry.slot);
        if (block !== 0 && this.#i32[block + B_GID] === entry.gid) {
          entry.block = block;
          entry.epoch = this.#epoch;
          return block;
        }
      }
    }
    const found = this.#lookup(key);
    if (found === 0) {
      cache.delete(cacheKey);
      this.#entry = undefined;
      return 0;
    }
    if (cache.size >= MAX_CACHE) cache.clear();
    const entry: CacheEntry = {
      slot: this.#foundSlot,
      gid: this.#i32[found + B_GID]!,
      block: found,
      epoch: this.#epoch,
      rr: 0,
    };
    cache.set(cacheKey, entry);
    this.#entry = entry;
    return found;
  }

  #foundSlot = 0;
  /** The cache entry the last lookup used (undefined when the group was not found). */
  #entry: CacheEntry | undefined;

  /** Finds `key` in the bucket table; returns its block (and leaves its slot in `#foundSlot`), or 0. */
  #lookup(key: GroupKey): number {
    const hash = hashKey(key, this.#seed);
    const i32 = this.#i32;
    const bucket = radixGet(
      i32,
      this.#buckets,
      this.#bucketsDepth,
      hash & this.#bucketMask,
      this.#base,
      this.#limit,
    );
    if (bucket < this.#base || bucket >= this.#limit) return 0;
    const n = Math.min(i32[bucket]!, (this.#limit - bucket - 1) >> 1);
    for (let i = 0; i < n; i++) {
      if (i32[bucket + 1 + 2 * i] !== hash) continue;
      const slot = i32[bucket + 2 + 2 * i]!;
      const block = this.#slotBlock(slot);
      if (block !== 0 && this.#keyEquals(i32[block + B_KEY]!, key, hash)) {
        this.#foundSlot = slot;
        return block;
      }
    }
    return 0;
  }

  #keyEquals(record: number, key: string, hash: number): boolean {
    const i32 = this.#i32;
    if (record < this.#base || record + K_CHARS > this.#limit) return false;
    if (i32[record + K_HASH] !== hash || i32[record + K_UNITS] !== key.length) return false;
    if (record + K_CHARS + ((key.length + 1) >> 1) > this.#limit) return false;
    const u16 = this.#u16;
    const at = (record + K_CHARS) * 2;
    for (let i = 0; i < key.length; i++) if (u16[at + i] !== key.charCodeAt(i)) return false;
    return true;
  }

  /** Groups with a member on `node`, or all groups when `node` is -1. */
  #scan(node: number): Group[] {
    this.#enter();
    const out: Group[] = [];
    const i32 = this.#i32;
    radixWalk(i32, this.#slots, this.#slotsDepth, this.#base, this.#limit, (block) => {
      if (block < this.#base || block + B_PIDS > this.#limit) return;
      if (node >= 0) {
        const end = block + B_PIDS + 2 * this.#len(block);
        let found = false;
        for (let at = block + B_PIDS; at < end && !found; at += 2) found = i32[at] === node;
        if (!found) return;
      }
      const group = this.#groupOf(block);
      if (group !== undefined) out.push(Array.isArray(group) ? group.slice() : group);
    });
    return out;
  }

  /** Decodes the key of a block (cached per gid). */
  #groupOf(block: number): Group | undefined {
    const gid = this.#i32[block + B_GID]!;
    const cached = this.#decoded.get(gid);
    if (cached !== undefined) return cached;
    const record = this.#i32[block + B_KEY]!;
    if (record < this.#base || record + K_CHARS > this.#limit) return undefined;
    const units = this.#i32[record + K_UNITS]!;
    if (units <= 0 || record + K_CHARS + ((units + 1) >> 1) > this.#limit) return undefined;
    const at = (record + K_CHARS) * 2;
    let key = '';
    for (let i = 0; i < units; i += 4096) {
      key += String.fromCharCode(...this.#u16.subarray(at + i, at + Math.min(units, i + 4096)));
    }
    let group: Group;
    try {
      group = decodeGroup(key);
    } catch {
      return undefined;
    }
    if (this.#decoded.size >= MAX_CACHE) this.#decoded.clear();
    this.#decoded.set(gid, group);
    return group;
  }
}
