/**
 * What a node knows of the other nodes: which are up (with their load tables, for
 * `loadOf`), which are known to be down, and the direct channel to each, made on first
 * use. The node creates a channel, keeps one end and has the coordinator hand the other
 * to the peer; frames posted meanwhile wait in the channel, in order.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Channel, type ChannelHost, type Remote } from '../protocol/channel.js';
import type { LinkRequest, Peered } from '../protocol/messages.js';
import type { LoadTable } from './load-table.js';

export class Peers {
  /** The channel each peer is sent to over (the first one made, by either side). */
  readonly #channels = new Map<number, Channel>();
  /** Every open channel, including a second one when both sides made one at the same time. */
  readonly #all = new Set<Channel>();
  /** Nodes that are up, this one included, with their load tables (none for nodes of other processes). */
  readonly #loads = new Map<number, LoadTable | undefined>();
  /** Nodes known to be gone. A node id that is neither up nor down may be brand new: try it. */
  readonly #down = new Set<number>();
  readonly #host: ChannelHost;
  readonly #request: (m: LinkRequest, port: MessagePort) => void;
  /** Set when the cluster peers with other processes: which node ids are this process's. */
  #peered: Peered | undefined;
  #remote: Remote | undefined;

  constructor(
    host: ChannelHost,
    request: (m: LinkRequest, port: MessagePort) => void,
    peered: Peered | undefined,
  ) {
    this.#host = host;
    this.#request = request;
    this.peered(peered);
  }

  /** This process's blocks of node ids (they grow as it spawns nodes). */
  peered(p: Peered | undefined): void {
    this.#peered = p;
    this.#remote = p === undefined ? undefined : { maxFrame: p.maxFrame };
  }

  get maxFrame(): number {
    return this.#remote?.maxFrame ?? 1 << 20;
  }

  /** True for a node of another process (its id is outside this process's blocks). */
  isRemote(node: number): boolean {
    return this.#peered !== undefined && !this.#peered.tags.includes(node >> 8);
  }

  up(id: number, loads: LoadTable | undefined): void {
    this.#loads.set(id, loads);
  }

  /**
   * Heard of, and not dropped: a node's down reaches this one as a message only if it
   * watches or was linked (coordinator/down-notices.ts), but the coordinator marks the
   * node's load table at once, and every node holds it.
   */
  isUp(id: number): boolean {
    const table = this.#loads.get(id);
    return table === undefined ? this.#loads.has(id) : !table.down;
  }

  loadTable(id: number): LoadTable | undefined {
    return this.#loads.get(id);
  }

  ids(): number[] {
    const up: number[] = [];
    for (const [id, table] of this.#loads) if (table?.down !== true) up.push(id);
    return up.sort((a, b) => a - b);
  }

  get channelCount(): number {
    return this.#channels.size;
  }

  /**
   * The channel to `node`, made on first use; undefined when the node is down. A node
   * this one has not heard of yet may have just started (its pids can show up in the
   * index before its `nodeup` arrives here): try it. The coordinator closes the channel
   * if there is no such node, which fails whatever was sent on it.
   */
  channel(node: number): Channel | undefined {
    const c = this.#channels.get(node);
    if (c !== undefined || this.#down.has(node) || this.#loads.get(node)?.down === true) return c;
    const { port1, port2 } = new MessageChannel();
    const remote = this.isRemote(node);
    const made = this.adopt(node, port1, remote);
    this.#request({ t: 'link', peer: node, port: port2, remote }, port2);
    return made;
  }

  /** The channel to `node` if one is open; never makes one. */
  existing(node: number): Channel | undefined {
    return this.#channels.get(node);
  }

  /**
   * Takes a channel end: one this node made, or one the peer made (`linked`). If both
   * sides made one at the same time, this node keeps sending on its own (so each
   * direction stays in order) and listens on both. A channel from a node known to be
   * down is closed at once.
   */
  adopt(node: number, port: MessagePort, remote = false): Channel | undefined {
    if (this.#down.has(node)) {
      port.close();
      return undefined;
    }
    const c = new Channel(
      node,
      port,
      this.#host,
      remote ? (this.#remote ?? { maxFrame: 1 << 20 }) : undefined,
    );
    this.#all.add(c);
    if (!this.#channels.has(node)) this.#channels.set(node, c);
    return c;
  }

  /**
   * A channel closed: its peer's thread ended or the peer left, the coordinator refused
   * the link (no such node), or this node closed it (the peer is down, or this node
   * leaves). Each means the peer is gone for good, so a call to it fails at once from
   * now on (`channel` gives nothing). A new channel would ask the coordinator for a link
   * and fail one round trip later, as if the call had been sent: a dispatch would spend
   * its attempt on a node that has just died, before the coordinator's notice, instead
   * of taking another member (dispatch/job.ts, `start`). A node of another process can
   * come back (see `down`): it is only unlinked.
   */
  closed(c: Channel): void {
    this.#all.delete(c);
    if (this.#channels.get(c.peer) === c) this.#channels.delete(c.peer);
    if (!this.isRemote(c.peer)) this.#down.add(c.peer);
  }

  /**
   * The coordinator says `node` is down. Frames the peer posted before it went are
   * delivered first (`drain`): the notice travels on another port and can overtake
   * them, and Erlang's order wants a message sent before a node goes down to arrive
   * before the down signal. Then its channels close.
   */
  down(node: number): void {
    this.#loads.delete(node);
    // A node of another process can be declared down wrongly (its process was silent for
    // a while) and come back: only this process's node ids are never reused.
    if (!this.isRemote(node)) this.#down.add(node);
    for (const c of [...this.#all]) {
      if (c.peer !== node) continue;
      c.drain();
      c.close();
    }
  }

  /** Every open channel: one per peer this node talks to (two while both sides made one). */
  open(): Channel[] {
    return [...this.#all].filter((c) => c.open);
  }

  /** Sends the frames batched in this job on every channel (the thread is about to end). */
  flush(): void {
    for (const c of this.#all) c.flush();
  }

  /** This node leaves: every channel closes. */
  closeAll(): void {
    for (const c of [...this.#all]) c.close();
    this.#channels.clear();
  }
}
