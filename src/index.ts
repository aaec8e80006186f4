/**
 * procgroups: Erlang/OTP's `pg` process groups for Node.js worker_threads.
 */
export {
  IndexFullError,
  IndexLayoutError,
  InvalidGroupError,
  InvalidPidError,
  NotLocalError,
  TooManyReadersError,
} from './errors.js';
export {
  decodeGroup,
  encodeGroup,
  type Group,
  type GroupAtom,
  type GroupKey,
  isGroupKey,
} from './group.js';
export { formatPid, isPid, makePid, nodeOf, type Pid, serialOf } from './pid.js';
export { IndexReader } from './shared-index/reader.js';
export {
  type IndexHandle,
  type IndexOptions,
  type IndexStats,
  IndexWriter,
  type SyncChange,
} from './shared-index/writer.js';
