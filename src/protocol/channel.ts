/**
 * A direct channel between two nodes, made by the coordinator on first use. Payloads
 * of `send` and `call` go over it and never through the coordinator; one MessagePort
 * per pair of nodes keeps messages in order for every sender and receiver.
 *
 * Frames are runs of plain values (frames.ts), the cheapest shape for structured clone:
 *
 * | frame                                   | role                                   |
 * | --------------------------------------- | -------------------------------------- |
 * | `[SEND, serial, from, payload]`         | a message, no answer expected          |
 * | `[CALL, id, serial, from, payload]`     | a message whose answer is awaited      |
 * | `[REPLY, id, payload]`                  | the handler's value for call `id`      |
 * | `[FAIL, id, wireError]`                 | call `id` failed (throw, exit, noproc) |
 * | `[NOT_RUN, id, wireError]`              | call `id` failed before a handler ran  |
 * | `[MONITOR, ref, serial]`                | tell me when process `serial` exits    |
 * | `[DEMONITOR, ref, serial]`              | never mind                             |
 * | `[DOWN, ref, wireReason]`               | the monitored process exited           |
 * | `[DRAIN, id]`                           | answer once you handled all I sent     |
 * | `[DRAINED, id]`                         | done: everything before DRAIN handled  |
 *
 * ## The fast path: batching
 *
 * `postMessage` costs about a microsecond whatever it carries, so frames posted during
 * one synchronous job are collected and sent together, from a microtask at the end of
 * the job. Pipelined calls then cost a fraction of a `postMessage` each, while a lone
 * call waits for nothing but the end of the current job. Order is kept: a frame that
 * cannot be batched (it moves transferables, or its payload is not surely cloneable,
 * see cloneable.ts) first flushes the batch, then goes on its own, so a clone failure
 * still throws at the sender.
 *
 * A batch is one flat array, the frames end to end (`[CALL, id, serial, from, payload,
 * CALL, …]`), not an array of small arrays: structured clone then writes and reads one
 * array instead of one per frame, which halves its cost per frame, on both threads.
 * The kinds' fixed lengths tell the frames apart; a malformed frame ends the reading of
 * its batch (what follows it cannot be told apart) and counts once.
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
import { ENCODED } from './frames.js';
import type { Pid } from '../core/pid.js';
import { toWire } from '../core/wire-error.js';

import {
  CALL,
  DEMONITOR,
  DOWN,
  DRAIN,
  DRAINED,
  FAIL,
  FRAME_LENGTH,
  MONITOR,
  NOT_RUN,
  REPLY,
  SEND,
} from './frames.js';

/** Where the answer to a message goes. Implemented by the node (local calls) and by peer links. */
export interface ReplyTo {
  /** `transfer`: buffers of `value` to move (a handler returned `transfer(value, list)`). */
  reply(id: number, value: unknown, transfer?: Transferable[]): void;
  /**
   * `notRun`: no handler ran the call (no such process, or it exited with the call still
   * in its mailbox), so the caller may run it elsewhere as if it had never been sent.
   */
  fail(id: number, error: unknown, notRun?: boolean): void;
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
  onFail(id: number, error: unknown, notRun: boolean): void;
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

/**
 * Turns a DataCloneError, or Node's error for a transfer list that holds something it
 * cannot move, into a MessageCloneError that says what to do; `what` is 'the message'
 * (a send or a call) or 'the answer' (a handler's value).
 */
export function cloneError(error: unknown, what = 'the message'): unknown {
  if ((error as { code?: unknown } | undefined)?.code === 'ERR_INVALID_TRANSFER_OBJECT') {
    return new MessageCloneError(
      `${what} cannot be sent to another thread: its transfer list holds something that cannot be moved ` +
        `(${(error as Error).message}). List only ArrayBuffers and MessagePorts; a SharedArrayBuffer is shared without being listed.`,
      { cause: error },
    );
  }
  const tooDeep = error instanceof RangeError && /call stack/i.test(error.message);
  if ((error instanceof Error && error.name === 'DataCloneError') || tooDeep) {
    return new MessageCloneError(
      `${what} cannot be sent to another thread: ${error.message.replace(/\.$/, '')}. ` +
        `${what === 'the answer' ? 'Return' : 'Send'} plain data (objects, arrays, strings, numbers, typed arrays, Maps, Sets, errors); ` +
        (what === 'the answer'
          ? 'to move MessagePorts and ArrayBuffers, return transfer(value, [them]).'
          : 'list MessagePorts and ArrayBuffers to move in `transfer`.'),
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
  /** Frames waiting for the end of the current job, end to end. */
  #batch: unknown[] = [];
  readonly #flush = (): void => {
    const batch = this.#batch;
    this.#batch = [];
    if (!this.#open || batch.length === 0) return;
    if (this.remote !== undefined) {
      this.#postRemote(batch);
      return;
    }
    try {
      this.#port.postMessage(batch);
    } catch {
      this.#postEach(batch);
    }
  };

  /**
   * A batch that would not clone: a payload that `surelyCloneable` let through failed
   * after all (its check is cheap, not complete). This runs in a microtask, where a throw
   * would end the thread and take every other frame of the batch with it. So each frame
   * goes alone, and one that fails is answered as it would have been at its sender: a
   * call fails with MessageCloneError, an answer becomes that error, a send is dropped
   * with a warning.
   */
  #postEach(batch: unknown[]): void {
    for (let at = 0; at < batch.length;) {
      const kind = batch[at] as number;
      const frame = batch.slice(at, at + FRAME_LENGTH[kind]!);
      at += frame.length;
      try {
        this.#port.postMessage(frame);
      } catch (error) {
        if (kind === CALL) this.#host.onFail(frame[1] as number, toWire(cloneError(error)), false);
        else if (kind === REPLY) this.fail(frame[1] as number, cloneError(error, 'the answer'));
        else
          process.emitWarning(
            `a message to process ${String(frame[1])} of node ${this.peer} was dropped: ${String(cloneError(error))}`,
            'ProcgroupsWarning',
          );
      }
    }
  }

  /** A batch to another process: one buffer, transferred, split in halves while over the broker's limit. */
  #postRemote(batch: unknown[]): void {
    const bytes = encodeBatch(batch);
    if (bytes.byteLength > this.remote!.maxFrame) {
      // Cut at the first frame boundary past the middle (none when it is one frame).
      let cut = 0;
      while (cut < batch.length >> 1) cut += FRAME_LENGTH[(batch[cut] as number) & ~ENCODED]!;
      if (cut > 0 && cut < batch.length) {
        this.#postRemote(batch.slice(0, cut));
        this.#postRemote(batch.slice(cut));
        return;
      }
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
  post(frame: unknown[], transfer?: readonly Transferable[], what?: string): void {
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
      else {
        checkTransfer(transfer, what);
        this.#port.postMessage(frame, transfer as Transferable[]);
      }
    } catch (error) {
      throw cloneError(error, what);
    }
  }

  /**
   * A SEND frame: `post([SEND, …])` without the frame's own array when it can be
   * batched (the hot path of `send` and `broadcast`).
   */
  send(
    serial: number,
    from: Pid,
    payload: unknown,
    transfer: readonly Transferable[] | undefined,
  ): void {
    if (this.#batchable(payload, transfer)) this.#tail().push(SEND, serial, from, payload);
    else this.post([SEND, serial, from, payload], transfer);
  }

  /** A CALL frame, as `send` (the hot path of pipelined calls and dispatch). */
  call(
    id: number,
    serial: number,
    from: Pid,
    payload: unknown,
    transfer: readonly Transferable[] | undefined,
  ): void {
    if (this.#batchable(payload, transfer)) this.#tail().push(CALL, id, serial, from, payload);
    else this.post([CALL, id, serial, from, payload], transfer);
  }

  /** True when a frame with `payload` can wait in the batch as plain values. */
  #batchable(payload: unknown, transfer: readonly Transferable[] | undefined): boolean {
    return (
      this.remote === undefined &&
      (transfer === undefined || transfer.length === 0) &&
      surelyCloneable(payload)
    );
  }

  /** The batch, to push a frame's values onto; its flush is queued with its first frame. */
  #tail(): unknown[] {
    const b = this.#batch;
    if (b.length === 0) queueMicrotask(this.#flush);
    return b;
  }

  reply(id: number, value: unknown, transfer?: Transferable[]): void {
    if (!this.#open) return;
    if (transfer === undefined && this.#batchable(value, undefined)) {
      this.#tail().push(REPLY, id, value);
      return;
    }
    try {
      // To another OS process the answer is copied: its buffers stay (see core/transfer.ts).
      this.post([REPLY, id, value], this.remote === undefined ? transfer : undefined, 'the answer');
    } catch (error) {
      // The answer itself cannot cross: fail the call with that, rather than leave it hanging.
      this.fail(id, error);
    }
  }

  fail(id: number, error: unknown, notRun = false): void {
    if (!this.#open) return;
    const frame = [notRun ? NOT_RUN : FAIL, id, toWire(error)];
    // An error's wire form is plain data, so it always crosses.
    if (this.remote !== undefined) prepareRemote(frame, this.remote.maxFrame);
    this.#enqueue(frame);
  }

  #enqueue(frame: unknown[]): void {
    const b = this.#tail();
    for (let i = 0; i < frame.length; i++) b.push(frame[i]);
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
    if (!Array.isArray(f) || f.length === 0) {
      this.#host.onMalformed(this);
      return;
    }
    for (let at = 0; at < f.length;) {
      const n = this.#dispatch(f, at);
      if (n === 0) {
        this.#host.onMalformed(this);
        return;
      }
      at += n;
    }
  };

  /** Hands the frame at `f[at]` to the host; returns its length, or 0 when it is malformed. */
  #dispatch(f: unknown[], at: number): number {
    const h = this.#host;
    const kind = this.remote === undefined ? f[at] : restoreRemote(f, at);
    if (typeof kind !== 'number') return 0;
    const n = FRAME_LENGTH[kind];
    if (n === undefined || at + n > f.length) return 0;
    const a = f[at + 1];
    switch (kind) {
      case SEND:
        if (!isSerial(a)) return 0;
        h.onSend(this, a, fromOf(f[at + 2]), f[at + 3]);
        return n;
      case CALL: {
        const serial = f[at + 2];
        if (!isId(a) || !isSerial(serial)) return 0;
        h.onCall(this, a, serial, fromOf(f[at + 3]), f[at + 4]);
        return n;
      }
      case REPLY:
        if (!isId(a)) return 0;
        h.onReply(a, f[at + 2]);
        return n;
      case FAIL:
      case NOT_RUN:
        if (!isId(a)) return 0;
        h.onFail(a, f[at + 2], kind === NOT_RUN);
        return n;
      case MONITOR:
      case DEMONITOR: {
        const serial = f[at + 2];
        if (!isId(a) || !isSerial(serial)) return 0;
        if (kind === MONITOR) h.onMonitor(this, a, serial);
        else h.onDemonitor(this, a, serial);
        return n;
      }
      case DRAIN:
        if (!isId(a)) return 0;
        h.onDrain(this, a);
        return n;
      case DRAINED:
        if (!isId(a)) return 0;
        h.onDrained(a);
        return n;
      case DOWN:
        if (!isId(a)) return 0;
        h.onDown(a, f[at + 2]);
        return n;
      default:
        return 0;
    }
  }
}

/**
 * A copy of `message` for a process of this thread, with structured-clone semantics
 * as if it had crossed a channel (so a local call behaves as a remote one); throws
 * MessageCloneError naming `what` ('the message', or 'the answer' of a local call).
 */
export function cloneLocal(
  message: unknown,
  transfer: readonly Transferable[] | undefined,
  what = 'the message',
): unknown {
  try {
    if (transfer === undefined || transfer.length === 0) return structuredClone(message);
    checkTransfer(transfer, what);
    return structuredClone(message, { transfer: transfer as Transferable[] });
  } catch (error) {
    throw cloneError(error, what);
  }
}

/** True for an ArrayBuffer moved away already (detached); a view over it would throw. */
function isDetached(b: unknown): boolean {
  if (!(b instanceof ArrayBuffer) || b.byteLength !== 0) return false;
  try {
    new Uint8Array(b);
    return false;
  } catch {
    return true;
  }
}

/**
 * Throws MessageCloneError when `transfer` lists a buffer that has been moved already.
 * `postMessage` does not throw for one: it drops the whole message, silently (Node 20),
 * and a call would wait for its answer for ever.
 */
export function checkTransfer(transfer: readonly Transferable[], what = 'the message'): void {
  for (const t of transfer) {
    if (isDetached(t)) {
      throw new MessageCloneError(
        `${what} cannot be sent to another thread: an ArrayBuffer in its transfer list was transferred already (it is detached). ` +
          'A buffer moves once; to send its data again, copy it first (buffer.slice()).',
      );
    }
  }
}
