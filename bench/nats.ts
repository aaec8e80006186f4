/**
 * Peering over NATS: this process and forked peer processes (bench/workers/nats-peer.ts),
 * a real nats-server on loopback, and raw NATS between the same two processes as the
 * baseline, in the same run.
 *
 * - sequential `call` from this main thread to a process on the peer's main thread,
 *   median, against a raw NATS request/reply round trip;
 * - 1,000 pipelined calls, against raw publish + echo with 1,000 in flight;
 * - a join (and a leave) in the peer until a reader here sees it, median, against the
 *   raw round trip;
 * - SIGKILL of a peer holding 1,000 memberships until they are gone here, against
 *   `peerTimeoutMs + heartbeatMs`;
 * - a new process until it holds 100,000 existing memberships by sync.
 *
 * Without nats-server the benchmark says so and reports nothing.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { connect as natsConnect } from '@nats-io/transport-node';
import { startCluster } from '../src/index.js';
import { natsTransport } from '../src/nats/index.js';
import { findNatsServer, INSTALL_HINT, NatsServer } from '../test/support/nats-server.js';
import { pipelined, sequential } from './lib/pipeline.js';
import { type BenchOptions, paired, result, single } from './lib/report.js';

const peerUrl = new URL('./workers/nats-peer.js', import.meta.url);
const HB = 100;
const TIMEOUT = 500;
const now = () => performance.timeOrigin + performance.now();

interface Peer {
  proc: ChildProcess;
  /** The next IPC message with this `op`. */
  next<T = { op: string }>(op: string): Promise<T>;
  end(): Promise<void>;
}

function forkPeer(env: Record<string, string>): Peer {
  const proc = fork(peerUrl, { env: { ...process.env, ...env }, stdio: 'inherit' });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return {
    proc,
    next: <T>(op: string) =>
      new Promise<T>((resolve, reject) => {
        const on = (m: unknown) => {
          if ((m as { op?: string }).op !== op) return;
          proc.off('message', on);
          resolve(m as T);
        };
        proc.on('message', on);
        void exited.then(() => reject(new Error(`peer exited before '${op}'`)));
      }),
    end: async () => {
      if (proc.connected) proc.disconnect();
      await exited;
    },
  };
}

/** Resolves when `check()` holds, checking on every turn of the event loop (a reader spinning). */
function when(check: () => boolean): Promise<number> {
  return new Promise((resolve) => {
    const step = () => (check() ? resolve(now()) : setImmediate(step));
    step();
  });
}

export async function nats(opts: BenchOptions) {
  const title = 'Peering over NATS between OS processes, raw NATS baselines';
  if (findNatsServer() === undefined) {
    console.warn(`nats: skipped, nats-server is not installed; ${INSTALL_HINT}`);
    return result('nats', `${title} (skipped: no nats-server)`, opts.quick, 0, []);
  }
  const trials = opts.quick ? 3 : 7;
  const ms = opts.quick ? 300 : 1_000;
  const server = await NatsServer.create();
  await server.start();
  const name = `bench${process.pid}`;
  const env = {
    PG_NATS: server.url,
    PG_CLUSTER: name,
    PG_HB: String(HB),
    PG_TIMEOUT: String(TIMEOUT),
  };
  const cluster = await startCluster({
    transport: natsTransport({
      servers: server.url,
      cluster: name,
      heartbeatMs: HB,
      peerTimeoutMs: TIMEOUT,
    }),
  });
  const pg = cluster.node.pg;
  const nc = await natsConnect({ servers: server.url });
  const peers: Peer[] = [];
  try {
    const echoPeer = forkPeer({ ...env, PG_ROLE: 'echo' });
    peers.push(echoPeer);
    await echoPeer.next('ready');
    await when(() => pg.count('echo') === 1);
    const echo = pg.getMembers('echo')[0]!;
    const call = () => cluster.node.call(echo, 1);
    const req = `raw.${name}.req`;
    const data = new Uint8Array(8);
    const rawRequest = () => nc.request(req, data, { timeout: 5_000 });
    const rawPipelined = (): Promise<number> =>
      new Promise((resolve) => {
        // Publish + echo with 1,000 in flight: each pong sends the next ping.
        let done = 0;
        let inflight = 0;
        const ping = () => {
          inflight++;
          nc.publish(`raw.${name}.ping`, data);
        };
        const start = performance.now();
        const sub = nc.subscribe(`raw.${name}.pong`, {
          callback: () => {
            done++;
            inflight--;
            if (performance.now() - start < ms) ping();
            else if (inflight === 0) {
              sub.unsubscribe();
              resolve((done / (performance.now() - start)) * 1000);
            }
          },
        });
        // Once the server has the subscription.
        void nc.flush().then(() => {
          for (let i = 0; i < 1_000; i++) ping();
        });
      });
    const joinVisible = async (): Promise<number> => {
      echoPeer.proc.send({ op: 'join' });
      const [{ at }, seen] = await Promise.all([
        echoPeer.next<{ at: number }>('join'),
        when(() => pg.count('seen') === 1),
      ]);
      echoPeer.proc.send({ op: 'leave' });
      await Promise.all([echoPeer.next('leave'), when(() => pg.count('seen') === 0)]);
      return (seen - at) * 1000;
    };
    const s = {
      pgSeq: [] as number[],
      rawSeq: [] as number[],
      pgPipe: [] as number[],
      rawPipe: [] as number[],
      join: [] as number[],
    };
    for (let t = 0; t < trials; t++) {
      s.pgSeq.push((await sequential(call, ms)).median);
      s.rawSeq.push((await sequential(rawRequest, ms)).median);
      s.pgPipe.push(await pipelined(call, 1_000, ms));
      s.rawPipe.push(await rawPipelined());
      const joins: number[] = [];
      for (let i = 0; i < (opts.quick ? 5 : 20); i++) joins.push(await joinVisible());
      joins.sort((a, b) => a - b);
      s.join.push(joins[joins.length >> 1]!);
      opts.progress(t + 1, trials + 2, 'calls, joins');
    }

    // SIGKILL of a peer with 1,000 memberships, until they are gone here.
    const kills: number[] = [];
    for (let t = 0; t < (opts.quick ? 1 : 3); t++) {
      const victim = forkPeer({ ...env, PG_ROLE: 'victim' });
      await victim.next('ready');
      await when(() => pg.count('victim') === 1_000);
      const at = now();
      victim.proc.kill('SIGKILL');
      kills.push((await when(() => pg.count('victim') === 0)) - at);
      await victim.end();
    }
    opts.progress(trials + 1, trials + 2, 'kill -9');

    // A new process until it holds 100,000 memberships by sync.
    const big = forkPeer({ ...env, PG_ROLE: 'big' });
    peers.push(big);
    await big.next('ready');
    await when(() => pg.count('big99') === 1_000);
    const syncs: number[] = [];
    for (let t = 0; t < (opts.quick ? 1 : 3); t++) {
      const late = forkPeer({ ...env, PG_ROLE: 'late', PG_EXPECT: '100000' });
      syncs.push((await late.next<{ ms: number }>('synced')).ms);
      await late.end();
    }
    opts.progress(trials + 2, trials + 2, 'sync');

    const figures = [
      paired(
        {
          id: 'nats-call-latency',
          label: 'sequential call to a process in another OS process, median',
          unit: 'µs',
          target: { on: 'ratio', op: '<=', limit: 1.5 },
        },
        s.pgSeq,
        'raw NATS request/reply',
        s.rawSeq,
      ),
      paired(
        {
          id: 'nats-call-pipelined',
          label: 'calls to another OS process, 1,000 in flight',
          unit: 'ops/s',
          target: { on: 'ratio', op: '>=', limit: 0.5 },
        },
        s.pgPipe,
        'raw NATS publish + echo, 1,000 in flight',
        s.rawPipe,
      ),
      paired(
        {
          id: 'nats-join-visible',
          label: 'join in another process until a reader here sees it, median',
          unit: 'µs',
          target: { on: 'ratio', op: '<=', limit: 2 },
        },
        s.join,
        'raw NATS request/reply',
        s.rawSeq,
      ),
      paired(
        {
          id: 'nats-kill-gone',
          label: 'SIGKILL of a process until its 1,000 members are gone here',
          unit: 'ms',
          target: { on: 'ratio', op: '<=', limit: 1 },
        },
        kills,
        `peerTimeoutMs + heartbeatMs (${TIMEOUT} + ${HB})`,
        kills.map(() => TIMEOUT + HB),
      ),
      single(
        {
          id: 'nats-sync-100k',
          label: 'a new process holds 100,000 existing memberships (start-up included)',
          unit: 'ms',
          target: { on: 'value', op: '<=', limit: 2_000 },
        },
        syncs,
      ),
    ];
    return result('nats', title, opts.quick, trials, figures);
  } finally {
    for (const p of peers) await p.end();
    await nc.close();
    await cluster.stop();
    await server.stop();
  }
}
