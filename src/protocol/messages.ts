/**
 * The messages between a node and the coordinator: pg's protocol (`discover`, `sync`,
 * `join`, `leave`), plus what threads need that Erlang's distribution gives for free
 * (registration, node up/down, broker-made links) and monitor events.
 *
 * They travel over an `Endpoint` (anything with `postMessage` and message events), so
 * the same protocol can later run between coordinators over a message broker. Every
 * message that arrives is checked by `parseToCoordinator` or `parseToNode` before it is
 * acted on; a message that does not parse is counted and dropped, never applied.
 */
import { MessagePort } from 'node:worker_threads';
import { type GroupKey, isGroupKey, MAX_KEY_UNITS } from '../core/group.js';
import { isScopeName } from '../core/scope-name.js';
import { isPid, type Pid } from '../core/pid.js';
import type { IndexHandle } from '../shared-index/types.js';

/**
 * Tag of the first message `cluster.spawn` posts to a worker, on `parentPort`: it
 * carries the worker's control port and the URL of the user's module, which the
 * worker's first module (runtime/spawned.ts) imports.
 */
export const HANDSHAKE = 'procgroups:control-port';

/** Anything that carries structured-cloneable messages both ways. */
export interface Endpoint {
  postMessage(message: unknown, transfer?: readonly (ArrayBuffer | MessagePort)[]): void;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  /** A message arrived but could not be deserialized. */
  on(event: 'messageerror', listener: (error: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

// Node → coordinator ---------------------------------------------------------------

/** First message on a fresh control port: "I am a thread, make me a node". */
export interface Hello {
  t: 'hello';
  threadId: number;
  name: string;
  /** The node's load table (see load-table.ts), shared with every other node. */
  loads: SharedArrayBuffer;
}
/**
 * Hands the coordinator one end of a channel this node made to talk to `peer`; the
 * coordinator passes it on as `linked`, or closes it if `peer` is not a live node.
 */
export interface LinkRequest {
  t: 'link';
  peer: number;
  port: MessagePort;
  /** The node judged `peer` to be in another process: payloads on the channel go serialized. */
  remote?: boolean;
}
/**
 * pg's `sync`: the node's whole membership in `scope`. It replaces whatever the
 * coordinator held for the node there. Sent when the node attaches to a scope and when
 * the coordinator asks with `discover`.
 */
export interface Sync {
  t: 'sync';
  scope: string;
  groups: [GroupKey, Pid[]][];
}
/** pg's `join`: local pids joining a group. Answered by `ack` once applied. */
export interface Join {
  t: 'join';
  scope: string;
  ref: number;
  key: GroupKey;
  pids: Pid[];
}
/** pg's `leave`: local pids leaving a group. Answered by `ack` once applied. */
export interface Leave {
  t: 'leave';
  scope: string;
  ref: number;
  key: GroupKey;
  pids: Pid[];
}
/** A local process exited: one leave per counted join, all groups at once (pg's `'DOWN'` path). */
export interface ExitLeave {
  t: 'exit';
  scope: string;
  pid: Pid;
  keys: GroupKey[];
}
/** Subscribes to a scope (`key` absent) or to one group; answered by `monitored` with a snapshot. */
export interface MonitorRequest {
  t: 'monitor';
  scope: string;
  ref: number;
  key?: GroupKey;
}
/** Ends subscription `monitor`; answered by `ack` (for `ref`), after which no event of it arrives. */
export interface Demonitor {
  t: 'demonitor';
  scope: string;
  ref: number;
  monitor: number;
}
/**
 * A worker started by `cluster.spawn()` finished evaluating its module (its top-level
 * joins are done): `spawn()` resolves now.
 */
export interface Ready {
  t: 'ready';
}
/**
 * The node is leaving the cluster on purpose. `ack`, when given (a worker's thread is
 * ending), is set to 1 and notified once the coordinator has dropped the node and
 * posted what that caused: the ending thread waits on it (see `Node`'s exit handler).
 */
export interface Bye {
  t: 'bye';
  ack?: Int32Array;
}
/**
 * The node has a `'nodedown'` listener: tell it of every node going down at once, and
 * now of those it has not heard of yet (see coordinator/down-notices.ts).
 */
export interface Watch {
  t: 'watch';
}
/** The node carried out coordinator request `ref` (see `Partition`). */
export interface Done {
  t: 'done';
  ref: number;
}

export type ToCoordinator =
  | Hello
  | LinkRequest
  | Sync
  | Join
  | Leave
  | ExitLeave
  | MonitorRequest
  | Demonitor
  | Ready
  | Bye
  | Watch
  | Done;

// Coordinator → node ----------------------------------------------------------------

/** Answer to `hello`: the node's id, the live nodes (with their load tables), the running scopes. */
export interface Welcome {
  t: 'welcome';
  id: number;
  nodes: [number, SharedArrayBuffer][];
  scopes: [string, IndexHandle][];
  /** Set for the node on the coordinator's own thread. */
  home?: boolean;
  /** Set when the cluster peers with other processes: see `Peered`. */
  peered?: Peered;
}
/**
 * What a node of a peered cluster knows of the other processes: node ids outside this
 * process's blocks (`tags`, see peering/node-ids.ts) are theirs, and a channel to one of
 * them carries payloads serialized, up to `maxFrame` bytes each.
 */
export interface Peered {
  tags: number[];
  maxFrame: number;
}
/** This process took another block of node ids. */
export interface Tags {
  t: 'tags';
  tags: number[];
}
export interface NodeUp {
  t: 'nodeup';
  id: number;
  /** Its load table; absent for a node of another process. */
  loads?: SharedArrayBuffer;
}
/** A node is gone: its pids are dead, its links closed, its members removed. */
export interface NodeDown {
  t: 'nodedown';
  id: number;
}
/** A direct channel to `peer` (the coordinator sends one end to each side). */
export interface Linked {
  t: 'linked';
  peer: number;
  port: MessagePort;
  /** Payloads on this channel go serialized (its other end is in, or relayed to, another process). */
  remote?: boolean;
}
/** A scope started (or restarted): attach to it, and sync. */
export interface ScopeUp {
  t: 'scopeup';
  scope: string;
  handle: IndexHandle;
}
/** A scope stopped: its reads are empty and its writes fail until it starts again. */
export interface ScopeDown {
  t: 'scopedown';
  scope: string;
}
/** pg's `discover`: please send your `sync` for this scope again. */
export interface Discover {
  t: 'discover';
  scope: string;
}
/** A request was applied. `result` is the answer for `leave` ('ok' | 'not_joined'). */
export interface Ack {
  t: 'ack';
  ref: number;
  result?: string;
  error?: string;
}
/** Answer to `monitor`: the snapshot that the events continue. */
export interface Monitored {
  t: 'monitored';
  ref: number;
  groups: [GroupKey, Pid[]][];
}
/** A monitor event. */
export interface MonitorEvent {
  t: 'event';
  ref: number;
  kind: 'join' | 'leave';
  key: GroupKey;
  pids: Pid[];
}
/** The cluster is stopping: close everything. */
export interface Shutdown {
  t: 'shutdown';
}
/**
 * Test hook, the netsplit analogue: cut (or restore) this node's link to `scope`.
 * While cut, the node's writes stay local; on restore it syncs. Answered by `done`.
 */
export interface Partition {
  t: 'partition';
  scope: string;
  cut: boolean;
  ref: number;
}
/** Answered by `done`: the node has handled every message the coordinator sent before it. */
/**
 * A graceful stop: handle everything sent to this node so far (over every channel too),
 * let its calls in flight finish, then answer `done`.
 */
export interface Drain {
  t: 'drain';
  ref: number;
}
export interface Ping {
  t: 'ping';
  ref: number;
}

export type ToNode =
  | Welcome
  | Tags
  | NodeUp
  | NodeDown
  | Linked
  | ScopeUp
  | ScopeDown
  | Discover
  | Ack
  | Monitored
  | MonitorEvent
  | Shutdown
  | Partition
  | Drain
  | Ping;

// Validation ------------------------------------------------------------------------

/** Most pids in one message (a join of 100k pids is one message). */
export const MAX_PIDS = 1 << 22;
/** Most groups in one sync. */
export const MAX_SYNC_GROUPS = 1 << 22;

type Obj = Record<string, unknown>;

function isObj(m: unknown): m is Obj {
  return typeof m === 'object' && m !== null && !Array.isArray(m);
}
function isNat(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}
function isKey(x: unknown): x is GroupKey {
  return typeof x === 'string' && x.length <= MAX_KEY_UNITS && isGroupKey(x);
}
function isPids(x: unknown): x is Pid[] {
  if (!Array.isArray(x) || x.length > MAX_PIDS) return false;
  for (let i = 0; i < x.length; i++) if (!isPid(x[i])) return false;
  return true;
}
function isKeys(x: unknown): x is GroupKey[] {
  if (!Array.isArray(x) || x.length > MAX_PIDS) return false;
  for (let i = 0; i < x.length; i++) if (!isKey(x[i])) return false;
  return true;
}
/** One `Int32Array` cell in shared memory, which `Atomics.wait` can sleep on. */
function isSharedCell(x: unknown): x is Int32Array {
  return x instanceof Int32Array && x.buffer instanceof SharedArrayBuffer && x.length >= 1;
}
function isGroups(x: unknown): x is [GroupKey, Pid[]][] {
  if (!Array.isArray(x) || x.length > MAX_SYNC_GROUPS) return false;
  for (const e of x) {
    if (!Array.isArray(e) || e.length !== 2 || !isKey(e[0]) || !isPids(e[1])) return false;
  }
  return true;
}

/** The message as a `ToCoordinator`, or `undefined` when it is not one. */
export function parseToCoordinator(m: unknown): ToCoordinator | undefined {
  if (!isObj(m)) return undefined;
  switch (m.t) {
    case 'hello':
      return isNat(m.threadId) &&
        typeof m.name === 'string' &&
        m.name.length <= 256 &&
        m.loads instanceof SharedArrayBuffer
        ? (m as unknown as Hello)
        : undefined;
    case 'link':
      return isNat(m.peer) &&
        m.port instanceof MessagePort &&
        (m.remote === undefined || typeof m.remote === 'boolean')
        ? (m as unknown as LinkRequest)
        : undefined;
    case 'sync':
      return isScopeName(m.scope) && isGroups(m.groups) ? (m as unknown as Sync) : undefined;
    case 'join':
    case 'leave':
      return isScopeName(m.scope) && isNat(m.ref) && isKey(m.key) && isPids(m.pids)
        ? (m as unknown as Join | Leave)
        : undefined;
    case 'exit':
      return isScopeName(m.scope) && isPid(m.pid) && isKeys(m.keys)
        ? (m as unknown as ExitLeave)
        : undefined;
    case 'monitor':
      return isScopeName(m.scope) && isNat(m.ref) && (m.key === undefined || isKey(m.key))
        ? (m as unknown as MonitorRequest)
        : undefined;
    case 'demonitor':
      return isScopeName(m.scope) && isNat(m.ref) && isNat(m.monitor)
        ? (m as unknown as Demonitor)
        : undefined;
    case 'bye':
      return m.ack === undefined || isSharedCell(m.ack) ? (m as unknown as Bye) : undefined;
    case 'ready':
      return m as unknown as Ready;
    case 'watch':
      return m as unknown as Watch;
    case 'done':
      return isNat(m.ref) ? (m as unknown as Done) : undefined;
    default:
      return undefined;
  }
}

/**
 * The message as a `ToNode`, or `undefined`. Nodes trust their coordinator more than
 * the other way round, but a node still never acts on a message of the wrong shape.
 */
export function parseToNode(m: unknown): ToNode | undefined {
  if (!isObj(m) || typeof m.t !== 'string') return undefined;
  switch (m.t) {
    case 'welcome':
      return isNat(m.id) && Array.isArray(m.nodes) && Array.isArray(m.scopes)
        ? (m as unknown as Welcome)
        : undefined;
    case 'nodeup':
      return isNat(m.id) && (m.loads === undefined || m.loads instanceof SharedArrayBuffer)
        ? (m as unknown as NodeUp)
        : undefined;
    case 'nodedown':
      return isNat(m.id) ? (m as unknown as NodeDown) : undefined;
    case 'tags':
      return Array.isArray(m.tags) && m.tags.every(isNat) ? (m as unknown as Tags) : undefined;
    case 'linked':
      return isNat(m.peer) && m.port instanceof MessagePort ? (m as unknown as Linked) : undefined;
    case 'scopeup':
      return isScopeName(m.scope) && isObj(m.handle) ? (m as unknown as ScopeUp) : undefined;
    case 'scopedown':
    case 'discover':
      return isScopeName(m.scope) ? (m as unknown as ScopeDown) : undefined;
    case 'ack':
      return isNat(m.ref) ? (m as unknown as Ack) : undefined;
    case 'monitored':
      return isNat(m.ref) && Array.isArray(m.groups) ? (m as unknown as Monitored) : undefined;
    case 'event':
      return isNat(m.ref) &&
        (m.kind === 'join' || m.kind === 'leave') &&
        typeof m.key === 'string' &&
        Array.isArray(m.pids)
        ? (m as unknown as MonitorEvent)
        : undefined;
    case 'shutdown':
      return m as unknown as Shutdown;
    case 'ping':
      return isNat(m.ref) ? (m as unknown as Ping) : undefined;
    case 'drain':
      return isNat(m.ref) ? (m as unknown as Drain) : undefined;
    case 'partition':
      return isScopeName(m.scope) && typeof m.cut === 'boolean' && isNat(m.ref)
        ? (m as unknown as Partition)
        : undefined;
    default:
      return undefined;
  }
}
