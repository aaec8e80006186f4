/**
 * Attaching a thread to a cluster as a node: `connect()` in a worker started by
 * `cluster.spawn()` (its control port waits on `parentPort`), or with a port from
 * `cluster.connectPort()` on any other thread. The thread says hello, the coordinator
 * answers with a welcome (its node id, the nodes and scopes), and the node starts.
 */
import { isMainThread, MessagePort as MessagePortClass, threadId } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { describe, NotConnectedError } from '../core/errors.js';
import { type Endpoint, parseToNode, type ToNode } from '../protocol/messages.js';
import { LoadTable } from './load-table.js';
import { Node } from './node.js';
import type { Handler } from './process.js';

/** Options of `connect()`. */
export interface ConnectOptions {
  /** Handler of this thread's root process. */
  handler?: Handler;
  /** A name for logs and errors. */
  name?: string;
}

export async function attach(port: MessagePort, options: ConnectOptions): Promise<Node> {
  const loads = new LoadTable();
  const welcome = await new Promise<Extract<ToNode, { t: 'welcome' }>>((resolve, reject) => {
    const onMessage = (raw: unknown) => {
      const m = parseToNode(raw);
      if (m?.t !== 'welcome') return;
      cleanup();
      resolve(m);
    };
    const onClose = () => {
      cleanup();
      reject(
        new NotConnectedError('the cluster closed the connection before this thread became a node'),
      );
    };
    const cleanup = () => {
      port.off('message', onMessage);
      port.off('close', onClose);
    };
    port.on('message', onMessage);
    port.once('close', onClose);
    port.postMessage({
      t: 'hello',
      threadId,
      name: options.name ?? `thread ${threadId}`,
      loads: loads.buffer,
    });
  });
  const endpoint: Endpoint & { close(): void } = port;
  const node = new Node(endpoint, welcome, loads, options.handler);
  port.once('close', () => node.close());
  return node;
}

/**
 * What a worker started by `cluster.spawn()` keeps between its first module
 * (spawned.ts) and `connect()`: the control port, and whether the user's module has
 * finished evaluating. It lives on `globalThis` under a registered symbol, so that two
 * copies of this library in one worker (a bundled one and an installed one) share it.
 */
interface SpawnedSlot {
  port: MessagePort;
  /** `connect()` took the port. */
  taken: boolean;
  /** The node is attached. */
  connected: boolean;
  /** The user's module finished evaluating. */
  evaluated: boolean;
}

const SLOT = Symbol.for('procgroups.spawned');

function slot(): SpawnedSlot | undefined {
  return (globalThis as { [SLOT]?: SpawnedSlot })[SLOT];
}

/** Called by spawned.ts with the control port, before it imports the user's module. */
export function holdSpawnedPort(port: MessagePort): void {
  (globalThis as { [SLOT]?: SpawnedSlot })[SLOT] = {
    port,
    taken: false,
    connected: false,
    evaluated: false,
  };
}

/** Called by spawned.ts once the user's module has finished evaluating. */
export function moduleEvaluated(): void {
  const s = slot();
  if (s === undefined) return;
  s.evaluated = true;
  sayReady(s);
}

/**
 * Tells the coordinator that this spawned worker is ready, once it is both attached and
 * done with its module. After a turn of the event loop: messages its module posted
 * (batched until the end of their job) go first, so a join the module did not await
 * is applied before `spawn()` resolves.
 */
function sayReady(s: SpawnedSlot): void {
  if (!s.evaluated || !s.connected) return;
  setImmediate(() => {
    try {
      s.port.postMessage({ t: 'ready' });
    } catch {
      // The port closed: the worker is leaving, and spawn() learns it from its exit.
    }
  });
}

/**
 * Attaches this thread to a cluster as a node. In a worker started by `cluster.spawn`,
 * call it once, with no port: `connect()` or `connect({ handler })`. Elsewhere (a
 * piscina or tinypool thread, say), pass a port from `cluster.connectPort()`:
 * `connect(port, options)`.
 */
export async function connect(
  portOrOptions?: MessagePort | ConnectOptions,
  maybeOptions?: ConnectOptions,
): Promise<Node> {
  let options = maybeOptions ?? {};
  let port: MessagePort | undefined;
  if (portOrOptions instanceof MessagePortClass) port = portOrOptions;
  else if (portOrOptions !== undefined) {
    // connect({ handler }) in a spawned worker: the options come first when there is no port.
    if (typeof portOrOptions !== 'object' || portOrOptions === null || maybeOptions !== undefined) {
      throw new TypeError(
        `connect() takes a MessagePort from cluster.connectPort(), or options, got ${describe(portOrOptions)}`,
      );
    }
    options = portOrOptions;
  }
  if (typeof options !== 'object' || options === null)
    throw new TypeError(`connect options must be an object, got ${describe(options)}`);
  if (port !== undefined) return attach(port, options);
  if (isMainThread) {
    throw new NotConnectedError(
      'connect() without a port only works in a worker started by cluster.spawn(); ' +
        'on the main thread use startCluster(), elsewhere pass a port from cluster.connectPort()',
    );
  }
  const s = slot();
  if (s === undefined) {
    throw new NotConnectedError(
      'this worker was not started by cluster.spawn() (no control port was handed to it); ' +
        'pass a port from cluster.connectPort() instead',
    );
  }
  if (s.taken) {
    throw new NotConnectedError(
      'connect() was already called in this worker: a thread is one node. Keep the Node the first call returned (pass it around, or export it from a module)',
    );
  }
  s.taken = true;
  const node = await attach(s.port, options);
  s.connected = true;
  sayReady(s);
  return node;
}
