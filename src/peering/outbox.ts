/**
 * Channel frames on their way to other processes, batched per peer and per job: every
 * buffer the local nodes post during one job leaves as one broker message per peer (a
 * message costs about as much as a small one whatever it carries), split in halves
 * while over the broker's limit.
 */
import type { Frames, PeerId } from './wire.js';

export interface OutboxSink {
  /** Encodes and sends the frames to `to`; false when they are over the broker's limit. */
  send(to: PeerId, frames: Frames['frames']): boolean;
  /** A single node buffer over the limit (nodes split theirs below it: a broken node). */
  oversize(): void;
}

export class Outbox {
  readonly #sink: OutboxSink;
  readonly #out = new Map<PeerId, Frames['frames']>();
  #flushing = false;

  constructor(sink: OutboxSink) {
    this.#sink = sink;
  }

  add(to: PeerId, local: number, remote: number, batch: Uint8Array): void {
    let list = this.#out.get(to);
    if (list === undefined) this.#out.set(to, (list = []));
    list.push([local, remote, batch]);
    if (!this.#flushing) {
      this.#flushing = true;
      queueMicrotask(() => this.flush());
    }
  }

  /** Sends what waits now. */
  flush(): void {
    this.#flushing = false;
    for (const [to, frames] of this.#out) this.#send(to, frames);
    this.#out.clear();
  }

  #send(to: PeerId, frames: Frames['frames']): void {
    if (frames.length === 0 || this.#sink.send(to, frames)) return;
    if (frames.length === 1) {
      this.#sink.oversize();
      return;
    }
    const half = frames.length >> 1;
    this.#send(to, frames.slice(0, half));
    this.#send(to, frames.slice(half));
  }
}
