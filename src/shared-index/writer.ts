/**
 * The single writer of a shared index: the coordinator thread of a scope.
 *
 * It keeps its own bookkeeping on its heap (which groups exist, in which slot, which
 * nodes have members where) and mirrors the membership into the arena as immutable
 * blocks, published a version at a time. Every operation is atomic for readers: they
 * see the version before it or the version after it, never a half-applied one, because
 * nothing becomes reachable before the single `Atomics.store` of the new root.
 *
 * An operation that fails (bad input, or no room below `maxBytes`) fails before it
 * changes anything: inputs are checked and room is reserved first.
 */
import { describe, IndexFullError, InvalidPidError } from '../core/errors.js';
import { type GroupKey, hashKey } from '../core/group.js';
import { isPid, NODE_FACTOR, type Pid } from '../core/pid.js';
import { Allocator } from './allocator.js';
import type { IndexHandle, IndexOptions, IndexStats, SyncChange } from './types.js';
import { Arena, WORD } from './arena.js';
import { FreshSet } from './fresh.js';
import * as layout from './layout.js';
import { dataBase, epochAtOrAfter, keyRecordWords, memberBlockWords, nextEpoch } from './layout.js';
import { type RadixHost, radixCapacity, radixDeepen, radixSet, radixWalk } from './radix.js';

// Module-local copies of the layout constants: V8 folds a module's own constants into
// optimized code but loads an imported binding on every use, which the hot paths feel.
const {
  B_GID,
  B_KEY,
  B_LEN,
  B_PIDS,
  H_COMMITTED,
  H_EPOCH,
  H_MAGIC,
  H_MAX_READERS,
  H_ROOT,
  H_READERS_USED,
  H_SEED,
  H_VERSION,
  K_CHARS,
  K_HASH,
  K_UNITS,
  LAYOUT_VERSION,
  MAGIC,
  RADIX_FANOUT,
  READERS_BASE,
  READER_STRIDE,
  ROOT_BUCKETS,
  ROOT_BUCKETS_DEPTH,
  ROOT_BUCKET_BITS,
  ROOT_EPOCH,
  ROOT_GROUPS,
  ROOT_MEMBERS,
  ROOT_SLOTS,
  ROOT_SLOTS_DEPTH,
  ROOT_SLOT_LIMIT,
  ROOT_WORDS,
  R_EPOCH,
  R_OWNER,
} = layout;

interface GroupState {
  readonly key: GroupKey;
  readonly hash: number;
  readonly slot: number;
  readonly gid: number;
  readonly keyPtr: number;
  /** Current member block (0 only transiently). */
  block: number;
  len: number;
  /** Members per node. */
  readonly byNode: Map<number, number>;
}

const MIN_BUCKET_BITS = 6;
/** Publishes between two scans of the reader records for reclamation. */
const RECLAIM_EVERY = 64;
const DEFAULT_MAX_BYTES = 1 << 30;

function pidAt(i32: Int32Array, at: number): Pid {
  return (i32[at]! * NODE_FACTOR + (i32[at + 1]! >>> 0)) as Pid;
}

function writePid(i32: Int32Array, at: number, pid: Pid): void {
  const node = Math.floor(pid / NODE_FACTOR);
  i32[at] = node;
  i32[at + 1] = pid - node * NODE_FACTOR;
}

function checkPids(pids: readonly Pid[]): void {
  for (let i = 0; i < pids.length; i++) {
    if (!isPid(pids[i])) {
      throw new InvalidPidError(`pids[${i}] is not a pid: ${describe(pids[i])}`);
    }
  }
}

/**
 * The single writer of a shared index (the coordinator owns one per scope). Every
 * operation is atomic for readers; see the module comment.
 */
export class IndexWriter implements RadixHost {
  /** What readers on other threads need: send it in `workerData` or a message. */
  readonly handle: IndexHandle;
  readonly #arena: Arena;
  readonly #alloc: Allocator;
  readonly #base: number;
  readonly #seed: number;
  readonly #maxReaders: number;
  readonly #fresh = new FreshSet();
  /** Positions to remove, reused by every removal so that a leave allocates only its result. */
  readonly #drop: number[] = [];
  readonly #groups = new Map<GroupKey, GroupState>();
  readonly #bySlot: (GroupState | undefined)[] = [];
  readonly #freeSlots: number[] = [];
  readonly #nodes = new Map<number, Set<GroupState>>();
  #listeners: (() => void)[] = [];
  #slots = 0;
  #slotsDepth = 1;
  #buckets = 0;
  #bucketsDepth = 1;
  #bucketBits = MIN_BUCKET_BITS;
  #members = 0;
  #nextGid = 1;
  #epoch = 0;
  #root = 0;
  #dirty = true;
  #batch = 0;
  #sinceReclaim = 0;
  #closed = false;

  constructor(options: IndexOptions = {}) {
    const maxReaders = options.maxReaders ?? 64;
    if (!Number.isInteger(maxReaders) || maxReaders < 1 || maxReaders > 4096) {
      throw new RangeError(
        `maxReaders must be an integer from 1 to 4096, got ${describe(maxReaders)}`,
      );
    }
    const base = dataBase(maxReaders);
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    if (!Number.isInteger(maxBytes) || maxBytes < 65536 || maxBytes > 2 ** 32 - 65536) {
      throw new RangeError(
        `maxBytes must be an integer from 65536 to ${2 ** 32 - 65536}, got ${describe(maxBytes)}`,
      );
    }
    const initial = Math.min(maxBytes, Math.max(options.initialBytes ?? 1 << 20, base * WORD * 2));
    const buffer = new SharedArrayBuffer(initial - (initial % 8), {
      maxByteLength: maxBytes - (maxBytes % 8),
    });
    this.#arena = new Arena(buffer);
    this.#base = base;
    this.#maxReaders = maxReaders;
    this.#seed = (Math.random() * 0x1_0000_0000) | 0;
    this.#alloc = new Allocator(this.#arena, base);
    const i32 = this.#arena.i32;
    i32[H_MAGIC] = MAGIC;
    i32[H_VERSION] = LAYOUT_VERSION;
    i32[H_MAX_READERS] = maxReaders;
    i32[H_SEED] = this.#seed;
    Atomics.store(i32, H_COMMITTED, this.#arena.words);
    this.handle = { buffer };
    this.#publish();
  }

  // RadixHost ----------------------------------------------------------------------

  /** @internal */
  i32(): Int32Array {
    return this.#arena.i32;
  }

  /** @internal */
  alloc(words: number): number {
    const ptr = this.#alloc.alloc(words);
    this.#fresh.add(ptr);
    return ptr;
  }

  /** @internal */
  isFresh(ptr: number): boolean {
    return this.#fresh.has(ptr);
  }

  /** @internal */
  discard(ptr: number, words: number): void {
    if (this.#fresh.delete(ptr)) this.#alloc.release(ptr, words);
    else this.#alloc.retire(ptr, words, nextEpoch(this.#epoch));
  }

  // Reads of the writer's own state -------------------------------------------------

  /** Epoch of the last published version. */
  get epoch(): number {
    return this.#epoch;
  }

  /** Offset of the last published root record (for readers on this thread). */
  get root(): number {
    return this.#root;
  }

  /** @internal The arena (readers on this thread share it). */
  get arena(): Arena {
    return this.#arena;
  }

  /** Number of non-empty groups. */
  get groupCount(): number {
    return this.#groups.size;
  }

  /** True when `key` has members. */
  has(key: GroupKey): boolean {
    return this.#groups.has(key);
  }

  /** Members of `key`, from the writer's own copy (no reader section needed). */
  members(key: GroupKey): Pid[] {
    const g = this.#groups.get(key);
    return g === undefined ? [] : this.#read(g);
  }

  /** Members of `key` that belong to `node`. */
  membersOf(key: GroupKey, node: number): Pid[] {
    const g = this.#groups.get(key);
    if (g === undefined || !g.byNode.has(node)) return [];
    return this.#read(g).filter((p) => Math.floor(p / NODE_FACTOR) === node);
  }

  /** Every group `node` has members in, with those members. */
  contribution(node: number): Map<GroupKey, Pid[]> {
    const out = new Map<GroupKey, Pid[]>();
    for (const g of this.#nodes.get(node) ?? []) out.set(g.key, this.membersOf(g.key, node));
    return out;
  }

  /** Nodes that have members somewhere. */
  nodes(): number[] {
    return [...this.#nodes.keys()];
  }

  /** Keys of all non-empty groups. */
  keys(): GroupKey[] {
    return [...this.#groups.keys()];
  }

  /** Calls `fn` whenever a new version is published (local readers follow it this way). */
  onPublish(fn: () => void): () => void {
    this.#listeners = [...this.#listeners, fn];
    return () => {
      this.#listeners = this.#listeners.filter((f) => f !== fn);
    };
  }

  /** Sizes and counts, from the writer's own bookkeeping. */
  stats(): IndexStats {
    const a = this.#alloc.stats();
    return {
      usedBytes: a.usedWords * WORD,
      committedBytes: this.#arena.words * WORD,
      freeBytes: a.freeWords * WORD,
      retiredBytes: a.retiredWords * WORD,
      groups: this.#groups.size,
      members: this.#members,
      epoch: this.#epoch,
    };
  }

  // Writes ---------------------------------------------------------------------------

  /**
   * Runs `fn` and publishes its changes as one version, so that readers see all of
   * them or none, and the writer pays one publish for many operations.
   */
  batch<T>(fn: () => T): T {
    this.#batch++;
    try {
      return fn();
    } finally {
      if (--this.#batch === 0) this.#publish();
    }
  }

  /** Adds `pids` to `key`, duplicates counted. */
  join(key: GroupKey, pids: readonly Pid[]): void {
    this.#open();
    checkPids(pids);
    if (pids.length === 0) return;
    const existing = this.#groups.get(key);
    const sizes: number[] = [];
    this.#sizesFor(key, existing, (existing?.len ?? 0) + pids.length, sizes);
    this.#reserve(sizes);
    const g = existing ?? this.#create(key);
    const old = g.len;
    const block = this.#newBlock(g, old + pids.length);
    const i32 = this.#arena.i32;
    if (old > 0) i32.copyWithin(block + B_PIDS, g.block + B_PIDS, g.block + B_PIDS + 2 * old);
    for (let i = 0, at = block + B_PIDS + 2 * old; i < pids.length; i++, at += 2) {
      const pid = pids[i]!;
      const node = Math.floor(pid / NODE_FACTOR);
      i32[at] = node;
      i32[at + 1] = pid - node * NODE_FACTOR;
      this.#count(g, node, 1);
    }
    this.#replace(g, block, old + pids.length);
    this.#changed();
  }

  /**
   * Removes one occurrence of each of `pids` from `key` (a pid listed twice leaves
   * twice). Returns the pids that were removed, in member order; empty if none was a
   * member. The group disappears when its last member leaves.
   */
  leave(key: GroupKey, pids: readonly Pid[]): Pid[] {
    this.#open();
    checkPids(pids);
    const g = this.#groups.get(key);
    if (g === undefined || pids.length === 0) return [];
    const i32 = this.#arena.i32;
    const start = g.block + B_PIDS;
    const drop = this.#drop;
    drop.length = 0;
    if (pids.length === 1) {
      // The common case, without a map: the first occurrence of one pid.
      const node = Math.floor(pids[0]! / NODE_FACTOR);
      const serial = (pids[0]! - node * NODE_FACTOR) | 0;
      for (let i = 0, at = start; i < g.len; i++, at += 2) {
        if (i32[at] === node && i32[at + 1] === serial) {
          drop.push(i);
          break;
        }
      }
    } else {
      const quota = new Map<Pid, number>();
      for (const p of pids) quota.set(p, (quota.get(p) ?? 0) + 1);
      for (let i = 0, at = start; i < g.len && quota.size > 0; i++, at += 2) {
        const p = pidAt(i32, at);
        const left = quota.get(p);
        if (left === undefined) continue;
        drop.push(i);
        if (left === 1) quota.delete(p);
        else quota.set(p, left - 1);
      }
    }
    return this.#removeAt(g, drop);
  }

  /** Removes every member that belongs to `node`, everywhere. Returns what was removed, per group. */
  dropNode(node: number): Map<GroupKey, Pid[]> {
    this.#open();
    const out = new Map<GroupKey, Pid[]>();
    const groups = this.#nodes.get(node);
    if (groups === undefined) return out;
    // Room for every group's change first, so that a node drop is all or nothing.
    const sizes: number[] = [];
    for (const g of groups) this.#sizesFor(g.key, g, g.len - (g.byNode.get(node) ?? 0), sizes);
    this.#reserve(sizes);
    this.batch(() => {
      for (const g of [...groups]) {
        const i32 = this.#arena.i32;
        const drop = this.#drop;
        drop.length = 0;
        for (let i = 0, at = g.block + B_PIDS; i < g.len; i++, at += 2) {
          if (i32[at] === node) drop.push(i);
        }
        const removed = this.#removeAt(g, drop);
        if (removed.length > 0) out.set(g.key, removed);
      }
    });
    return out;
  }

  /**
   * Makes `entries` the whole contribution of `node`: its members in every other group
   * are removed, and its members in these groups are exactly these (pg's `handle_sync`).
   * Every pid must belong to `node`. Returns the changes, per group.
   */
  syncNode(node: number, entries: Iterable<readonly [GroupKey, readonly Pid[]]>): SyncChange[] {
    this.#open();
    const wanted = new Map<GroupKey, Pid[]>();
    for (const [key, pids] of entries) {
      checkPids(pids);
      for (const p of pids) {
        if (Math.floor(p / NODE_FACTOR) !== node) {
          throw new InvalidPidError(
            `sync of node ${node} lists pid ${p}, which belongs to another node`,
          );
        }
      }
      const list = wanted.get(key);
      if (list === undefined) wanted.set(key, [...pids]);
      else list.push(...pids);
    }
    const changes: SyncChange[] = [];
    const keys = new Set<GroupKey>(wanted.keys());
    for (const g of this.#nodes.get(node) ?? []) keys.add(g.key);
    // Room for every group's change first, so that a sync is all or nothing.
    const sizes: number[] = [];
    for (const key of keys) {
      const g = this.#groups.get(key);
      const len = (g?.len ?? 0) - (g?.byNode.get(node) ?? 0) + (wanted.get(key)?.length ?? 0);
      this.#sizesFor(key, g, len, sizes);
    }
    this.#reserve(sizes);
    this.batch(() => {
      for (const key of keys) {
        const change = this.#syncGroup(node, key, wanted.get(key) ?? []);
        if (change !== undefined) changes.push(change);
      }
    });
    return changes;
  }

  /** Empties the index and marks it closed: readers see no groups, writes throw. */
  close(): void {
    if (this.#closed) return;
    this.batch(() => {
      for (const node of [...this.#nodes.keys()]) this.dropNode(node);
    });
    this.#closed = true;
  }

  /**
   * Frees the reader records that a thread left behind (it exited while reading, or
   * never called `release()`). Only call it for threads that are gone.
   */
  releaseReadersOf(threadId: number): number {
    const i32 = this.#arena.i32;
    let n = 0;
    for (let r = 0; r < this.#maxReaders; r++) {
      const rec = READERS_BASE + r * READER_STRIDE;
      if (Atomics.load(i32, rec + R_OWNER) === threadId + 1) {
        Atomics.store(i32, rec + R_EPOCH, 0);
        Atomics.store(i32, rec + R_OWNER, 0);
        n++;
      }
    }
    if (n > 0) this.#reclaim();
    return n;
  }

  /** Reuses every retired block that no reader can see any more; returns the bytes freed. */
  reclaim(): number {
    return this.#reclaim() * WORD;
  }

  // Internals ----------------------------------------------------------------------

  #open(): void {
    if (this.#closed) throw new Error('this index was closed');
  }

  #read(g: GroupState): Pid[] {
    const i32 = this.#arena.i32;
    const out: Pid[] = new Array(g.len);
    for (let i = 0, at = g.block + B_PIDS; i < g.len; i++, at += 2) out[i] = pidAt(i32, at);
    return out;
  }

  /** Adjusts `node`'s member count in `g`, and the node's set of groups with it. */
  #count(g: GroupState, node: number, delta: number): void {
    const n = (g.byNode.get(node) ?? 0) + delta;
    if (n > 0) {
      g.byNode.set(node, n);
      if (n === delta) {
        const set = this.#nodes.get(node);
        if (set === undefined) this.#nodes.set(node, new Set([g]));
        else set.add(g);
      }
    } else if (g.byNode.delete(node)) {
      const set = this.#nodes.get(node);
      if (set?.delete(g) && set.size === 0) this.#nodes.delete(node);
    }
  }

  /**
   * The blocks that changing group `key` (`g`, or a new group when undefined) to `len`
   * members allocates at most: its member block; for a new group its key record; for a
   * new or vanishing group a new bucket block; and a path of radix nodes in each tree it
   * touches (one more level when the tree may grow).
   */
  #sizesFor(key: GroupKey, g: GroupState | undefined, len: number, out: number[]): void {
    const path = (depth: number) => {
      for (let i = 0; i < depth; i++) out.push(RADIX_FANOUT);
    };
    if (g === undefined) {
      if (len === 0) return;
      const entries = this.#bucketEntries(hashKey(key, this.#seed));
      out.push(keyRecordWords(key.length), memberBlockWords(len), 1 + 2 * (entries + 1));
      path(this.#bucketsDepth + 1);
      path(this.#slotsDepth + 1);
    } else if (len === 0) {
      const entries = this.#bucketEntries(g.hash);
      if (entries > 1) out.push(1 + 2 * (entries - 1));
      path(this.#bucketsDepth);
      path(this.#slotsDepth);
    } else {
      out.push(memberBlockWords(len));
      path(this.#slotsDepth);
    }
  }

  /**
   * Makes sure every block in `sizes` (plus a root record) can be allocated, so that the
   * operation cannot fail half-way. Reclaims first if it must; throws `IndexFullError`,
   * having changed nothing, if there is still no room.
   */
  #reserve(sizes: number[]): void {
    sizes.push(ROOT_WORDS);
    if (this.#alloc.fits(sizes)) return;
    this.#reclaim();
    if (this.#alloc.fits(sizes)) return;
    this.#alloc.coalesce();
    if (!this.#alloc.fits(sizes)) {
      throw new IndexFullError(
        `the shared index has no room for this change below its maxBytes (${this.#arena.buffer.maxByteLength} bytes); ` +
          'start the scope with a larger maxBytes, or remove members',
      );
    }
  }

  #newBlock(g: GroupState, len: number): number {
    const block = this.alloc(memberBlockWords(len));
    const i32 = this.#arena.i32;
    i32[block + B_GID] = g.gid;
    i32[block + B_KEY] = g.keyPtr;
    i32[block + B_LEN] = len;
    return block;
  }

  /** Points `g`'s slot at `block` (or deletes the group when `len` is 0) and gives up the old block. */
  #replace(g: GroupState, block: number, len: number): void {
    const old = g.block;
    const oldLen = g.len;
    if (len === 0) {
      this.#setSlot(g.slot, 0);
      this.#delete(g);
    } else {
      this.#setSlot(g.slot, block);
    }
    if (old !== 0) this.discard(old, memberBlockWords(oldLen));
    g.block = block;
    this.#members += len - oldLen;
    g.len = len;
  }

  /**
   * Removes the members at positions `drop` (ascending) by copying the runs between
   * them into a new block. Returns the removed pids.
   */
  #removeAt(g: GroupState, drop: readonly number[]): Pid[] {
    if (drop.length === 0) return [];
    const len = g.len - drop.length;
    const sizes: number[] = [];
    this.#sizesFor(g.key, g, len, sizes);
    this.#reserve(sizes);
    let i32 = this.#arena.i32;
    const from = g.block + B_PIDS;
    const removed: Pid[] = new Array(drop.length);
    for (let k = 0; k < drop.length; k++) removed[k] = pidAt(i32, from + 2 * drop[k]!);
    if (len === 0) {
      this.#replace(g, 0, 0);
    } else {
      const block = this.#newBlock(g, len);
      i32 = this.#arena.i32;
      let to = block + B_PIDS;
      let run = 0;
      for (const i of drop) {
        i32.copyWithin(to, from + 2 * run, from + 2 * i);
        to += 2 * (i - run);
        run = i + 1;
      }
      i32.copyWithin(to, from + 2 * run, from + 2 * g.len);
      this.#replace(g, block, len);
      for (const p of removed) this.#count(g, Math.floor(p / NODE_FACTOR), -1);
    }
    this.#changed();
    return removed;
  }

  /** Replaces `g`'s members with `pids` (per-node counts are the caller's business). */
  #rewrite(g: GroupState, pids: readonly Pid[]): void {
    if (pids.length === 0) {
      this.#replace(g, 0, 0);
      return;
    }
    const sizes: number[] = [];
    this.#sizesFor(g.key, g, pids.length, sizes);
    this.#reserve(sizes);
    const block = this.#newBlock(g, pids.length);
    const i32 = this.#arena.i32;
    for (let i = 0, at = block + B_PIDS; i < pids.length; i++, at += 2) writePid(i32, at, pids[i]!);
    this.#replace(g, block, pids.length);
  }

  #syncGroup(node: number, key: GroupKey, wanted: readonly Pid[]): SyncChange | undefined {
    const existing = this.#groups.get(key);
    const others: Pid[] = [];
    const had: Pid[] = [];
    if (existing !== undefined) {
      for (const p of this.#read(existing)) {
        if (Math.floor(p / NODE_FACTOR) === node) had.push(p);
        else others.push(p);
      }
    }
    if (had.length === wanted.length && had.every((p, i) => p === wanted[i])) return undefined;
    // Multiset difference: what the node gained and what it lost in this group.
    const balance = new Map<Pid, number>();
    for (const p of wanted) balance.set(p, (balance.get(p) ?? 0) + 1);
    for (const p of had) balance.set(p, (balance.get(p) ?? 0) - 1);
    const joined: Pid[] = [];
    const left: Pid[] = [];
    for (const [p, n] of balance) {
      for (let i = 0; i < n; i++) joined.push(p);
      for (let i = 0; i > n; i--) left.push(p);
    }
    if (existing === undefined) {
      this.join(key, wanted);
    } else {
      this.#rewrite(existing, [...others, ...wanted]);
      if (this.#groups.has(key)) this.#count(existing, node, wanted.length - had.length);
      this.#changed();
    }
    return joined.length + left.length === 0 ? undefined : { key, joined, left };
  }

  #create(key: GroupKey): GroupState {
    const hash = hashKey(key, this.#seed);
    const keyPtr = this.alloc(keyRecordWords(key.length));
    const i32 = this.#arena.i32;
    i32[keyPtr + K_HASH] = hash;
    i32[keyPtr + K_UNITS] = key.length;
    const u16 = this.#arena.u16;
    const at = (keyPtr + K_CHARS) * 2;
    for (let i = 0; i < key.length; i++) u16[at + i] = key.charCodeAt(i);
    if (key.length & 1) u16[at + key.length] = 0;
    const slot = this.#freeSlots.pop() ?? this.#bySlot.length;
    const gid = this.#nextGid;
    this.#nextGid = nextEpoch(gid); // same wrapping rule: never 0
    const g: GroupState = { key, hash, slot, gid, keyPtr, block: 0, len: 0, byNode: new Map() };
    this.#groups.set(key, g);
    this.#bySlot[slot] = g;
    this.#bucketInsert(g);
    return g;
  }

  #delete(g: GroupState): void {
    this.#groups.delete(g.key);
    this.#bySlot[g.slot] = undefined;
    this.#freeSlots.push(g.slot);
    this.#bucketRemove(g);
    this.discard(g.keyPtr, keyRecordWords(g.key.length));
    for (const node of g.byNode.keys()) {
      const set = this.#nodes.get(node);
      set?.delete(g);
      if (set?.size === 0) this.#nodes.delete(node);
    }
    g.byNode.clear();
  }

  #setSlot(slot: number, block: number): void {
    while (slot >= radixCapacity(this.#slotsDepth)) {
      this.#slots = radixDeepen(this, this.#slots);
      this.#slotsDepth++;
    }
    this.#slots = radixSet(this, this.#slots, this.#slotsDepth, slot, block);
  }

  // The bucket table: hash & mask → [n, (hash, slot) × n] ----------------------------

  #bucketOf(hash: number): number {
    return hash & ((1 << this.#bucketBits) - 1);
  }

  #bucketGet(index: number): number {
    // Beyond the tree's capacity the top-level index would wrap onto another bucket.
    if (index >= radixCapacity(this.#bucketsDepth)) return 0;
    let node = this.#buckets;
    const i32 = this.#arena.i32;
    for (let d = this.#bucketsDepth - 1; d >= 0 && node !== 0; d--) {
      node = i32[node + ((index >>> (5 * d)) & 31)]!;
    }
    return node;
  }

  /** Entries in the bucket that `hash` falls in now. */
  #bucketEntries(hash: number): number {
    const bucket = this.#bucketGet(this.#bucketOf(hash));
    return bucket === 0 ? 0 : this.#arena.i32[bucket]!;
  }

  #bucketPut(index: number, bucket: number): void {
    while (index >= radixCapacity(this.#bucketsDepth)) {
      this.#buckets = radixDeepen(this, this.#buckets);
      this.#bucketsDepth++;
    }
    this.#buckets = radixSet(this, this.#buckets, this.#bucketsDepth, index, bucket);
  }

  #bucketInsert(g: GroupState): void {
    if (this.#groups.size > 2 << this.#bucketBits && this.#rebucket(this.#bucketBits + 1)) return;
    const index = this.#bucketOf(g.hash);
    const old = this.#bucketGet(index);
    const n = old === 0 ? 0 : this.#arena.i32[old]!;
    const bucket = this.alloc(1 + 2 * (n + 1));
    const i32 = this.#arena.i32;
    if (old !== 0) i32.copyWithin(bucket + 1, old + 1, old + 1 + 2 * n);
    i32[bucket] = n + 1;
    i32[bucket + 1 + 2 * n] = g.hash;
    i32[bucket + 2 + 2 * n] = g.slot;
    this.#bucketPut(index, bucket);
    if (old !== 0) this.discard(old, 1 + 2 * n);
  }

  #bucketRemove(g: GroupState): void {
    if (
      this.#bucketBits > MIN_BUCKET_BITS &&
      this.#groups.size < 1 << (this.#bucketBits - 3) &&
      this.#rebucket(this.#bucketBits - 1)
    ) {
      return;
    }
    const index = this.#bucketOf(g.hash);
    const old = this.#bucketGet(index);
    if (old === 0) return;
    const i32 = this.#arena.i32;
    const n = i32[old]!;
    let bucket = 0;
    if (n > 1) {
      bucket = this.alloc(1 + 2 * (n - 1));
      const w = this.#arena.i32;
      let k = 0;
      for (let i = 0; i < n; i++) {
        if (w[old + 2 + 2 * i] === g.slot) continue;
        w[bucket + 1 + 2 * k] = w[old + 1 + 2 * i]!;
        w[bucket + 2 + 2 * k] = w[old + 2 + 2 * i]!;
        k++;
      }
      w[bucket] = k;
    }
    this.#bucketPut(index, bucket);
    this.discard(old, 1 + 2 * n);
  }

  /**
   * Rebuilds the bucket table with `2^bits` buckets from the writer's own list of
   * groups (the group being removed is already gone from it). Returns false, changing
   * nothing, when there is no room for the new table; lookups then just probe longer.
   */
  #rebucket(bits: number): boolean {
    const count = 1 << bits;
    const perBucket = new Map<number, GroupState[]>();
    const mask = count - 1;
    for (const g of this.#groups.values()) {
      const i = g.hash & mask;
      const list = perBucket.get(i);
      if (list === undefined) perBucket.set(i, [g]);
      else list.push(g);
    }
    let depth = 1;
    while (radixCapacity(depth) < count) depth++;
    // The new table's blocks: a bucket block per used bucket and the radix nodes above
    // them. Without room for all of them, keep the old table (lookups just probe longer).
    const sizes: number[] = [ROOT_WORDS];
    for (const list of perBucket.values()) sizes.push(1 + 2 * list.length);
    for (let level = 1, n = count; level <= depth; level++) {
      n = Math.ceil(n / RADIX_FANOUT);
      for (let k = 0; k < n; k++) sizes.push(RADIX_FANOUT);
    }
    if (!this.#alloc.fits(sizes)) {
      this.#reclaim();
      this.#alloc.coalesce();
      if (!this.#alloc.fits(sizes)) return false;
    }
    // Give up the old table, nodes and buckets alike.
    const i32 = this.#arena.i32;
    radixWalk(
      i32,
      this.#buckets,
      this.#bucketsDepth,
      this.#base,
      this.#arena.words,
      (bucket) => this.discard(bucket, 1 + 2 * i32[bucket]!),
      (node) => this.discard(node, RADIX_FANOUT),
    );
    this.#buckets = 0;
    this.#bucketsDepth = depth;
    this.#bucketBits = bits;
    for (const [index, list] of perBucket) {
      const bucket = this.alloc(1 + 2 * list.length);
      const w = this.#arena.i32;
      w[bucket] = list.length;
      for (let k = 0; k < list.length; k++) {
        w[bucket + 1 + 2 * k] = list[k]!.hash;
        w[bucket + 2 + 2 * k] = list[k]!.slot;
      }
      this.#bucketPut(index, bucket);
    }
    return true;
  }

  // Publishing and reclamation -----------------------------------------------------

  #changed(): void {
    this.#dirty = true;
    if (this.#batch === 0) this.#publish();
  }

  #publish(): void {
    if (!this.#dirty) return;
    const next = nextEpoch(this.#epoch);
    const rec = this.alloc(ROOT_WORDS);
    const i32 = this.#arena.i32;
    i32[rec + ROOT_EPOCH] = next;
    i32[rec + ROOT_SLOTS] = this.#slots;
    i32[rec + ROOT_SLOTS_DEPTH] = this.#slotsDepth;
    i32[rec + ROOT_BUCKETS] = this.#buckets;
    i32[rec + ROOT_BUCKETS_DEPTH] = this.#bucketsDepth;
    i32[rec + ROOT_BUCKET_BITS] = this.#bucketBits;
    i32[rec + ROOT_SLOT_LIMIT] = this.#bySlot.length;
    i32[rec + ROOT_GROUPS] = this.#groups.size;
    i32[rec + ROOT_MEMBERS] = this.#members;
    // The two stores that publish: root first, then the epoch that readers announce.
    Atomics.store(i32, H_ROOT, rec);
    Atomics.store(i32, H_EPOCH, next);
    if (this.#root !== 0) this.#alloc.retire(this.#root, ROOT_WORDS, next);
    this.#root = rec;
    this.#epoch = next;
    this.#fresh.clear();
    this.#dirty = false;
    const listeners = this.#listeners;
    for (let i = 0; i < listeners.length; i++) listeners[i]!();
    if (++this.#sinceReclaim >= RECLAIM_EVERY && this.#alloc.pending) this.#reclaim();
  }

  /** Frees retired blocks older than every announced reader epoch. Returns words freed. */
  #reclaim(): number {
    this.#sinceReclaim = 0;
    const i32 = this.#arena.i32;
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
}
