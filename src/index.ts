/**
 * procgroups: Erlang/OTP's `pg` process groups for Node.js worker_threads.
 *
 * Start a cluster on the main thread with `startCluster()`, attach worker threads with
 * `connect()`, and use `node.pg` (or `node.scope(name)`) on any of them.
 */
export type { CallOptions, Transferable } from './calls.js';
export {
  Cluster,
  type ClusterOptions,
  type ConnectOptions,
  connect,
  type SpawnNodeOptions,
  startCluster,
  type WorkerNode,
} from './cluster.js';
export type { CoordinatorStats } from './coordinator.js';
export {
  type DispatchOptions,
  type DispatchStats,
  type MultiCallResult,
  type PickFunction,
  QueueFullError,
  type Strategy,
} from './dispatch.js';
export {
  CallTimeoutError,
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
  TooManyReadersError,
} from './errors.js';
export { type MembershipEvent, MonitorOverflowError } from './events.js';
export {
  decodeGroup,
  encodeGroup,
  type Group,
  type GroupAtom,
  type GroupKey,
  isGroupKey,
} from './group.js';
export { type ExitReason, Node, type NodeEvents, type ProcessMonitor } from './node.js';
export { formatPid, isPid, makePid, nodeOf, type Pid, serialOf } from './pid.js';
export type { Handler, ProcessContext, SpawnOptions } from './process.js';
export { type GroupMonitor, type MonitorOptions, Scope, type ScopeMonitor } from './scope.js';
export { IndexReader } from './shared-index/reader.js';
export {
  type IndexHandle,
  type IndexOptions,
  type IndexStats,
  IndexWriter,
  type SyncChange,
} from './shared-index/writer.js';
