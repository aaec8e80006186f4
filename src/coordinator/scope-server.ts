/**
 * One scope on the coordinator: pg's gen_server, with the ETS table replaced by the
 * shared index. It is the only writer of that index.
 *
 * Like pg, it keeps what each node contributed (in the index writer's per-node
 * bookkeeping), replaces it on `sync`, applies `join`/`leave`/`exit` from nodes that
 * are part of the scope, drops a node's contribution when it goes, and tells monitors
 * about each change. It checks every pid against the node that sent it: a node can
 * never add or remove another node's pids, whatever its message says.
 */
import type { GroupKey } from '../core/group.js';
import { nodeOf, type Pid } from '../core/pid.js';
import type { ExitLeave, Join, Leave, MonitorRequest, Sync, ToNode } from '../protocol/messages.js';
import type { IndexOptions } from '../shared-index/types.js';
import { IndexWriter } from '../shared-index/writer.js';

interface Monitor {
  node: number;
  ref: number;
  key: GroupKey | undefined;
}

export interface ScopeCounters {
  /** Messages from nodes that are not part of the scope: ignored (pg's `overlay_missing`). */
  ignored: number;
  /** Messages naming pids of another node than their sender: dropped. */
  forged: number;
}

export class ScopeServer {
  readonly name: string;
  readonly writer: IndexWriter;
  readonly #send: (node: number, message: ToNode) => void;
  /** Nodes in the scope's overlay: they synced, and have not gone or been cut off since. */
  readonly #attached = new Set<number>();
  /** Nodes whose link to the scope is cut (a test hook): even a sync from them is ignored. */
  readonly #cut = new Set<number>();
  readonly #scopeMonitors = new Map<string, Monitor>();
  readonly #groupMonitors = new Map<GroupKey, Map<string, Monitor>>();
  readonly counters: ScopeCounters = { ignored: 0, forged: 0 };
  /**
   * Told of every change to the table, whoever made it (peering.ts forwards the
   * changes of this process's nodes to the other processes).
   */
  onChange: ((kind: 'join' | 'leave', key: GroupKey, pids: Pid[]) => void) | undefined;

  constructor(name: string, options: IndexOptions, send: (node: number, message: ToNode) => void) {
    this.name = name;
    this.writer = new IndexWriter(options);
    this.#send = send;
  }

  /** Nodes with members in the scope. */
  nodes(): number[] {
    return this.writer.nodes();
  }

  /** Nodes currently part of the scope. */
  attached(): number[] {
    return [...this.#attached];
  }

  /** pg's `handle_sync`: what `from` sends replaces what the scope held for it. */
  sync(from: number, m: Sync): void {
    if (this.#cut.has(from)) {
      // A sync sent before the node learned of the cut: it must not re-attach it.
      this.counters.ignored++;
      return;
    }
    if (
      !this.#owned(
        from,
        m.groups.flatMap(([, pids]) => pids),
      )
    )
      return;
    this.#attached.add(from);
    for (const change of this.writer.syncNode(from, m.groups)) {
      if (change.joined.length > 0) this.#notify('join', change.key, change.joined);
      if (change.left.length > 0) this.#notify('leave', change.key, change.left);
    }
  }

  join(from: number, m: Join): void {
    if (!this.#member(from, m.ref) || !this.#owned(from, m.pids, m.ref)) return;
    this.writer.join(m.key, m.pids);
    this.#notify('join', m.key, m.pids);
    this.#send(from, { t: 'ack', ref: m.ref });
  }

  leave(from: number, m: Leave): void {
    if (!this.#member(from, m.ref) || !this.#owned(from, m.pids, m.ref)) return;
    const removed = this.writer.leave(m.key, m.pids);
    if (removed.length > 0) this.#notify('leave', m.key, removed);
    this.#send(from, { t: 'ack', ref: m.ref, result: removed.length > 0 ? 'ok' : 'not_joined' });
  }

  /**
   * A process of `from` exited: it leaves each group once per counted join, all in one
   * version, and monitors get one `leave` event per counted join (as pg sends them).
   */
  exit(from: number, m: ExitLeave): void {
    if (!this.#member(from) || !this.#owned(from, [m.pid])) return;
    const left: GroupKey[] = [];
    this.writer.batch(() => {
      for (const key of m.keys) if (this.writer.leave(key, [m.pid]).length > 0) left.push(key);
    });
    for (const key of left) this.#notify('leave', key, [m.pid]);
  }

  monitor(from: number, m: MonitorRequest): void {
    const mon: Monitor = { node: from, ref: m.ref, key: m.key };
    const id = `${from}:${m.ref}`;
    let groups: [GroupKey, Pid[]][];
    if (m.key === undefined) {
      this.#scopeMonitors.set(id, mon);
      groups = this.writer.keys().map((k) => [k, this.writer.members(k)]);
    } else {
      let set = this.#groupMonitors.get(m.key);
      if (set === undefined) {
        set = new Map();
        this.#groupMonitors.set(m.key, set);
      }
      set.set(id, mon);
      groups = [[m.key, this.writer.members(m.key)]];
    }
    this.#send(from, { t: 'monitored', ref: m.ref, groups });
  }

  demonitor(from: number, ref: number, monitor: number): void {
    this.#dropMonitor(`${from}:${monitor}`);
    this.#send(from, { t: 'ack', ref });
  }

  /** `node` left the scope (it went down, or its link to the scope was cut): its members go, in one version. */
  /** Cuts (or restores) `node`'s link to the scope: cut, it is detached and stays out until restored. */
  cut(node: number, cut: boolean): void {
    if (cut) {
      this.#cut.add(node);
      this.detach(node, false);
    } else {
      this.#cut.delete(node);
    }
  }

  detach(node: number, removeMonitors: boolean): void {
    this.#attached.delete(node);
    if (removeMonitors) this.#cut.delete(node);
    for (const [key, pids] of this.writer.dropNode(node)) this.#notify('leave', key, pids);
    if (removeMonitors) {
      for (const [id, m] of this.#scopeMonitors)
        if (m.node === node) this.#scopeMonitors.delete(id);
      for (const [key, set] of this.#groupMonitors) {
        for (const [id, m] of set) if (m.node === node) set.delete(id);
        if (set.size === 0) this.#groupMonitors.delete(key);
      }
    }
  }

  // Members of other OS processes (peering.ts checked who owns them) ------------------

  /** Every member of the nodes `local` accepts, per group: what a sync to a peer carries. */
  contributionOf(local: (node: number) => boolean): [GroupKey, Pid[]][] {
    const out = new Map<GroupKey, Pid[]>();
    for (const node of this.writer.nodes()) {
      if (!local(node)) continue;
      for (const [key, pids] of this.writer.contribution(node)) {
        const list = out.get(key);
        if (list === undefined) out.set(key, pids);
        else list.push(...pids);
      }
    }
    return [...out];
  }

  /**
   * pg's `handle_sync` for a peer process: `groups` replaces all that `nodes` (the
   * peer's nodes) held, in one version. The caller checked that every pid is the peer's.
   */
  replaceNodes(nodes: Iterable<number>, groups: readonly (readonly [GroupKey, Pid[]])[]): void {
    const byNode = new Map<number, [GroupKey, Pid[]][]>();
    for (const node of nodes) byNode.set(node, []);
    for (const [key, pids] of groups) {
      const split = new Map<number, Pid[]>();
      for (const p of pids) {
        const n = nodeOf(p);
        const list = split.get(n);
        if (list === undefined) split.set(n, [p]);
        else list.push(p);
      }
      for (const [n, list] of split) {
        let entries = byNode.get(n);
        if (entries === undefined) byNode.set(n, (entries = []));
        entries.push([key, list]);
      }
    }
    const changes = this.writer.batch(() =>
      [...byNode].flatMap(([node, entries]) => this.writer.syncNode(node, entries)),
    );
    for (const change of changes) {
      if (change.joined.length > 0) this.#notify('join', change.key, change.joined);
      if (change.left.length > 0) this.#notify('leave', change.key, change.left);
    }
  }

  /** A peer's pids joined (the caller checked they are the peer's). */
  joinRemote(key: GroupKey, pids: Pid[]): void {
    this.writer.join(key, pids);
    this.#notify('join', key, pids);
  }

  /** A peer's pids left. */
  leaveRemote(key: GroupKey, pids: Pid[]): void {
    const removed = this.writer.leave(key, pids);
    if (removed.length > 0) this.#notify('leave', key, removed);
  }

  /** A peer went down, or stopped this scope: its nodes' members go, in one version. */
  dropNodes(nodes: readonly number[]): void {
    const dropped = this.writer.batch(() => nodes.map((n) => [...this.writer.dropNode(n)]));
    for (const list of dropped) for (const [key, pids] of list) this.#notify('leave', key, pids);
  }

  /** Stops the scope: the index is emptied and closed. */
  close(): void {
    this.#scopeMonitors.clear();
    this.#groupMonitors.clear();
    this.#attached.clear();
    this.writer.close();
  }

  #dropMonitor(id: string): void {
    if (this.#scopeMonitors.delete(id)) return;
    for (const [key, set] of this.#groupMonitors) {
      if (set.delete(id)) {
        if (set.size === 0) this.#groupMonitors.delete(key);
        return;
      }
    }
  }

  /** pg's `overlay_missing`: a node outside the scope is not applied (but not left hanging either). */
  #member(from: number, ref?: number): boolean {
    if (this.#attached.has(from)) return true;
    this.counters.ignored++;
    if (ref !== undefined)
      this.#send(from, { t: 'ack', ref, error: 'this node is not part of the scope' });
    return false;
  }

  #owned(from: number, pids: readonly Pid[], ref?: number): boolean {
    for (const p of pids) {
      if (nodeOf(p) !== from) {
        this.counters.forged++;
        if (ref !== undefined)
          this.#send(from, { t: 'ack', ref, error: `pid ${p} does not belong to node ${from}` });
        return false;
      }
    }
    return true;
  }

  #notify(kind: 'join' | 'leave', key: GroupKey, pids: Pid[]): void {
    this.onChange?.(kind, key, pids);
    if (this.#scopeMonitors.size === 0 && this.#groupMonitors.size === 0) return;
    for (const m of this.#scopeMonitors.values())
      this.#send(m.node, { t: 'event', ref: m.ref, kind, key, pids });
    const set = this.#groupMonitors.get(key);
    if (set !== undefined)
      for (const m of set.values()) this.#send(m.node, { t: 'event', ref: m.ref, kind, key, pids });
  }
}
