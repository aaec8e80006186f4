/**
 * The index's public types: its sizing options, the handle a thread needs to read it,
 * what a sync changed, and its statistics. Their own module so that the protocol, the
 * coordinator and the cluster can name them without importing the writer.
 */
import type { GroupKey } from '../core/group.js';
import type { Pid } from '../core/pid.js';

/** Sizing of a shared index (`startCluster({ index })`, `cluster.startScope(name, index)`). */
export interface IndexOptions {
  /** Bytes reserved at first; the buffer doubles as needed. Default 1 MiB. */
  initialBytes?: number;
  /** Hard cap on the buffer (at most 4 GiB). Default 1 GiB: only address space until used. */
  maxBytes?: number;
  /** Threads that can read at the same time (each takes a 64-byte record). Default 64. */
  maxReaders?: number;
}

/** What a thread needs to read an index: structured-cloneable, send it in `workerData` or a message. */
export interface IndexHandle {
  /** The growable SharedArrayBuffer that holds the index. */
  readonly buffer: SharedArrayBuffer;
}

/** Members that one node gained and lost in one group through a sync. */
export interface SyncChange {
  /** The group's canonical key. */
  key: GroupKey;
  /** Pids of the node that are new in the group (duplicates included). */
  joined: Pid[];
  /** Pids of the node that left the group. */
  left: Pid[];
}

/** Sizes and counts of an index (`writer.stats()`). */
export interface IndexStats {
  /** Bytes of the SharedArrayBuffer in use (high-water mark of the arena, header included). */
  usedBytes: number;
  /** Bytes committed to the buffer. */
  committedBytes: number;
  /** Bytes free for reuse. */
  freeBytes: number;
  /** Bytes waiting for readers to move past them before reuse. */
  retiredBytes: number;
  /** Non-empty groups. */
  groups: number;
  /** Memberships (joins counted). */
  members: number;
  /** The version last published. */
  epoch: number;
}
