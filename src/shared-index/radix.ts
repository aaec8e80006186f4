/**
 * Persistent radix vectors in the arena: a map from a small integer to a word, shared
 * by the slot table (slot → member block) and the bucket table (bucket → bucket block).
 *
 * Nodes are 32 words, one child or value each; 0 means empty. The writer never changes
 * a node that a published root reaches: it copies the path from the root to the leaf
 * (path copying) and retires the old nodes. Nodes created since the last publish are
 * still private to the writer, so a second change in the same batch edits them in
 * place instead of copying again.
 */
import { RADIX_BITS, RADIX_FANOUT, RADIX_MASK, RADIX_MAX_DEPTH } from './layout.js';

/** Entries a radix vector of `depth` levels can hold. */
export function radixCapacity(depth: number): number {
  return 1 << (RADIX_BITS * depth);
}

/**
 * Reads entry `index`. Safe on garbage: every node must lie within `[base, limit)`,
 * and the depth is bounded, or the answer is 0.
 */
export function radixGet(
  i32: Int32Array,
  root: number,
  depth: number,
  index: number,
  base: number,
  limit: number,
): number {
  if (depth < 1 || depth > RADIX_MAX_DEPTH || index < 0 || index >= radixCapacity(depth)) return 0;
  let node = root;
  for (let shift = RADIX_BITS * (depth - 1); ; shift -= RADIX_BITS) {
    if (node < base || node + RADIX_FANOUT > limit) return 0;
    if (shift === 0) return i32[node + (index & RADIX_MASK)]!;
    node = i32[node + ((index >>> shift) & RADIX_MASK)]!;
  }
}

/**
 * Calls `leaf(value, index)` for every non-zero entry, in index order, and then
 * `inner(node)` for every node visited. Bounded like `radixGet`: nodes outside
 * `[base, limit)` are skipped, so a walk over garbage ends.
 */
export function radixWalk(
  i32: Int32Array,
  root: number,
  depth: number,
  base: number,
  limit: number,
  leaf: (value: number, index: number) => void,
  inner?: (node: number) => void,
): void {
  if (depth >= 1 && depth <= RADIX_MAX_DEPTH) walk(i32, root, depth, base, limit, 0, leaf, inner);
}

function walk(
  i32: Int32Array,
  node: number,
  depth: number,
  base: number,
  limit: number,
  prefix: number,
  leaf: (value: number, index: number) => void,
  inner: ((node: number) => void) | undefined,
): void {
  if (node < base || node + RADIX_FANOUT > limit) return;
  for (let j = 0; j < RADIX_FANOUT; j++) {
    const v = i32[node + j]!;
    if (v === 0) continue;
    const index = prefix * RADIX_FANOUT + j;
    if (depth === 1) leaf(v, index);
    else walk(i32, v, depth - 1, base, limit, index, leaf, inner);
  }
  inner?.(node);
}

/** What `radixSet` needs from the writer: its blocks (`WriterBlocks`, reclamation.ts). */
export interface RadixHost {
  /** Current Int32 view (it changes when the arena grows). */
  i32(): Int32Array;
  alloc(words: number): number;
  /** True for a block allocated since the last publish: no reader can see it. */
  isFresh(ptr: number): boolean;
  /** Gives up a block: freed at once if fresh, retired otherwise. */
  discard(ptr: number, words: number): void;
}

function writableCopy(host: RadixHost, node: number): number {
  if (node !== 0 && host.isFresh(node)) return node;
  const copy = host.alloc(RADIX_FANOUT);
  const i32 = host.i32();
  if (node === 0) i32.fill(0, copy, copy + RADIX_FANOUT);
  else {
    i32.copyWithin(copy, node, node + RADIX_FANOUT);
    host.discard(node, RADIX_FANOUT);
  }
  return copy;
}

/**
 * Sets entry `index` and returns the new root. `index` must be below
 * `radixCapacity(depth)`: grow the depth first with `radixDeepen`.
 */
export function radixSet(
  host: RadixHost,
  root: number,
  depth: number,
  index: number,
  value: number,
): number {
  const node = writableCopy(host, root);
  const at = node + ((index >>> (RADIX_BITS * (depth - 1))) & RADIX_MASK);
  if (depth === 1) {
    host.i32()[at] = value;
  } else {
    const child = radixSet(host, host.i32()[at]!, depth - 1, index, value);
    host.i32()[at] = child;
  }
  return node;
}

/** Adds one level on top of `root` so that the vector holds 32 times more. */
export function radixDeepen(host: RadixHost, root: number): number {
  const node = host.alloc(RADIX_FANOUT);
  const i32 = host.i32();
  i32.fill(0, node, node + RADIX_FANOUT);
  i32[node] = root;
  return node;
}
