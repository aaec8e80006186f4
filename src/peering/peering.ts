/**
 * Peering: the coordinators of several OS processes (on one host or many) speak pg's
 * protocol to each other over a broker (transport.ts), so that one membership spans
 * them all. Each process keeps its own cluster, its shared index and all of its speed;
 * the members of the other processes live in the local index too, so reads never touch
 * the network.
 *
 * ## The protocol (messages in wire.ts), as pg's
 *
 *   start-up   `probe` ─▶ all; every peer answers `hb` (with the node-id blocks it owns
 *              and the dead ones it remembers); after the probe window this process
 *              picks a free block (node-ids.ts) and starts.
 *   hb         every `heartbeatMs` ─▶ all: the protocol version, blocks, nodes, scopes,
 *              and `seq`, the number of membership messages sent so far. A process of
 *              another version (wire.ts, `PROTOCOL`) is never a peer: counted, warned of.
 *   a new peer (its first `hb`, or the first since it was declared down): send it
 *              `discover` and broadcast our `sync` of every scope, and our `hb`, so that
 *              it learns of us as fast (pg's `nodeup` → `discover`).
 *   discover   ─▶ broadcast `sync` of the scope(s) asked.
 *   sync       replaces everything the sender's nodes held in that scope (pg's
 *              `handle_sync`), in one version; repeating it changes nothing.
 *   join/leave the sender's pids, applied as they come (pg's `handle_info({join…})`).
 *   nodedown   one node of the sender went down (its leaves came as `leave`s).
 *   scopedown  the sender stopped a scope: its members there go.
 *   bye        the sender is stopping: it is down now, all its members go in one step.
 *   silence    no message from a peer for `peerTimeoutMs`: it is down (pg's `nodedown`).
 *   frames     channel frames between two nodes, sent to the one peer (relay.ts).
 *
 * ## What keeps it correct on an at-most-once broker
 *
 * - Every membership message carries `seq`. A receiver that sees a gap (a message or a
 *   heartbeat with a later `seq` than the next it expects) asks the sender for a sync,
 *   which repairs whatever was lost; a stale or repeated message is dropped.
 * - A peer declared down (broker gone, a long pause) that is heard again is a new peer
 *   again: discover and sync, as a healed netsplit in pg. Nothing doubles, since a sync
 *   replaces.
 * - A peer can only ever change members of its own node-id blocks: every pid it names is
 *   checked against them (as the coordinator checks a node's pids against the node).
 *   Messages from peers not (or no longer) known are ignored (pg's `overlay_missing`).
 */
import type { GroupKey } from '../core/group.js';
import { nodeOf, type Pid } from '../core/pid.js';
import { after } from '../core/timer.js';
import { TransportError } from '../core/errors.js';
import type { ToNode } from '../protocol/messages.js';
import { NodeIds, tagOf } from './node-ids.js';
import { Outbox } from './outbox.js';
import { pidSlices, syncParts } from './parts.js';
import { Relay } from './relay.js';
import type { Transport, TransportLink } from './transport.js';
import {
  decode,
  encode,
  type Frames,
  type Heartbeat,
  newPeerId,
  type PeerId,
  PROTOCOL,
  type PeerMessage,
  type Sequenced,
  type Sync,
} from './wire.js';
import type { MessagePort } from 'node:worker_threads';

/** What peering needs of a scope's table (coordinator/scope-server.ts). */
export interface PeerScope {
  contributionOf(local: (node: number) => boolean): [GroupKey, Pid[]][];
  replaceNodes(nodes: Iterable<number>, groups: readonly (readonly [GroupKey, Pid[]])[]): void;
  joinRemote(key: GroupKey, pids: Pid[]): void;
  leaveRemote(key: GroupKey, pids: Pid[]): void;
  dropNodes(nodes: readonly number[]): void;
  /** Nodes with members in the scope. */
  nodes(): number[];
  onChange: ((kind: 'join' | 'leave', key: GroupKey, pids: Pid[]) => void) | undefined;
}

/** What peering needs of the coordinator. */
export interface PeeringHost {
  scope(name: string): PeerScope | undefined;
  scopeNames(): string[];
  /** Local nodes that are up. */
  localNodes(): number[];
  /** True when `node` is a local node that is up (asked per frame: no list built). */
  isLocalNode(node: number): boolean;
  /** Posts a control message to a local node (transferring `port` when given). */
  toNode(node: number, m: ToNode, port?: MessagePort): void;
}

/** A peer process, as `cluster.peers()` shows it. */
export interface PeerInfo {
  /** Its peer id: random at each start, so a restarted process is a new peer. */
  readonly id: string;
  /** Its name (the transport's `name` option, or host:pid). */
  readonly name: string;
  /** Its nodes that are up, as it last said. */
  readonly nodes: number[];
  /** Its running scopes. */
  readonly scopes: string[];
}

/** What peering counted; in `cluster.stats().peering`. */
export interface PeeringStats {
  peers: number;
  /** Messages from the broker that did not decode or check. */
  malformed: number;
  /** Messages naming pids or nodes outside their sender's blocks: dropped. */
  forged: number;
  /** Messages from peers not (or no longer) known: ignored. */
  ignored: number;
  /** Peers refused because they claimed a block another process owns. */
  conflicts: number;
  /** Peers refused because they run another protocol version (another procgroups release). */
  incompatible: number;
  /** Gaps in a peer's messages, each repaired by a sync. */
  gaps: number;
  /** Frames too large for the broker even alone: dropped (nodes check first). */
  oversize: number;
  /** Peers declared down: silent, or said bye. */
  downs: number;
}

interface Peer {
  id: PeerId;
  name: string;
  tags: Set<number>;
  nodes: Set<number>;
  scopes: Set<string>;
  /** Last `seq` applied. */
  seq: number;
  /** `performance.now()` when last heard. */
  heard: number;
  /** Syncs arriving in parts, per scope. */
  parts: Map<string, { next: number; groups: [GroupKey, Pid[]][] }>;
}

/** Peers of another protocol version remembered (then forgotten all at once), and warned of. */
const MAX_REFUSED = 1024;
const MAX_WARNINGS = 8;

/** How much of the broker's limit a sync part may fill (the rest is headroom for the envelope). */
const PART_FILL = 0.5;

export class Peering {
  readonly self: PeerId = newPeerId();
  readonly ids: NodeIds;
  readonly #transport: Transport;
  readonly #host: PeeringHost;
  readonly #relay: Relay;
  #link: TransportLink | undefined;
  readonly #peers = new Map<PeerId, Peer>();
  readonly #owner = new Map<number, PeerId>();
  /** Blocks of peers seen dead: never picked, never accepted again. */
  readonly #dead = new Set<number>();
  /** Peers of another protocol version, already counted. */
  readonly #refused = new Set<PeerId>();
  #seq = 0;
  #started = false;
  #closed = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  readonly #outbox = new Outbox({
    send: (to, frames) => {
      const link = this.#link;
      if (link === undefined || this.#closed) return true;
      const bytes = encode({ t: 'frames', from: this.self, to, frames });
      if (bytes.byteLength > link.maxPayload) return false;
      link.sendTo(to, bytes);
      return true;
    },
    oversize: () => this.stats.oversize++,
  });
  readonly stats: PeeringStats = {
    peers: 0,
    malformed: 0,
    forged: 0,
    ignored: 0,
    conflicts: 0,
    incompatible: 0,
    gaps: 0,
    oversize: 0,
    downs: 0,
  };

  constructor(transport: Transport, host: PeeringHost) {
    this.#transport = transport;
    this.#host = host;
    this.ids = new NodeIds((tag) => this.#owner.has(tag) || this.#dead.has(tag));
    this.#relay = new Relay({
      forward: (local, remote, batch) => this.#forward(local, remote, batch),
      link: (local, remote, port) =>
        this.#host.toNode(local, { t: 'linked', peer: remote, port, remote: true }, port),
    });
  }

  /** Largest payload a node may put in one frame to another process. */
  get maxFrame(): number {
    return (this.#link?.maxPayload ?? 1 << 20) - 4096;
  }

  /**
   * Opens the transport and probes for peers, so that this process picks node ids no
   * peer owns or has seen die. Resolves when the cluster can register its first node.
   */
  async start(): Promise<void> {
    try {
      this.#link = await this.#transport.open(this.self, {
        message: (bytes) => this.#receive(bytes),
        status: (up) => {
          if (up && this.#started) this.#heartbeat();
        },
      });
    } catch (error) {
      // Ours (TransportError, MissingPackageError) as they are; anything else says where it came from.
      const ours =
        error instanceof Error && String((error as { code?: unknown }).code).startsWith('ERR_PG_');
      throw ours
        ? error
        : new TransportError(`could not open the transport: ${String(error)}`, { cause: error });
    }
    this.#broadcast({ t: 'probe', from: this.self });
    // Answers come within a broker round trip; the window leaves room for busy peers.
    await new Promise<void>((resolve) =>
      after(Math.min(250, this.#transport.heartbeatMs), resolve),
    );
    this.ids.first();
    this.#started = true;
    this.#heartbeat();
    const every = this.#transport.heartbeatMs;
    this.#timer = setInterval(() => this.#tick(), every);
    this.#timer.unref();
  }

  /** Peers known now. */
  peers(): PeerInfo[] {
    return [...this.#peers.values()].map((p) => ({
      id: p.id,
      name: p.name,
      nodes: [...p.nodes].sort((a, b) => a - b),
      scopes: [...p.scopes].sort(),
    }));
  }

  /** True when `node` belongs to a peer known now. */
  ownsRemote(node: number): boolean {
    return this.#owner.has(tagOf(node));
  }

  // What this process's coordinator tells us ------------------------------------------

  /** A scope started here: follow its changes, and ask every peer for its members. */
  scopeUp(name: string): void {
    const scope = this.#host.scope(name);
    if (scope === undefined) return;
    scope.onChange = (kind, key, pids) => this.#changed(name, kind, key, pids);
    if (!this.#started) return;
    this.#broadcast({ t: 'discover', from: this.self, scope: name });
    this.#sync(name);
  }

  scopeDown(name: string): void {
    if (this.#started)
      this.#broadcast({ t: 'scopedown', from: this.self, seq: ++this.#seq, scope: name });
  }

  /** A local node made a channel to a node of another process. */
  link(local: number, remote: number, port: MessagePort): void {
    if (this.ownsRemote(remote)) this.#relay.adopt(local, remote, port);
    else port.close();
  }

  /** A local node went down: its channels close, and the peers hear of it. */
  localNodeDown(node: number): void {
    this.#relay.drop(node, true);
    if (this.#started) this.#broadcast({ t: 'nodedown', from: this.self, seq: ++this.#seq, node });
  }

  /**
   * This process took another block of node ids (it has used 256): peers must hear the
   * claim before any pid of the block reaches them, so the heartbeat goes now.
   */
  grew(): void {
    if (this.#started) this.#heartbeat();
  }

  /** Says bye (the peers drop this process's members at once) and closes the transport. */
  async close(): Promise<void> {
    if (this.#closed) return;
    clearInterval(this.#timer);
    this.#outbox.flush();
    if (this.#started) this.#broadcast({ t: 'bye', from: this.self });
    // Nothing more leaves: the nodes going down next are part of the bye.
    this.#closed = true;
    this.#relay.close();
    await this.#link?.close();
  }

  // Receiving -----------------------------------------------------------------------------

  #receive(bytes: Uint8Array): void {
    if (this.#closed) return;
    const m = decode(bytes);
    if (m === undefined) {
      this.stats.malformed++;
      return;
    }
    if (m.from === this.self) return;
    try {
      this.#handle(m);
    } catch {
      // A message that checks but still cannot be applied (an index out of room, say)
      // must not take the coordinator down; the next sync repairs what it missed.
      this.stats.malformed++;
    }
  }

  #handle(m: PeerMessage): void {
    if (m.t === 'probe') {
      if (this.#started) this.#heartbeat();
      return;
    }
    if (m.t === 'hb') {
      if ((m.proto ?? 1) !== PROTOCOL) {
        this.#incompatible(m);
        return;
      }
      for (const tag of m.dead) if (!this.ids.tags.includes(tag)) this.#dead.add(tag);
      if (!this.#started) {
        // Probing: only note whose blocks are taken.
        for (const tag of m.tags) this.#dead.add(tag);
        return;
      }
      this.#heartbeatFrom(m);
      return;
    }
    const peer = this.#peers.get(m.from);
    if (peer === undefined) {
      this.stats.ignored++;
      return;
    }
    peer.heard = performance.now();
    switch (m.t) {
      case 'bye':
        this.#peerDown(peer);
        return;
      case 'discover':
        if (m.to === undefined || m.to === this.self) {
          for (const name of m.scope === undefined ? this.#host.scopeNames() : [m.scope])
            this.#sync(name);
        }
        return;
      case 'frames':
        if (m.to === this.self) this.#frames(peer, m);
        return;
      default:
        this.#sequenced(peer, m);
    }
  }

  /**
   * A peer of another protocol version: never peered, and what else it sends is ignored
   * as from an unknown peer. Counted and said once per peer id (the list of ids is
   * bounded, and forgotten at once when full), and said at most `MAX_WARNINGS` times in
   * all, its name quoted: the senders on a broker are not to be trusted with the log.
   */
  #incompatible(m: Heartbeat): void {
    if (this.#refused.has(m.from)) return;
    if (this.#refused.size >= MAX_REFUSED) this.#refused.clear();
    this.#refused.add(m.from);
    if (this.stats.incompatible++ >= MAX_WARNINGS) return;
    process.emitWarning(
      `peer process ${JSON.stringify(m.name)} (${m.from}) speaks peering protocol ${m.proto ?? 1} and this process ${PROTOCOL}: they are not peered. Run the same procgroups release in every process of the cluster.`,
      'ProcgroupsWarning',
    );
  }

  #heartbeatFrom(m: Heartbeat): void {
    let peer = this.#peers.get(m.from);
    if (peer === undefined) {
      for (const tag of m.tags) {
        const owner = this.#owner.get(tag);
        if (this.ids.tags.includes(tag) || (owner !== undefined && owner !== m.from)) {
          this.stats.conflicts++;
          return;
        }
      }
      peer = {
        id: m.from,
        name: m.name,
        tags: new Set(),
        nodes: new Set(),
        scopes: new Set(m.scopes),
        seq: m.seq,
        heard: performance.now(),
        parts: new Map(),
      };
      this.#peers.set(peer.id, peer);
      this.stats.peers = this.#peers.size;
      this.#claim(peer, m.tags);
      this.#nodesOf(peer, m.nodes);
      // pg's nodeup: discover each other. Our sync goes to everyone; repeating it is harmless.
      this.#broadcast({ t: 'discover', from: this.self, to: peer.id });
      for (const name of this.#host.scopeNames()) this.#sync(name);
      this.#heartbeat();
      return;
    }
    peer.heard = performance.now();
    peer.name = m.name;
    peer.scopes = new Set(m.scopes);
    this.#claim(peer, m.tags);
    this.#nodesOf(peer, m.nodes);
    if (m.seq !== peer.seq) this.#gap(peer, m.seq);
  }

  /** Takes the blocks a peer claims, unless another process owns them. */
  #claim(peer: Peer, tags: readonly number[]): void {
    for (const tag of tags) {
      if (peer.tags.has(tag)) continue;
      const owner = this.#owner.get(tag);
      if (this.ids.tags.includes(tag) || (owner !== undefined && owner !== peer.id)) {
        this.stats.conflicts++;
        continue;
      }
      peer.tags.add(tag);
      this.#owner.set(tag, peer.id);
      this.#dead.delete(tag);
    }
  }

  /** The peer's node list as it says now: new nodes come up here, missing ones go down. */
  #nodesOf(peer: Peer, nodes: readonly number[]): void {
    const now = new Set(nodes.filter((n) => peer.tags.has(tagOf(n))));
    for (const n of peer.nodes) if (!now.has(n)) this.#remoteNodeDown(peer, n);
    for (const n of now) this.#remoteNodeUp(peer, n);
  }

  #remoteNodeUp(peer: Peer, node: number): void {
    if (peer.nodes.has(node)) return;
    peer.nodes.add(node);
    for (const local of this.#host.localNodes())
      this.#host.toNode(local, { t: 'nodeup', id: node });
  }

  #remoteNodeDown(peer: Peer, node: number): void {
    peer.nodes.delete(node);
    for (const name of this.#host.scopeNames()) this.#host.scope(name)?.dropNodes([node]);
    this.#relay.drop(node, false);
    for (const local of this.#host.localNodes())
      this.#host.toNode(local, { t: 'nodedown', id: node });
  }

  #sequenced(peer: Peer, m: Sequenced): void {
    if (m.seq <= peer.seq) return; // repeated or stale
    if (m.seq !== peer.seq + 1) this.#gap(peer, m.seq);
    peer.seq = m.seq;
    const owned = (pids: readonly Pid[]) => {
      for (const p of pids) if (!peer.tags.has(tagOf(nodeOf(p)))) return false;
      return true;
    };
    switch (m.t) {
      case 'sync':
        this.#syncPart(peer, m, owned);
        return;
      case 'join':
      case 'leave': {
        if (!owned(m.pids)) {
          this.stats.forged++;
          return;
        }
        const scope = this.#host.scope(m.scope);
        if (scope === undefined) return;
        for (const p of m.pids) this.#remoteNodeUp(peer, nodeOf(p));
        if (m.t === 'join') scope.joinRemote(m.key, m.pids);
        else scope.leaveRemote(m.key, m.pids);
        return;
      }
      case 'nodedown':
        if (!peer.tags.has(tagOf(m.node))) this.stats.forged++;
        else this.#remoteNodeDown(peer, m.node);
        return;
      case 'scopedown':
        peer.scopes.delete(m.scope);
        this.#host.scope(m.scope)?.dropNodes(this.#nodesIn(peer, m.scope));
        return;
    }
  }

  #syncPart(peer: Peer, m: Sync, owned: (pids: readonly Pid[]) => boolean): void {
    let pending = peer.parts.get(m.scope);
    if (m.part === 0) {
      pending = { next: 0, groups: [] };
      peer.parts.set(m.scope, pending);
    }
    if (pending === undefined || pending.next !== m.part) {
      // A part went missing: the gap already asked for a new sync.
      peer.parts.delete(m.scope);
      return;
    }
    for (const [key, pids] of m.groups) {
      if (!owned(pids)) {
        this.stats.forged++;
        peer.parts.delete(m.scope);
        return;
      }
      pending.groups.push([key, pids]);
    }
    pending.next++;
    if (pending.next < m.parts) return;
    peer.parts.delete(m.scope);
    const scope = this.#host.scope(m.scope);
    if (scope === undefined) return;
    peer.scopes.add(m.scope);
    for (const [, pids] of pending.groups)
      for (const p of pids) this.#remoteNodeUp(peer, nodeOf(p));
    scope.replaceNodes(this.#nodesIn(peer, m.scope), pending.groups);
  }

  /** The peer's nodes that have members in `scope` here. */
  #nodesIn(peer: Peer, scope: string): number[] {
    return (this.#host.scope(scope)?.nodes() ?? []).filter((n) => peer.tags.has(tagOf(n)));
  }

  #gap(peer: Peer, seq: number): void {
    this.stats.gaps++;
    peer.seq = seq;
    peer.parts.clear();
    this.#broadcast({ t: 'discover', from: this.self, to: peer.id });
  }

  #frames(peer: Peer, m: Frames): void {
    for (const [src, dst, batch] of m.frames) {
      if (!peer.tags.has(tagOf(src))) {
        this.stats.forged++;
        continue;
      }
      // For a node that is gone, the sender hears `nodedown` and fails what it sent.
      if (!this.#host.isLocalNode(dst)) continue;
      this.#remoteNodeUp(peer, src);
      this.#relay.deliver(dst, src, batch);
    }
  }

  /** Silent for `peerTimeoutMs`, or said bye: the peer is down, with all its members, at once. */
  #peerDown(peer: Peer): void {
    this.#peers.delete(peer.id);
    this.stats.peers = this.#peers.size;
    this.stats.downs++;
    for (const tag of peer.tags) {
      this.#owner.delete(tag);
      this.#dead.add(tag);
    }
    for (const name of this.#host.scopeNames()) {
      const nodes = this.#nodesIn(peer, name);
      for (const n of nodes) peer.nodes.add(n);
      this.#host.scope(name)?.dropNodes(nodes);
    }
    for (const n of peer.nodes) {
      this.#relay.drop(n, false);
      for (const local of this.#host.localNodes())
        this.#host.toNode(local, { t: 'nodedown', id: n });
    }
  }

  // Sending -----------------------------------------------------------------------------

  #tick(): void {
    this.#heartbeat();
    const late = performance.now() - this.#transport.peerTimeoutMs;
    for (const peer of [...this.#peers.values()]) if (peer.heard < late) this.#peerDown(peer);
  }

  #heartbeat(): void {
    const scopes = this.#host.scopeNames();
    this.#broadcast({
      t: 'hb',
      from: this.self,
      proto: PROTOCOL,
      name: this.#transport.name ?? '',
      tags: this.ids.tags,
      nodes: this.#host.localNodes(),
      scopes,
      seq: this.#seq,
      dead: [...this.#dead].slice(-4096),
    });
  }

  /** A change made by a local node: every peer hears of it. Changes by peers are theirs to tell. */
  #changed(scope: string, kind: 'join' | 'leave', key: GroupKey, pids: Pid[]): void {
    if (!this.#started || pids.length === 0 || !this.ids.owns(nodeOf(pids[0]!))) return;
    for (const part of pidSlices(pids, this.maxFrame * PART_FILL))
      this.#broadcast({ t: kind, from: this.self, seq: ++this.#seq, scope, key, pids: part });
  }

  /** Broadcasts this process's members of `scope`, in parts that fit the broker. */
  #sync(name: string): void {
    const scope = this.#host.scope(name);
    if (scope === undefined || !this.#started) return;
    const groups = scope.contributionOf((n) => this.ids.owns(n));
    const parts = syncParts(groups, this.maxFrame * PART_FILL);
    parts.forEach((part, i) =>
      this.#broadcast({
        t: 'sync',
        from: this.self,
        seq: ++this.#seq,
        scope: name,
        part: i,
        parts: parts.length,
        groups: part,
      }),
    );
  }

  #broadcast(m: PeerMessage): void {
    if (this.#link === undefined || this.#closed) return;
    this.#link.broadcast(encode(m));
  }

  /** Frames a local node posted for a node of another process: off to its process. */
  #forward(local: number, remote: number, batch: Uint8Array): void {
    const owner = this.#owner.get(tagOf(remote));
    if (owner === undefined) {
      // No such process now: the node's channel closes and what it sent fails.
      this.#relay.drop(remote, false);
      this.#host.toNode(local, { t: 'nodedown', id: remote });
      return;
    }
    this.#outbox.add(owner, local, remote, batch);
  }
}
