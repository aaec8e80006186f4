/**
 * Call round trips between two worker nodes, against a raw MessagePort echo and
 * comlink between the same two threads, in the same run.
 *
 * - pipelined: 1,000 no-op calls in flight, completions per second;
 * - sequential: one call at a time, median round trip.
 */
import { MessageChannel } from 'node:worker_threads';
import { startCluster } from '../src/index.js';
import type { Percentiles } from './lib/pipeline.js';
import type { BenchOptions } from './lib/report.js';
import { type Distribution, paired, result } from './lib/report.js';
import { next } from './lib/threads.js';
import type { CallCase } from './workers/call-worker.js';

const workerUrl = new URL('./workers/call-worker.js', import.meta.url);

export async function calls(opts: BenchOptions) {
  const trials = opts.quick ? 3 : 7;
  const ms = opts.quick ? 150 : 500;
  const cluster = await startCluster();
  try {
    const server = await cluster.spawn(workerUrl, {
      workerData: { role: 'server' },
      ready: 'connected',
    });
    const client = await cluster.spawn(workerUrl, {
      workerData: { role: 'client' },
      ready: 'connected',
    });
    const raw = new MessageChannel();
    const com = new MessageChannel();
    const serverReady = next<{ type: string; pid: number }>(server.worker, 'ready');
    server.worker.postMessage({ raw: raw.port1, comlink: com.port1 }, [raw.port1, com.port1]);
    const { pid } = await serverReady;
    const clientReady = next(client.worker, 'ready');
    client.worker.postMessage({ cmd: 'setup', pid, raw: raw.port2, comlink: com.port2 }, [
      raw.port2,
      com.port2,
    ]);
    await clientReady;
    let dists: Partial<Record<CallCase, Percentiles>> = {};
    const run = async (cases: CallCase[]) => {
      const done = next<{ type: string; values: number[]; dists: typeof dists }>(
        client.worker,
        'measured',
      );
      client.worker.postMessage({ cmd: 'run', cases, ms, inflight: 1000 });
      const answer = await done;
      dists = answer.dists;
      return answer.values;
    };
    const s: Record<CallCase, number[]> = {
      'pg-pipelined': [],
      'raw-pipelined': [],
      'comlink-pipelined': [],
      'pg-seq': [],
      'raw-seq': [],
      'comlink-seq': [],
    };
    const order: CallCase[] = [
      'pg-pipelined',
      'raw-pipelined',
      'comlink-pipelined',
      'pg-seq',
      'raw-seq',
      'comlink-seq',
    ];
    for (let t = 0; t < trials; t++) {
      // Rotate the order so that no case always runs first (or last) in a trial.
      const cases = order.map((_, i) => order[(i + t) % order.length]!);
      const values = await run(cases);
      for (const [i, c] of cases.entries()) s[c].push(values[i]!);
      opts.progress(t + 1, trials, 'calls');
    }
    const figures = [
      paired(
        {
          id: 'call-pipelined-vs-raw',
          label: 'call, 1,000 in flight',
          unit: 'ops/s',
          target: { on: 'ratio', op: '>=', limit: 0.5 },
        },
        s['pg-pipelined'],
        'raw MessagePort echo',
        s['raw-pipelined'],
      ),
      paired(
        {
          id: 'call-pipelined-vs-comlink',
          label: 'call, 1,000 in flight',
          unit: 'ops/s',
          target: { on: 'ratio', op: '>=', limit: 2 },
        },
        s['pg-pipelined'],
        'comlink',
        s['comlink-pipelined'],
      ),
      paired(
        {
          id: 'call-latency-vs-raw',
          label: 'sequential call, median',
          unit: 'µs',
          target: { on: 'ratio', op: '<=', limit: 1.2 },
        },
        s['pg-seq'],
        'raw MessagePort round trip',
        s['raw-seq'],
      ),
      paired(
        { id: 'call-latency-vs-comlink', label: 'sequential call, median', unit: 'µs' },
        s['pg-seq'],
        'comlink',
        s['comlink-seq'],
      ),
    ];
    const distribution: Distribution = {
      id: 'call-latency',
      label: 'Sequential round trip between two worker threads (last trial)',
      unit: 'µs',
      series: [
        { name: 'procgroups call', percentiles: dists['pg-seq']! },
        { name: 'raw MessagePort', percentiles: dists['raw-seq']! },
        { name: 'comlink', percentiles: dists['comlink-seq']! },
      ],
    };
    return result(
      'calls',
      'Calls between two worker nodes, raw MessagePort and comlink baselines',
      opts.quick,
      trials,
      figures,
      [distribution],
    );
  } finally {
    await cluster.stop();
  }
}
