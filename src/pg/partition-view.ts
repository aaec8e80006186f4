/**
 * What a node reads while its link to a scope is cut (the netsplit test hook): the
 * index, which the coordinator writes and which no longer holds this node's members,
 * plus this node's own memberships, which it keeps through the cut, as a pg node
 * keeps seeing its own members during a netsplit. Every read (`count`, `pick`,
 * `whichGroups`…) sees the same merged membership. It allocates freely: cuts are rare.
 */
import { decodeGroup, encodeGroup, type Group, type GroupKey } from '../core/group.js';
import type { MembershipView } from '../core/membership-view.js';
import type { Pid } from '../core/pid.js';

export class PartitionView implements MembershipView {
  readonly #index: MembershipView;
  readonly #local: ReadonlyMap<GroupKey, ReadonlyMap<Pid, number>>;
  #rr = 0;

  constructor(index: MembershipView, local: ReadonlyMap<GroupKey, ReadonlyMap<Pid, number>>) {
    this.#index = index;
    this.#local = local;
  }

  members(group: Group): Pid[] {
    const out = this.#index.members(group);
    const counts = this.#local.get(encodeGroup(group));
    if (counts !== undefined) for (const [p, n] of counts) for (let i = 0; i < n; i++) out.push(p);
    return out;
  }

  count(group: Group): number {
    return this.members(group).length;
  }

  memberAt(group: Group, index: number): Pid | undefined {
    const all = this.members(group);
    return all.length === 0 ? undefined : all[(index >>> 0) % all.length];
  }

  next(group: Group): Pid | undefined {
    return this.memberAt(group, this.#rr++);
  }

  membersInto(group: Group, out: Float64Array): number {
    const all = this.members(group);
    for (let i = 0; i < Math.min(all.length, out.length); i++) out[i] = all[i]!;
    return all.length;
  }

  forEach(group: Group, fn: (pid: Pid, index: number) => void): number {
    const all = this.members(group);
    all.forEach((p, i) => fn(p, i));
    return all.length;
  }

  groups(): Group[] {
    const keys = new Set(this.#index.groups().map(encodeGroup));
    for (const key of this.#local.keys()) keys.add(key);
    return [...keys].map(decodeGroup);
  }
}
