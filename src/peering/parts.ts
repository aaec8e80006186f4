/**
 * Cutting membership into broker-sized messages. A broker takes about 1 MB per message
 * by default, and a sync of 100,000 memberships is larger, so a sync goes in parts (and
 * a join of many pids in several joins). Sizes are estimated, not measured: a pid costs
 * 9 bytes serialized (a tag and a double), a key about its length plus a little.
 */
import type { GroupKey } from '../core/group.js';
import type { Pid } from '../core/pid.js';

const PID_BYTES = 9;
const ENTRY_BYTES = 16;

/** `groups` in parts of at most about `budget` bytes each (a large group spans several parts). */
export function syncParts(
  groups: Iterable<readonly [GroupKey, Pid[]]>,
  budget: number,
): [GroupKey, Pid[]][][] {
  const parts: [GroupKey, Pid[]][][] = [[]];
  let size = 0;
  for (const [key, pids] of groups) {
    // An empty group still goes, once (it never does: groups exist while they have members).
    for (let i = 0; i < pids.length || i === 0;) {
      const room = Math.max(1, Math.floor((budget - size - key.length - ENTRY_BYTES) / PID_BYTES));
      const slice = pids.slice(i, i + room);
      parts[parts.length - 1]!.push([key, slice]);
      size += key.length + ENTRY_BYTES + slice.length * PID_BYTES;
      i += Math.max(slice.length, 1);
      if (size >= budget) {
        parts.push([]);
        size = 0;
      }
    }
  }
  if (parts.length > 1 && parts[parts.length - 1]!.length === 0) parts.pop();
  return parts;
}

/** `pids` in slices of at most about `budget` bytes each (the list itself when it fits). */
export function pidSlices(pids: Pid[], budget: number): Pid[][] {
  const step = Math.max(1, Math.floor(budget / PID_BYTES));
  if (pids.length <= step) return [pids];
  const out: Pid[][] = [];
  for (let i = 0; i < pids.length; i += step) out.push(pids.slice(i, i + step));
  return out;
}
