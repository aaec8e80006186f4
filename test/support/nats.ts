/**
 * A real NATS server and real peer processes for the peering tests. The server is the
 * `nats-server` binary, started on a loopback port picked here; each peer is a forked
 * Node process running test/fixtures/peer.ts. Every wait is on an event (a log line, an
 * IPC message, an exit), each bounded so that a test fails rather than hangs.
 */
import { type ChildProcess, fork } from 'node:child_process';
import type { ExecutionContext } from 'ava';
import { NatsServer } from './nats-server.js';
import { fixture } from './workers.js';

export { findNatsServer, INSTALL_HINT, NatsServer } from './nats-server.js';

/** A nats-server for one test, stopped when the test ends. */
export async function natsServer(t: ExecutionContext, args: string[] = []): Promise<NatsServer> {
  const server = await NatsServer.create(args);
  t.teardown(() => server.stop());
  await server.start();
  return server;
}

export interface PeerOptions {
  nats: string;
  cluster: string;
  agents?: number;
  heartbeatMs?: number;
  peerTimeoutMs?: number;
  name?: string;
  token?: string;
  coordinator?: 'main' | 'thread';
}

interface Reply {
  id?: number;
  ok?: boolean;
  value?: unknown;
  error?: { name: string; code?: string; message: string };
  ready?: boolean;
}

/** An error from a peer process, rebuilt with its name and code. */
export class PeerError extends Error {
  code: string | undefined;
  constructor(e: { name: string; code?: string; message: string }) {
    super(e.message);
    this.name = e.name;
    this.code = e.code;
  }
}

/** A forked process with a peered cluster (test/fixtures/peer.ts), driven by ops. */
export class Peer {
  readonly proc: ChildProcess;
  #id = 0;
  readonly #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  readonly exited: Promise<number | null>;

  private constructor(proc: ChildProcess) {
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
    proc.on('message', (raw) => {
      const r = raw as Reply;
      if (r.id === undefined) return;
      const p = this.#pending.get(r.id);
      this.#pending.delete(r.id);
      if (r.ok === true) p?.resolve(r.value);
      else p?.reject(new PeerError(r.error!));
    });
    // Ops still pending fail once the process is gone and its IPC channel is closed
    // ('close'), not at 'exit': Node can report the exit before it has read the last
    // replies the process sent (an answer to `stop`, sent just before it exits).
    proc.once('close', (code) => {
      for (const p of this.#pending.values()) p.reject(new Error(`peer process exited (${code})`));
      this.#pending.clear();
    });
  }

  static async start(t: ExecutionContext, o: PeerOptions): Promise<Peer> {
    const proc = fork(fixture('peer'), {
      env: {
        ...process.env,
        PG_NATS: o.nats,
        PG_CLUSTER: o.cluster,
        PG_AGENTS: String(o.agents ?? 1),
        PG_HB: String(o.heartbeatMs ?? 250),
        PG_TIMEOUT: String(o.peerTimeoutMs ?? 2_000),
        PG_NAME: o.name ?? 'peer',
        ...(o.token !== undefined && { PG_TOKEN: o.token }),
        ...(o.coordinator !== undefined && { PG_COORDINATOR: o.coordinator }),
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // The peer reports its warnings in `info` (fixtures/peer.ts), and prints the others.
      execArgv: [...process.execArgv, '--no-warnings'],
      // Structured-clone semantics over IPC, so that Maps and typed arrays survive.
      serialization: 'advanced',
    });
    const peer = new Peer(proc);
    t.teardown(() => peer.kill());
    await new Promise<void>((resolve, reject) => {
      proc.on('message', (m) => {
        if ((m as Reply).ready === true) resolve();
        const failed = (m as { failed?: Reply['error'] }).failed;
        if (failed !== undefined) reject(new PeerError(failed));
      });
      proc.once('exit', (code) =>
        reject(new Error(`peer process exited (${code}) before it was ready`)),
      );
    });
    return peer;
  }

  op<R = unknown>(m: Record<string, unknown>): Promise<R> {
    const id = ++this.#id;
    return new Promise<R>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.send({ id, ...m });
    });
  }

  /** Kills the process (SIGKILL by default) and waits for it to be gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    await this.exited;
  }
}

/** A cluster name no other test uses. */
export function clusterName(t: ExecutionContext): string {
  return `t${process.pid}_${t.title.replace(/[^A-Za-z0-9]+/g, '_').slice(0, 40)}_${Math.random().toString(36).slice(2, 8)}`;
}
