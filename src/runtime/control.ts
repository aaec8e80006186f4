/**
 * A node's control channel to the coordinator: one-way messages, batched per job, and
 * requests (join, leave, monitor…) whose answer (`ack`, `monitored`) is matched to
 * them by ref. The node decides what every other message from the coordinator means.
 */
import type { MessagePort } from 'node:worker_threads';
import { Waiters } from '../core/waiters.js';
import { BatchPort } from '../protocol/batch-port.js';
import type { Endpoint, ToCoordinator, ToNode } from '../protocol/messages.js';

interface Request {
  resolve(answer: ToNode): void;
  reject(error: unknown): void;
  scope: string;
}

export class Control {
  readonly endpoint: Endpoint & { close?(): void };
  readonly #out: BatchPort;
  readonly #requests = new Map<number, Request>();
  #ref = 0;
  /** Waiting for the last request in flight to be answered (a graceful stop). */
  readonly #answered = new Waiters();

  constructor(endpoint: Endpoint & { close?(): void }) {
    this.endpoint = endpoint;
    this.#out = new BatchPort(endpoint);
  }

  /** A one-way message (a port in `transfer` goes at once, after what was batched). */
  post(message: ToCoordinator, transfer?: MessagePort[]): void {
    this.#out.post(message, transfer);
  }

  /** Sends a request built with its ref; resolves with the coordinator's answer. */
  request(scope: string, build: (ref: number) => ToCoordinator): Promise<ToNode> {
    const ref = ++this.#ref;
    return new Promise((resolve, reject) => {
      this.#requests.set(ref, { resolve, reject, scope });
      this.#out.post(build(ref));
    });
  }

  /** An answer from the coordinator: settles its request (an unknown ref is ignored). */
  answer(m: Extract<ToNode, { t: 'ack' | 'monitored' }>): void {
    const r = this.#requests.get(m.ref);
    if (r === undefined) return;
    this.#requests.delete(m.ref);
    r.resolve(m);
    this.#settled();
  }

  /**
   * Resolves once no request is in flight: a graceful stop waits for the joins and leaves
   * made before it, as it does for calls, rather than failing them with the scope.
   */
  whenAnswered(): Promise<void> {
    return this.#answered.until(this.#requests.size === 0);
  }

  #settled(): void {
    if (this.#requests.size === 0) this.#answered.release();
  }

  /** Fails the requests in flight of one scope (it went down). */
  failScope(scope: string, error: unknown): void {
    for (const [ref, r] of this.#requests) {
      if (r.scope !== scope) continue;
      this.#requests.delete(ref);
      r.reject(error);
    }
    this.#settled();
  }

  /** Sends what is batched now (the thread is about to end, or the port to close). */
  flush(): void {
    this.#out.flush();
  }

  /** The node leaves: every request fails with `error`, the port closes. */
  close(error: unknown, onMessage: (raw: unknown) => void): void {
    for (const r of this.#requests.values()) r.reject(error);
    this.#requests.clear();
    this.#settled();
    this.#out.flush();
    this.endpoint.off('message', onMessage);
    this.endpoint.close?.();
  }
}
