/**
 * The messages between the coordinators of peer processes, and their encoding.
 *
 * Bytes from the broker are untrusted: anyone allowed to publish on the cluster's
 * subjects can send anything. So a message is decoded with `v8.deserialize` (data
 * only: it builds values, it never runs code), then checked field by field here
 * before peering.ts acts on it; whatever fails is counted and dropped. Which peer may
 * say what (ownership of pids) is peering.ts's check.
 */
import { deserialize, serialize } from 'node:v8';
import { type GroupKey, isGroupKey, MAX_KEY_UNITS } from '../core/group.js';
import { isPid, MAX_NODE_ID, type Pid } from '../core/pid.js';
import { isScopeName } from '../core/scope-name.js';

/**
 * The version of what peer processes say to each other: the messages below, and the
 * channel frames they relay between nodes (protocol/frames.ts). Every heartbeat carries
 * it, and a process peers only with processes of its own version: a frame that one side
 * does not know (2 added `NOT_RUN`) would be dropped, and the call waiting on it would
 * wait for its timeout. A heartbeat without it comes from version 1 (builds from before
 * the check, none released: they do not refuse in turn).
 */
export const PROTOCOL = 2;

/** A peer id: 16 hex digits, random per process start, never reused. */
export type PeerId = string;

const PEER_ID = /^[0-9a-f]{16}$/;

/** "Who is there?": a starting process asks, before it picks its node ids. Answered by `hb`. */
export interface Probe {
  t: 'probe';
  from: PeerId;
}
/**
 * The heartbeat, every `heartbeatMs`, and the answer to a probe. It says which node-id
 * blocks (`tags`) and nodes the peer owns, and `seq`, the number of membership messages
 * it has broadcast so far: a receiver that applied fewer missed some and asks for a sync.
 * `dead`: node-id blocks of peers it saw go down, so that a new process never reuses them.
 */
export interface Heartbeat {
  t: 'hb';
  from: PeerId;
  /** The sender's `PROTOCOL` (absent: 1). */
  proto?: number;
  name: string;
  tags: number[];
  nodes: number[];
  scopes: string[];
  seq: number;
  dead: number[];
}
/**
 * pg's `discover`: `to` (every peer when absent), please broadcast your sync of
 * `scope` (of every scope when absent).
 */
export interface Discover {
  t: 'discover';
  from: PeerId;
  to?: PeerId;
  scope?: string;
}
/**
 * pg's `sync`: every member of the sender's nodes in `scope`. It replaces what the
 * receiver held for the sender there. Large syncs go in `parts` (same `seq`, numbered
 * `part`), applied once all have arrived.
 */
export interface Sync {
  t: 'sync';
  from: PeerId;
  seq: number;
  scope: string;
  part: number;
  parts: number;
  groups: [GroupKey, Pid[]][];
}
/** pg's `join` and `leave`, for pids of the sender's nodes. */
export interface Change {
  t: 'join' | 'leave';
  from: PeerId;
  seq: number;
  scope: string;
  key: GroupKey;
  pids: Pid[];
}
/** A node of the sender went down: its pids are dead (its leaves come as `leave`s). */
export interface NodeDown {
  t: 'nodedown';
  from: PeerId;
  seq: number;
  node: number;
}
/** The sender stopped `scope`: drop its members there. */
export interface ScopeDown {
  t: 'scopedown';
  from: PeerId;
  seq: number;
  scope: string;
}
/** The sender is stopping: it is down now. */
export interface Bye {
  t: 'bye';
  from: PeerId;
}
/**
 * Channel frames between a node of the sender (`src`) and a node of the receiver
 * (`dst`), sent to the receiver alone. Each batch is the buffer a node posted on its
 * channel (serialized by that node, see protocol/remote-codec.ts): relayed, never decoded.
 */
export interface Frames {
  t: 'frames';
  from: PeerId;
  to: PeerId;
  frames: [src: number, dst: number, batch: Uint8Array][];
}

export type PeerMessage =
  Probe | Heartbeat | Discover | Sync | Change | NodeDown | ScopeDown | Bye | Frames;

/** Membership messages: they carry `seq`, and a receiver applies them in order. */
export type Sequenced = Sync | Change | NodeDown | ScopeDown;

export function encode(m: PeerMessage): Uint8Array {
  return serialize(m);
}

// Validation ---------------------------------------------------------------------------

const MAX_LIST = 1 << 22;
/** Node-id blocks: 2^13 of them, 256 node ids each (see node-ids.ts). */
const MAX_TAG = MAX_NODE_ID >> 8;

type Obj = Record<string, unknown>;
const isObj = (m: unknown): m is Obj => typeof m === 'object' && m !== null && !Array.isArray(m);
const isNat = (x: unknown): x is number =>
  typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
const isPeer = (x: unknown): x is PeerId => typeof x === 'string' && PEER_ID.test(x);
const isName = (x: unknown): x is string => typeof x === 'string' && x.length <= 256;
const isKey = (x: unknown): x is GroupKey =>
  typeof x === 'string' && x.length <= MAX_KEY_UNITS && isGroupKey(x);

function isList<T>(x: unknown, each: (v: unknown) => v is T, max = MAX_LIST): x is T[] {
  if (!Array.isArray(x) || x.length > max) return false;
  for (let i = 0; i < x.length; i++) if (!each(x[i])) return false;
  return true;
}
const isTag = (x: unknown): x is number => isNat(x) && x <= MAX_TAG;
const isNode = (x: unknown): x is number => isNat(x) && x <= MAX_NODE_ID;
const isPids = (x: unknown): x is Pid[] => isList(x, isPid);
const isGroup = (x: unknown): x is [GroupKey, Pid[]] =>
  Array.isArray(x) && x.length === 2 && isKey(x[0]) && isPids(x[1]);
const isFrameBatch = (x: unknown): x is [number, number, Uint8Array] =>
  Array.isArray(x) && x.length === 3 && isNode(x[0]) && isNode(x[1]) && x[2] instanceof Uint8Array;

/** Decodes and checks bytes from the broker; `undefined` for anything malformed. */
export function decode(bytes: Uint8Array): PeerMessage | undefined {
  let m: unknown;
  try {
    m = deserialize(bytes);
  } catch {
    return undefined;
  }
  if (!isObj(m) || !isPeer(m.from)) return undefined;
  switch (m.t) {
    case 'probe':
    case 'bye':
      return m as unknown as Probe | Bye;
    case 'hb':
      // Another version may shape its heartbeat otherwise: check only what its refusal
      // reads (peering.ts), so that it is refused as such rather than counted malformed.
      if (m.proto !== undefined && m.proto !== PROTOCOL)
        return isNat(m.proto) && isName(m.name)
          ? ({ t: 'hb', from: m.from, proto: m.proto, name: m.name } as Heartbeat)
          : undefined;
      return isName(m.name) &&
        isList(m.tags, isTag, 1024) &&
        isList(m.nodes, isNode, 1 << 16) &&
        isList(m.scopes, isScopeName, 4096) &&
        isNat(m.seq) &&
        isList(m.dead, isTag, MAX_TAG + 1)
        ? (m as unknown as Heartbeat)
        : undefined;
    case 'discover':
      return (m.to === undefined || isPeer(m.to)) && (m.scope === undefined || isScopeName(m.scope))
        ? (m as unknown as Discover)
        : undefined;
    case 'sync':
      return isNat(m.seq) &&
        isScopeName(m.scope) &&
        isNat(m.part) &&
        isNat(m.parts) &&
        m.part < m.parts &&
        isList(m.groups, isGroup)
        ? (m as unknown as Sync)
        : undefined;
    case 'join':
    case 'leave':
      return isNat(m.seq) && isScopeName(m.scope) && isKey(m.key) && isPids(m.pids)
        ? (m as unknown as Change)
        : undefined;
    case 'nodedown':
      return isNat(m.seq) && isNode(m.node) ? (m as unknown as NodeDown) : undefined;
    case 'scopedown':
      return isNat(m.seq) && isScopeName(m.scope) ? (m as unknown as ScopeDown) : undefined;
    case 'frames':
      return isPeer(m.to) && isList(m.frames, isFrameBatch) ? (m as unknown as Frames) : undefined;
    default:
      return undefined;
  }
}

/** A fresh peer id: 64 random bits, so a restarted process is a new peer. */
export function newPeerId(): PeerId {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
