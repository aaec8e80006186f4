/**
 * The writer's group bookkeeping and member blocks.
 *
 * The writer keeps on its own heap which groups exist, the slot and gid of each, and
 * how many members each node has in each, so that it never has to search the arena.
 * In the arena a group is a key record and a member block
 * `[gid, keyPtr, len, tag, (node, serial) × len]`, found through the slot table (a radix
 * vector slot → block) and the bucket table. A change never edits a published member
 * block: it writes a new one, points the slot at it, and gives up the old one.
 *
 * Nothing here publishes or checks room: the writer reserves room for a whole
 * operation first (`sizesFor`), then applies it with these steps and publishes once.
 */
import { type GroupKey, hashKey } from '../core/group.js';
import { NODE_FACTOR, type Pid } from '../core/pid.js';
import type { GroupState } from './group-state.js';
import { BucketTable } from './buckets.js';
import * as layout from './layout.js';
import { keyRecordWords, memberBlockWords, nextEpoch } from './layout.js';
import { radixCapacity, radixDeepen, radixSet } from './radix.js';
import type { WriterBlocks } from './reclamation.js';

// Module-local copies of the layout constants: V8 folds a module's own constants into
// optimized code but loads an imported binding on every use, which the hot paths feel.
const {
  B_GID,
  B_KEY,
  B_LEN,
  B_PIDS,
  B_TAG,
  K_CHARS,
  K_HASH,
  K_UNITS,
  RADIX_FANOUT,
  ROOT_MAX_CHANGED,
} = layout;

function pidAt(i32: Int32Array, at: number): Pid {
  return (i32[at]! * NODE_FACTOR + (i32[at + 1]! >>> 0)) as Pid;
}

function writePid(i32: Int32Array, at: number, pid: Pid): void {
  const node = Math.floor(pid / NODE_FACTOR);
  i32[at] = node;
  i32[at + 1] = pid - node * NODE_FACTOR;
}

export class GroupTable {
  /** Non-empty groups by key. */
  readonly byKey = new Map<GroupKey, GroupState>();
  /** The groups each node has members in. */
  readonly byNode = new Map<number, Set<GroupState>>();
  readonly buckets: BucketTable;
  readonly #blocks: WriterBlocks;
  readonly #seed: number;
  readonly #bySlot: (GroupState | undefined)[] = [];
  readonly #freeSlots: number[] = [];
  /** Positions to remove, reused by every removal so that a leave allocates only its result. */
  readonly #drop: number[] = [];
  #slots = 0;
  #slotsDepth = 1;
  /**
   * The slots pointed at another block since the last publish, for the next root record
   * (layout.ts, `ROOT_CHANGED`): the first `#changedCount` entries, or too many to list
   * when `#changedCount` is -1.
   */
  readonly #changed = new Int32Array(ROOT_MAX_CHANGED);
  #changedCount = 0;
  #members = 0;
  #nextGid = 1;

  constructor(blocks: WriterBlocks, seed: number) {
    this.#blocks = blocks;
    this.#seed = seed;
    this.buckets = new BucketTable(blocks, this.byKey);
  }

  /** Root of the slot table (0 while empty). */
  get slots(): number {
    return this.#slots;
  }

  get slotsDepth(): number {
    return this.#slotsDepth;
  }

  /** One more than the highest slot ever used: readers look no further. */
  get slotLimit(): number {
    return this.#bySlot.length;
  }

  /**
   * Writes the slots changed since the last publish at `at` in `i32` (at most
   * `ROOT_MAX_CHANGED`), starts a new list, and returns how many it wrote, or -1 when
   * there were too many to list or `list` is false (and it wrote none).
   */
  takeChanged(i32: Int32Array, at: number, list: boolean): number {
    const n = list ? this.#changedCount : -1;
    for (let k = 0; k < n; k++) i32[at + k] = this.#changed[k]!;
    this.#changedCount = 0;
    return n;
  }

  /** Words the list of changed slots takes in the next root record. */
  get changedWords(): number {
    return Math.max(0, this.#changedCount);
  }

  /** Memberships, joins counted. */
  get members(): number {
    return this.#members;
  }

  /** The members of `g`, read back from its block. */
  read(g: GroupState): Pid[] {
    const i32 = this.#blocks.arena.i32;
    const out: Pid[] = new Array(g.len);
    for (let i = 0, at = g.block + B_PIDS; i < g.len; i++, at += 2) out[i] = pidAt(i32, at);
    return out;
  }

  /**
   * The blocks that changing group `key` (`g`, or a new group when undefined) to `len`
   * members allocates at most: its member block; for a new group its key record; for a
   * new or vanishing group a new bucket block; and a path of radix nodes in each tree it
   * touches (one more level when the tree may grow).
   */
  sizesFor(key: GroupKey, g: GroupState | undefined, len: number, out: number[]): void {
    const path = (depth: number) => {
      for (let i = 0; i < depth; i++) out.push(RADIX_FANOUT);
    };
    const buckets = this.buckets;
    if (g === undefined) {
      if (len === 0) return;
      const entries = buckets.entries(hashKey(key, this.#seed));
      out.push(keyRecordWords(key.length), memberBlockWords(len), 1 + 2 * (entries + 1));
      path(buckets.depth + 1);
      path(this.#slotsDepth + 1);
    } else if (len === 0) {
      const entries = buckets.entries(g.hash);
      if (entries > 1) out.push(1 + 2 * (entries - 1));
      path(buckets.depth);
      path(this.#slotsDepth);
    } else {
      out.push(memberBlockWords(len));
      path(this.#slotsDepth);
    }
  }

  /** A new, empty group for `key`: its key record, a slot, a gid, and its bucket entry. */
  create(key: GroupKey): GroupState {
    const blocks = this.#blocks;
    const hash = hashKey(key, this.#seed);
    const keyPtr = blocks.alloc(keyRecordWords(key.length));
    const i32 = blocks.arena.i32;
    i32[keyPtr + K_HASH] = hash;
    i32[keyPtr + K_UNITS] = key.length;
    const u16 = blocks.arena.u16;
    const at = (keyPtr + K_CHARS) * 2;
    for (let i = 0; i < key.length; i++) u16[at + i] = key.charCodeAt(i);
    if (key.length & 1) u16[at + key.length] = 0;
    const slot = this.#freeSlots.pop() ?? this.#bySlot.length;
    const gid = this.#nextGid;
    this.#nextGid = nextEpoch(gid); // same wrapping rule: never 0
    const g: GroupState = { key, hash, slot, gid, keyPtr, block: 0, len: 0, byNode: new Map() };
    this.byKey.set(key, g);
    this.#bySlot[slot] = g;
    this.buckets.insert(g);
    return g;
  }

  /** Appends `pids` to `g`'s members, in a new block. */
  append(g: GroupState, pids: readonly Pid[]): void {
    const old = g.len;
    const block = this.#newBlock(g, old + pids.length);
    const i32 = this.#blocks.arena.i32;
    if (old > 0) i32.copyWithin(block + B_PIDS, g.block + B_PIDS, g.block + B_PIDS + 2 * old);
    for (let i = 0, at = block + B_PIDS + 2 * old; i < pids.length; i++, at += 2) {
      const pid = pids[i]!;
      const node = Math.floor(pid / NODE_FACTOR);
      i32[at] = node;
      i32[at + 1] = pid - node * NODE_FACTOR;
      this.count(g, node, 1);
    }
    this.#replace(g, block, old + pids.length);
  }

  /**
   * Removes one occurrence of each of `pids` from `g` (a pid listed twice leaves
   * twice). Returns the pids removed, in member order.
   */
  remove(g: GroupState, pids: readonly Pid[]): Pid[] {
    const i32 = this.#blocks.arena.i32;
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

  /** Removes every member of `g` that belongs to `node`. Returns the pids removed. */
  removeNode(g: GroupState, node: number): Pid[] {
    const i32 = this.#blocks.arena.i32;
    const drop = this.#drop;
    drop.length = 0;
    for (let i = 0, at = g.block + B_PIDS; i < g.len; i++, at += 2) {
      if (i32[at] === node) drop.push(i);
    }
    return this.#removeAt(g, drop);
  }

  /** Replaces `g`'s members with `pids` (per-node counts are the caller's business). */
  rewrite(g: GroupState, pids: readonly Pid[]): void {
    if (pids.length === 0) {
      this.#replace(g, 0, 0);
      return;
    }
    const sizes: number[] = [];
    this.sizesFor(g.key, g, pids.length, sizes);
    this.#blocks.reserve(sizes);
    const block = this.#newBlock(g, pids.length);
    const i32 = this.#blocks.arena.i32;
    for (let i = 0, at = block + B_PIDS; i < pids.length; i++, at += 2) writePid(i32, at, pids[i]!);
    this.#replace(g, block, pids.length);
  }

  /** Adjusts `node`'s member count in `g`, and the node's set of groups with it. */
  count(g: GroupState, node: number, delta: number): void {
    const n = (g.byNode.get(node) ?? 0) + delta;
    if (n > 0) {
      g.byNode.set(node, n);
      if (n === delta) {
        const set = this.byNode.get(node);
        if (set === undefined) this.byNode.set(node, new Set([g]));
        else set.add(g);
      }
    } else if (g.byNode.delete(node)) {
      const set = this.byNode.get(node);
      if (set?.delete(g) && set.size === 0) this.byNode.delete(node);
    }
  }

  #newBlock(g: GroupState, len: number): number {
    const block = this.#blocks.alloc(memberBlockWords(len));
    const i32 = this.#blocks.arena.i32;
    i32[block + B_GID] = g.gid;
    i32[block + B_KEY] = g.keyPtr;
    i32[block + B_LEN] = len;
    // The version that will publish this block: readers' copies of a block are keyed
    // by offset and tag, because a reused offset may come back for the same group.
    i32[block + B_TAG] = nextEpoch(this.#blocks.epoch);
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
    if (old !== 0) this.#blocks.discard(old, memberBlockWords(oldLen));
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
    this.sizesFor(g.key, g, len, sizes);
    this.#blocks.reserve(sizes);
    let i32 = this.#blocks.arena.i32;
    const from = g.block + B_PIDS;
    const removed: Pid[] = new Array(drop.length);
    for (let k = 0; k < drop.length; k++) removed[k] = pidAt(i32, from + 2 * drop[k]!);
    if (len === 0) {
      this.#replace(g, 0, 0);
    } else {
      const block = this.#newBlock(g, len);
      i32 = this.#blocks.arena.i32;
      let to = block + B_PIDS;
      let run = 0;
      for (const i of drop) {
        i32.copyWithin(to, from + 2 * run, from + 2 * i);
        to += 2 * (i - run);
        run = i + 1;
      }
      i32.copyWithin(to, from + 2 * run, from + 2 * g.len);
      this.#replace(g, block, len);
      for (const p of removed) this.count(g, Math.floor(p / NODE_FACTOR), -1);
    }
    return removed;
  }

  #delete(g: GroupState): void {
    this.byKey.delete(g.key);
    this.#bySlot[g.slot] = undefined;
    this.#freeSlots.push(g.slot);
    this.buckets.remove(g);
    this.#blocks.discard(g.keyPtr, keyRecordWords(g.key.length));
    for (const node of g.byNode.keys()) {
      const set = this.byNode.get(node);
      set?.delete(g);
      if (set?.size === 0) this.byNode.delete(node);
    }
    g.byNode.clear();
  }

  #setSlot(slot: number, block: number): void {
    const n = this.#changedCount;
    if (n >= 0 && (n === 0 || this.#changed[n - 1] !== slot)) {
      if (n < ROOT_MAX_CHANGED) this.#changed[this.#changedCount++] = slot;
      else this.#changedCount = -1;
    }
    while (slot >= radixCapacity(this.#slotsDepth)) {
      this.#slots = radixDeepen(this.#blocks, this.#slots);
      this.#slotsDepth++;
    }
    this.#slots = radixSet(this.#blocks, this.#slots, this.#slotsDepth, slot, block);
  }
}
