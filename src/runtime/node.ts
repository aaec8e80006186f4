/**
 * A node: one thread attached to a cluster. It owns processes, talks to the
 * coordinator over its control port, and to other nodes over direct links.
 *
 * Reading top to bottom: the public API (processes, messages, calls, monitors, scopes),
 * then the handling of frames from peer links, then of messages from the coordinator.
 */
import { EventEmitter } from 'node:events';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { checkScopeName } from '../core/scope-name.js';
import { BatchPort } from '../protocol/batch-port.js';
import { type CallOptions, Calls, checkCallOptions, type Transferable } from './pending-calls.js';
import {
  describe,
  NodeDownError,
  NoProcessError,
  NotLocalError,
  NotConnectedError,
  ProcessExitError,
} from '../core/errors.js';
import {
  CALL,
  cloneError,
  DEMONITOR,
  DOWN,
  Link,
  type LinkHost,
  MONITOR,
  SEND,
} from '../protocol/channel.js';
import { LoadTable } from './load-table.js';
import { formatPid, makePid, nodeOf, type Pid, serialOf, toPid } from '../core/pid.js';
import { type Handler, Process, type ReplyTo, type SpawnOptions } from './process.js';
import {
  type Endpoint,
  parseToNode,
  type ToCoordinator,
  type ToNode,
} from '../protocol/messages.js';
import { Scope } from '../pg/scope.js';
import { fromWire, toWire, type WireError } from '../core/wire-error.js';

export type { CallOptions } from './pending-calls.js';
export type { Handler, ProcessContext, SpawnOptions } from './process.js';

/** Why a process ended: `'normal'`, `'noproc'` (it was not alive), `'nodedown'`, an Error, or any reason given to `exit`. */
export type ExitReason = unknown;

/** A watch on a process, from `node.monitor(pid)`. */
export interface ProcessMonitor {
  /** Identifies the monitor for `demonitor`. */
  readonly ref: number;
  /** Resolves with the exit reason when the process ends (never rejects). */
  readonly down: Promise<ExitReason>;
}

/** Events a `Node` emits (it is an EventEmitter). */
export interface NodeEvents {
  /** A node attached to the cluster. */
  nodeup: [id: number];
  /** A node went away (exit, crash, closed link, or `close()`). */
  nodedown: [id: number];
  /** A handler failed on a `send`, where no caller could be told. */
  processError: [pid: Pid, error: unknown];
}

/** The root process's default handler: it has none until `node.handle(fn)` gives it one. */
const noHandler: Handler = () => {
  throw new Error('the root process of this node has no handler; set one with node.handle(fn)');
};

function encodeReason(reason: unknown): [boolean, unknown] {
  if (reason instanceof Error) return [true, toWire(reason)];
  try {
    structuredClone(reason);
    return [false, reason];
  } catch {
    return [false, describe(reason)];
  }
}

function decodeReason(wire: unknown): ExitReason {
  if (Array.isArray(wire) && wire.length === 2)
    return wire[0] === true ? fromWire(wire[1] as WireError) : wire[1];
  return wire;
}

/**
 * This thread as a member of a cluster: its processes, messaging, process monitors,
 * and the pg API of each scope (`node.pg`, `node.scope(name)`). From `connect()`, or
 * `cluster.node` on the coordinator's thread.
 */
export class Node extends EventEmitter<NodeEvents> implements LinkHost {
  /** This node's id in the cluster: never reused while the cluster lives. */
  readonly id: number;
  readonly #control: Endpoint & { close?(): void };
  /** Messages to the coordinator, batched per job. */
  readonly #out: BatchPort;
  readonly #processes = new Map<number, Process>();
  #serial = 1;
  /** The link each peer is sent to over (the first one made, by either side). */
  readonly #links = new Map<number, Link>();
  /** Every open link, including a second one when both sides made one at the same time. */
  readonly #allLinks = new Set<Link>();
  readonly #live = new Set<number>();
  /** This node's load table, and every live node's (for `loadOf`). */
  readonly #loads: LoadTable;
  readonly #loadTables = new Map<number, LoadTable>();
  /** Nodes known to be gone. A node id that is neither live nor down may be brand new: try it. */
  readonly #down = new Set<number>();
  readonly #calls = new Calls();
  readonly #scopes = new Map<string, Scope>();
  #ref = 0;
  readonly #requests = new Map<
    number,
    { resolve(m: ToNode): void; reject(e: unknown): void; scope: string }
  >();
  /** Monitors this node holds: ref → resolver (local or remote target). */
  readonly #watching = new Map<
    number,
    { node: number; pid: Pid; resolve(reason: ExitReason): void }
  >();
  /**
   * Monitors on this node's processes: serial → watching link (undefined: this node) →
   * refs. Refs are numbered by each watching node on its own, so a ref is only unique
   * together with the link it came over.
   */
  readonly #watchers = new Map<number, Map<Link | undefined, Set<number>>>();
  #connected = true;
  #malformed = 0;
  readonly #localReply: ReplyTo = {
    reply: (id, value) => {
      let copy: unknown;
      try {
        copy = structuredClone(value);
      } catch (error) {
        this.#calls.settle(id, false, cloneError(error));
        return;
      }
      this.#calls.settle(id, true, copy);
    },
    fail: (id, error) => this.#calls.settle(id, false, error),
  };
  readonly #onSendError = (pid: Pid, error: unknown) => {
    if (this.listenerCount('processError') > 0) this.emit('processError', pid, error);
    else
      process.emitWarning(
        `process ${formatPid(pid)} failed on a message sent to it: ${String(error)}`,
        'ProcgroupsWarning',
      );
  };

  /** @internal Made by `connect()` and `startCluster()`. */
  constructor(
    control: Endpoint & { close?(): void },
    welcome: Extract<ToNode, { t: 'welcome' }>,
    loads: LoadTable,
    rootHandler?: Handler,
  ) {
    super();
    this.id = welcome.id;
    this.#control = control;
    this.#out = new BatchPort(control);
    this.#loads = loads;
    for (const [n, table] of welcome.nodes) this.#nodeUp(n, new LoadTable(table));
    this.#nodeUp(this.id, loads);
    this.#processes.set(1, this.#process(1, rootHandler ?? noHandler, {}));
    this.#serial = 2;
    control.on('message', this.#onControl);
    // A message that arrived but could not be deserialized (too deep, say): malformed too.
    control.on('messageerror', this.#onMalformedControl);
    for (const [name, handle] of welcome.scopes) this.#scope(name).attach(handle);
  }

  // Processes -------------------------------------------------------------------------

  /** The root process of this node. */
  self(): Pid {
    return makePid(this.id, 1);
  }

  /**
   * Gives the root process a handler (it answers calls and sends to `self()`). Messages
   * already waiting go to the new handler; one already running finishes with the old.
   */
  handle(handler: Handler): void {
    this.#assertConnected();
    if (typeof handler !== 'function') {
      throw new TypeError(`handle needs a handler function, got ${describe(handler)}`);
    }
    const root = this.#processes.get(1);
    if (root !== undefined && root.alive) root.replaceHandler(handler);
    else this.#processes.set(1, this.#process(1, handler, {}));
  }

  /** Starts a process on this node and returns its pid. */
  spawn<M = unknown, R = unknown>(handler: Handler<M, R>, options: SpawnOptions = {}): Pid {
    this.#assertConnected();
    if (typeof handler !== 'function') {
      throw new TypeError(`spawn needs a handler function, got ${describe(handler)}`);
    }
    const c = options.concurrency ?? 1;
    if (!Number.isInteger(c) || c < 1) {
      throw new RangeError(`concurrency must be a positive integer, got ${describe(c)}`);
    }
    const serial = this.#serial++;
    const pid = makePid(this.id, serial);
    this.#processes.set(serial, this.#process(serial, handler as Handler, options));
    return pid;
  }

  #process(serial: number, handler: Handler, options: SpawnOptions): Process {
    return new Process(makePid(this.id, serial), handler, options, this.#onSendError, this.#loads);
  }

  /**
   * Messages waiting for or being handled by `pid`, read from its node's load table in
   * shared memory (no message): 0 when unknown. What the `'least-loaded'` strategy uses.
   */
  loadOf(pid: Pid): number {
    return this.#loadTables.get(nodeOf(pid))?.load(serialOf(pid)) ?? 0;
  }

  /** True when `pid` is a live process of this node, or a pid of a node that is up (its process may be gone). */
  isAlive(pid: Pid): boolean {
    const p = toPid(pid);
    const node = nodeOf(p);
    if (node === this.id) return this.#processes.get(serialOf(p))?.alive === true;
    return this.#live.has(node);
  }

  /**
   * Ends a local process. Calls waiting on it reject with `ProcessExitError`, monitors
   * fire, and it leaves every group it joined. Returns false if it was not alive.
   */
  exit(pid: Pid, reason: ExitReason = 'normal'): boolean {
    const p = toPid(pid);
    if (nodeOf(p) !== this.id) {
      throw new NotLocalError(
        `exit only ends processes of this node (${this.id}); ${formatPid(p)} is on node ${nodeOf(p)}: call exit there`,
        p,
      );
    }
    const serial = serialOf(p);
    const proc = this.#processes.get(serial);
    if (proc === undefined || !proc.alive) return false;
    this.#processes.delete(serial);
    const error = new ProcessExitError(
      `process ${formatPid(p)} exited (${describeReason(reason)}) before answering`,
      p,
      reason,
    );
    for (const env of proc.exit(reason)) env.replyTo?.fail(env.id, error);
    for (const scope of this.#scopes.values()) scope.processExited(p);
    this.#notifyWatchers(serial, reason);
    return true;
  }

  /** Number of messages waiting for or being handled by a local process (0 if it is not alive). */
  load(pid: Pid): number {
    return this.#processes.get(serialOf(pid))?.load ?? 0;
  }

  // Messages and calls ------------------------------------------------------------------

  /**
   * Sends `message` to `pid`, anywhere in the cluster; no answer. Throws
   * `MessageCloneError` (and sends nothing) when the message cannot be cloned. Returns
   * false when the target is known to be gone; like Erlang's `!`, true does not promise
   * that a remote process is still alive.
   */
  send(pid: Pid, message: unknown, transfer?: readonly Transferable[]): boolean {
    this.#assertConnected();
    const p = toPid(pid);
    const node = nodeOf(p);
    if (node === this.id) {
      const proc = this.#processes.get(serialOf(p));
      const copy = this.#clone(message, transfer);
      if (proc === undefined || !proc.alive) return false;
      proc.deliver({ message: copy, from: this.self(), id: 0, replyTo: undefined });
      return true;
    }
    const link = this.#link(node);
    if (link === undefined) return false;
    link.post([SEND, serialOf(p), this.self(), message], transfer);
    return true;
  }

  /**
   * Sends `message` to `pid` and resolves with its handler's answer. Rejects with the
   * handler's error, `NoProcessError` (no such process), `ProcessExitError` (it exited
   * first), `NodeDownError`, `CallTimeoutError`, the abort reason, or
   * `MessageCloneError` (nothing was sent).
   */
  call<R = unknown>(pid: Pid, message: unknown, options?: CallOptions): Promise<R> {
    try {
      this.#assertConnected();
      const p = toPid(pid);
      checkCallOptions(options);
      if (options?.signal?.aborted) return Promise.reject(options.signal.reason);
      const node = nodeOf(p);
      if (node === this.id) {
        const proc = this.#processes.get(serialOf(p));
        if (proc === undefined || !proc.alive) return Promise.reject(noProc(p));
        const copy = this.#clone(message, options?.transfer);
        const [id, promise] = this.#calls.open<R>(node, p, options);
        proc.deliver({ message: copy, from: this.self(), id, replyTo: this.#localReply });
        return promise;
      }
      const link = this.#link(node);
      if (link === undefined)
        return Promise.reject(this.#connected ? this.#gone(p) : notConnected(this.id));
      const [id, promise] = this.#calls.open<R>(node, p, options);
      try {
        link.post([CALL, id, serialOf(p), this.self(), message], options?.transfer);
      } catch (error) {
        this.#calls.settle(id, false, error);
      }
      return promise;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  // Process monitors ----------------------------------------------------------------------

  /** Watches `pid`; `down` resolves with its exit reason (`'noproc'` if it is not alive, `'nodedown'` if its node goes). */
  monitor(pid: Pid): ProcessMonitor {
    this.#assertConnected();
    const p = toPid(pid);
    const ref = ++this.#ref;
    const node = nodeOf(p);
    const down = new Promise<ExitReason>((resolve) => {
      if (node === this.id) {
        const proc = this.#processes.get(serialOf(p));
        if (proc === undefined || !proc.alive) return resolve('noproc');
        this.#watching.set(ref, { node, pid: p, resolve });
        this.#watch(serialOf(p), ref, undefined);
        return;
      }
      const link = this.#link(node);
      if (link === undefined) return resolve('nodedown');
      this.#watching.set(ref, { node, pid: p, resolve });
      link.post([MONITOR, ref, serialOf(p)]);
    });
    return { ref, down };
  }

  /** Stops a monitor; its `down` promise then never resolves. */
  demonitor(monitor: ProcessMonitor | number): void {
    const ref = typeof monitor === 'number' ? monitor : monitor.ref;
    const w = this.#watching.get(ref);
    if (w === undefined) return;
    this.#watching.delete(ref);
    if (w.node === this.id) this.#unwatch(serialOf(w.pid), ref, undefined);
    else this.#links.get(w.node)?.post([DEMONITOR, ref, serialOf(w.pid)]);
  }

  // Cluster -----------------------------------------------------------------------------

  /** Ids of the nodes that are up, this one included. */
  nodes(): number[] {
    return [...this.#live].sort((a, b) => a - b);
  }

  /** The default scope, `'pg'`. */
  get pg(): Scope {
    return this.#scope('pg');
  }

  /** The pg API of scope `name` (reads are empty and writes fail until the scope runs). */
  scope(name: string): Scope {
    checkScopeName(name);
    return this.#scope(name);
  }

  /**
   * Counters: messages it dropped as malformed, its live processes, the calls it waits
   * on, its open links to other nodes.
   */
  stats(): { malformed: number; processes: number; pendingCalls: number; links: number } {
    return {
      malformed: this.#malformed,
      processes: this.#processes.size,
      pendingCalls: this.#calls.size,
      links: this.#links.size,
    };
  }

  /** False once the node has left its cluster (`close()`, or the cluster stopped). */
  get connected(): boolean {
    return this.#connected;
  }

  /**
   * Leaves the cluster: every process exits, pending calls reject, links close. The
   * thread may then exit on its own.
   */
  close(): void {
    if (!this.#connected) return;
    try {
      this.#post({ t: 'bye' });
    } catch {
      // The control port is already closed: the coordinator knows.
    }
    this.#shutdown();
  }

  // Internals used by Scope -------------------------------------------------------------

  /** @internal Sends a request to the coordinator and resolves with its answer. */
  request(scope: string, build: (ref: number) => ToCoordinator): Promise<ToNode> {
    this.#assertConnected();
    const ref = ++this.#ref;
    return new Promise((resolve, reject) => {
      this.#requests.set(ref, { resolve, reject, scope });
      this.#post(build(ref));
    });
  }

  /** @internal Fails the requests in flight for a scope that went down. */
  failRequests(scope: string, error: unknown): void {
    for (const [ref, r] of this.#requests) {
      if (r.scope === scope) {
        this.#requests.delete(ref);
        r.reject(error);
      }
    }
  }

  /**
   * @internal Sends every batched frame and control message now: the thread is about to
   * end (`process.exit` in a worker skips the microtasks that would have sent them).
   */
  flushAll(): void {
    if (!this.#connected) return;
    for (const link of this.#allLinks) link.flush();
    this.#out.flush();
  }

  /** @internal A one-way message to the coordinator. */
  post(message: ToCoordinator): void {
    if (this.#connected) this.#post(message);
  }

  /** @internal True when `pid` is a live process of this node. */
  isLocalAlive(pid: Pid): boolean {
    return nodeOf(pid) === this.id && this.#processes.get(serialOf(pid))?.alive === true;
  }

  // Links -------------------------------------------------------------------------------

  /**
   * The link to `node`, made on first use: this node creates the channel, keeps one end
   * and has the coordinator hand the other to the peer. Frames posted meanwhile wait in
   * the channel, in order. Undefined when the node is down or unknown.
   */
  #link(node: number): Link | undefined {
    const link = this.#links.get(node);
    if (link !== undefined) return link;
    // A node this one has not heard of yet may have just started (its pids can show up
    // in the index before its `nodeup` arrives here): try it. The coordinator closes the
    // channel if there is no such node, which fails whatever was sent on it.
    if (this.#down.has(node) || !this.#connected) return undefined;
    const { port1, port2 } = new MessageChannel();
    const created = this.#adopt(node, port1);
    this.#post({ t: 'link', peer: node, port: port2 }, [port2]);
    return created;
  }

  #adopt(node: number, port: MessagePort): Link {
    const link = new Link(node, port, this);
    this.#allLinks.add(link);
    if (!this.#links.has(node)) this.#links.set(node, link);
    return link;
  }

  #gone(pid: Pid): Error {
    const node = nodeOf(pid);
    return new NodeDownError(`node ${node} of ${formatPid(pid)} is down`, node);
  }

  // LinkHost: frames from peers -----------------------------------------------------------

  /** @internal A frame from a peer link. */
  onSend(_link: Link, serial: number, from: Pid | undefined, payload: unknown): void {
    const proc = this.#processes.get(serial);
    if (proc?.alive) proc.deliver({ message: payload, from, id: 0, replyTo: undefined });
  }

  /** @internal A frame from a peer link. */
  onCall(link: Link, id: number, serial: number, from: Pid | undefined, payload: unknown): void {
    const proc = this.#processes.get(serial);
    if (proc === undefined || !proc.alive) link.fail(id, noProc(makePid(this.id, serial)));
    else proc.deliver({ message: payload, from, id, replyTo: link });
  }

  /** @internal A frame from a peer link. */
  onReply(id: number, payload: unknown): void {
    this.#calls.settle(id, true, payload);
  }

  /** @internal A frame from a peer link. */
  onFail(id: number, error: unknown): void {
    this.#calls.settle(id, false, fromWire(error as WireError));
  }

  /** @internal A frame from a peer link. */
  onMonitor(link: Link, ref: number, serial: number): void {
    const proc = this.#processes.get(serial);
    if (proc === undefined || !proc.alive) link.post([DOWN, ref, encodeReason('noproc')]);
    else this.#watch(serial, ref, link);
  }

  /** @internal A frame from a peer link. */
  onDemonitor(link: Link, ref: number, serial: number): void {
    this.#unwatch(serial, ref, link);
  }

  /** @internal A frame from a peer link. */
  onDown(ref: number, reason: unknown): void {
    const w = this.#watching.get(ref);
    if (w === undefined) return;
    this.#watching.delete(ref);
    w.resolve(decodeReason(reason));
  }

  /** @internal A frame from a peer link. */
  onClose(link: Link): void {
    this.#allLinks.delete(link);
    if (this.#links.get(link.peer) === link) this.#links.delete(link.peer);
    // A closed link means the peer's thread is gone; the coordinator will confirm with
    // `nodedown`, but callers need not wait for it.
    this.#peerGone(link.peer);
  }

  /** @internal A frame from a peer link. */
  onMalformed(): void {
    this.#malformed++;
  }

  #watch(serial: number, ref: number, link: Link | undefined): void {
    let w = this.#watchers.get(serial);
    if (w === undefined) {
      w = new Map();
      this.#watchers.set(serial, w);
    }
    let refs = w.get(link);
    if (refs === undefined) {
      refs = new Set();
      w.set(link, refs);
    }
    refs.add(ref);
  }

  #unwatch(serial: number, ref: number, link: Link | undefined): void {
    const w = this.#watchers.get(serial);
    const refs = w?.get(link);
    if (refs === undefined || !refs.delete(ref) || refs.size > 0) return;
    w!.delete(link);
    if (w!.size === 0) this.#watchers.delete(serial);
  }

  #notifyWatchers(serial: number, reason: ExitReason): void {
    const w = this.#watchers.get(serial);
    if (w === undefined) return;
    this.#watchers.delete(serial);
    const wire = encodeReason(reason);
    for (const [link, refs] of w) {
      for (const ref of refs) {
        if (link === undefined) this.onDown(ref, wire);
        else if (link.open) link.post([DOWN, ref, wire]);
      }
    }
  }

  #peerGone(node: number): void {
    this.#calls.failNode(
      node,
      (pid) =>
        new NodeDownError(`node ${node} of ${formatPid(pid)} went down before answering`, node),
    );
    for (const [ref, w] of this.#watching) {
      if (w.node === node) {
        this.#watching.delete(ref);
        w.resolve('nodedown');
      }
    }
    for (const [serial, watchers] of this.#watchers) {
      for (const link of watchers.keys())
        if (link !== undefined && link.peer === node) watchers.delete(link);
      if (watchers.size === 0) this.#watchers.delete(serial);
    }
  }

  // Messages from the coordinator ------------------------------------------------------------

  readonly #onControl = (raw: unknown): void => {
    BatchPort.unpack(raw, this.#onControlSafely, this.#onMalformedControl);
  };

  /** One message of a batch; a failure in it is reported and does not drop the rest of the batch. */
  readonly #onControlSafely = (raw: unknown): void => {
    try {
      this.#onControlMessage(raw);
    } catch (error) {
      process.emitWarning(
        `node ${this.id} failed on a message from the coordinator: ${String(error)}`,
        'ProcgroupsWarning',
      );
    }
  };

  readonly #onMalformedControl = (): void => {
    this.#malformed++;
  };

  readonly #onControlMessage = (raw: unknown): void => {
    const m = parseToNode(raw);
    if (m === undefined) {
      this.#malformed++;
      return;
    }
    switch (m.t) {
      case 'nodeup':
        this.#nodeUp(m.id, new LoadTable(m.loads));
        this.emit('nodeup', m.id);
        break;
      case 'nodedown':
        this.#live.delete(m.id);
        this.#loadTables.delete(m.id);
        this.#down.add(m.id);
        // What the peer sent before it went is delivered before the down signal.
        for (const link of [...this.#allLinks]) {
          if (link.peer !== m.id) continue;
          link.drain();
          link.close();
        }
        this.#peerGone(m.id);

        this.emit('nodedown', m.id);
        break;
      case 'linked':
        // The peer made this channel. If this node made one too, it keeps sending on
        // its own (so each direction stays in order) and listens on both.
        if (this.#down.has(m.peer)) m.port.close();
        else this.#adopt(m.peer, m.port);
        break;
      case 'scopeup':
        this.#scope(m.scope).attach(m.handle);
        break;
      case 'scopedown':
        this.#scopes.get(m.scope)?.detach(this.id === 0);
        break;
      case 'discover':
        this.#scopes.get(m.scope)?.sync();
        break;
      case 'ack':
      case 'monitored': {
        const r = this.#requests.get(m.ref);
        if (r !== undefined) {
          this.#requests.delete(m.ref);
          r.resolve(m);
        }
        break;
      }
      case 'event':
        for (const scope of this.#scopes.values()) scope.onEvent(m);
        break;
      case 'shutdown':
        this.#shutdown();
        break;
      case 'partition':
        this.#scope(m.scope).setPartitioned(m.cut);
        this.#post({ t: 'done', ref: m.ref });
        break;
      case 'ping':
        this.#post({ t: 'done', ref: m.ref });
        break;
      case 'welcome':
        break;
    }
  };

  #nodeUp(id: number, loads: LoadTable): void {
    this.#live.add(id);
    this.#loadTables.set(id, loads);
  }

  #scope(name: string): Scope {
    let s = this.#scopes.get(name);
    if (s === undefined) {
      s = new Scope(this, name);
      this.#scopes.set(name, s);
    }
    return s;
  }

  #post(message: ToCoordinator, transfer?: MessagePort[]): void {
    this.#out.post(message, transfer);
  }

  #clone(message: unknown, transfer: readonly Transferable[] | undefined): unknown {
    try {
      return transfer === undefined || transfer.length === 0
        ? structuredClone(message)
        : structuredClone(message, { transfer: transfer as Transferable[] });
    } catch (error) {
      throw cloneError(error);
    }
  }

  #assertConnected(): void {
    if (!this.#connected) throw new NotConnectedError(`node ${this.id} has left its cluster`);
  }

  #shutdown(): void {
    if (!this.#connected) return;
    this.#connected = false;
    const closed = new NotConnectedError(`node ${this.id} left its cluster`);
    // Callers on other nodes see this node go down, as if its thread had exited.
    const gone = new NodeDownError(`node ${this.id} left the cluster before answering`, this.id);
    for (const serial of [...this.#processes.keys()]) {
      const proc = this.#processes.get(serial)!;
      this.#processes.delete(serial);
      for (const env of proc.exit('shutdown'))
        env.replyTo?.fail(env.id, env.replyTo === this.#localReply ? closed : gone);
    }
    this.#calls.failAll(() => closed);
    for (const r of this.#requests.values()) r.reject(closed);
    this.#requests.clear();
    for (const w of this.#watching.values()) w.resolve('shutdown');
    this.#watching.clear();
    for (const scope of this.#scopes.values()) scope.detach(true);
    for (const link of [...this.#allLinks]) link.close();
    this.#links.clear();
    this.#out.flush();
    this.#control.off('message', this.#onControl);
    this.#control.close?.();
  }
}

function notConnected(id: number): NotConnectedError {
  return new NotConnectedError(`node ${id} has left its cluster`);
}

function noProc(pid: Pid): NoProcessError {
  return new NoProcessError(`no process ${formatPid(pid)}: it exited or never existed`, pid);
}

function describeReason(reason: unknown): string {
  return reason instanceof Error ? `${reason.name}: ${reason.message}` : describe(reason);
}
