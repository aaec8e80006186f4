/**
 * A busy main thread (issue 17 §3): the main thread runs its own work in synchronous
 * chunks of 20 ms (a web server parsing JSON, say) while worker nodes write. With the
 * coordinator on the main thread (the default), every write that arrives during a chunk
 * waits for it; with `startCluster({ coordinator: 'thread' })` it does not. Measured with
 * both, in the same run, the mode order rotated between trials:
 * - a worker's sequential joins, from the call to the ack, p50 and p99;
 * - a worker thread ending (from its call to `process.exit()`) until a reader on another
 *   worker, woken by a monitor event, reads its members gone; p50 per trial, p99 over
 *   the downs of all trials pooled (a trial's 60 downs make its own p99 its slowest
 *   down, also reported). One worker ends at a time: the next once the previous one's
 *   thread is gone;
 * - the same with bare worker threads and no procgroups (bench/workers/bare-exit.ts): an
 *   exit notice relayed by a third thread to the reader, the floor that Node and the
 *   machine set for two hops between threads while a thread ends;
 * - the price of the extra hop: the main thread's own sequential joins on an idle main.
 */
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import { type Cluster, type ClusterOptions, startCluster } from '../src/index.js';
import type { BusyCommand } from './workers/busy-worker.js';
import type { BareExitData } from './workers/bare-exit.js';
import { type Percentiles, sequential } from './lib/pipeline.js';
import { type BenchOptions, type Distribution, paired, result } from './lib/report.js';
import { next } from './lib/threads.js';

const workerUrl = new URL('./workers/busy-worker.js', import.meta.url);
const bareUrl = new URL('./workers/bare-exit.js', import.meta.url);
const CHUNK_MS = 20;

type Mode = NonNullable<ClusterOptions['coordinator']>;

/** The main thread's own work: 20 ms synchronous chunks, a turn of the event loop between them, until `done[0]`. */
async function busyUntil(done: Int32Array): Promise<void> {
  while (Atomics.load(done, 0) === 0) {
    const end = performance.now() + CHUNK_MS;
    while (performance.now() < end && Atomics.load(done, 0) === 0);
    await new Promise((r) => setImmediate(r));
  }
}

async function spawn(cluster: Cluster): Promise<Worker> {
  const w = await cluster.spawn(workerUrl, { ready: 'connected' });
  await next(w.worker, 'ready');
  return w.worker;
}

const post = (w: Worker, m: BusyCommand) => w.postMessage(m);

const shared = <T>(Of: new (b: SharedArrayBuffer) => T, bytes: number) =>
  new Of(new SharedArrayBuffer(bytes));

/** Sets `gone[slot]` when the victim's thread is gone, for the reader to start the next. */
function trackGone(victim: Worker, gone: Int32Array, slot: number): void {
  victim.once('exit', () => {
    Atomics.store(gone, slot, 1);
    Atomics.notify(gone, slot);
  });
}

interface Trial {
  joins: Percentiles;
  downs: Downs;
  mainJoins: Percentiles;
}

/** A trial's node-downs: their percentiles, and every one of them (µs), to pool across trials. */
interface Downs {
  percentiles: Percentiles;
  samples: number[];
}

/**
 * The 99th percentile (nearest rank) of every down of every trial. One trial has 60
 * downs, so its own p99 is its slowest down; pooled, 300 downs make a p99 that is one.
 */
function pooledP99(trials: readonly Downs[]): number {
  const all = trials.flatMap((d) => d.samples).sort((a, b) => a - b);
  return all[Math.max(0, Math.ceil(0.99 * all.length) - 1)]!;
}

async function trial(mode: Mode, joins: number, victims: number, ms: number): Promise<Trial> {
  const cluster = await startCluster({ coordinator: mode });
  try {
    const joiner = await spawn(cluster);
    const watcher = await spawn(cluster);
    const go = shared(Int32Array, 4 * victims);
    const gone = shared(Int32Array, 4 * victims);
    const ended = shared(BigInt64Array, 8 * victims);
    for (let slot = 0; slot < victims; slot++) {
      const v = await spawn(cluster);
      const armed = next(v, 'armed');
      post(v, { cmd: 'victim', slot, perVictim: 100, go, ended });
      await armed;
      trackGone(v, gone, slot);
    }

    let done = new Int32Array(new SharedArrayBuffer(4));
    const joined = next<{ type: string; percentiles: Percentiles }>(joiner, 'joined');
    post(joiner, { cmd: 'joins', n: joins, done });
    await busyUntil(done);
    const j = (await joined).percentiles;

    done = new Int32Array(new SharedArrayBuffer(4));
    const downs = next<{ type: string } & Downs>(watcher, 'downs');
    post(watcher, { cmd: 'watch-downs', slots: victims, go, ended, gone, done });
    await busyUntil(done);
    const d = await downs;

    // The extra hop: the main thread's own joins, main idle.
    const self = cluster.node.self();
    let i = 0;
    const mainJoins = await sequential(() => cluster.node.pg.join(`m${i++ % 1000}`, self), ms);
    return { joins: j, downs: d, mainJoins };
  } finally {
    await cluster.stop();
  }
}

/** The floor: the same victims, relay and reader as bare worker threads (bare-exit.ts). */
async function bareTrial(victims: number): Promise<Downs> {
  const bare = (data: BareExitData, transfer: MessagePort[]) =>
    new Worker(bareUrl, { workerData: data, transferList: transfer });
  const go = shared(Int32Array, 4 * victims);
  const gone = shared(Int32Array, 4 * victims);
  const ended = shared(BigInt64Array, 8 * victims);
  const done = shared(Int32Array, 4);
  const hop = new MessageChannel();
  const relay = bare({ role: 'relay', out: hop.port1 }, [hop.port1]);
  const reader = bare({ role: 'reader', slots: victims, inp: hop.port2, go, ended, gone, done }, [
    hop.port2,
  ]);
  try {
    await Promise.all([next(relay, 'ready'), next(reader, 'ready')]);
    for (let slot = 0; slot < victims; slot++) {
      const { port1, port2 } = new MessageChannel();
      relay.postMessage({ port: port1 }, [port1]);
      const v = bare({ role: 'victim', slot, go, ended, port: port2 }, [port2]);
      await next(v, 'armed');
      trackGone(v, gone, slot);
    }
    const downs = next<{ type: string } & Downs>(reader, 'downs');
    reader.postMessage('start');
    await busyUntil(done);
    return await downs;
  } finally {
    await Promise.all([relay.terminate(), reader.terminate()]);
  }
}

export async function busyMain(opts: BenchOptions) {
  const trials = opts.quick ? 3 : 5;
  const joins = opts.quick ? 500 : 2000;
  const victims = opts.quick ? 20 : 60;
  const ms = opts.quick ? 200 : 500;
  const modes = ['main', 'thread', 'bare'] as const;
  const runs: Record<Mode, Trial[]> = { main: [], thread: [] };
  const bare: Downs[] = [];
  for (let t = 0; t < trials; t++) {
    for (const mode of t % 2 === 0 ? modes : [...modes].reverse()) {
      if (mode === 'bare') bare.push(await bareTrial(victims));
      else runs[mode].push(await trial(mode, joins, victims, ms));
    }
    opts.progress(t + 1, trials, 'busy main');
  }
  const ms_ = (us: number) => us / 1000;
  const downsPerMode = trials * victims;
  const downsOf = (mode: Mode) => runs[mode].map((r) => r.downs);
  const of = (mode: Mode, f: (r: Trial) => number) => runs[mode].map(f);
  const target = (limit: number) => ({ on: 'value' as const, op: '<=' as const, limit });
  const figures = [
    paired(
      {
        id: 'busy-main-join-p99',
        label: "a worker's join acked, main busy in 20 ms chunks, p99, coordinator: 'thread'",
        unit: 'ms',
        target: target(2),
      },
      of('thread', (r) => ms_(r.joins.p99)),
      'coordinator on main (default), same scenario',
      of('main', (r) => ms_(r.joins.p99)),
    ),
    paired(
      {
        id: 'busy-main-join-median',
        label: "a worker's join acked, main busy in 20 ms chunks, median, coordinator: 'thread'",
        unit: 'ms',
      },
      of('thread', (r) => ms_(r.joins.p50)),
      'coordinator on main (default), same scenario',
      of('main', (r) => ms_(r.joins.p50)),
    ),
    paired(
      {
        id: 'busy-main-nodedown-p99',
        label: `a worker ends → its members gone for a reader, main busy in 20 ms chunks, p99 of the ${downsPerMode} downs of all trials, coordinator: 'thread'`,
        unit: 'ms',
        target: target(2),
        note: 'one value from every trial pooled, so no min–max',
      },
      [ms_(pooledP99(downsOf('thread')))],
      'coordinator on main (default), same scenario',
      [ms_(pooledP99(downsOf('main')))],
    ),
    paired(
      {
        id: 'busy-main-nodedown-worst',
        label:
          "a worker ends → its members gone for a reader, main busy in 20 ms chunks, slowest of a trial's downs, coordinator: 'thread'",
        unit: 'ms',
        note: `a trial has ${victims} downs, so its own p99 is its slowest`,
      },
      of('thread', (r) => ms_(r.downs.percentiles.max)),
      'coordinator on main (default), same scenario',
      of('main', (r) => ms_(r.downs.percentiles.max)),
    ),
    paired(
      {
        id: 'busy-main-nodedown-median',
        label:
          "a worker ends → its members gone for a reader, main busy in 20 ms chunks, median, coordinator: 'thread'",
        unit: 'ms',
      },
      of('thread', (r) => ms_(r.downs.percentiles.p50)),
      'coordinator on main (default), same scenario',
      of('main', (r) => ms_(r.downs.percentiles.p50)),
    ),
    paired(
      {
        id: 'busy-main-nodedown-p99-bare',
        label: `a worker ends → its members gone for a reader, p99 of the ${downsPerMode} downs of all trials, coordinator: 'thread', against bare threads`,
        unit: 'ms',
        note: 'the floor: a bare worker posts an exit notice that a thread relays to a reader',
      },
      [ms_(pooledP99(downsOf('thread')))],
      'bare worker threads, same scenario',
      [ms_(pooledP99(bare))],
    ),
    paired(
      {
        id: 'busy-main-nodedown-worst-bare',
        label:
          "a worker ends → its members gone for a reader, slowest of a trial's downs, coordinator: 'thread', against bare threads",
        unit: 'ms',
      },
      of('thread', (r) => ms_(r.downs.percentiles.max)),
      'bare worker threads, same scenario',
      bare.map((p) => ms_(p.percentiles.max)),
    ),
    paired(
      {
        id: 'busy-main-nodedown-median-bare',
        label:
          "a worker ends → its members gone for a reader, median, coordinator: 'thread', against bare threads",
        unit: 'ms',
      },
      of('thread', (r) => ms_(r.downs.percentiles.p50)),
      'bare worker threads, same scenario',
      bare.map((p) => ms_(p.percentiles.p50)),
    ),
    paired(
      {
        id: 'busy-main-own-join-median',
        label: "the main thread's own join, main idle, median, coordinator: 'thread'",
        unit: 'µs',
        note: 'the price of the extra hop (ratio > 1: slower than on main)',
      },
      of('thread', (r) => r.mainJoins.p50),
      'coordinator on main (default)',
      of('main', (r) => r.mainJoins.p50),
    ),
    paired(
      {
        id: 'busy-main-own-join-p99',
        label: "the main thread's own join, main idle, p99, coordinator: 'thread'",
        unit: 'µs',
      },
      of('thread', (r) => r.mainJoins.p99),
      'coordinator on main (default)',
      of('main', (r) => r.mainJoins.p99),
    ),
  ];
  const last = (mode: Mode) => runs[mode].at(-1)!;
  const distributions: Distribution[] = [
    {
      id: 'busy-main-joins',
      label: "A worker's join acked while main runs 20 ms chunks (last trial)",
      unit: 'µs',
      series: [
        { name: "coordinator: 'thread'", percentiles: last('thread').joins },
        { name: 'coordinator on main', percentiles: last('main').joins },
      ],
    },
  ];
  return result(
    'busy-main',
    'A busy main thread: the coordinator on main or in its own thread',
    opts.quick,
    trials,
    figures,
    distributions,
  );
}
