/**
 * Process monitors, both sides of them: the monitors this node holds on processes
 * anywhere (`node.monitor(pid)`), and the monitors other nodes (and this one) hold on
 * this node's processes. A remote monitor is a MONITOR frame over the channel to the
 * target's node, answered by one DOWN frame when the process exits; a node going down
 * resolves every monitor on its processes with `'nodedown'`.
 */
import { describe } from '../core/errors.js';
import { nodeOf, type Pid, serialOf } from '../core/pid.js';
import { fromWire, toWire, type WireError } from '../core/wire-error.js';
import type { Channel } from '../protocol/channel.js';
import { DEMONITOR, DOWN, MONITOR } from '../protocol/frames.js';

/** Why a process ended: `'normal'`, `'noproc'` (it was not alive), `'nodedown'`, an Error, or any reason given to `exit`. */
export type ExitReason = unknown;

/** A watch on a process, from `node.monitor(pid)`. */
export interface ProcessMonitor {
  /** Identifies the monitor for `demonitor`. */
  readonly ref: number;
  /** Resolves with the exit reason when the process ends (never rejects). */
  readonly down: Promise<ExitReason>;
}

/** A reason as it crosses a channel: errors keep their class, anything uncloneable becomes its description. */
export function encodeReason(reason: unknown): [boolean, unknown] {
  if (reason instanceof Error) return [true, toWire(reason)];
  try {
    structuredClone(reason);
    return [false, reason];
  } catch {
    return [false, describe(reason)];
  }
}

function decodeReason(wire: unknown): ExitReason {
  if (Array.isArray(wire) && wire.length === 2)
    return wire[0] === true ? fromWire(wire[1] as WireError) : wire[1];
  return wire;
}

export class ProcessMonitors {
  readonly #self: number;
  /** Monitors this node holds: ref → target and resolver. */
  readonly #watching = new Map<
    number,
    { node: number; pid: Pid; resolve(reason: ExitReason): void }
  >();
  /**
   * Monitors on this node's processes: serial → watching channel (undefined: this
   * node) → refs. Refs are numbered by each watching node on its own, so a ref is only
   * unique together with the channel it came over.
   */
  readonly #watchers = new Map<number, Map<Channel | undefined, Set<number>>>();

  constructor(self: number) {
    this.#self = self;
  }

  /**
   * Starts a monitor `ref` on `pid`. `local` tells whether a local target is alive;
   * `channel` is the way to a remote target's node (undefined: that node is down).
   */
  watch(
    ref: number,
    pid: Pid,
    localAlive: boolean,
    channel: () => Channel | undefined,
  ): Promise<ExitReason> {
    return new Promise<ExitReason>((resolve) => {
      const node = nodeOf(pid);
      if (node === this.#self) {
        if (!localAlive) return resolve('noproc');
        this.#watching.set(ref, { node, pid, resolve });
        this.#add(serialOf(pid), ref, undefined);
        return;
      }
      const c = channel();
      if (c === undefined) return resolve('nodedown');
      this.#watching.set(ref, { node, pid, resolve });
      c.post([MONITOR, ref, serialOf(pid)]);
    });
  }

  /** Stops monitor `ref`; its promise then never resolves. */
  unwatch(ref: number, channel: (node: number) => Channel | undefined): void {
    const w = this.#watching.get(ref);
    if (w === undefined) return;
    this.#watching.delete(ref);
    if (w.node === this.#self) this.#remove(serialOf(w.pid), ref, undefined);
    else channel(w.node)?.post([DEMONITOR, ref, serialOf(w.pid)]);
  }

  /** A peer asks to watch local process `serial` (`alive`: whether it is). */
  onMonitor(channel: Channel, ref: number, serial: number, alive: boolean): void {
    if (alive) this.#add(serial, ref, channel);
    else channel.post([DOWN, ref, encodeReason('noproc')]);
  }

  onDemonitor(channel: Channel, ref: number, serial: number): void {
    this.#remove(serial, ref, channel);
  }

  /** A DOWN for a monitor this node holds. */
  onDown(ref: number, wireReason: unknown): void {
    const w = this.#watching.get(ref);
    if (w === undefined) return;
    this.#watching.delete(ref);
    w.resolve(decodeReason(wireReason));
  }

  /** Local process `serial` exited: tell everyone watching it. */
  exited(serial: number, reason: ExitReason): void {
    const w = this.#watchers.get(serial);
    if (w === undefined) return;
    this.#watchers.delete(serial);
    const wire = encodeReason(reason);
    for (const [channel, refs] of w) {
      for (const ref of refs) {
        if (channel === undefined) this.onDown(ref, wire);
        else if (channel.open) channel.post([DOWN, ref, wire]);
      }
    }
  }

  /** `node` is gone: its monitors on local processes go, and monitors on its processes resolve `'nodedown'`. */
  nodeGone(node: number): void {
    for (const [ref, w] of this.#watching) {
      if (w.node === node) {
        this.#watching.delete(ref);
        w.resolve('nodedown');
      }
    }
    for (const [serial, watchers] of this.#watchers) {
      for (const channel of watchers.keys())
        if (channel !== undefined && channel.peer === node) watchers.delete(channel);
      if (watchers.size === 0) this.#watchers.delete(serial);
    }
  }

  /** This node leaves its cluster: every monitor it holds resolves `'shutdown'`. */
  shutdown(): void {
    for (const w of this.#watching.values()) w.resolve('shutdown');
    this.#watching.clear();
  }

  #add(serial: number, ref: number, channel: Channel | undefined): void {
    let w = this.#watchers.get(serial);
    if (w === undefined) {
      w = new Map();
      this.#watchers.set(serial, w);
    }
    let refs = w.get(channel);
    if (refs === undefined) {
      refs = new Set();
      w.set(channel, refs);
    }
    refs.add(ref);
  }

  #remove(serial: number, ref: number, channel: Channel | undefined): void {
    const w = this.#watchers.get(serial);
    const refs = w?.get(channel);
    if (refs === undefined || !refs.delete(ref) || refs.size > 0) return;
    w!.delete(channel);
    if (w!.size === 0) this.#watchers.delete(serial);
  }
}
