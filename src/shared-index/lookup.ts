/**
 * A reader's way from a group to its member block: the version the reader reads (the
 * fields of its root record), this thread's key cache, and the bucket-table lookup
 * behind it. Also the way back, from blocks to group keys, for `groups()`.
 *
 * A cache entry is only a hint: the block it leads to must carry the same gid, or the
 * key is looked up again in the bucket table (the slow path), which also learns keys
 * this thread has not met yet. Every offset, length and probe read from the arena is
 * bounded against the view first, so garbage gives wrong answers, never a throw.
 *
 * When to read a newer version is the reader's business (reader.ts, and the reader
 * records in reclamation.ts): this class reads whatever root it was last given.
 */
import { decodeGroup, encodeGroup, type Group, type GroupKey, hashKey } from '../core/group.js';
import type { Pid } from '../core/pid.js';
import type { Arena } from './arena.js';
import * as layout from './layout.js';
import { dataBase } from './layout.js';
import { radixGet, radixWalk } from './radix.js';

// Module-local copies of the layout constants: V8 folds a module's own constants into
// optimized code but loads an imported binding on every use, which the hot paths feel.
const {
  B_GID,
  B_KEY,
  B_LEN,
  B_PIDS,
  B_TAG,
  H_MAX_READERS,
  H_SEED,
  K_CHARS,
  K_HASH,
  K_UNITS,
  RADIX_BITS,
  RADIX_FANOUT,
  RADIX_MASK,
  RADIX_MAX_DEPTH,
  ROOT_BUCKETS,
  ROOT_BUCKETS_DEPTH,
  ROOT_BUCKET_BITS,
  ROOT_CHAIN,
  ROOT_CHANGED,
  ROOT_EPOCH,
  ROOT_GROUPS,
  ROOT_MAX_CHANGED,
  ROOT_PREV,
  ROOT_SLOTS,
  ROOT_SLOTS_DEPTH,
  ROOT_WORDS,
} = layout;

/** 2^32, as a literal: V8 folds it, while an imported binding is loaded on each use. */
const NODE_FACTOR = 0x1_0000_0000;

/** The pid stored as two words at `at` (layout.ts, member blocks). */
const decode = (i32: Int32Array, at: number): Pid =>
  (i32[at]! * NODE_FACTOR + (i32[at + 1]! >>> 0)) as Pid;

/**
 * What this thread knows of one group: its slot and gid (stable while the group
 * exists), and its member block as checked in generation `gen` (see `Lookup`), with
 * that block's tag and member count, and (once asked for) its members as a JS array.
 */
export interface CacheEntry {
  readonly slot: number;
  gid: number;
  /** The member block as of generation `gen` (never 0: an empty group has no entry). */
  block: number;
  /** The block's tag (layout.ts, "Per-thread copies"): with `block`, what `pids` stands for. */
  tag: number;
  /** The block's member count, bounded by the view when the block was checked. */
  len: number;
  /** The reader's generation in which the entry was checked; 0 once its slot changed. */
  gen: number;
  /**
   * The members of `block`, built once by `pidsOf` and only ever copied out, never
   * handed out itself. Undefined until asked for, and again whenever the entry moves
   * to another block or the held copies are dropped (see `pidsOf`).
   */
  pids: Pid[] | undefined;
  /** This thread's round-robin position in the group. */
  rr: number;
}

/** Cache entries per key kind before the cache is dropped and rebuilt from use. */
const MAX_CACHE = 1 << 16;

/**
 * What the held arrays of one reader (one thread, one scope) may hold in all, in words
 * of 8 bytes, so 8 MiB: past it, every held array is dropped, and built again on the
 * next read of its group. A member of a double array is one word; one of a tagged array
 * (groups of up to `TAGGED_GROUP`, see `pidsOf`) three: a pointer and the number it
 * points to. What a reader holds never exceeds what it counts: an array that an entry
 * replaces or drops is garbage at once, though it counts until the drop.
 */
export const HELD_WORDS = 1 << 20;
/** A group larger than this is decoded on every read rather than held. */
export const MAX_HELD_GROUP = HELD_WORDS >> 2;
/** Groups up to this size are held as arrays of tagged elements (`pidsOf`). */
export const TAGGED_GROUP = 16;
/**
 * What one held array counts for besides its members, in words: its header and
 * elements header, and the cache entry that holds it, so that many small groups are
 * bounded as well as a few large ones.
 */
const HELD_OVERHEAD = 16;

/**
 * Reads that miss `Lookup.arrays` after it was emptied before it lists arrays again: a
 * reader that cannot relate the versions it reads (it falls more than `ROOT_CHAIN`
 * versions behind a writer that publishes all the time) empties it on every new
 * version, and a map that does not last that long is not worth a `Map.set` per group.
 */
const LIST_AFTER = 1024;

export class Lookup {
  readonly #arena: Arena;
  readonly #base: number;
  readonly #seed: number;
  /**
   * The held arrays of string groups, by group, all up to date with the version read:
   * the hot path of `members` and `memberAt`, one `Map.get` from the answer, with no
   * cache entry in between and no check of a version. When `adopt` reads another
   * version it takes out the arrays of the slots that changed in between (`#catchUp`),
   * or all of them when it cannot tell which; dropping the held arrays (`pidsOf`)
   * empties it too, so it holds no array that the bound does not count. An array gets
   * here only through `arrayOf`, right after `find` brought its entry to the version
   * read, and only once `LIST_AFTER` reads have missed the map since it was last
   * emptied, so that a reader that cannot keep up with the writer costs no `Map.set`
   * per read. Only non-empty arrays are listed, so that a read of one may take an
   * element without a check.
   *
   * It is one map for the life of the lookup, emptied rather than replaced, so that the
   * reader keeps it in a field of its own: one load less before the `Map.get` of every
   * hot read.
   */
  readonly arrays = new Map<Group, Pid[]>();
  /** Reads that missed `arrays` since it was last emptied. */
  #misses = 0;
  /** The arena's views as of the last `adopt`; read them again after each lookup. */
  i32: Int32Array;
  u16: Uint16Array;
  limit: number;
  /**
   * Entries checked in this generation are up to date with the version read. It moves
   * on only when the reader adopts a version it cannot relate to the one before
   * (`#catchUp`); otherwise a new version makes stale just the entries of the slots it
   * changed.
   */
  #gen = 1;
  /** The entry that last checked each slot, so that a change of the slot finds it. */
  #bySlot: (CacheEntry | undefined)[] = [];
  /** The group whose array `arrays` lists, for each slot (`arrayOf`). */
  #listed: (string | undefined)[] = [];
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
  /** Entries that were given a `pids` array since the last drop (an entry may be listed twice). */
  #held: CacheEntry[] = [];
  /** Words of those arrays, plus `HELD_OVERHEAD` each: never more than `HELD_WORDS`. */
  #heldWords = 0;

  constructor(arena: Arena) {
    this.#arena = arena;
    this.i32 = arena.i32;
    this.u16 = arena.u16;
    this.limit = arena.words;
    this.#base = dataBase(this.i32[H_MAX_READERS]!);
    this.#seed = this.i32[H_SEED]!;
  }

  /** Non-empty groups in the version read. */
  get groupCount(): number {
    return this.#groupCount;
  }

  /** Words that held arrays take now, overhead included (for the tests of the bound). */
  get heldWords(): number {
    return this.#heldWords;
  }

  /** Reads the root record at `root` (bounded: a bad root reads as an empty index). */
  adopt(root: number): void {
    const a = this.#arena;
    this.i32 = a.i32;
    this.u16 = a.u16;
    this.limit = a.words;
    const i32 = this.i32;
    const depth = i32[root + ROOT_SLOTS_DEPTH]!;
    if (
      root < this.#base ||
      root + ROOT_WORDS > this.limit ||
      depth < 1 ||
      depth > RADIX_MAX_DEPTH
    ) {
      this.#epoch = this.#slots = this.#buckets = this.#slotCapacity = this.#groupCount = 0;
      this.#forget();
      return;
    }
    const epoch = i32[root + ROOT_EPOCH]!;
    const known = epoch === this.#epoch || this.#catchUp(root, this.#epoch);
    this.#epoch = epoch;
    this.#slots = i32[root + ROOT_SLOTS]!;
    this.#slotsDepth = depth;
    this.#slotCapacity = 2 ** (RADIX_BITS * depth);
    this.#buckets = i32[root + ROOT_BUCKETS]!;
    this.#bucketsDepth = i32[root + ROOT_BUCKETS_DEPTH]!;
    this.#bucketMask = (1 << (i32[root + ROOT_BUCKET_BITS]! & 31)) - 1;
    this.#groupCount = i32[root + ROOT_GROUPS]!;
    // Last: it checks the listed arrays against this version's slot table.
    if (!known) this.#forget();
  }

  /**
   * Brings what this thread knows from version `from` to the version of `root`: follows
   * the chain of root records back from `root` to the one of `from`, and makes stale the
   * entry and the listed array of every slot that the versions in between changed.
   * False, having made stale only some, when it cannot get there: `from` is further
   * back than `ROOT_CHAIN` root records, or a version changed too many slots to list,
   * or (garbage) the chain leads out of the view.
   *
   * Only the last `ROOT_CHAIN` root records are kept from reuse (reclamation.ts,
   * `published`), so it never reads further back: the root records it reads are the
   * last `ROOT_CHAIN` published up to `root`, each retired, if at all, with an epoch
   * after `root`'s, which this thread's announcement holds back (layout.ts, "Catching
   * up"). Garbage can make it answer true wrongly: wrong answers, never a throw.
   */
  #catchUp(root: number, from: number): boolean {
    if (from === 0) return false;
    const i32 = this.i32;
    const end = this.limit - ROOT_WORDS;
    let at = root;
    for (let steps = 0; steps < ROOT_CHAIN; steps++) {
      if (at < this.#base || at > end) return false;
      if (i32[at + ROOT_EPOCH] === from) return true;
      const n = i32[at + ROOT_CHANGED]!;
      if (n < 0 || n > ROOT_MAX_CHANGED || at + ROOT_WORDS + n > this.limit) return false;
      for (let k = 0; k < n; k++) this.#stale(i32[at + ROOT_WORDS + k]!);
      at = i32[at + ROOT_PREV]!;
    }
    return false;
  }

  /** `slot` changed: its entry must be checked again, and its array is no longer listed. */
  #stale(slot: number): void {
    const entry = this.#bySlot[slot];
    if (entry !== undefined) {
      entry.gen = 0;
      this.#bySlot[slot] = undefined;
    }
    const listed = this.#listed[slot];
    if (listed !== undefined) {
      this.arrays.delete(listed);
      this.#listed[slot] = undefined;
    }
  }

  /**
   * What this thread knew can no longer be related to the version read: every entry
   * must be checked again, on its next read. The listed arrays are checked at once
   * instead, as their reads check nothing; those whose slot still leads to the block
   * they were built from stay listed. Emptying the map would do, but a reader that
   * falls behind a busy writer now and then would then read without it for
   * `LIST_AFTER` reads each time.
   */
  #forget(): void {
    this.#gen++;
    const before = this.#bySlot;
    this.#bySlot = [];
    const listed = this.#listed;
    const arrays = this.arrays;
    for (let slot = 0; slot < listed.length; slot++) {
      const group = listed[slot];
      if (group === undefined) continue;
      const entry = before[slot];
      const pids = arrays.get(group);
      if (entry === undefined || !this.#follow(entry) || entry.pids !== pids) {
        arrays.delete(group);
        listed[slot] = undefined;
      }
    }
  }

  /** Member count of a block, bounded by the view. */
  len(block: number): number {
    const len = this.i32[block + B_LEN]!;
    return len > 0 && block + B_PIDS + 2 * len <= this.limit ? len : 0;
  }

  /**
   * The cache entry of `group`, up to date with the version read, or undefined for an
   * empty or unknown group.
   *
   * The hot path, a string group met before and up to date with this version, is one
   * `Map.get` and one comparison. Everything else is `#miss`, kept in one function
   * on purpose: V8 never inlines a function of more than 460 bytes of bytecode, so the
   * miss path stays out of `find`'s compiled code, and `find` stays small enough for
   * V8 to inline it into each read and each read into its caller. (Split in small
   * helpers, the miss path was inlined into `find`, whose compiled code then exceeded
   * what V8 inlines into a caller, and every read paid a call.)
   */
  find(group: Group): CacheEntry | undefined {
    let entry: CacheEntry | undefined;
    if (typeof group === 'string') {
      entry = this.#strings.get(group);
      if (entry !== undefined && entry.gen === this.#gen) return entry;
    }
    return this.#miss(group, entry);
  }

  /**
   * The members of `entry`'s block as a JS array that the entry holds from now on, to be
   * copied out (`slice()`, a bulk copy), never handed out itself. Built here once per
   * block and thread instead of on every read.
   *
   * The held arrays are bounded: they count with their size until `HELD_WORDS`, and
   * then all are dropped at once (their entries build them again on use), so that a
   * thread that meets ever new groups, or groups that keep changing, holds at most
   * `HELD_WORDS` words. An entry that leaves the cache (its group vanished, or the
   * cache was cleared) still counts until then, so the bound holds for them too.
   */
  pidsOf(entry: CacheEntry): Pid[] {
    const len = entry.len;
    const i32 = this.i32;
    let at = entry.block + B_PIDS;
    let out: Pid[];
    let words: number;
    if (len > TAGGED_GROUP) {
      // A double array, the cheapest to build (`new Array(len)` filled in order, in V8
      // 11.x), with no number boxed per member.
      out = new Array(len);
      for (let i = 0; i < len; i++, at += 2) out[i] = decode(i32, at);
      if (len > MAX_HELD_GROUP) return out; // handed out as it is, once
      words = len;
    } else {
      // An array of tagged elements. A pid of a worker node is at least 2^32, so a double
      // array would box it into a new heap number on every `memberAt` (every pick) that
      // returns it, while a tagged array hands out the number boxed here, once; copies
      // (`slice()`) are bulk copies either way. But boxing costs each member on every
      // build, so only small groups pay it: in a loop of one write and one read of the
      // group, nothing measurable at 8 members, 10 to 15% at 16, 20% at 64 and 2.2 times
      // at 1,024. Starting from `[null]` makes V8 choose tagged elements; `push` then
      // keeps the array packed.
      out = [null] as unknown as Pid[];
      out.length = 0;
      for (let i = 0; i < len; i++, at += 2) out.push(decode(i32, at));
      words = 3 * len;
    }
    const cost = words + HELD_OVERHEAD;
    if (this.#heldWords + cost > HELD_WORDS) this.#dropHeld();
    this.#heldWords += cost;
    this.#held.push(entry);
    entry.pids = out;
    return out;
  }

  /** Drops every held array (their entries stay, and build them again on use). */
  #dropHeld(): void {
    const held = this.#held;
    for (let i = 0; i < held.length; i++) held[i]!.pids = undefined;
    this.#held = [];
    this.#heldWords = 0;
    this.#unlist();
  }

  /** Empties `arrays` and starts counting misses again. */
  #unlist(): void {
    if (this.arrays.size > 0) {
      this.arrays.clear();
      this.#listed = [];
    }
    this.#misses = 0;
  }

  /**
   * The held array of `entry` (found for `group` in the version read), built if need
   * be, and listed in `arrays` when `group` is a string and enough reads have missed
   * the map (`LIST_AFTER`), until its slot changes. Never hand it out: copy it, or read
   * one element.
   */
  arrayOf(group: Group, entry: CacheEntry): Pid[] {
    const pids = entry.pids ?? this.pidsOf(entry);
    if (
      typeof group === 'string' &&
      entry.pids === pids &&
      pids.length > 0 &&
      ++this.#misses > LIST_AFTER
    ) {
      if (this.arrays.size >= MAX_CACHE) this.#unlist();
      // The group listed for this slot before, if another, has left it.
      const before = this.#listed[entry.slot];
      if (before !== undefined && before !== group) this.arrays.delete(before);
      this.#listed[entry.slot] = group;
      this.arrays.set(group, pids);
    }
    return pids;
  }

  /**
   * Brings `entry` to the version read if its slot still holds its group; false if the
   * slot changed hands. The held array survives only if the slot still leads to the very
   * block it was built from: same offset and same tag. The entry is then the one a
   * change of its slot makes stale.
   */
  #follow(entry: CacheEntry): boolean {
    const block = this.#slotBlock(entry.slot);
    const i32 = this.i32;
    if (block === 0 || i32[block + B_GID] !== entry.gid) return false;
    const tag = i32[block + B_TAG]!;
    if (block !== entry.block || tag !== entry.tag) {
      entry.block = block;
      entry.tag = tag;
      entry.len = this.len(block);
      entry.pids = undefined;
    }
    entry.gen = this.#gen;
    this.#bySlot[entry.slot] = entry;
    return true;
  }

  /** The member block of `slot` in the version read, or 0. */
  #slotBlock(slot: number): number {
    if (slot < 0 || slot >= this.#slotCapacity) return 0;
    const i32 = this.i32;
    const limit = this.limit - RADIX_FANOUT;
    let node = this.#slots;
    for (let shift = RADIX_BITS * (this.#slotsDepth - 1); shift > 0; shift -= RADIX_BITS) {
      if (node < this.#base || node > limit) return 0;
      node = i32[node + ((slot >>> shift) & RADIX_MASK)]!;
    }
    if (node < this.#base || node > limit) return 0;
    const block = i32[node + (slot & RADIX_MASK)]!;
    return block >= this.#base && block + B_PIDS <= this.limit ? block : 0;
  }

  /**
   * Everything but the hot path (see `find`): a number or a tuple; a group this thread
   * has not met, or not since it vanished; a cached group in a newer version, whose
   * slot is followed again, or looked up again if the slot changed hands. A lookup
   * validates and encodes the key, finds it in the bucket table, and caches the answer.
   */
  #miss(group: Group, stale: CacheEntry | undefined): CacheEntry | undefined {
    let cache: Map<string | number, CacheEntry>;
    let cacheKey: string | number;
    let key: GroupKey | undefined;
    let cached: CacheEntry | undefined;
    if (typeof group === 'string') {
      // `find` looked it up already: `stale` is its entry, if it has one.
      cache = this.#strings as Map<string | number, CacheEntry>;
      cacheKey = group;
      cached = stale;
    } else if (typeof group === 'number') {
      cache = this.#numbers as Map<string | number, CacheEntry>;
      cacheKey = group;
      cached = cache.get(cacheKey);
    } else {
      // Tuples are cached by their canonical key (which also validates them).
      cache = this.#tuples as Map<string | number, CacheEntry>;
      cacheKey = key = encodeGroup(group);
      cached = cache.get(cacheKey);
    }
    if (cached !== undefined && (cached.gen === this.#gen || this.#follow(cached))) return cached;
    key ??= encodeGroup(group);

    // Find the key in the bucket table.
    const hash = hashKey(key, this.#seed);
    const i32 = this.i32;
    const bucket = radixGet(
      i32,
      this.#buckets,
      this.#bucketsDepth,
      hash & this.#bucketMask,
      this.#base,
      this.limit,
    );
    let found = 0;
    let slot = 0;
    if (bucket >= this.#base && bucket < this.limit) {
      const n = Math.min(i32[bucket]!, (this.limit - bucket - 1) >> 1);
      for (let i = 0; i < n && found === 0; i++) {
        if (i32[bucket + 1 + 2 * i] !== hash) continue;
        slot = i32[bucket + 2 + 2 * i]!;
        const block = this.#slotBlock(slot);
        if (block !== 0 && this.#keyEquals(i32[block + B_KEY]!, key, hash)) found = block;
      }
    }
    if (found === 0) {
      cache.delete(cacheKey);
      return undefined;
    }

    if (cache.size >= MAX_CACHE) cache.clear();
    const entry: CacheEntry = {
      slot,
      gid: i32[found + B_GID]!,
      block: found,
      tag: i32[found + B_TAG]!,
      len: this.len(found),
      gen: this.#gen,
      pids: undefined,
      rr: 0,
    };
    cache.set(cacheKey, entry);
    this.#bySlot[slot] = entry;
    return entry;
  }

  #keyEquals(record: number, key: string, hash: number): boolean {
    const i32 = this.i32;
    if (record < this.#base || record + K_CHARS > this.limit) return false;
    if (i32[record + K_HASH] !== hash || i32[record + K_UNITS] !== key.length) return false;
    if (record + K_CHARS + ((key.length + 1) >> 1) > this.limit) return false;
    const u16 = this.u16;
    const at = (record + K_CHARS) * 2;
    for (let i = 0; i < key.length; i++) if (u16[at + i] !== key.charCodeAt(i)) return false;
    return true;
  }

  /** Groups with a member on `node`, or all groups when `node` is -1. */
  scan(node: number): Group[] {
    const out: Group[] = [];
    const i32 = this.i32;
    radixWalk(i32, this.#slots, this.#slotsDepth, this.#base, this.limit, (block) => {
      if (block < this.#base || block + B_PIDS > this.limit) return;
      if (node >= 0) {
        const end = block + B_PIDS + 2 * this.len(block);
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
    const gid = this.i32[block + B_GID]!;
    const cached = this.#decoded.get(gid);
    if (cached !== undefined) return cached;
    const record = this.i32[block + B_KEY]!;
    if (record < this.#base || record + K_CHARS > this.limit) return undefined;
    const units = this.i32[record + K_UNITS]!;
    if (units <= 0 || record + K_CHARS + ((units + 1) >> 1) > this.limit) return undefined;
    const at = (record + K_CHARS) * 2;
    let key = '';
    for (let i = 0; i < units; i += 4096) {
      key += String.fromCharCode(...this.u16.subarray(at + i, at + Math.min(units, i + 4096)));
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
