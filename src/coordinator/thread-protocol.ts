/**
 * The messages between a cluster's thread and its coordinator thread
 * (`startCluster({ coordinator: 'thread' })`). Both ends are this library, so they are
 * typed rather than parsed: no node ever writes on these ports.
 *
 * Requests go on one port, in order (a `barrier` after a `nodeDown` sees the node gone).
 * An async request is answered on that port by its `ref`; a sync one (`sync: true`: the
 * cluster's thread waits in `Atomics.wait`) on the `replies` port, followed by a bump of
 * `signal[0]` and a notify. `accept` and `nodeDown` are not answered.
 */
import type { MessagePort } from 'node:worker_threads';
import type { WireError } from '../core/wire-error.js';
import type { IndexOptions } from '../shared-index/types.js';
import type { TransportRecipe } from '../peering/transport.js';

export type Op =
  | { op: 'accept'; port: MessagePort; hook: number | undefined }
  | { op: 'nodeDown'; id: number; drain: boolean }
  | { op: 'barrier'; node: number }
  | { op: 'startScope'; name: string; index: IndexOptions | undefined }
  | { op: 'stopScope'; name: string }
  | { op: 'partition'; node: number; scope: string; cut: boolean }
  | { op: 'drain'; timeout: number }
  | { op: 'closePeering' }
  | { op: 'stop' }
  | { op: 'scopes' }
  | { op: 'nodeIds' }
  | { op: 'peers' }
  | { op: 'stats' };

export type Request = Op & { ref: number; sync: boolean };

export interface Reply {
  ref: number;
  value?: unknown;
  error?: WireError;
}

/** Unprompted news from the coordinator thread. */
export type Event =
  | { ev: 'up' }
  | { ev: 'failed'; error: WireError }
  | { ev: 'registered'; hook: number; id: number }
  | { ev: 'ready'; hook: number }
  | { ev: 'warning'; name: string; message: string };

/** The coordinator thread's `workerData`. */
export interface ThreadData {
  port: MessagePort;
  replies: MessagePort;
  signal: Int32Array;
  index: IndexOptions;
  scopes: string[];
  /** With a transport: how to make it there. */
  transport: TransportRecipe | undefined;
}
