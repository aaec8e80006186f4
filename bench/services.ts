/**
 * Typed services (issue 18) between two worker nodes: a typed call
 * (`api.noop()` on `pg.service<T>(group)`) against a plain `pg.dispatch` of the same
 * no-op behind a hand-written `[op]` protocol, and against comlink on a MessagePort
 * between the same two threads, in the same run.
 *
 * - pipelined: 1,000 calls in flight, completions per second;
 * - sequential: one call at a time, median round trip.
 */
import { MessageChannel } from 'node:worker_threads';
import { startCluster } from '../src/index.js';
import type { Percentiles } from './lib/pipeline.js';
import { type BenchOptions, type Distribution, paired, result } from './lib/report.js';
import { next } from './lib/threads.js';
import type { ServiceCase } from './workers/service-worker.js';

const workerUrl = new URL('./workers/service-worker.js', import.meta.url);

export async function services(opts: BenchOptions) {
  const trials = opts.quick ? 3 : 7;
  const ms = opts.quick ? 150 : 500;
  const cluster = await startCluster();
  try {
    const server = await cluster.spawn(workerUrl, { workerData: { role: 'server' } });
    const client = await cluster.spawn(workerUrl, {
      workerData: { role: 'client' },
      ready: 'connected',
    });
    const com = new MessageChannel();
    const serverReady = next(server.worker, 'ready');
    server.worker.postMessage({ comlink: com.port1 }, [com.port1]);
    await serverReady;
    const clientReady = next(client.worker, 'ready');
    client.worker.postMessage({ cmd: 'setup', comlink: com.port2 }, [com.port2]);
    await clientReady;
    let dists: Partial<Record<ServiceCase, Percentiles>> = {};
    const order: ServiceCase[] = [
      'typed-pipelined',
      'dispatch-pipelined',
      'comlink-pipelined',
      'typed-seq',
      'dispatch-seq',
      'comlink-seq',
    ];
    const s = Object.fromEntries(order.map((c) => [c, [] as number[]])) as Record<
      ServiceCase,
      number[]
    >;
    for (let t = 0; t < trials; t++) {
      // Rotate the order so that no case always runs first (or last) in a trial.
      const cases = order.map((_, i) => order[(i + t) % order.length]!);
      const done = next<{ type: string; values: number[]; dists: typeof dists }>(
        client.worker,
        'measured',
      );
      client.worker.postMessage({ cmd: 'run', cases, ms, inflight: 1000 });
      const answer = await done;
      dists = answer.dists;
      for (const [i, c] of cases.entries()) s[c].push(answer.values[i]!);
      opts.progress(t + 1, trials, 'services');
    }
    const figures = [
      paired(
        {
          id: 'service-pipelined-vs-dispatch',
          label: 'typed call, 1,000 in flight',
          unit: 'ops/s',
          // At most 1.1× the cost of a plain dispatch: at least 1/1.1 of its throughput.
          target: { on: 'ratio', op: '>=', limit: 0.91 },
        },
        s['typed-pipelined'],
        'pg.dispatch, hand-written protocol',
        s['dispatch-pipelined'],
      ),
      paired(
        {
          id: 'service-pipelined-vs-comlink',
          label: 'typed call, 1,000 in flight',
          unit: 'ops/s',
          target: { on: 'ratio', op: '>=', limit: 5 },
        },
        s['typed-pipelined'],
        'comlink',
        s['comlink-pipelined'],
      ),
      paired(
        {
          id: 'service-latency-vs-dispatch',
          label: 'sequential typed call, median',
          unit: 'µs',
          target: { on: 'ratio', op: '<=', limit: 1.1 },
        },
        s['typed-seq'],
        'pg.dispatch, hand-written protocol',
        s['dispatch-seq'],
      ),
      paired(
        { id: 'service-latency-vs-comlink', label: 'sequential typed call, median', unit: 'µs' },
        s['typed-seq'],
        'comlink',
        s['comlink-seq'],
      ),
    ];
    const distribution: Distribution = {
      id: 'service-latency',
      label: 'Sequential typed call between two worker threads (last trial)',
      unit: 'µs',
      series: [
        { name: 'typed service call', percentiles: dists['typed-seq']! },
        { name: 'pg.dispatch', percentiles: dists['dispatch-seq']! },
        { name: 'comlink', percentiles: dists['comlink-seq']! },
      ],
    };
    return result(
      'services',
      'Typed service calls between two worker nodes, plain dispatch and comlink baselines',
      opts.quick,
      trials,
      figures,
      [distribution],
    );
  } finally {
    await cluster.stop();
  }
}
