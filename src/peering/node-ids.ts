/**
 * Node ids that stay unique across peer processes, so that pids do too and stay plain
 * numbers (`node × 2^32 + serial`).
 *
 * The 21-bit node id is split into a block (`tag`, the top 13 bits) and 256 ids in the
 * block. A process owns whole blocks: it picks a random block that no peer it has heard
 * of owns or has seen die (the probe at start-up collects both), and takes another the
 * same way when it has used 256 node ids. Peers learn its blocks from its heartbeats and
 * accept its pids only in those blocks, first come first served.
 *
 * What this does not guarantee: two processes that start within the same probe window
 * can pick the same block (1 in 8,191 per pair). The later one is then refused by the
 * peers that knew the earlier (it counts as a conflict in `cluster.stats()`), rather
 * than let two processes own the same pids.
 */
import { MAX_NODE_ID } from '../core/pid.js';

export const TAG_BITS = 8;
export const NODES_PER_TAG = 1 << TAG_BITS;
/** Block 0 is never picked: ids 0–255 stay those of a cluster that peers with no one. */
const TAGS = (MAX_NODE_ID >> TAG_BITS) + 1;

export function tagOf(node: number): number {
  return node >> TAG_BITS;
}

export class NodeIds {
  /** Blocks this process owns, oldest first. */
  readonly tags: number[] = [];
  #next = 0;
  #left = 0;
  /** Blocks owned by others, or seen dead: never picked. */
  readonly #taken: (tag: number) => boolean;

  constructor(taken: (tag: number) => boolean) {
    this.#taken = taken;
  }

  /** True when `node` is in one of this process's blocks. */
  owns(node: number): boolean {
    return this.tags.includes(tagOf(node));
  }

  /**
   * Takes the first block now, so that this process's first heartbeat already claims it:
   * a peer accepts pids only in blocks it has heard claimed.
   */
  first(): void {
    if (this.tags.length === 0) this.#take();
  }

  /** The next node id; `grew` is called when that took a new block. */
  next(grew?: (tag: number) => void): number {
    if (this.#left === 0) grew?.(this.#take());
    this.#left--;
    return this.#next++;
  }

  #take(): number {
    const tag = this.#pick();
    this.tags.push(tag);
    this.#next = tag << TAG_BITS;
    this.#left = NODES_PER_TAG;
    return tag;
  }

  #pick(): number {
    for (let tries = 0; tries < 10_000; tries++) {
      const tag = 1 + Math.floor(Math.random() * (TAGS - 1));
      if (!this.tags.includes(tag) && !this.#taken(tag)) return tag;
    }
    throw new RangeError('no free block of node ids is left among the peer processes');
  }
}
