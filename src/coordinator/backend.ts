/**
 * What `Cluster` needs of its coordinator, whether it runs on the cluster's own thread
 * (`Coordinator`, called directly) or in a thread of its own (`ThreadCoordinator`, which
 * forwards each call). Calls that answer at once may answer with a promise, so that the
 * cluster can await either.
 */
import type { MessagePort, Worker } from 'node:worker_threads';
import type { IndexOptions } from '../shared-index/types.js';
import type { PeerInfo } from '../peering/peering.js';
import type { AcceptHooks, CoordinatorStats } from './coordinator.js';

export interface CoordinatorBackend {
  /** Takes a control port; the thread at its far end becomes a node when it says hello. */
  accept(port: MessagePort, worker?: Worker, hooks?: AcceptHooks): void;
  /** The node's thread is gone: drop it everywhere (`drain`: apply what it posted first). */
  nodeDown(id: number, drain?: boolean): void;
  /** Resolves once `node` has handled everything sent to it so far. */
  barrier(node: number): Promise<void>;
  startScope(name: string, index?: IndexOptions): boolean | Promise<boolean>;
  stopScope(name: string): boolean | Promise<boolean>;
  scopes(): string[];
  nodeIds(): number[];
  peers(): PeerInfo[];
  stats(): CoordinatorStats;
  partition(node: number, scope: string, cut: boolean): Promise<void>;
  drain(timeout: number): Promise<void>;
  closePeering(): Promise<void>;
  /** Tells every node to shut down and lets go of every port, scope (and thread). */
  stop(): void | Promise<void>;
}
