/**
 * The cluster's side of a coordinator thread (`startCluster({ coordinator: 'thread' })`):
 * each call of `CoordinatorBackend` becomes a request to that thread (thread-protocol.ts).
 *
 * The calls the public API makes synchronously (`cluster.nodes()`, `stats()`, `scopes()`,
 * `peers()`) wait for their answer in `Atomics.wait`: the coordinator thread never waits on
 * this one, so it answers in microseconds, and the API keeps its shape. If that thread
 * died or does not answer within SYNC_TIMEOUT, they throw CoordinatorThreadError rather
 * than hang.
 */
import {
  MessageChannel,
  type MessagePort,
  receiveMessageOnPort,
  Worker,
} from 'node:worker_threads';
import { THREAD_ENTRY } from '../entries.js';
import { CoordinatorThreadError } from '../core/errors.js';
import { fromWire } from '../core/wire-error.js';
import type { IndexOptions } from '../shared-index/types.js';
import type { PeerInfo } from '../peering/peering.js';
import type { TransportRecipe } from '../peering/transport.js';
import type { CoordinatorBackend } from './backend.js';
import type { AcceptHooks, CoordinatorStats } from './coordinator.js';
import type { Event, Op, Reply, ThreadData } from './thread-protocol.js';

/** How long a synchronous call waits for the coordinator thread before giving up. */
const SYNC_TIMEOUT = 10_000;

type Pending = { resolve(v: unknown): void; reject(e: Error): void };

export class ThreadCoordinator implements CoordinatorBackend {
  readonly #worker: Worker;
  readonly #port: MessagePort;
  readonly #replies: MessagePort;
  readonly #signal: Int32Array;
  readonly #pending = new Map<number, Pending>();
  readonly #hooks = new Map<number, AcceptHooks>();
  #ref = 0;
  #hook = 0;
  /** Set when the thread is gone: every call fails with it. */
  #dead: Error | undefined;
  /** The last counters, kept by `stop()` for a `stats()` after it. */
  #final: CoordinatorStats | undefined;

  /** Starts a coordinator thread with the scopes given; resolves once it serves requests. */
  static async start(
    index: IndexOptions,
    scopes: string[],
    transport: TransportRecipe | undefined,
  ): Promise<ThreadCoordinator> {
    const { port1, port2 } = new MessageChannel();
    const replies = new MessageChannel();
    const signal = new Int32Array(new SharedArrayBuffer(4));
    const data: ThreadData = {
      port: port2,
      replies: replies.port2,
      signal,
      index,
      scopes,
      transport,
    };
    const worker = new Worker(THREAD_ENTRY, {
      name: 'procgroups coordinator',
      workerData: data,
      transferList: [port2, replies.port2],
    });
    const client = new ThreadCoordinator(worker, port1, replies.port1, signal);
    await client.#up;
    return client;
  }

  readonly #up: Promise<void>;

  private constructor(worker: Worker, port: MessagePort, replies: MessagePort, signal: Int32Array) {
    this.#worker = worker;
    this.#port = port;
    this.#replies = replies;
    this.#signal = signal;
    let up: (() => void) | undefined;
    let failed: ((e: Error) => void) | undefined;
    this.#up = new Promise<void>((resolve, reject) => {
      up = resolve;
      failed = reject;
    });
    port.on('message', (m: Event | Reply) => {
      if ('ev' in m) {
        switch (m.ev) {
          case 'up':
            up?.();
            return;
          case 'failed':
            this.#die(fromWire(m.error));
            return;
          case 'registered':
            this.#hooks.get(m.hook)?.registered?.(m.id);
            return;
          case 'ready': {
            const hooks = this.#hooks.get(m.hook);
            this.#hooks.delete(m.hook);
            hooks?.ready?.();
            return;
          }
          case 'warning':
            process.emitWarning(m.message, m.name);
            return;
        }
      }
      const p = this.#pending.get(m.ref);
      this.#pending.delete(m.ref);
      if (m.error !== undefined) p?.reject(fromWire(m.error));
      else p?.resolve(m.value);
    });
    let crash: Error | undefined;
    worker.on('error', (e) => {
      crash = e;
    });
    worker.once('exit', (code) => {
      this.#die(
        new CoordinatorThreadError(
          `the coordinator thread ended (code ${code})${crash ? `: ${crash.message}` : ''}`,
          { cause: crash },
        ),
      );
    });
    this.#die = (e: Error) => {
      if (this.#dead !== undefined) return;
      this.#dead = e;
      failed?.(e);
      for (const p of this.#pending.values()) p.reject(e);
      this.#pending.clear();
      this.#hooks.clear();
      port.close();
    };
  }

  #die: (e: Error) => void;

  #post(op: Op, ref = 0, sync = false, transfer: MessagePort[] = []): void {
    if (this.#dead !== undefined) throw this.#dead;
    this.#port.postMessage({ ...op, ref, sync }, transfer);
  }

  #call<T>(op: Op): Promise<T> {
    if (this.#dead !== undefined) return Promise.reject(this.#dead);
    const ref = ++this.#ref;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(ref, { resolve: resolve as (v: unknown) => void, reject });
      this.#post(op, ref);
    });
  }

  #callSync<T>(op: Op): T {
    const ref = ++this.#ref;
    const seen = Atomics.load(this.#signal, 0);
    this.#post(op, ref, true);
    const deadline = performance.now() + SYNC_TIMEOUT;
    for (;;) {
      const r = receiveMessageOnPort(this.#replies);
      if (r !== undefined) {
        const reply = r.message as Reply;
        // A late answer to a call that timed out before: not this one.
        if (reply.ref !== ref) continue;
        if (reply.error !== undefined) throw fromWire(reply.error);
        return reply.value as T;
      }
      const left = deadline - performance.now();
      if (left <= 0 || this.#dead !== undefined) {
        throw new CoordinatorThreadError(
          `the coordinator thread did not answer '${op.op}' within ${SYNC_TIMEOUT} ms`,
          { cause: this.#dead },
        );
      }
      Atomics.wait(this.#signal, 0, seen, left);
    }
  }

  accept(port: MessagePort, _worker?: Worker, hooks?: AcceptHooks): void {
    let hook: number | undefined;
    if (hooks !== undefined) {
      hook = ++this.#hook;
      this.#hooks.set(hook, hooks);
    }
    // The Worker stays here (spawn() returns it); its exit reaches the coordinator as nodeDown.
    this.#post({ op: 'accept', port, hook }, 0, false, [port]);
  }

  nodeDown(id: number, drain = false): void {
    if (this.#dead === undefined) this.#post({ op: 'nodeDown', id, drain });
  }

  barrier(node: number): Promise<void> {
    // Gone coordinator: nothing will answer ("handled, or gone"), as Coordinator.stop does.
    if (this.#dead !== undefined) return Promise.resolve();
    return this.#call({ op: 'barrier', node });
  }

  startScope(name: string, index?: IndexOptions): Promise<boolean> {
    return this.#call({ op: 'startScope', name, index });
  }

  stopScope(name: string): Promise<boolean> {
    return this.#call({ op: 'stopScope', name });
  }

  partition(node: number, scope: string, cut: boolean): Promise<void> {
    return this.#call({ op: 'partition', node, scope, cut });
  }

  drain(timeout: number): Promise<void> {
    return this.#call({ op: 'drain', timeout });
  }

  closePeering(): Promise<void> {
    return this.#call({ op: 'closePeering' });
  }

  scopes(): string[] {
    return this.#final !== undefined ? [] : this.#callSync({ op: 'scopes' });
  }

  nodeIds(): number[] {
    return this.#final !== undefined ? [] : this.#callSync({ op: 'nodeIds' });
  }

  peers(): PeerInfo[] {
    return this.#final !== undefined ? [] : this.#callSync({ op: 'peers' });
  }

  stats(): CoordinatorStats {
    return this.#final !== undefined ? { ...this.#final } : this.#callSync({ op: 'stats' });
  }

  async stop(): Promise<void> {
    if (this.#final !== undefined) return;
    try {
      this.#final = await this.#call<CoordinatorStats>({ op: 'stop' });
    } catch {
      this.#final = { nodes: 0, malformed: 0, forged: 0, ignored: 0 };
    }
    this.#die(new CoordinatorThreadError('the cluster was stopped'));
    this.#replies.close();
    // It ends by itself once its ports close; terminate so that stop() resolves only
    // when the thread is gone, whatever it still holds.
    await this.#worker.terminate();
  }
}
