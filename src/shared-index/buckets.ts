/**
 * The writer's side of the bucket table: a radix vector from `hash & mask` to a bucket
 * block `[n, (hash, slot) × n]`, which readers search when they meet a group key for
 * the first time.
 *
 * Like every block, bucket blocks are copied, never changed in place once published:
 * adding or removing a group writes a new block for its bucket and gives up the old
 * one. The table doubles when groups outnumber buckets two to one and halves when
 * they fall to an eighth, so that probes stay short without thrashing.
 *
 * The resize happens between operations: at a publish (`settle`), and at the start of
 * an operation that would leave the table far too small (`keepUp`). Done in the middle
 * of an operation, it could take room that the rest of the operation had counted on.
 */
import type { GroupKey } from '../core/group.js';
import type { GroupState } from './group-state.js';
import * as layout from './layout.js';
import { radixCapacity, radixDeepen, radixSet, radixWalk } from './radix.js';
import type { WriterBlocks } from './reclamation.js';

// Module-local copies of the layout constants: V8 folds a module's own constants into
// optimized code but loads an imported binding on every use.
const { RADIX_FANOUT, ROOT_WORDS } = layout;

const MIN_BUCKET_BITS = 6;

export class BucketTable {
  readonly #blocks: WriterBlocks;
  /** The writer's groups: the table is rebuilt from them when it is resized. */
  readonly #groups: ReadonlyMap<GroupKey, GroupState>;
  #root = 0;
  #depth = 1;
  #bits = MIN_BUCKET_BITS;
  /** The group count crossed a resize threshold since the last `settle`. */
  #unsettled = false;

  constructor(blocks: WriterBlocks, groups: ReadonlyMap<GroupKey, GroupState>) {
    this.#blocks = blocks;
    this.#groups = groups;
  }

  /** Root of the radix vector (0 while empty). */
  get root(): number {
    return this.#root;
  }

  get depth(): number {
    return this.#depth;
  }

  /** The table has `2^bits` buckets. */
  get bits(): number {
    return this.#bits;
  }

  /** Entries in the bucket that `hash` falls in now. */
  entries(hash: number): number {
    const bucket = this.#get(this.#of(hash));
    return bucket === 0 ? 0 : this.#blocks.arena.i32[bucket]!;
  }

  /** Adds `g`, which must already be among the writer's groups. */
  insert(g: GroupState): void {
    if (this.#groups.size > 2 << this.#bits) this.#unsettled = true;
    const blocks = this.#blocks;
    const index = this.#of(g.hash);
    const old = this.#get(index);
    const n = old === 0 ? 0 : blocks.arena.i32[old]!;
    const bucket = blocks.alloc(1 + 2 * (n + 1));
    const i32 = blocks.arena.i32;
    if (old !== 0) i32.copyWithin(bucket + 1, old + 1, old + 1 + 2 * n);
    i32[bucket] = n + 1;
    i32[bucket + 1 + 2 * n] = g.hash;
    i32[bucket + 2 + 2 * n] = g.slot;
    this.#put(index, bucket);
    if (old !== 0) blocks.discard(old, 1 + 2 * n);
  }

  /** Removes `g`, which must already be gone from the writer's groups. */
  remove(g: GroupState): void {
    if (this.#bits > MIN_BUCKET_BITS && this.#groups.size < 1 << (this.#bits - 3))
      this.#unsettled = true;
    const blocks = this.#blocks;
    const index = this.#of(g.hash);
    const old = this.#get(index);
    if (old === 0) return;
    const i32 = blocks.arena.i32;
    const n = i32[old]!;
    let bucket = 0;
    if (n > 1) {
      bucket = blocks.alloc(1 + 2 * (n - 1));
      const w = blocks.arena.i32;
      let k = 0;
      for (let i = 0; i < n; i++) {
        if (w[old + 2 + 2 * i] === g.slot) continue;
        w[bucket + 1 + 2 * k] = w[old + 1 + 2 * i]!;
        w[bucket + 2 + 2 * k] = w[old + 2 + 2 * i]!;
        k++;
      }
      w[bucket] = k;
    }
    this.#put(index, bucket);
    blocks.discard(old, 1 + 2 * n);
  }

  /**
   * Resizes the table if the group count crossed a threshold since the last call. The
   * writer calls it right before it writes a root record, so that the rebuild takes
   * only room that is free after everything else the operation allocated; without room,
   * the table keeps its size (`#rebuild`).
   */
  settle(): void {
    if (!this.#unsettled) return;
    this.#unsettled = false;
    this.#resize(this.#groups.size);
  }

  /**
   * At the start of an operation that adds `extra` groups, before the writer reserves
   * room for it: grows the table when it would otherwise be over twice overdue. Within
   * one version (a batch of joins, a sync) nothing else grows it, and a small table's
   * buckets grow long, each insert rewriting its whole bucket: that took a fifth more
   * memory at the high-water mark. A table at most twice overdue is left to `settle`,
   * so that an index near full keeps the room a leave needs.
   */
  keepUp(extra: number): void {
    const n = this.#groups.size + extra;
    if (n > 4 << this.#bits) this.#resize(n);
  }

  #resize(n: number): void {
    let bits = this.#bits;
    while (n > 2 << bits) bits++;
    while (bits > MIN_BUCKET_BITS && n < 1 << (bits - 3)) bits--;
    if (bits !== this.#bits) this.#rebuild(bits);
  }

  #of(hash: number): number {
    return hash & ((1 << this.#bits) - 1);
  }

  #get(index: number): number {
    // Beyond the tree's capacity the top-level index would wrap onto another bucket.
    if (index >= radixCapacity(this.#depth)) return 0;
    let node = this.#root;
    const i32 = this.#blocks.arena.i32;
    for (let d = this.#depth - 1; d >= 0 && node !== 0; d--) {
      node = i32[node + ((index >>> (5 * d)) & 31)]!;
    }
    return node;
  }

  #put(index: number, bucket: number): void {
    while (index >= radixCapacity(this.#depth)) {
      this.#root = radixDeepen(this.#blocks, this.#root);
      this.#depth++;
    }
    this.#root = radixSet(this.#blocks, this.#root, this.#depth, index, bucket);
  }

  /**
   * Rebuilds the table with `2^bits` buckets from the writer's own list of groups.
   * Returns false, changing nothing, when there is no room for the new table; lookups
   * then just probe longer.
   */
  #rebuild(bits: number): boolean {
    const blocks = this.#blocks;
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
    if (!blocks.makeRoom(sizes)) return false;
    // Give up the old table, nodes and buckets alike.
    const i32 = blocks.arena.i32;
    radixWalk(
      i32,
      this.#root,
      this.#depth,
      blocks.base,
      blocks.arena.words,
      (bucket) => blocks.discard(bucket, 1 + 2 * i32[bucket]!),
      (node) => blocks.discard(node, RADIX_FANOUT),
    );
    this.#root = 0;
    this.#depth = depth;
    this.#bits = bits;
    for (const [index, list] of perBucket) {
      const bucket = blocks.alloc(1 + 2 * list.length);
      const w = blocks.arena.i32;
      w[bucket] = list.length;
      for (let k = 0; k < list.length; k++) {
        w[bucket + 1 + 2 * k] = list[k]!.hash;
        w[bucket + 2 + 2 * k] = list[k]!.slot;
      }
      this.#put(index, bucket);
    }
    return true;
  }
}
