/**
 * Group dispatch against piscina and tinypool, two worker threads each, same run.
 *
 * - throughput: 100,000 no-op tasks submitted at once (as many in flight as each
 *   system allows), against piscina's default configuration, and against the best of
 *   piscina and tinypool with `concurrentTasksPerWorker` tuned to 8 and 64;
 * - efficiency: 2,000 tasks of about 1 ms of CPU, as a fraction of the ideal
 *   (total work ÷ 2 threads);
 * - latency: one task at a time, median round trip.
 */
import { performance } from 'node:perf_hooks';
import { Piscina } from 'piscina';
import { Tinypool } from 'tinypool';
import { type Cluster, startCluster } from '../src/index.js';
import { type Percentiles, sequential } from './lib/pipeline.js';
import type { BenchOptions } from './lib/report.js';
import { type Distribution, type Figure, paired, result } from './lib/report.js';
import { next } from './lib/threads.js';

const taskFile = new URL('./workers/pool-task.js', import.meta.url).href;
const workerUrl = new URL('./workers/dispatch-worker.js', import.meta.url);

interface System {
  name: string;
  run(input: number | null): Promise<unknown>;
  close(): Promise<void>;
}

async function burst(sys: System, n: number, input: number | null): Promise<number> {
  const start = performance.now();
  const all: Promise<unknown>[] = new Array(n);
  for (let i = 0; i < n; i++) all[i] = sys.run(input);
  await Promise.all(all);
  return performance.now() - start;
}

async function procgroups(): Promise<System & { cluster: Cluster }> {
  const cluster = await startCluster();
  for (let i = 0; i < 2; i++) {
    const w = await cluster.spawn(workerUrl);
    await next(w.worker, 'ready');
  }
  const pg = cluster.node.pg;
  while (pg.count('work') < 2) {
    pg.refresh();
    await new Promise((r) => setImmediate(r));
  }
  return {
    name: 'procgroups',
    cluster,
    // No-op tasks take the default strategy; CPU tasks go to the least-loaded member.
    run: (input) =>
      input === null
        ? pg.dispatch('work', input, { maxQueue: 1_000_000 })
        : // Two in flight per member: one running, one waiting on its thread, so that no
          // thread idles while the next task makes its round trip.
          pg.dispatch('work', input, {
            strategy: 'least-loaded',
            maxInFlight: 2,
            maxQueue: 1_000_000,
          }),
    close: () => cluster.stop(),
  };
}

function piscina(concurrentTasksPerWorker?: number): System {
  const pool = new Piscina({
    filename: taskFile,
    minThreads: 2,
    maxThreads: 2,
    ...(concurrentTasksPerWorker ? { concurrentTasksPerWorker } : {}),
  });
  return {
    name: concurrentTasksPerWorker ? `piscina ×${concurrentTasksPerWorker}` : 'piscina (default)',
    run: (input) => pool.run(input),
    close: () => pool.destroy(),
  };
}

function tinypool(concurrentTasksPerWorker: number): System {
  const pool = new Tinypool({
    filename: taskFile,
    minThreads: 2,
    maxThreads: 2,
    concurrentTasksPerWorker,
  });
  return {
    name: `tinypool ×${concurrentTasksPerWorker}`,
    run: (input) => pool.run(input),
    close: () => pool.destroy(),
  };
}

export async function dispatch(opts: BenchOptions) {
  const trials = opts.quick ? 2 : 5;
  const tasks = opts.quick ? 20_000 : 100_000;
  const cpuTasks = opts.quick ? 400 : 2000;
  const ms = opts.quick ? 200 : 1000;
  const rivals = [piscina(), piscina(8), piscina(64), tinypool(8), tinypool(64)];
  const pg = await procgroups();
  const systems: System[] = [pg, ...rivals];
  const rate: Record<string, number[]> = {};
  const eff: Record<string, number[]> = {};
  const lat: Record<string, number[]> = {};
  const dist: Record<string, Percentiles> = {};
  for (const sys of systems) {
    rate[sys.name] = [];
    eff[sys.name] = [];
    lat[sys.name] = [];
    // Warm up every system (threads started, code optimized) before measuring any.
    await burst(sys, 2000, null);
  }
  const steps = trials * systems.length;
  let step = 0;
  try {
    for (let t = 0; t < trials; t++) {
      // Rotate the order of systems per trial so that none always runs first.
      for (let k = 0; k < systems.length; k++) {
        const sys = systems[(k + t) % systems.length]!;
        rate[sys.name]!.push((tasks / (await burst(sys, tasks, null))) * 1000);
        const ideal = (cpuTasks * 1) / 2;
        eff[sys.name]!.push(ideal / (await burst(sys, cpuTasks, 1)));
        const p = await sequential(() => sys.run(null), ms / 4);
        lat[sys.name]!.push(p.median);
        dist[sys.name] = p;
        opts.progress(++step, steps, sys.name);
      }
    }
  } finally {
    for (const sys of systems) await sys.close();
  }
  // The best tuned rival of each trial: the highest of the four tuned configurations.
  const tuned = ['piscina ×8', 'piscina ×64', 'tinypool ×8', 'tinypool ×64'];
  const bestTuned = rate.procgroups!.map((_, i) => Math.max(...tuned.map((n) => rate[n]![i]!)));
  const bestTunedName = tuned.reduce((a, b) => (median(rate[b]!) > median(rate[a]!) ? b : a));
  const figures: Figure[] = [
    paired(
      {
        id: 'dispatch-vs-piscina-default',
        label: `dispatch, ${tasks / 1000}k no-op tasks`,
        unit: 'ops/s',
        target: { on: 'ratio', op: '>=', limit: 3 },
      },
      rate.procgroups!,
      'piscina (default)',
      rate['piscina (default)']!,
    ),
    paired(
      {
        id: 'dispatch-vs-best-tuned',
        label: `dispatch, ${tasks / 1000}k no-op tasks`,
        unit: 'ops/s',
        target: { on: 'ratio', op: '>=', limit: 1.5 },
        note: `best of piscina and tinypool with concurrentTasksPerWorker 8 and 64, per trial (usually ${bestTunedName})`,
      },
      rate.procgroups!,
      'best tuned rival',
      bestTuned,
    ),
    ...tuned.map((n) =>
      paired(
        {
          id: `dispatch-vs-${n.replace(/\W+/g, '-')}`,
          label: `dispatch, ${tasks / 1000}k no-op tasks`,
          unit: 'ops/s',
        },
        rate.procgroups!,
        n,
        rate[n]!,
      ),
    ),
    paired(
      {
        id: 'cpu-efficiency',
        label: `${cpuTasks} tasks of 1 ms CPU, fraction of ideal`,
        unit: '×',
        target: { on: 'value', op: '>=', limit: 0.95 },
      },
      eff.procgroups!,
      'piscina (default)',
      eff['piscina (default)']!,
    ),
    paired(
      {
        id: 'cpu-efficiency-tinypool',
        label: `${cpuTasks} tasks of 1 ms CPU, fraction of ideal`,
        unit: '×',
      },
      eff.procgroups!,
      'tinypool ×8',
      eff['tinypool ×8']!,
    ),
    paired(
      {
        id: 'dispatch-latency',
        label: 'sequential dispatch, median',
        unit: 'µs',
        target: { on: 'ratio', op: '<=', limit: 1 },
      },
      lat.procgroups!,
      'piscina (default)',
      lat['piscina (default)']!,
    ),
    paired(
      { id: 'dispatch-latency-tinypool', label: 'sequential dispatch, median', unit: 'µs' },
      lat.procgroups!,
      'tinypool ×8',
      lat['tinypool ×8']!,
    ),
  ];
  const distribution: Distribution = {
    id: 'dispatch-latency',
    label: 'Sequential dispatch of a no-op task (last trial)',
    unit: 'µs',
    series: ['procgroups', 'piscina (default)', 'piscina ×8', 'tinypool ×8'].map((name) => ({
      name,
      percentiles: dist[name]!,
    })),
  };
  return result(
    'dispatch',
    'Group dispatch against piscina and tinypool (2 worker threads each)',
    opts.quick,
    trials,
    figures,
    [distribution],
  );
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1] ?? 0;
}
