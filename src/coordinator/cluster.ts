/**
 * Starting a cluster and attaching threads to it.
 *
 * `startCluster()` makes the calling thread node 0, and the coordinator too unless it is
 * given a thread of its own (`{ coordinator: 'thread' }`). `cluster.spawn()`
 * starts a worker thread whose script calls `connect()`. Any other thread — a piscina or
 * tinypool worker, say — joins with `connect(port)`, given a port from
 * `cluster.connectPort()`.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MessageChannel, type MessagePort, Worker, type WorkerOptions } from 'node:worker_threads';
import {
  checkNumber,
  CoordinatorThreadError,
  describe,
  NotConnectedError,
} from '../core/errors.js';
import { SPAWNED_ENTRY } from '../entries.js';
import { checkScopeName } from '../core/scope-name.js';
import { after } from '../core/timer.js';
import { fromWire, toWire } from '../core/wire-error.js';
import { HANDSHAKE } from '../protocol/messages.js';
import { attach, type ConnectOptions } from '../runtime/connect.js';
import type { Node } from '../runtime/node.js';
import type { Handler } from '../runtime/process.js';
import type { IndexOptions } from '../shared-index/types.js';
import type { CoordinatorBackend } from './backend.js';
import { Coordinator, type CoordinatorStats } from './coordinator.js';
import { ThreadCoordinator } from './thread-client.js';
import type { PeerInfo } from '../peering/peering.js';
import type { Transport, TransportRecipe } from '../peering/transport.js';

/** Options of `startCluster()`. */
export interface ClusterOptions {
  /** Scopes to start besides the default `'pg'`. */
  scopes?: string[];
  /** Sizing of each scope's shared index. */
  index?: IndexOptions;
  /** Handler of this thread's root process (`node.self()`). */
  handler?: Handler;
  /**
   * Peers this cluster with the clusters of other OS processes, on this host or others,
   * over a broker: `natsTransport({ servers, cluster })` from `procgroups/nats`. Their
   * members show in this process's index, and pids of theirs take `send`, `call` and
   * `dispatch` like local ones. Without it, nothing leaves this process.
   */
  transport?: Transport;
  /**
   * Where the coordinator (the single writer of the membership index, the node registry
   * and the link broker) runs. `'main'` (default): on this thread, which is also node 0;
   * every join, leave and node-down of every node waits while this thread runs code.
   * `'thread'`: in a thread of its own, so that other nodes' writes and node-downs go
   * through however long this thread is busy; this thread stays node 0, and its own
   * writes take a hop to that thread and back. With a `transport`, that thread makes its
   * own from the transport's `recipe` (`natsTransport` has one) and peers from there;
   * a transport without one, or whose options are not plain data, throws
   * CoordinatorThreadError.
   */
  coordinator?: 'main' | 'thread';
}

/** Options of `cluster.stop()`. */
export interface StopOptions {
  /**
   * Milliseconds to let nodes handle what was sent before the stop and finish calls in
   * flight; then the workers are terminated whatever they are doing. Default 5,000;
   * 0 stops at once.
   */
  timeout?: number;
}

/** How long a graceful stop waits by default: an OTP supervisor's shutdown for a worker. */
const DEFAULT_STOP_TIMEOUT = 5_000;

/** Options of `cluster.spawn()`: Node's `WorkerOptions` (`workerData`, `name`, `resourceLimits`, `execArgv`…) plus these. */
export interface SpawnNodeOptions extends Omit<WorkerOptions, 'eval' | 'transferList'> {
  /**
   * When `spawn()` resolves. `'evaluated'` (default): once the worker's module has
   * finished evaluating, so its top-level `await connect()` and joins are done and a
   * burst dispatched right after reaches it. `'connected'`: as soon as it called
   * `connect()`, for a module that never finishes (a top-level loop).
   */
  ready?: 'evaluated' | 'connected';
  /** Milliseconds for the worker to be ready (see `ready`) before spawn gives up and terminates it. Default 30,000. */
  connectTimeout?: number;
}

/** The URL `import()` needs for what `new Worker()` accepts: a URL, a file URL string, or a path. */
function moduleUrl(url: string | URL): string {
  if (url instanceof URL) return url.href;
  if (typeof url !== 'string')
    throw new TypeError(`spawn needs a module URL or path, got ${describe(url)}`);
  // A scheme (file:, data:) but not a Windows drive letter.
  if (/^[a-z][a-z\d+.-]+:/i.test(url)) return url;
  return pathToFileURL(resolve(url)).href;
}

/** A worker node started by `cluster.spawn`. */
export interface WorkerNode {
  /** Its node id. */
  readonly id: number;
  /** The worker thread itself. */
  readonly worker: Worker;
  /** Terminates the worker; resolves when the cluster has dropped the node. */
  terminate(): Promise<void>;
}

/**
 * A running cluster, from `startCluster()`: spawns and admits nodes, starts and stops
 * scopes, and stops the whole cluster. Only the thread that started it has it.
 */
export class Cluster {
  readonly #coordinator: CoordinatorBackend;
  readonly #workers = new Map<number, Worker>();
  readonly #exits = new Map<number, Promise<void>>();
  /** Spawns not ready yet: a stop fails them and waits for their workers to end. */
  readonly #starting = new Set<() => Promise<unknown>>();
  readonly #node: Node;
  #stopping: Promise<void> | undefined;

  /** @internal Use `startCluster()`. */
  constructor(coordinator: CoordinatorBackend, node: Node) {
    this.#coordinator = coordinator;
    this.#node = node;
    coordinators.set(this, coordinator);
  }

  /** This thread's node (node 0). */
  get node(): Node {
    return this.#node;
  }

  /**
   * Starts a worker thread from `url`; its script must call `connect()`. Resolves once
   * it is a node. Rejects if the worker fails or exits before that, or does not
   * connect within `connectTimeout`.
   */
  async spawn(url: string | URL, options: SpawnNodeOptions = {}): Promise<WorkerNode> {
    this.#assertRunning();
    const { connectTimeout = 30_000, ready = 'evaluated', ...workerOptions } = options;
    checkNumber('connectTimeout (ms)', connectTimeout, 0, { exclusive: true });
    if (ready !== 'evaluated' && ready !== 'connected')
      throw new TypeError(`ready must be 'evaluated' or 'connected', got ${describe(ready)}`);
    const entry = moduleUrl(url);
    const { port1, port2 } = new MessageChannel();
    // The worker starts in spawned.ts, which imports `entry` and says when it is done.
    const worker = new Worker(SPAWNED_ENTRY, workerOptions);
    worker.postMessage({ tag: HANDSHAKE, port: port2, entry }, [port2]);
    const name = describe(String(url));
    let exitedEarly = false;
    const id = await new Promise<number>((resolve, reject) => {
      let nodeId: number | undefined;
      const fail = (error: Error) => {
        cleanup();
        port1.close();
        void worker.terminate();
        reject(error);
      };
      /** What the worker had not done yet, in the past tense for an exit. */
      const waitingFor = (past = false) =>
        nodeId === undefined
          ? past
            ? 'called connect()'
            : 'call connect()'
          : `${past ? 'finished' : 'finish'} evaluating its module (a module that never ends, such as a top-level loop, needs spawn(url, { ready: 'connected' }))`;
      // Node hands a worker's error over by name and fields: an error of this library
      // gets its class back, as one that crossed a channel would.
      const onError = (e: Error) => fail(fromWire(toWire(e)));
      const onExit = (code: number) => {
        // A worker that connected, did its work and ended cleanly (node.close(), say)
        // before its module finished: spawned all the same.
        if (nodeId !== undefined && code === 0) {
          exitedEarly = true;
          done(nodeId);
        } else
          fail(new Error(`worker ${name} exited (code ${code}) before it ${waitingFor(true)}`));
      };
      const timer = after(connectTimeout, () =>
        fail(new Error(`worker ${name} did not ${waitingFor()} within ${connectTimeout} ms`)),
      );
      const abandon = () => {
        fail(new NotConnectedError(`the cluster was stopped before worker ${name} was ready`));
        return worker.terminate();
      };
      this.#starting.add(abandon);
      const cleanup = () => {
        this.#starting.delete(abandon);
        clearTimeout(timer);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      const done = (id: number) => {
        cleanup();
        resolve(id);
      };
      worker.once('error', onError);
      worker.once('exit', onExit);
      this.#coordinator.accept(port1, worker, {
        registered: (id) => {
          nodeId = id;
          if (ready === 'connected') done(id);
        },
        ready: () => done(nodeId!),
      });
    });
    this.#workers.set(id, worker);
    const exited = new Promise<void>((resolve) => {
      const gone = () => {
        this.#workers.delete(id);
        this.#coordinator.nodeDown(id, true);
        // Resolve once this thread's node has heard of it too (its nodes() and isAlive agree).
        void this.#coordinator.barrier(this.#node.id).then(resolve);
      };
      if (exitedEarly) gone();
      else worker.once('exit', gone);
    });
    // An uncaught error in the worker ends it; the 'exit' that follows brings the node
    // down. Listening here keeps it from also crashing this thread.
    worker.on('error', () => {});
    this.#exits.set(id, exited);
    return {
      id,
      worker,
      terminate: async () => {
        await worker.terminate();
        await exited;
      },
    };
  }

  /**
   * A port that any thread can pass to `connect(port)` to join as a node (bring your
   * own thread). Transfer it to that thread (it is a MessagePort).
   *
   * The thread must keep its event loop free to answer calls: piscina and tinypool park
   * idle threads in a blocking `Atomics.wait` by default, so create such pools with
   * `atomics: 'disabled'` (piscina) or `useAtomics: false` (tinypool).
   */
  connectPort(): MessagePort {
    this.#assertRunning();
    const { port1, port2 } = new MessageChannel();
    this.#coordinator.accept(port1);
    return port2;
  }

  /**
   * Starts a scope on every node. Resolves (false if it was already running) once this
   * thread's node can use it; other nodes attach to it as the news reaches them.
   */
  async startScope(name: string, index?: IndexOptions): Promise<boolean> {
    this.#assertRunning();
    checkScopeName(name);
    const started = await this.#coordinator.startScope(name, index);
    await this.#coordinator.barrier(this.#node.id);
    return started;
  }

  /**
   * Stops a scope: its index is dropped, and joins, leaves and monitors fail with
   * `NoScopeError` until it starts again. As in pg, the coordinator thread's own
   * memberships are lost, while worker nodes keep theirs and sync them back when the
   * scope is started again. Resolves once this thread's node has let go of it.
   */
  async stopScope(name: string): Promise<boolean> {
    this.#assertRunning();
    checkScopeName(name);
    const stopped = await this.#coordinator.stopScope(name);
    await this.#coordinator.barrier(this.#node.id);
    return stopped;
  }

  /** Names of the running scopes. */
  scopes(): string[] {
    return this.#coordinator.scopes();
  }

  /** Ids of the nodes that are up. */
  nodes(): number[] {
    return this.#coordinator.nodeIds();
  }

  /**
   * The peer processes this one sees now (with a `transport`; none without): each one's
   * peer id, name, node ids and scopes.
   */
  peers(): PeerInfo[] {
    return this.#coordinator.peers();
  }

  /** Counters of what the coordinator dropped (malformed, forged, ignored messages). */
  stats(): CoordinatorStats {
    return this.#coordinator.stats();
  }

  /**
   * Test hook, the thread-world netsplit: cuts `node`'s link to `scope` on both sides.
   * The coordinator drops the node's members and ignores it; the node keeps its
   * memberships, and its joins and leaves stay local. `heal` restores the link: the
   * node syncs, and both sides converge.
   */
  partition(node: number, scope = 'pg'): Promise<void> {
    return this.#coordinator.partition(node, scope, true);
  }

  /** Restores the link that `partition` cut: the node syncs and both sides converge. */
  heal(node: number, scope = 'pg'): Promise<void> {
    return this.#coordinator.partition(node, scope, false);
  }

  /**
   * Ends the cluster, gracefully by default: every node first handles what was sent to
   * it before the stop (sends, broadcasts, calls), and its calls, joins and leaves in
   * flight settle, for at most `timeout` ms (default 5,000, as an OTP supervisor gives a
   * worker); then every worker it spawned is terminated, other nodes are told to shut
   * down, and every scope stops. `stop({ timeout: 0 })` skips the wait: work in flight
   * is dropped.
   * Resolves when the workers are gone; after that nothing of the cluster keeps the
   * process alive. Calling it again returns the same promise. A `spawn()` still waiting
   * for its worker rejects with `NotConnectedError`, and that worker ends too. (A stop
   * awaited inside a handler of this cluster counts that handler as busy: it waits
   * its timeout.) The wait ends when no node has work left, not at a cut-off: what
   * handlers send meanwhile is handled too, so a node that keeps sending (a loop that
   * dispatches until told to stop) keeps the cluster busy, and the stop waits its whole
   * timeout. End such loops first, or pass a shorter timeout.
   */
  stop(options: StopOptions = {}): Promise<void> {
    if (this.#stopping === undefined) {
      if (typeof options !== 'object' || options === null)
        throw new TypeError(`stop options must be an object, got ${describe(options)}`);
      checkNumber('timeout (ms)', options.timeout, 0);
    }
    this.#stopping ??= (async () => {
      // Workers still starting never become nodes of a stopped cluster.
      const starting = [...this.#starting].map((abandon) => abandon());
      const timeout = options.timeout ?? DEFAULT_STOP_TIMEOUT;
      if (timeout > 0) await this.#coordinator.drain(timeout);
      // The peers drop this process's members now, rather than after a timeout.
      await this.#coordinator.closePeering();
      const exits = [...this.#exits.values()];
      for (const worker of this.#workers.values()) void worker.terminate();
      await Promise.all([...exits, ...starting]);
      this.#node.close();
      await this.#coordinator.stop();
    })();
    return this.#stopping;
  }

  #assertRunning(): void {
    if (this.#stopping !== undefined) throw new NotConnectedError('this cluster was stopped');
  }
}

/**
 * The coordinator behind a cluster, for tests and benchmarks that craft protocol
 * messages or read its tables. Not part of the public API (index.ts does not export it).
 * Only for a cluster whose coordinator runs on this thread (the default): a coordinator
 * thread's tables are in that thread.
 */
export function coordinatorOf(cluster: Cluster): Coordinator {
  const c = coordinators.get(cluster);
  if (!(c instanceof Coordinator))
    throw new CoordinatorThreadError(
      "coordinatorOf() needs the coordinator on this thread: start the cluster without { coordinator: 'thread' }",
    );
  return c;
}

/** Resolves once `node` has handled everything the coordinator sent it so far (tests), in either mode. */
export function barrierOf(cluster: Cluster, node: number): Promise<void> {
  return coordinators.get(cluster)!.barrier(node);
}

const coordinators = new WeakMap<Cluster, CoordinatorBackend>();

/**
 * What a coordinator thread needs to make `transport` for itself: its recipe, checked
 * here, where a mistake can name the option at fault.
 */
function recipeOf(transport: Transport): TransportRecipe {
  const recipe = transport.recipe;
  if (recipe === undefined)
    throw new CoordinatorThreadError(
      "this transport has no `recipe`, so a coordinator thread cannot make it (a transport's " +
        'functions and connection cannot be sent to another thread): give it one (see ' +
        "TransportRecipe), or leave the coordinator on this thread (coordinator: 'main')",
    );
  try {
    return structuredClone(recipe);
  } catch (e) {
    throw new CoordinatorThreadError(
      `the transport's options cannot be sent to the coordinator thread (${(e as Error).message}): ` +
        "pass plain data (no functions), or leave the coordinator on this thread (coordinator: 'main')",
      { cause: e },
    );
  }
}

/** Where the coordinator runs when `startCluster()` is not told. */
const DEFAULT_COORDINATOR = 'main';

/**
 * Starts a cluster: this thread becomes node 0, and the coordinator runs here or, with
 * `{ coordinator: 'thread' }`, in a thread of its own.
 */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const where = options.coordinator ?? DEFAULT_COORDINATOR;
  if (where !== 'main' && where !== 'thread')
    throw new TypeError(`coordinator must be 'main' or 'thread', got ${describe(where)}`);
  let coordinator: CoordinatorBackend;
  if (where === 'thread') {
    coordinator = await ThreadCoordinator.start(
      options.index ?? {},
      options.scopes ?? [],
      options.transport === undefined ? undefined : recipeOf(options.transport),
    );
  } else {
    const local = new Coordinator(options.index ?? {}, options.transport);
    local.startScope('pg');
    for (const name of options.scopes ?? []) local.startScope(name);
    await local.open();
    coordinator = local;
  }
  const { port1, port2 } = new MessageChannel();
  coordinator.accept(port1);
  const connectOptions: ConnectOptions = { name: 'coordinator' };
  if (options.handler !== undefined) connectOptions.handler = options.handler;
  let node: Node;
  try {
    node = await attach(port2, connectOptions);
  } catch (e) {
    // Peers heard of this process already: tell them it is gone, rather than let them
    // find out after their peer timeout.
    await coordinator.closePeering().catch(() => {});
    await coordinator.stop();
    throw e;
  }
  return new Cluster(coordinator, node);
}
