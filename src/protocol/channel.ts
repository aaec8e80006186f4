/**
 * A direct channel between two nodes, made by the coordinator on first use. Payloads
 * of `send` and `call` go over it and never through the coordinator; one MessagePort
 * per pair of nodes keeps messages in order for every sender and receiver.
 *
 * Frames are small arrays, the cheapest shape for structured clone:
 *
 * | frame                                   | role                                   |
 * | --------------------------------------- | -------------------------------------- |
 * | `[SEND, serial, from, payload]`         | a message, no answer expected          |
 * | `[CALL, id, serial, from, payload]`     | a message whose answer is awaited      |
 * | `[REPLY, id, payload]`                  | the handler's value for call `id`      |
 * | `[FAIL, id, wireError]`                 | call `id` failed (throw, exit, noproc) |
 * | `[MONITOR, ref, serial]`                | tell me when process `serial` exits    |
 * | `[DEMONITOR, ref, serial]`              | never mind                             |
 * | `[DOWN, ref, wireReason]`               | the monitored process exited           |
 * | `[DRAIN, id]`                           | answer once you handled all I sent     |
 * | `[DRAINED, id]`                         | done: everything before DRAIN handled  |
 *
 * ## The fast path: batching
 *
 * `postMessage` costs about a microsecond whatever it carries, so frames posted during
 * one synchronous job are collected and sent together, as one array of frames, from a
 * microtask at the end of the job. Pipelined calls then cost a fraction of a
 * `postMessage` each, while a lone call waits for nothing but the end of the current
 * job. Order is kept: a frame that cannot be batched (it moves transferables, or its
 * payload is not surely cloneable, see cloneable.ts) first flushes the batch, then goes
 * on its own, so a clone failure still throws at the sender.
 *
 * ## Remote mode: a node of another OS process
 *
 * The far end of such a channel is the coordinator, which relays frames over a broker
 * (peering/relay.ts). The node serializes each batch itself (remote-codec.ts), so that
 * the coordinators on the way only move bytes, and so that a payload that cannot cross a
 * process, or is too big for the broker, throws here at the sender with a named error.
 */
import { type MessagePort, receiveMessageOnPort, type Transferable } from 'node:worker_threads';
import { surelyCloneable } from '../core/cloneable.js';
import { MessageCloneError, RemoteMessageError } from '../core/errors.js';
import { decodeBatch, encodeBatch, prepareRemote, restoreRemote } from './remote-codec.js';
import type { Pid } from '../core/pid.js';
import { toWire } from '../core/wire-error.js';

export const SEND = 0;
export const CALL = 1;
export const REPLY = 2;
export const FAIL = 3;
export const MONITOR = 4;
export const DEMONITOR = 5;
export const DOWN = 6;
export const DRAIN = 7;
export const DRAINED = 8;

/** Where the answer to a message goes. Implemented by the node (local calls) and by peer links. */
export interface ReplyTo {
  reply(id: number, value: unknown): void;
  fail(id: number, error: unknown): void;
}

/** What the node does with frames that arrive on a channel. */
export interface ChannelHost {
  onSend(channel: Channel, serial: number, from: Pid | undefined, payload: unknown): void;
  onCall(
    channel: Channel,
    id: number,
    serial: number,
    from: Pid | undefined,
    payload: unknown,
  ): void;
  onReply(id: number, payload: unknown): void;
  onFail(id: number, error: unknown): void;
  onMonitor(channel: Channel, ref: number, serial: number): void;
  onDemonitor(channel: Channel, ref: number, serial: number): void;
  onDown(ref: number, reason: unknown): void;
  /** A graceful stop: answer DRAINED once everything sent before this frame was handled. */
  onDrain(channel: Channel, id: number): void;
  onDrained(id: number): void;
  onClose(channel: Channel): void;
  /** A frame of the wrong shape: counted, dropped. */
  onMalformed(channel: Channel): void;
}

/** Turns a DataCloneError into a MessageCloneError that says what to do. */
export function cloneError(error: unknown): unknown {
  const tooDeep = error instanceof RangeError && /call stack/i.test(error.message);
  if ((error instanceof Error && error.name === 'DataCloneError') || tooDeep) {
    return new MessageCloneError(
      `the message cannot be sent to another thread: ${error.message.replace(/\.$/, '')}. ` +
        'Send plain data (objects, arrays, strings, numbers, typed arrays, Maps, Sets, errors); ' +
        'list MessagePorts and ArrayBuffers to move in `transfer`.',
      { cause: error },
    );
  }
  return error;
}

/** A channel to a node of another process: payloads go serialized, up to `maxFrame` bytes. */
export interface Remote {
  maxFrame: number;
}

function isSerial(x: unknown): x is number {
  return typeof x === 'number' && x >= 1 && x <= 0xffff_ffff && Number.isInteger(x);
}
function isId(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x > 0;
}
function fromOf(x: unknown): Pid | undefined {
  return typeof x === 'number' && Number.isSafeInteger(x) && x > 0 ? (x as Pid) : undefined;
}

export class Channel implements ReplyTo {
  readonly peer: number;
  readonly #port: MessagePort;
  readonly #host: ChannelHost;
  /** Set for a channel to a node of another process. */
  readonly remote: Remote | undefined;
  #open = true;
  /** Frames waiting for the end of the current job. */
  #batch: unknown[][] = [];
  readonly #flush = (): void => {
    const batch = this.#batch;
    this.#batch = [];
    if (!this.#open || batch.length === 0) return;
    if (this.remote === undefined) this.#port.postMessage(batch.length === 1 ? batch[0] : batch);
    else this.#postRemote(batch);
  };

  /** A batch to another process: one buffer, transferred, split in halves while over the broker's limit. */
  #postRemote(batch: unknown[][]): void {
    const bytes = encodeBatch(batch.length === 1 ? batch[0] : batch);
    if (bytes.byteLength > this.remote!.maxFrame && batch.length > 1) {
      const half = batch.length >> 1;
      this.#postRemote(batch.slice(0, half));
      this.#postRemote(batch.slice(half));
      return;
    }
    this.#port.postMessage(bytes, [bytes.buffer as ArrayBuffer]);
  }

  constructor(peer: number, port: MessagePort, host: ChannelHost, remote?: Remote) {
    this.peer = peer;
    this.#port = port;
    this.#host = host;
    this.remote = remote;
    port.on('message', this.#onFrame);
    port.on('messageerror', () => host.onMalformed(this));
    port.once('close', () => this.#closed());
  }

  get open(): boolean {
    return this.#open;
  }

  /**
   * Posts a frame whose payload (if any) is its last element. Throws
   * `MessageCloneError`, having sent nothing, when the payload cannot be cloned.
   */
  post(frame: unknown[], transfer?: readonly Transferable[]): void {
    if (this.remote !== undefined) {
      if (transfer !== undefined && transfer.length > 0) {
        throw new RemoteMessageError(
          'a transfer list cannot cross to another process: the message is copied there. ' +
            'Send it without `transfer` (ArrayBuffers and typed arrays are copied).',
        );
      }
      prepareRemote(frame, this.remote.maxFrame);
      this.#enqueue(frame);
      return;
    }
    if (
      (transfer === undefined || transfer.length === 0) &&
      surelyCloneable(frame[frame.length - 1])
    ) {
      this.#enqueue(frame);
      return;
    }
    if (this.#batch.length > 0) this.#flush();
    try {
      if (transfer === undefined || transfer.length === 0) this.#port.postMessage(frame);
      else this.#port.postMessage(frame, transfer as Transferable[]);
    } catch (error) {
      throw cloneError(error);
    }
  }

  reply(id: number, value: unknown): void {
    if (!this.#open) return;
    try {
      this.post([REPLY, id, value]);
    } catch (error) {
      // The answer itself cannot cross: fail the call with that, rather than leave it hanging.
      this.fail(id, error);
    }
  }

  fail(id: number, error: unknown): void {
    if (!this.#open) return;
    const frame = [FAIL, id, toWire(error)];
    // An error's wire form is plain data, so it always crosses.
    if (this.remote !== undefined) prepareRemote(frame, this.remote.maxFrame);
    this.#enqueue(frame);
  }

  #enqueue(frame: unknown[]): void {
    if (this.#batch.push(frame) === 1) queueMicrotask(this.#flush);
  }

  /**
   * Sends the frames batched in this job now: before the thread ends (`process.exit`
   * skips the microtask that would have sent them).
   */
  flush(): void {
    this.#flush();
  }

  /**
   * Handles, synchronously, every frame the peer has already posted. Called when the
   * coordinator says the peer is down: that notice travels on another port and can
   * overtake frames the peer sent before it went, but those frames are already queued
   * on this end, so taking them first keeps Erlang's order (a message, a reply or a
   * DOWN sent before a node goes down arrives before the down signal).
   */
  drain(): void {
    if (!this.#open) return;
    for (
      let r = receiveMessageOnPort(this.#port);
      r !== undefined;
      r = receiveMessageOnPort(this.#port)
    )
      this.#onFrame(r.message);
  }

  close(): void {
    if (!this.#open) return;
    this.#flush();
    this.#port.close();
    this.#closed();
  }

  #closed(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#port.off('message', this.#onFrame);
    this.#host.onClose(this);
  }

  readonly #onFrame = (raw: unknown): void => {
    const f = this.remote === undefined ? raw : decodeBatch(raw);
    // A batch is an array of frames; a frame starts with its kind, a number.
    if (Array.isArray(f) && Array.isArray(f[0])) {
      for (let i = 0; i < f.length; i++) if (!this.#dispatch(f[i])) this.#host.onMalformed(this);
    } else if (!this.#dispatch(f)) {
      this.#host.onMalformed(this);
    }
  };

  /** Hands a frame to the host; false when it has the wrong shape. */
  #dispatch(f: unknown): boolean {
    const h = this.#host;
    if (!Array.isArray(f)) return false;
    if (this.remote !== undefined && !restoreRemote(f)) return false;
    switch (f[0]) {
      case SEND:
        if (f.length !== 4 || !isSerial(f[1])) return false;
        h.onSend(this, f[1], fromOf(f[2]), f[3]);
        return true;
      case CALL:
        if (f.length !== 5 || !isId(f[1]) || !isSerial(f[2])) return false;
        h.onCall(this, f[1], f[2], fromOf(f[3]), f[4]);
        return true;
      case REPLY:
        if (f.length !== 3 || !isId(f[1])) return false;
        h.onReply(f[1], f[2]);
        return true;
      case FAIL:
        if (f.length !== 3 || !isId(f[1])) return false;
        h.onFail(f[1], f[2]);
        return true;
      case MONITOR:
        if (f.length !== 3 || !isId(f[1]) || !isSerial(f[2])) return false;
        h.onMonitor(this, f[1], f[2]);
        return true;
      case DEMONITOR:
        if (f.length !== 3 || !isId(f[1]) || !isSerial(f[2])) return false;
        h.onDemonitor(this, f[1], f[2]);
        return true;
      case DRAIN:
        if (f.length !== 2 || !isId(f[1])) return false;
        h.onDrain(this, f[1]);
        return true;
      case DRAINED:
        if (f.length !== 2 || !isId(f[1])) return false;
        h.onDrained(f[1]);
        return true;
      case DOWN:
        if (f.length !== 3 || !isId(f[1])) return false;
        h.onDown(f[1], f[2]);
        return true;
      default:
        return false;
    }
  }
}

/**
 * A copy of `message` for a process of this thread, with structured-clone semantics
 * as if it had crossed a channel (so a local call behaves as a remote one).
 */
export function cloneLocal(
  message: unknown,
  transfer: readonly Transferable[] | undefined,
): unknown {
  try {
    return transfer === undefined || transfer.length === 0
      ? structuredClone(message)
      : structuredClone(message, { transfer: transfer as Transferable[] });
  } catch (error) {
    throw cloneError(error);
  }
}
