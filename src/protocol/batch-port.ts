/**
 * A control port that sends the messages of one synchronous job as one `postMessage`
 * (an array of messages), from a microtask at the end of the job, and unpacks such
 * arrays on arrival. The control protocol's messages are plain data, so batching
 * cannot move a clone failure; a message that moves a port (`link`, `linked`) flushes
 * the batch and goes on its own, which keeps the order.
 *
 * On the coordinator this also means one published version per incoming batch, and
 * acknowledgements that leave after that version is visible.
 */
import type { MessagePort } from 'node:worker_threads';
import type { Endpoint } from './messages.js';

/** Most messages accepted in one incoming batch; a longer array is malformed. */
export const MAX_BATCH = 1 << 20;

export class BatchPort {
  readonly port: Endpoint;
  #batch: unknown[] = [];
  readonly #flush = (): void => {
    const batch = this.#batch;
    this.#batch = [];
    if (batch.length === 0) return;
    try {
      this.port.postMessage(batch.length === 1 ? batch[0] : batch);
    } catch {
      // The port closed under us; its close event tells the owner.
    }
  };

  constructor(port: Endpoint) {
    this.port = port;
  }

  post(message: unknown, transfer?: readonly MessagePort[]): void {
    if (transfer === undefined || transfer.length === 0) {
      if (this.#batch.push(message) === 1) queueMicrotask(this.#flush);
      return;
    }
    this.#flush();
    this.port.postMessage(message, transfer);
  }

  /** Sends what is queued now (before closing the port). */
  flush(): void {
    this.#flush();
  }

  /**
   * Calls `each` for every message of what arrived (one message or a batch), or
   * `malformed` for a batch that is too long.
   */
  static unpack(raw: unknown, each: (m: unknown) => void, malformed: () => void): void {
    if (!Array.isArray(raw)) {
      each(raw);
      return;
    }
    if (raw.length > MAX_BATCH) {
      malformed();
      return;
    }
    for (let i = 0; i < raw.length; i++) each(raw[i]);
  }
}
