/**
 * Monitor event delivery: from a join call on one worker to the event in a group
 * monitor on another worker, median and p99, against a raw MessagePort round trip
 * between the same two workers, in the same run.
 */
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { startCluster } from '../src/index.js';
import type { Percentiles } from './lib/pipeline.js';
import type { BenchOptions } from './lib/report.js';
import { type Distribution, paired, result } from './lib/report.js';
import { next } from './lib/threads.js';

const workerUrl = new URL('./workers/pg-worker.js', import.meta.url);

export async function monitor(opts: BenchOptions) {
  const trials = opts.quick ? 3 : 7;
  const samples = opts.quick ? 200 : 1000;
  const ms = opts.quick ? 150 : 500;
  const cluster = await startCluster();
  const s = {
    p50: [] as number[],
    p99: [] as number[],
    rtt: [] as number[],
    rtt99: [] as number[],
  };
  let last: Percentiles | undefined;
  let lastRtt: Percentiles | undefined;
  try {
    const spawn = async (): Promise<Worker> => {
      const w = await cluster.spawn(workerUrl, { ready: 'connected' });
      await next(w.worker, 'ready');
      return w.worker;
    };
    const a = await spawn();
    const b = await spawn();
    const echo = new MessageChannel();
    const serving = next(b, 'serving');
    b.postMessage({ cmd: 'echo-serve', port: echo.port1 }, [echo.port1]);
    await serving;
    let echoPort: MessagePort | undefined = echo.port2;
    for (let t = 0; t < trials; t++) {
      const echoed = next<{ type: string; median: number; p99: number } & Percentiles>(a, 'echoed');
      if (echoPort !== undefined)
        a.postMessage({ cmd: 'echo-measure', port: echoPort, ms }, [echoPort]);
      else a.postMessage({ cmd: 'echo-measure', ms });
      echoPort = undefined;
      lastRtt = await echoed;
      s.rtt.push(lastRtt.median);
      s.rtt99.push(lastRtt.p99);

      const clock = new BigInt64Array(new SharedArrayBuffer(16));
      const flag = new Int32Array(new SharedArrayBuffer(4));
      const ready = next(b, 'mon-ready');
      const watched = next<{ type: string; percentiles: Percentiles }>(b, 'mon-watched');
      b.postMessage({ cmd: 'mon-watch', samples, clock, flag });
      await ready;
      const done = next(a, 'done');
      a.postMessage({ cmd: 'mon-drive', samples, clock, flag });
      last = (await watched).percentiles;
      await done;
      s.p50.push(last.p50);
      s.p99.push(last.p99);
      opts.progress(t + 1, trials, 'monitor events');
    }
  } finally {
    await cluster.stop();
  }
  const figures = [
    paired(
      {
        id: 'monitor-event-median',
        label: 'join on A → event in a monitor on B, median',
        unit: 'µs',
      },
      s.p50,
      'raw MessagePort round trip A↔B, median',
      s.rtt,
    ),
    paired(
      { id: 'monitor-event-p99', label: 'join on A → event in a monitor on B, p99', unit: 'µs' },
      s.p99,
      'raw MessagePort round trip A↔B, p99',
      s.rtt99,
    ),
  ];
  const distributions: Distribution[] = [
    {
      id: 'monitor-latency',
      label: 'Join on one worker to the monitor event on another (last trial)',
      unit: 'µs',
      series: [
        { name: 'monitor event', percentiles: last! },
        { name: 'raw MessagePort round trip', percentiles: lastRtt! },
      ],
    },
  ];
  return result(
    'monitor',
    'Monitor event delivery between worker nodes',
    opts.quick,
    trials,
    figures,
    distributions,
  );
}
