/**
 * Attaching a thread to a cluster as a node: `connect()` in a worker started by
 * `cluster.spawn()` (its control port waits on `parentPort`), or with a port from
 * `cluster.connectPort()` on any other thread. The thread says hello, the coordinator
 * answers with a welcome (its node id, the nodes and scopes), and the node starts.
 */
import {
  isMainThread,
  type MessagePort,
  parentPort,
  receiveMessageOnPort,
  threadId,
} from 'node:worker_threads';
import { NotConnectedError } from '../core/errors.js';
import { type Endpoint, HANDSHAKE, parseToNode, type ToNode } from '../protocol/messages.js';
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
 * Attaches this thread to a cluster as a node. In a worker started by `cluster.spawn`,
 * call it with no port (before listening on `parentPort` yourself). Elsewhere, pass a
 * port from `cluster.connectPort()`.
 */
export async function connect(port?: MessagePort, options: ConnectOptions = {}): Promise<Node> {
  if (port === undefined) {
    if (isMainThread || parentPort === null) {
      throw new NotConnectedError(
        'connect() without a port only works in a worker started by cluster.spawn(); ' +
          'on the main thread use startCluster(), elsewhere pass a port from cluster.connectPort()',
      );
    }
    const first = receiveMessageOnPort(parentPort);
    const msg = first?.message as { tag?: unknown; port?: unknown } | undefined;
    if (msg?.tag !== HANDSHAKE || !(msg.port instanceof Object)) {
      throw new NotConnectedError(
        'this worker was not started by cluster.spawn() (no control port waiting on parentPort); ' +
          'pass a port from cluster.connectPort() instead',
      );
    }
    port = msg.port as MessagePort;
  }
  return attach(port, options);
}
