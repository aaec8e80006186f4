/**
 * The reads of a scope's membership, whoever serves them: the shared index's reader,
 * or the merged view a node reads while its link to the scope is cut. The scope and
 * its dispatcher read through this, and nothing else.
 */
import type { Group } from './group.js';
import type { Pid } from './pid.js';

/** The reads a scope and its dispatcher make: the index reader, or this view during a cut. */
export interface MembershipView {
  members(group: Group): Pid[];
  count(group: Group): number;
  memberAt(group: Group, index: number): Pid | undefined;
  next(group: Group): Pid | undefined;
  membersInto(group: Group, out: Float64Array): number;
  forEach(group: Group, fn: (pid: Pid, index: number) => void): number;
  groups(): Group[];
}
