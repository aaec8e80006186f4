/**
 * The coordinator: the node registry, the broker of links, and the home of every
 * scope's table. It runs on the thread that started the cluster.
 *
 * Every message from a node is parsed before it is acted on; what does not parse is
 * counted and dropped. A node's messages are only ever applied to that node's own
 * contribution (see ScopeServer).
 */
import {
  type MessagePort,
  receiveMessageOnPort,
  threadId as ownThreadId,
  type Worker,
} from 'node:worker_threads';
import { after } from '../core/timer.js';
import { BatchPort } from '../protocol/batch-port.js';
import { DownNotices } from './down-notices.js';
import { LoadTable } from '../runtime/load-table.js';
import {
  type Endpoint,
  parseToCoordinator,
  type ToCoordinator,
  type ToNode,
} from '../protocol/messages.js';
import { ScopeServer } from './scope-server.js';
import type { IndexHandle, IndexOptions } from '../shared-index/types.js';
import { type PeerInfo, Peering, type PeeringStats } from '../peering/peering.js';
import type { Transport } from '../peering/transport.js';

interface NodeEntry {
  id: number;
  port: MessagePort;
  /** Messages to the node, batched per job. */
  out: BatchPort;
  threadId: number;
  name: string;
  loads: SharedArrayBuffer;
  worker: Worker | undefined;
  onMessage: (m: unknown) => void;
  onClose: () => void;
  /** Set once nodeDown started on it, so that a `bye` met while draining does not run it twice. */
  down: boolean;
  /** Called when the node says `ready` (a spawned worker's module finished evaluating). */
  onReady: (() => void) | undefined;
}

/** What `accept` tells its caller: the node's id once it said hello, and when it is ready. */
export interface AcceptHooks {
  registered?(id: number): void;
  ready?(): void;
}

/** What the coordinator counted; see `cluster.stats()`. */
export interface CoordinatorStats {
  /** Nodes attached now. */
  nodes: number;
  /** Messages that did not parse. */
  malformed: number;
  /** Messages naming pids of another node: dropped. */
  forged: number;
  /** Messages from nodes outside a scope: ignored. */
  ignored: number;
  /** With a transport: what peering with other processes counted. */
  peering?: PeeringStats;
}

export class Coordinator {
  readonly #nodes = new Map<number, NodeEntry>();
  readonly #scopes = new Map<string, ScopeServer>();
  readonly #indexOptions: IndexOptions;
  /** Ports that connected but have not said hello yet. */
  readonly #greeting = new Set<MessagePort>();
  readonly #waiting = new Map<MessagePort, AcceptHooks>();
  #nextId = 0;
  #ref = 0;
  /** Requests to nodes waiting for their `done`: ref → (node, resolve). */
  readonly #done = new Map<number, { node: number; resolve(): void }>();
  #malformed = 0;
  #stopped = false;
  /** Set when the cluster peers with other processes over a transport. */
  readonly #peering: Peering | undefined;
  /** The node on this thread (the first to register): it is told so in its welcome. */
  #home: number | undefined;
  /** Who hears of a node going down, and when (down-notices.ts). */
  readonly #notices = new DownNotices((node, m) => this.#nodes.get(node)?.out.post(m));

  constructor(indexOptions: IndexOptions, transport?: Transport) {
    this.#indexOptions = indexOptions;
    if (transport !== undefined) {
      this.#peering = new Peering(transport, {
        scope: (name) => this.#scopes.get(name),
        scopeNames: () => [...this.#scopes.keys()],
        localNodes: () => [...this.#nodes.keys()],
        isLocalNode: (node) => this.#nodes.has(node),
        toNode: (node, m, port) => this.#send(node, m, port),
      });
    }
  }

  /**
   * With a transport: connects to the broker and finds the peers, before the first
   * node registers (its id must be one no peer owns). Nothing to do without.
   */
  async open(): Promise<void> {
    await this.#peering?.start();
  }

  /** The peer processes known now (none without a transport). */
  peers(): PeerInfo[] {
    return this.#peering?.peers() ?? [];
  }

  /** Says bye to the peers (they drop this process's members at once) and closes the transport. */
  async closePeering(): Promise<void> {
    await this.#peering?.close();
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /**
   * Takes a new control port; the thread at its other end becomes a node when it says
   * hello. `registered` is called with its id then.
   */
  accept(port: MessagePort, worker?: Worker, hooks?: AcceptHooks): void {
    this.#greeting.add(port);
    if (hooks !== undefined) this.#waiting.set(port, hooks);
    const onHello = (raw: unknown) => {
      const m = parseToCoordinator(raw);
      if (m === undefined || m.t !== 'hello') {
        this.#malformed++;
        return;
      }
      port.off('message', onHello);
      port.off('close', onEarlyClose);
      this.#greeting.delete(port);
      this.#register(port, worker, m.threadId, m.name, m.loads);
    };
    const onEarlyClose = () => {
      this.#greeting.delete(port);
      this.#waiting.delete(port);
    };
    port.on('message', onHello);
    port.once('close', onEarlyClose);
  }

  #register(
    port: MessagePort,
    worker: Worker | undefined,
    threadId: number,
    name: string,
    loads: SharedArrayBuffer,
  ): void {
    const peering = this.#peering;
    const id =
      peering === undefined
        ? this.#nextId++
        : peering.ids.next(() => {
            // A new block of node ids: nodes must know it is this process's, peers that it is ours.
            for (const n of this.#nodes.keys())
              this.#send(n, { t: 'tags', tags: peering.ids.tags });
            peering.grew();
          });
    this.#home ??= id;
    const entry: NodeEntry = {
      id,
      port,
      out: new BatchPort(port),
      threadId,
      name,
      loads,
      worker,
      onMessage: (raw) => this.#onMessage(entry, raw),
      onClose: () => this.nodeDown(id),
      down: false,
      onReady: undefined,
    };
    const others = [...this.#nodes.values()].map((n): [number, SharedArrayBuffer] => [
      n.id,
      n.loads,
    ]);
    this.#nodes.set(id, entry);
    port.on('message', entry.onMessage);
    port.on('messageerror', () => this.#malformed++);
    port.once('close', entry.onClose);
    const scopes: [string, IndexHandle][] = [...this.#scopes].map(([n, s]) => [n, s.writer.handle]);
    this.#send(id, {
      t: 'welcome',
      id,
      nodes: others,
      scopes,
      ...(id === this.#home && { home: true }),
      ...(peering !== undefined && {
        peered: { tags: [...peering.ids.tags], maxFrame: peering.maxFrame },
      }),
    });
    for (const [other] of others) this.#send(other, { t: 'nodeup', id, loads });
    const hooks = this.#waiting.get(port);
    this.#waiting.delete(port);
    entry.onReady = hooks?.ready;
    hooks?.registered?.(id);
  }

  /**
   * The node's thread is gone (exit, crash, closed port) or it said bye: drop it
   * everywhere, at once. `drain` when the port is still open (the worker's 'exit' came
   * first): what the node posted before it ended is read and applied before that.
   */
  nodeDown(id: number, drain = false): void {
    const entry = this.#nodes.get(id);
    if (entry === undefined || entry.down) return;
    entry.down = true;
    // A worker's 'exit' event can come before the coordinator read what the worker posted
    // just before it ended (a `link` for its last send, a `leave`): it is queued on the
    // port already, so apply it first, in order, as if it had been read in time.
    // (Not on the port's own 'close': it comes after every message, and reading a port
    // that is closing crashes Node 20.)
    for (
      let r = drain ? receiveMessageOnPort(entry.port) : undefined;
      r !== undefined;
      r = receiveMessageOnPort(entry.port)
    )
      this.#onMessage(entry, r.message);
    // Requests the node will never answer: they resolve ("handled, or gone").
    for (const [ref, d] of this.#done) {
      if (d.node !== id) continue;
      this.#done.delete(ref);
      d.resolve();
    }
    this.#nodes.delete(id);
    // Every node reads this at once (`nodes()`, `isAlive()`), notice or not.
    LoadTable.markDown(entry.loads);
    // What readers wait for first: the node's members out of every index, and the
    // monitor events (queued now, posted at the end of this job).
    try {
      for (const scope of this.#scopes.values()) scope.detach(id, true);
    } finally {
      // Even if an index ran out of room: nothing more is read from a node that is down.
      entry.port.off('message', entry.onMessage);
      entry.port.off('close', entry.onClose);
      entry.port.close();
    }
    // Reader records the thread held are free again (it may have died mid-read).
    if (entry.threadId !== ownThreadId)
      for (const scope of this.#scopes.values()) scope.writer.releaseReadersOf(entry.threadId);
    this.#notices.down(id, this.#nodes.keys());
    this.#peering?.localNodeDown(id);
  }

  /**
   * One delivery from a node: a message or a batch of them. A batch is applied inside
   * one writer batch per scope, so that it publishes one version, and the acks (queued
   * on the ports meanwhile) leave after that version is visible.
   */
  #onMessage(entry: NodeEntry, raw: unknown): void {
    const each = (one: unknown) => {
      const m = parseToCoordinator(one);
      if (m === undefined) this.#malformed++;
      else this.#handle(entry, m);
    };
    const malformed = () => {
      this.#malformed++;
    };
    if (!Array.isArray(raw) || this.#scopes.size === 0) {
      BatchPort.unpack(raw, each, malformed);
      return;
    }
    const writers = [...this.#scopes.values()].map((s) => s.writer);
    const nest = (i: number): void => {
      if (i === writers.length) BatchPort.unpack(raw, each, malformed);
      else writers[i]!.batch(() => nest(i + 1));
    };
    nest(0);
  }

  #handle(from: NodeEntry, m: ToCoordinator): void {
    switch (m.t) {
      case 'link': {
        // Hand the channel's other end to the peer, or close it: the requester's link
        // then closes and whatever it sent fails as sent to a node that is down.
        if (m.peer !== from.id && this.#nodes.has(m.peer)) {
          const linked: ToNode = { t: 'linked', peer: from.id, port: m.port };
          if (m.remote === true) linked.remote = true;
          this.#notices.linked(from.id, m.peer);
          this.#send(m.peer, linked, m.port);
        } else if (this.#peering !== undefined && m.peer !== from.id) {
          // A node of another process: this coordinator holds the far end and relays.
          this.#peering.link(from.id, m.peer, m.port);
        } else {
          m.port.close();
        }
        return;
      }
      case 'bye': {
        this.nodeDown(from.id);
        // An ending worker sleeps until this (Node's exit handler): wake it once what
        // the down caused is out. The batches of this job flush in microtasks queued
        // before this one, so the readers' monitor events are posted by then.
        const ack = m.ack;
        if (ack !== undefined) queueMicrotask(() => release(ack));
        return;
      }
      case 'watch':
        this.#notices.watch(from.id);
        return;
      case 'ready': {
        const ready = from.onReady;
        from.onReady = undefined;
        ready?.();
        return;
      }
      case 'done': {
        const d = this.#done.get(m.ref);
        if (d?.node === from.id) {
          this.#done.delete(m.ref);
          d.resolve();
        }
        return;
      }
      case 'hello':
        this.#malformed++;
        return;
    }
    const scope = this.#scopes.get(m.scope);
    if (scope === undefined) {
      // The scope stopped while the message was in flight: answer requests so nothing hangs.
      if (m.t === 'join' || m.t === 'leave' || m.t === 'monitor' || m.t === 'demonitor') {
        this.#send(from.id, { t: 'ack', ref: m.ref, error: `scope '${m.scope}' is not running` });
      }
      return;
    }
    switch (m.t) {
      case 'sync':
        scope.sync(from.id, m);
        break;
      case 'join':
        scope.join(from.id, m);
        break;
      case 'leave':
        scope.leave(from.id, m);
        break;
      case 'exit':
        scope.exit(from.id, m);
        break;
      case 'monitor':
        scope.monitor(from.id, m);
        break;
      case 'demonitor':
        scope.demonitor(from.id, m.ref, m.monitor);
        break;
    }
  }

  /** Every message to a node goes here: the down notices it has not had go first. */
  #send(node: number, message: ToNode, port?: MessagePort): void {
    this.#notices.flush(node);
    this.#nodes.get(node)?.out.post(message, port && [port]);
  }

  // Scopes -------------------------------------------------------------------------------

  startScope(name: string, options: IndexOptions = this.#indexOptions): boolean {
    if (this.#scopes.has(name)) return false;
    const scope = new ScopeServer(name, options, (node, message) => this.#send(node, message));
    this.#scopes.set(name, scope);
    for (const id of this.#nodes.keys())
      this.#send(id, { t: 'scopeup', scope: name, handle: scope.writer.handle });
    this.#peering?.scopeUp(name);
    return true;
  }

  stopScope(name: string): boolean {
    const scope = this.#scopes.get(name);
    if (scope === undefined) return false;
    this.#scopes.delete(name);
    for (const id of this.#nodes.keys()) this.#send(id, { t: 'scopedown', scope: name });
    scope.close();
    this.#peering?.scopeDown(name);
    return true;
  }

  scope(name: string): ScopeServer | undefined {
    return this.#scopes.get(name);
  }

  scopes(): string[] {
    return [...this.#scopes.keys()];
  }

  /**
   * Test hook, the netsplit analogue: cuts (or restores) `node`'s link to `scope` on
   * both sides. Cutting drops the node's members from the scope and ignores its
   * messages there; the node keeps its memberships and its writes stay local.
   * Restoring lets the node sync again. Resolves once the node has applied it.
   */
  partition(node: number, scope: string, cut: boolean): Promise<void> {
    this.#scopes.get(scope)?.cut(node, cut);
    return this.#untilDone(node, (ref) => ({ t: 'partition', scope, cut, ref }));
  }

  /** Resolves once `node` has handled everything sent to it so far (immediately if it is gone). */
  barrier(node: number): Promise<void> {
    return this.#untilDone(node, (ref) => ({ t: 'ping', ref }));
  }

  /**
   * Sends `node` a message that it answers with `done`, and resolves then (at once if
   * the node is gone; when it goes, or the cluster stops, meanwhile).
   */
  #untilDone(node: number, message: (ref: number) => ToNode): Promise<void> {
    if (!this.#nodes.has(node)) return Promise.resolve();
    const ref = ++this.#ref;
    return new Promise((resolve) => {
      this.#done.set(ref, { node, resolve });
      this.#send(node, message(ref));
    });
  }

  /**
   * A graceful stop's first half: asks every node to handle what was sent to it so far
   * and to let its calls in flight finish (`drain`), and resolves when all have answered
   * or `timeout` ms have passed, whichever comes first.
   */
  drain(timeout: number): Promise<void> {
    const answers = [...this.#nodes.keys()].map((node) =>
      this.#untilDone(node, (ref) => ({ t: 'drain', ref })),
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((resolve) => {
      timer = after(timeout, resolve);
    });
    return Promise.race([Promise.all(answers).then(() => {}), late]).finally(() =>
      clearTimeout(timer),
    );
  }

  /** Test hook: asks `node` to sync `scope` again (pg's `discover`). */
  discover(node: number, scope: string): void {
    this.#send(node, { t: 'discover', scope });
  }

  // Registry -----------------------------------------------------------------------------

  nodeIds(): number[] {
    return [...this.#nodes.keys()];
  }

  /** Raw access to a node's control port, for tests that craft protocol messages. */
  port(node: number): MessagePort | undefined {
    return this.#nodes.get(node)?.port;
  }

  /** Feeds a message to the coordinator as if `node` had sent it (tests of validation and ownership). */
  inject(node: number, raw: unknown): void {
    const entry = this.#nodes.get(node);
    if (entry !== undefined) this.#onMessage(entry, raw);
  }

  stats(): CoordinatorStats {
    let forged = 0;
    let ignored = 0;
    for (const s of this.#scopes.values()) {
      forged += s.counters.forged;
      ignored += s.counters.ignored;
    }
    const stats: CoordinatorStats = {
      nodes: this.#nodes.size,
      malformed: this.#malformed,
      forged,
      ignored,
    };
    if (this.#peering !== undefined) stats.peering = { ...this.#peering.stats };
    return stats;
  }

  /** Tells every node to shut down and lets go of every port and scope. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    void this.#peering?.close();
    for (const port of this.#greeting) port.close();
    this.#greeting.clear();
    for (const id of [...this.#nodes.keys()]) {
      this.#send(id, { t: 'shutdown' });
      const entry = this.#nodes.get(id)!;
      entry.out.flush();
      this.#nodes.delete(id);
      entry.port.off('message', entry.onMessage);
      entry.port.off('close', entry.onClose);
      entry.port.close();
    }
    for (const name of [...this.#scopes.keys()]) {
      this.#scopes.get(name)!.close();
      this.#scopes.delete(name);
    }
    // Barriers and partitions in flight: no node will answer them now ("handled, or gone").
    for (const d of this.#done.values()) d.resolve();
    this.#done.clear();
    this.#notices.stop();
  }
}

export type { Endpoint };

/** Sets a shared cell and wakes whoever waits on it. */
function release(cell: Int32Array): void {
  Atomics.store(cell, 0, 1);
  Atomics.notify(cell, 0);
}
