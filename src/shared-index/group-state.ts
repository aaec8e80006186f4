/**
 * The writer's record of one non-empty group, shared by the group table (groups.ts)
 * and the bucket table (buckets.ts); its own module so that neither imports the other.
 */
import type { GroupKey } from '../core/group.js';

export interface GroupState {
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
