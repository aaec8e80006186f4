/**
 * A node: one thread attached to a cluster. It owns processes, talks to the
 * coordinator over its control channel (control.ts), and to other nodes over direct
 * channels (peers.ts).
 *
 * Reading top to bottom: the public API (processes, messages, calls, monitors, scopes),
 * then the frames that arrive from peers, then the messages from the coordinator, then
 * leaving the cluster. What the scopes and the channels need of the node they get as
 * narrow objects (`#scopeHost()`, `#channelHost`), never as methods on this class.
 */
import { EventEmitter } from 'node:events';
import { isMainThread } from 'node:worker_threads';
import { NodeDownError, NotConnectedError, NotLocalError } from '../core/errors.js';
import { formatPid, makePid, nodeOf, type Pid, serialOf, toPid } from '../core/pid.js';
import { checkScopeName } from '../core/scope-name.js';
import { fromWire, type WireError } from '../core/wire-error.js';
import { BatchPort } from '../protocol/batch-port.js';
import { type Channel, type ChannelHost, cloneLocal } from '../protocol/channel.js';
import { type Endpoint, parseToNode, type ToNode } from '../protocol/messages.js';
import type { Caller } from '../dispatch/options.js';
import type { Scope, ScopeHost } from '../pg/scope.js';
import { serve, type ServeOptions, type Served } from '../services/index.js';
import type { Group } from '../core/group.js';
import { NodeScopes } from './node-scopes.js';
import { Control } from './control.js';
import { Drain } from './drain.js';
import { LoadTable } from './load-table.js';
import {
  type CallOptions,
  Calls,
  type CallSink,
  checkCallOptions,
  type Transferable,
} from './pending-calls.js';
import { Peers } from './peers.js';
import { type Handler, Process, type SpawnOptions } from './process.js';
import { exitError, noProc, Processes } from './processes.js';
import { type ExitReason, type ProcessMonitor, ProcessMonitors } from './process-monitors.js';

export type { CallOptions } from './pending-calls.js';
export type { Handler, ProcessContext, SpawnOptions } from './process.js';
export type { ExitReason, ProcessMonitor } from './process-monitors.js';

/**
 * How long an ending worker's thread waits for the coordinator to drop its node before
 * it is torn down anyway (see `#onExit`). The coordinator answers in well under a
 * millisecond when it has a core; on a main thread busy in long synchronous jobs it can
 * take longer, and the thread then ends without the answer (nothing is lost: the bye
 * was posted, and is applied when the coordinator gets to it).
 */
const BYE_WAIT_MS = 10;

/** What the constructor passes `#onExit` to have it compiled, in place of an exit code. */
const WARM_UP = Symbol('warm-up');

/** Events a `Node` emits (it is an EventEmitter). */
export interface NodeEvents {
  /** A node attached to the cluster. */
  nodeup: [id: number];
  /**
   * A node went away (exit, crash, closed link, or `close()`). A node with a listener is
   * told at once; without one, a node hears of downs in batches, within a minute
   * (`nodes()` and `isAlive()` see them at once either way).
   */
  nodedown: [id: number];
  /** A handler failed on a `send`, where no caller could be told. */
  processError: [pid: Pid, error: unknown];
}

/**
 * This thread as a member of a cluster: its processes, messaging, process monitors,
 * and the pg API of each scope (`node.pg`, `node.scope(name)`). From `connect()`, or
 * `cluster.node` on the coordinator's thread.
 */
export class Node extends EventEmitter<NodeEvents> {
  /** This node's id in the cluster: never reused while the cluster lives. */
  readonly id: number;
  readonly #control: Control;
  readonly #processes: Processes;
  readonly #peers: Peers;
  /** This node's load table (its processes publish their loads there). */
  readonly #calls = new Calls();
  readonly #monitors: ProcessMonitors;
  readonly #scopes: NodeScopes;
  #ref = 0;
  readonly #drain: Drain;
  #connected = true;
  /** Told the coordinator it has a 'nodedown' listener (coordinator/down-notices.ts). */
  #watching = false;
  #malformed = 0;
  /** On the coordinator's thread: a scope that stops takes this node's memberships with it. */
  readonly #home: boolean;

  /** @internal Made by `connect()` and `startCluster()`. */
  constructor(
    control: Endpoint & { close?(): void },
    welcome: Extract<ToNode, { t: 'welcome' }>,
    loads: LoadTable,
    rootHandler?: Handler,
  ) {
    super();
    this.id = welcome.id;
    this.#control = new Control(control);
    this.#monitors = new ProcessMonitors(this.id);
    this.#scopes = new NodeScopes(this.#scopeHost(), this.#caller());
    this.#home = welcome.home === true;
    this.#peers = new Peers(
      this.#channelHost,
      (m, port) => this.#control.post(m, [port]),
      welcome.peered,
    );
    for (const [n, table] of welcome.nodes) this.#peers.up(n, new LoadTable(table));
    this.#peers.up(this.id, loads);
    this.#processes = new Processes(this.id, loads, this.#onSendError, rootHandler);
    this.#drain = new Drain(this.#peers, this.#processes, this.#calls, this.#control);
    control.on('message', this.#onControl);
    // A message that arrived but could not be deserialized (too deep, say): malformed too.
    control.on('messageerror', this.#onMalformed);
    if (!isMainThread) {
      // First in line: Node adds an exit listener of its own once a worker has used its
      // stdio (`console.log`), and that flush ran before the `bye` could leave (0.02 to
      // 0.03 ms in bench busy-main, traced; a slow listener of the worker's own, longer).
      process.prependListener('exit', this.#onExit);
      // Compiled now, not on the way out: V8 compiles a function at its first call, and
      // compiling this one (and `Peers.flush`, which it calls before it returns here) was
      // most of the 0.08 ms left between `process.exit()` and the `bye` (bench busy-main,
      // traced). V8 may drop the bytecode of a function unused for long, so in a worker
      // that lives long and collects often this can be lost again; it costs nothing.
      this.#onExit(WARM_UP);
    }
    // `newListener` is EventEmitter's own event, outside the typed NodeEvents.
    (this as EventEmitter).on('newListener', this.#onNewListener);
    for (const [name, handle] of welcome.scopes) this.#scopes.hooks(name).attach(handle);
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
    this.#processes.handle(handler);
  }

  /** Starts a process on this node and returns its pid. */
  spawn<M = unknown, R = unknown>(handler: Handler<M, R>, options: SpawnOptions = {}): Pid {
    this.#assertConnected();
    return this.#processes.spawn(handler as Handler, options);
  }

  /**
   * Messages waiting for or being handled by `pid`, read from its node's load table in
   * shared memory (no message): 0 when unknown. What the `'least-loaded'` strategy uses.
   */
  loadOf(pid: Pid): number {
    return this.#peers.loadTable(nodeOf(pid))?.load(serialOf(pid)) ?? 0;
  }

  /** True when `pid` is a live process of this node, or a pid of a node that is up (its process may be gone). */
  isAlive(pid: Pid): boolean {
    const p = toPid(pid);
    const node = nodeOf(p);
    if (node === this.id) return this.#processes.alive(serialOf(p)) !== undefined;
    return this.#peers.isUp(node);
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
    const proc = this.#processes.remove(serial);
    if (proc === undefined) return false;
    const error = exitError(p, reason);
    proc.exit(reason, () => error);
    for (const hooks of this.#scopes.all()) hooks.processExited(p);
    this.#monitors.exited(serial, reason);
    return true;
  }

  /**
   * Spawns a process that serves `impl`'s methods and joins it to `group`; resolves once
   * it has joined. Call it with `scope.service<T>(group)` (see services/).
   */
  serve<T extends object>(group: Group, impl: T, options?: ServeOptions): Promise<Served> {
    return serve(this, group, impl, options);
  }

  /** Number of messages waiting for or being handled by a local process (0 if it is not alive). */
  load(pid: Pid): number {
    return this.#processes.alive(serialOf(pid))?.load ?? 0;
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
      const proc = this.#processes.alive(serialOf(p));
      const copy = cloneLocal(message, transfer);
      if (proc === undefined) return false;
      proc.deliver({ message: copy, from: this.self(), id: 0, replyTo: undefined });
      return true;
    }
    const channel = this.#peers.channel(node);
    if (channel === undefined) return false;
    channel.send(serialOf(p), this.self(), message, transfer);
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
      const to = this.#route(p);
      if (to instanceof Error) return Promise.reject(to);
      if (to instanceof Process) {
        const copy = cloneLocal(message, options?.transfer);
        const [id, promise] = this.#calls.open<R>(this.id, p, options);
        to.deliver({ message: copy, from: this.self(), id, replyTo: this.#calls.local });
        return promise;
      }
      const [id, promise] = this.#calls.open<R>(to.peer, p, options);
      try {
        to.call(id, serialOf(p), this.self(), message, options?.transfer);
      } catch (error) {
        this.#calls.settle(id, false, error);
      }
      return promise;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Dispatch's call: the outcome goes to `sink` rather than to a promise, so that a
   * dispatch costs one promise (the one it returns) however it waits and retries.
   * Returns the error when nothing was sent (the sink is then not told), else undefined.
   */
  #callInto(
    p: Pid,
    message: unknown,
    options: CallOptions,
    timeout: number | undefined,
    sink: CallSink,
  ): unknown {
    if (!this.#connected) return this.#notConnected();
    const { signal, transfer } = options;
    if (signal?.aborted) return signal.reason;
    const to = this.#route(p);
    if (to instanceof Error) return to;
    try {
      if (to instanceof Process) {
        const copy = cloneLocal(message, transfer);
        const id = this.#calls.openInto(this.id, p, timeout, signal, sink);
        to.deliver({ message: copy, from: this.self(), id, replyTo: this.#calls.local });
        return undefined;
      }
      const id = this.#calls.openInto(to.peer, p, timeout, signal, sink);
      try {
        to.call(id, serialOf(p), this.self(), message, transfer);
      } catch (error) {
        this.#calls.forget(id);
        return error;
      }
      return undefined;
    } catch (error) {
      return error;
    }
  }

  /** Where a call to `p` goes: its live local process, the channel to its node, or why neither. */
  #route(p: Pid): Process | Channel | Error {
    const node = nodeOf(p);
    if (node === this.id) return this.#processes.alive(serialOf(p)) ?? noProc(p);
    return (
      this.#peers.channel(node) ??
      new NodeDownError(`node ${node} of ${formatPid(p)} is down`, node)
    );
  }

  // Process monitors ----------------------------------------------------------------------

  /** Watches `pid`; `down` resolves with its exit reason (`'noproc'` if it is not alive, `'nodedown'` if its node goes). */
  monitor(pid: Pid): ProcessMonitor {
    this.#assertConnected();
    const p = toPid(pid);
    const ref = ++this.#ref;
    const alive = nodeOf(p) === this.id && this.#isLocalAlive(p);
    const down = this.#monitors.watch(ref, p, alive, () => this.#peers.channel(nodeOf(p)));
    return { ref, down };
  }

  /** Stops a monitor; its `down` promise then never resolves. */
  demonitor(monitor: ProcessMonitor | number): void {
    const ref = typeof monitor === 'number' ? monitor : monitor.ref;
    this.#monitors.unwatch(ref, (node) => this.#peers.existing(node));
  }

  // Cluster -----------------------------------------------------------------------------

  /**
   * Ids of the nodes that are up, this one included. A node that went down is gone from
   * the list as soon as the coordinator has dropped it, read from shared memory: the
   * `'nodedown'` event reaches a node without a listener later (see `NodeEvents`).
   */
  nodes(): number[] {
    return this.#peers.ids();
  }

  /** The default scope, `'pg'`. */
  get pg(): Scope {
    return this.#scopes.scope('pg');
  }

  /** The pg API of scope `name` (reads are empty and writes fail until the scope runs). */
  scope(name: string): Scope {
    checkScopeName(name);
    return this.#scopes.scope(name);
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
      links: this.#peers.channelCount,
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
    this.#control.post({ t: 'bye' });
    this.#shutdown();
  }

  // What the parts of the node get of it --------------------------------------------------

  #isLocalAlive(pid: Pid): boolean {
    return nodeOf(pid) === this.id && this.#processes.alive(serialOf(pid)) !== undefined;
  }

  /** What a scope needs of its node: the coordinator, and which local pids are alive. */
  /** What dispatch sees of this node; strategy functions get the node itself, as `ctx.node`. */
  #caller(): Caller {
    return {
      node: this,
      call: (pid, message, options) => this.call(pid, message, options),
      callInto: (pid, message, options, timeout, sink) =>
        this.#callInto(pid, message, options, timeout, sink),
      send: (pid, message) => this.send(pid, message),
    };
  }

  #scopeHost(): ScopeHost {
    return {
      id: this.id,
      isLocalAlive: (pid) => this.#isLocalAlive(pid),
      wasSpawned: (pid) => nodeOf(pid) === this.id && this.#processes.wasSpawned(serialOf(pid)),
      request: (scope, build) => {
        this.#assertConnected();
        return this.#control.request(scope, build);
      },
      post: (message) => {
        if (this.#connected) this.#control.post(message);
      },
      failRequests: (scope, error) => this.#control.failScope(scope, error),
    };
  }

  readonly #onSendError = (pid: Pid, error: unknown): void => {
    if (this.listenerCount('processError') > 0) this.emit('processError', pid, error);
    else
      process.emitWarning(
        `process ${formatPid(pid)} failed on a message sent to it: ${String(error)}`,
        'ProcgroupsWarning',
      );
  };

  // Frames from peers ---------------------------------------------------------------------

  readonly #channelHost: ChannelHost = {
    onSend: (_channel, serial, from, payload) => {
      this.#processes.alive(serial)?.deliver({ message: payload, from, id: 0, replyTo: undefined });
    },
    onCall: (channel, id, serial, from, payload) => {
      const proc = this.#processes.alive(serial);
      if (proc === undefined) channel.fail(id, noProc(makePid(this.id, serial)), true);
      else proc.deliver({ message: payload, from, id, replyTo: channel });
    },
    onReply: (id, payload) => this.#calls.settle(id, true, payload),
    onFail: (id, error, notRun) =>
      this.#calls.settle(id, false, fromWire(error as WireError), notRun),
    onMonitor: (channel, ref, serial) =>
      this.#monitors.onMonitor(channel, ref, serial, this.#processes.alive(serial) !== undefined),
    onDemonitor: (channel, ref, serial) => this.#monitors.onDemonitor(channel, ref, serial),
    onDown: (ref, reason) => this.#monitors.onDown(ref, reason),
    onDrain: (channel, id) => this.#drain.onDrain(channel, id),
    onDrained: (id) => this.#drain.onDrained(id),
    onClose: (channel) => {
      this.#peers.closed(channel);
      // A closed channel means the peer's thread is gone; the coordinator will confirm
      // with `nodedown`, but callers need not wait for it.
      this.#peerGone(channel.peer);
    },
    onMalformed: () => {
      this.#malformed++;
    },
  };

  #peerGone(node: number): void {
    this.#calls.failNode(
      node,
      (pid) =>
        new NodeDownError(`node ${node} of ${formatPid(pid)} went down before answering`, node),
    );
    this.#monitors.nodeGone(node);
    this.#drain.peerGone(node);
  }

  // Messages from the coordinator ------------------------------------------------------------

  readonly #onControl = (raw: unknown): void => {
    BatchPort.unpack(raw, this.#onControlSafely, this.#onMalformed);
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

  /** The first 'nodedown' listener: from now on, hear of every node going down at once. */
  readonly #onNewListener = (event: string | symbol): void => {
    if (event !== 'nodedown' || this.#watching || !this.#connected) return;
    this.#watching = true;
    this.#control.post({ t: 'watch' });
  };

  readonly #onMalformed = (): void => {
    this.#malformed++;
  };

  #onControlMessage(raw: unknown): void {
    const m = parseToNode(raw);
    if (m === undefined) {
      this.#malformed++;
      return;
    }
    switch (m.t) {
      case 'tags':
        this.#peers.peered({ tags: m.tags, maxFrame: this.#peers.maxFrame });
        break;
      case 'nodeup':
        this.#peers.up(m.id, m.loads === undefined ? undefined : new LoadTable(m.loads));
        this.emit('nodeup', m.id);
        break;
      case 'nodedown':
        // What the peer sent before it went is delivered before the down signal.
        this.#peers.down(m.id);
        this.#peerGone(m.id);
        this.emit('nodedown', m.id);
        break;
      case 'linked':
        this.#peers.adopt(m.peer, m.port, m.remote === true);
        break;
      case 'scopeup':
        this.#scopes.hooks(m.scope).attach(m.handle);
        break;
      case 'scopedown':
        this.#scopes.existing(m.scope)?.detach(this.#home);
        break;
      case 'discover':
        this.#scopes.existing(m.scope)?.sync();
        break;
      case 'ack':
      case 'monitored':
        this.#control.answer(m);
        break;
      case 'event':
        for (const hooks of this.#scopes.all()) hooks.onEvent(m);
        break;
      case 'shutdown':
        this.#shutdown();
        break;
      case 'partition':
        this.#scopes.hooks(m.scope).setPartitioned(m.cut);
        this.#control.post({ t: 'done', ref: m.ref });
        break;
      case 'ping':
        this.#control.post({ t: 'done', ref: m.ref });
        break;
      case 'drain':
        // A graceful stop: answer once this node's part is done (see drain.ts).
        void this.#drain.run().then(() => {
          if (this.#connected) this.#control.post({ t: 'done', ref: m.ref });
        });
        break;
      case 'welcome':
        break;
    }
  }

  // Leaving -----------------------------------------------------------------------------

  /**
   * The worker's thread is ending (`process.exit()`, or its event loop ran out). Two
   * things, and no more (this runs on the way out of every worker, so it stays cheap:
   * the whole of `close()` took 2 ms here, for 100 processes):
   * - `process.exit()` ends the thread without running pending microtasks, where the
   *   frames of the current job wait to be sent: they are sent first, so that a reply
   *   or a message sent just before the exit is not lost;
   * - then `bye`: the cluster drops the node now, not when the thread's ports close at
   *   the end of its teardown, milliseconds later, so its members leave every reader's
   *   index that much sooner and no dispatch picks them meanwhile;
   * - and the thread sleeps until the coordinator has done so (at most BYE_WAIT_MS).
   *   Without this the teardown that follows (2 to 5 ms of CPU) ran at once and held
   *   a core while the coordinator's thread, just woken by the `bye`, waited for one:
   *   Linux lets a running thread finish its slice before a woken one gets the core.
   *   With main busy on the other core of two, the bye waited 1 to 4 ms on the run
   *   queue, and a reader saw the members gone 4.2 to 4.7 ms after the exit (median);
   *   asleep here, 0.8 to 0.9 ms (bench busy-main).
   * The node is then out of the cluster. The constructor prepends this listener, so it
   * runs before every `exit` listener added with `on` or `once`, before `connect()` or
   * after: one that uses the node gets `NotConnectedError` (thrown in an exit listener,
   * it ends the thread with an error), and its reads find no scope (the coordinator has
   * given this thread's reader records back).
   */
  readonly #onExit = (code?: unknown): void => {
    if (!this.#connected) return;
    this.#peers.flush();
    if (code === WARM_UP) return;
    // The home node's coordinator runs on this very thread: it cannot answer a wait.
    const ack = this.#home ? undefined : new Int32Array(new SharedArrayBuffer(4));
    this.#control.post(ack === undefined ? { t: 'bye' } : { t: 'bye', ack });
    this.#control.flush();
    if (ack !== undefined) Atomics.wait(ack, 0, 0, BYE_WAIT_MS);
    this.#connected = false;
    for (const hooks of this.#scopes.all()) hooks.detach(true);
  };

  #assertConnected(): void {
    if (!this.#connected) throw this.#notConnected();
  }

  #notConnected(): NotConnectedError {
    return new NotConnectedError(
      `node ${this.id} is not in a cluster any more: the cluster was stopped, or the node left it (node.close())`,
    );
  }

  #shutdown(): void {
    if (!this.#connected) return;
    this.#connected = false;
    process.off('exit', this.#onExit);
    const closed = new NotConnectedError(
      `node ${this.id} left its cluster (the cluster was stopped, or node.close()) before this finished`,
    );
    // Callers on other nodes see this node go down, as if its thread had exited.
    const gone = new NodeDownError(`node ${this.id} left the cluster before answering`, this.id);
    const local = this.#calls.local;
    for (const proc of this.#processes.removeAll())
      proc.exit('shutdown', (to) => (to === local ? closed : gone));
    this.#calls.failAll(() => closed);
    this.#monitors.shutdown();
    for (const hooks of this.#scopes.all()) hooks.detach(true);
    this.#peers.closeAll();
    this.#control.close(closed, this.#onControl);
  }
}
