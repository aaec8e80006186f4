/**
 * procgroups: Erlang/OTP's `pg` process groups for Node.js worker_threads.
 *
 * Start a cluster on the main thread with `startCluster()`, attach worker threads with
 * `connect()`, and use `node.pg` (or `node.scope(name)`) on any of them.
 */
export type { CallOptions, Transferable } from './runtime/pending-calls.js';
export type { PickNode } from './dispatch/options.js';
export {
  Cluster,
  type ClusterOptions,
  type SpawnNodeOptions,
  startCluster,
  type StopOptions,
  type WorkerNode,
} from './coordinator/cluster.js';
export type { CoordinatorStats } from './coordinator/coordinator.js';
export { type ConnectOptions, connect } from './runtime/connect.js';
export {
  type DispatchOptions,
  type DispatchStats,
  type MultiCallResult,
  type PickFunction,
  type Strategy,
} from './dispatch/options.js';
export {
  CallTimeoutError,
  CoordinatorThreadError,
  IndexFullError,
  IndexLayoutError,
  InvalidGroupError,
  InvalidPidError,
  MessageCloneError,
  NodeDownError,
  NoMembersError,
  NoProcessError,
  NoScopeError,
  NotConnectedError,
  NotLocalError,
  ProcessExitError,
  MonitorOverflowError,
  MissingPackageError,
  QueueFullError,
  RemoteMessageError,
  TooManyReadersError,
  TransportError,
  ServiceCallError,
  UnknownMethodError,
} from './core/errors.js';
export type { PeerInfo, PeeringStats } from './peering/peering.js';
export type {
  Transport,
  TransportHandlers,
  TransportLink,
  TransportRecipe,
} from './peering/transport.js';
export {
  type MethodArgs,
  type MethodNames,
  type MethodResult,
  type Remote,
  type RemoteAll,
  type RemoteTell,
  type ServeOptions,
  type Served,
  type Service,
  type ServiceCallOptions,
  type ServiceKey,
  type ServiceOptions,
  transfer,
} from './services/index.js';

export {
  decodeGroup,
  encodeGroup,
  type Group,
  type GroupAtom,
  type GroupKey,
  isGroupKey,
} from './core/group.js';
export { type ExitReason, Node, type NodeEvents, type ProcessMonitor } from './runtime/node.js';
export { formatPid, isPid, makePid, nodeOf, type Pid, serialOf } from './core/pid.js';
export type { Handler, ProcessContext, SpawnOptions } from './runtime/process.js';
export {
  type GroupMonitor,
  type MembershipEvent,
  type MonitorOptions,
  Scope,
  type ScopeMonitor,
  type WaitForMembersOptions,
} from './pg/scope.js';
export { IndexReader } from './shared-index/reader.js';
export type { IndexHandle, IndexOptions, IndexStats, SyncChange } from './shared-index/types.js';
export { IndexWriter } from './shared-index/writer.js';
