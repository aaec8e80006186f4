/**
 * The single writer of a shared index: the coordinator thread of a scope. This file is
 * its public API and its publishing; the work is done by its parts:
 *
 * - groups.ts: which groups exist, in which slot, which nodes have members where, and
 *   the member blocks (with buckets.ts, the bucket table);
 * - reclamation.ts: allocation, retirement and reuse of blocks, and the reader records
 *   that decide when reuse is safe.
 *
 * Every operation is atomic for readers: they see the version before it or the version
 * after it, never a half-applied one, because nothing becomes reachable before the
 * single `Atomics.store` of the new root.
 *
 * An operation that fails (bad input, or no room below `maxBytes`) fails before it
 * changes anything: inputs are checked and room is reserved first.
 */
import { describe, InvalidPidError } from '../core/errors.js';
import type { GroupKey } from '../core/group.js';
import { isPid, NODE_FACTOR, type Pid } from '../core/pid.js';
import type { IndexHandle, IndexOptions, IndexStats, SyncChange } from './types.js';
import { Arena, WORD } from './arena.js';
import { GroupTable } from './groups.js';
import * as layout from './layout.js';
import { dataBase, nextEpoch } from './layout.js';
import { WriterBlocks } from './reclamation.js';

// Module-local copies of the layout constants: V8 folds a module's own constants into
// optimized code but loads an imported binding on every use, which the hot paths feel.
const {
  H_COMMITTED,
  H_EPOCH,
  H_MAGIC,
  H_MAX_READERS,
  H_ROOT,
  H_SEED,
  H_VERSION,
  LAYOUT_VERSION,
  MAGIC,
  ROOT_BUCKETS,
  ROOT_BUCKETS_DEPTH,
  ROOT_BUCKET_BITS,
  ROOT_EPOCH,
  ROOT_GROUPS,
  ROOT_CHANGED,
  ROOT_MEMBERS,
  ROOT_PREV,
  ROOT_SLOTS,
  ROOT_SLOTS_DEPTH,
  ROOT_SLOT_LIMIT,
  ROOT_WORDS,
} = layout;

const DEFAULT_MAX_BYTES = 1 << 30;

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
export class IndexWriter {
  /** What readers on other threads need: send it in `workerData` or a message. */
  readonly handle: IndexHandle;
  readonly #arena: Arena;
  readonly #blocks: WriterBlocks;
  readonly #groups: GroupTable;
  #listeners: (() => void)[] = [];
  #dirty = true;
  #batch = 0;
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
    const seed = (Math.random() * 0x1_0000_0000) | 0;
    this.#blocks = new WriterBlocks(this, this.#arena, base, maxReaders);
    this.#groups = new GroupTable(this.#blocks, seed);
    const i32 = this.#arena.i32;
    i32[H_MAGIC] = MAGIC;
    i32[H_VERSION] = LAYOUT_VERSION;
    i32[H_MAX_READERS] = maxReaders;
    i32[H_SEED] = seed;
    Atomics.store(i32, H_COMMITTED, this.#arena.words);
    this.handle = { buffer };
    this.#publish();
  }

  // Reads of the writer's own state -------------------------------------------------

  /** Epoch of the last published version. */
  get epoch(): number {
    return this.#blocks.epoch;
  }

  /** Number of non-empty groups. */
  get groupCount(): number {
    return this.#groups.byKey.size;
  }

  /** True when `key` has members. */
  has(key: GroupKey): boolean {
    return this.#groups.byKey.has(key);
  }

  /** Members of `key`, from the writer's own copy (no reader section needed). */
  members(key: GroupKey): Pid[] {
    const g = this.#groups.byKey.get(key);
    return g === undefined ? [] : this.#groups.read(g);
  }

  /** Members of `key` that belong to `node`. */
  membersOf(key: GroupKey, node: number): Pid[] {
    const g = this.#groups.byKey.get(key);
    if (g === undefined || !g.byNode.has(node)) return [];
    return this.#groups.read(g).filter((p) => Math.floor(p / NODE_FACTOR) === node);
  }

  /** Every group `node` has members in, with those members. */
  contribution(node: number): Map<GroupKey, Pid[]> {
    const out = new Map<GroupKey, Pid[]>();
    for (const g of this.#groups.byNode.get(node) ?? []) {
      out.set(g.key, this.membersOf(g.key, node));
    }
    return out;
  }

  /** Nodes that have members somewhere. */
  nodes(): number[] {
    return [...this.#groups.byNode.keys()];
  }

  /** Keys of all non-empty groups. */
  keys(): GroupKey[] {
    return [...this.#groups.byKey.keys()];
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
    const a = this.#blocks.stats();
    return {
      usedBytes: a.usedWords * WORD,
      committedBytes: this.#arena.words * WORD,
      freeBytes: a.freeWords * WORD,
      retiredBytes: a.retiredWords * WORD,
      groups: this.#groups.byKey.size,
      members: this.#groups.members,
      epoch: this.#blocks.epoch,
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
    const groups = this.#groups;
    const existing = groups.byKey.get(key);
    if (existing === undefined) groups.buckets.keepUp(1);
    const sizes: number[] = [];
    groups.sizesFor(key, existing, (existing?.len ?? 0) + pids.length, sizes);
    this.#blocks.reserve(sizes);
    groups.append(existing ?? groups.create(key), pids);
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
    const g = this.#groups.byKey.get(key);
    if (g === undefined || pids.length === 0) return [];
    const removed = this.#groups.remove(g, pids);
    if (removed.length > 0) this.#changed();
    return removed;
  }

  /** Removes every member that belongs to `node`, everywhere. Returns what was removed, per group. */
  dropNode(node: number): Map<GroupKey, Pid[]> {
    this.#open();
    const out = new Map<GroupKey, Pid[]>();
    const groups = this.#groups;
    const mine = groups.byNode.get(node);
    if (mine === undefined) return out;
    // Room for every group's change first, so that a node drop is all or nothing.
    const sizes: number[] = [];
    for (const g of mine) groups.sizesFor(g.key, g, g.len - (g.byNode.get(node) ?? 0), sizes);
    this.#blocks.reserve(sizes);
    this.batch(() => {
      for (const g of [...mine]) {
        const removed = groups.removeNode(g, node);
        if (removed.length > 0) {
          this.#changed();
          out.set(g.key, removed);
        }
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
    const groups = this.#groups;
    const changes: SyncChange[] = [];
    const keys = new Set<GroupKey>(wanted.keys());
    let added = 0;
    for (const key of keys) if (!groups.byKey.has(key)) added++;
    groups.buckets.keepUp(added);
    for (const g of groups.byNode.get(node) ?? []) keys.add(g.key);
    // Room for every group's change first, so that a sync is all or nothing.
    const sizes: number[] = [];
    for (const key of keys) {
      const g = groups.byKey.get(key);
      const len = (g?.len ?? 0) - (g?.byNode.get(node) ?? 0) + (wanted.get(key)?.length ?? 0);
      groups.sizesFor(key, g, len, sizes);
    }
    this.#blocks.reserve(sizes);
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
      for (const node of [...this.#groups.byNode.keys()]) this.dropNode(node);
    });
    this.#closed = true;
  }

  /**
   * Frees the reader records that a thread left behind (it exited while reading, or
   * never called `release()`). Only call it for threads that are gone.
   */
  releaseReadersOf(threadId: number): number {
    return this.#blocks.releaseReadersOf(threadId);
  }

  /** Reuses every retired block that no reader can see any more; returns the bytes freed. */
  reclaim(): number {
    return this.#blocks.reclaim() * WORD;
  }

  // Internals ----------------------------------------------------------------------

  #open(): void {
    if (this.#closed) throw new Error('this index was closed');
  }

  #syncGroup(node: number, key: GroupKey, wanted: readonly Pid[]): SyncChange | undefined {
    const groups = this.#groups;
    const existing = groups.byKey.get(key);
    const others: Pid[] = [];
    const had: Pid[] = [];
    if (existing !== undefined) {
      for (const p of groups.read(existing)) {
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
      groups.rewrite(existing, [...others, ...wanted]);
      if (groups.byKey.has(key)) groups.count(existing, node, wanted.length - had.length);
      this.#changed();
    }
    return joined.length + left.length === 0 ? undefined : { key, joined, left };
  }

  // Publishing ---------------------------------------------------------------------

  #changed(): void {
    this.#dirty = true;
    if (this.#batch === 0) this.#publish();
  }

  /**
   * Writes a root record for the current trees and makes it the version readers read.
   * Everything it reaches was written with plain stores before the two atomic stores
   * below, which is what makes plain reads enough (layout.ts).
   */
  #publish(): void {
    if (!this.#dirty) return;
    const blocks = this.#blocks;
    const groups = this.#groups;
    const buckets = groups.buckets;
    buckets.settle();
    const next = nextEpoch(blocks.epoch);
    // The operation reserved room for a root record without its list of changed slots
    // (`WriterBlocks.reserve`), so that listing them never makes a write fail: short of
    // room, the list is left out, and readers just check every group again.
    const list = blocks.fits(ROOT_WORDS + groups.changedWords);
    const words = list ? ROOT_WORDS + groups.changedWords : ROOT_WORDS;
    const rec = blocks.alloc(words);
    const i32 = this.#arena.i32;
    i32[rec + ROOT_EPOCH] = next;
    i32[rec + ROOT_SLOTS] = groups.slots;
    i32[rec + ROOT_SLOTS_DEPTH] = groups.slotsDepth;
    i32[rec + ROOT_BUCKETS] = buckets.root;
    i32[rec + ROOT_BUCKETS_DEPTH] = buckets.depth;
    i32[rec + ROOT_BUCKET_BITS] = buckets.bits;
    i32[rec + ROOT_SLOT_LIMIT] = groups.slotLimit;
    i32[rec + ROOT_GROUPS] = groups.byKey.size;
    i32[rec + ROOT_MEMBERS] = groups.members;
    // What changed since the version before, so that a reader that read that one keeps
    // what it knows of every other group (lookup.ts, `#catchUp`).
    i32[rec + ROOT_PREV] = blocks.root;
    i32[rec + ROOT_CHANGED] = groups.takeChanged(i32, rec + ROOT_WORDS, list);
    // The two stores that publish: root first, then the epoch that readers announce.
    Atomics.store(i32, H_ROOT, rec);
    Atomics.store(i32, H_EPOCH, next);
    blocks.published(rec, words, next);
    this.#dirty = false;
    const listeners = this.#listeners;
    for (let i = 0; i < listeners.length; i++) listeners[i]!();
    blocks.tick();
  }
}
