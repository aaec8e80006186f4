/**
 * Group dispatch against piscina and tinypool, two worker threads each, same run.
 *
 * - throughput: 100,000 no-op tasks submitted at once (as many in flight as each
 *   system allows), against piscina's default configuration, and against the best of
 *   piscina and tinypool with `concurrentTasksPerWorker` tuned to 8 and 64;
 * - efficiency: 2,000 tasks of about 1 ms of CPU, as a fraction of the ideal
 *   (total work ÷ 2 threads), against bare worker_threads running the same tasks behind
 *   a minimal queue (and piscina, tinypool);
 * - latency: one task at a time, median round trip.
 */
import { spread } from './lib/measure.js';
import { type Percentiles, sequential } from './lib/pipeline.js';
import type { BenchOptions } from './lib/report.js';
import { type Distribution, type Figure, paired, result } from './lib/report.js';
import { bare, burst, piscina, procgroups, type System, taskUrl, tinypool } from './lib/systems.js';

const task = taskUrl('pool-task');
/** Target of CPU efficiency against bare workers (how it was chosen: bench/README.md). */
const CPU_VS_BARE = 0.97;

export async function dispatch(opts: BenchOptions) {
  const trials = opts.quick ? 2 : 5;
  const tasks = opts.quick ? 20_000 : 100_000;
  const cpuTasks = opts.quick ? 400 : 2000;
  const ms = opts.quick ? 200 : 1000;
  const rivals = [
    piscina(task),
    piscina(task, 8),
    piscina(task, 64),
    tinypool(task, 8),
    tinypool(task, 64),
  ];
  const pg = await procgroups(task, (input) =>
    input === null
      ? // No-op tasks take the default strategy.
        { maxQueue: 1_000_000 }
      : // CPU tasks go to the least-loaded member, two in flight per member: one
        // running, one waiting on its thread, so that no thread idles while the next
        // task makes its round trip.
        { strategy: 'least-loaded', maxInFlight: 2, maxQueue: 1_000_000 },
  );
  // The CPU tasks' baseline: the same two in flight per thread, with nothing else.
  const floor = bare(task, 2, 'bare workers');
  const systems: System[] = [pg, ...rivals, floor];
  /** Systems that only run the CPU tasks. */
  const cpuOnly = new Set<System>([floor]);
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
        const ideal = (cpuTasks * 1) / 2;
        if (!cpuOnly.has(sys))
          rate[sys.name]!.push((tasks / (await burst(sys, tasks, null))) * 1000);
        eff[sys.name]!.push(ideal / (await burst(sys, cpuTasks, 1)));
        if (!cpuOnly.has(sys)) {
          const p = await sequential(() => sys.run(null), ms / 4);
          lat[sys.name]!.push(p.median);
          dist[sys.name] = p;
        }
        opts.progress(++step, steps, sys.name);
      }
    }
  } finally {
    for (const sys of systems) await sys.close();
  }
  // The best tuned rival of each trial: the highest of the four tuned configurations.
  const tuned = ['piscina ×8', 'piscina ×64', 'tinypool ×8', 'tinypool ×64'];
  const bestTuned = rate.procgroups!.map((_, i) => Math.max(...tuned.map((n) => rate[n]![i]!)));
  const bestTunedName = tuned.reduce((a, b) =>
    spread(rate[b]!).median > spread(rate[a]!).median ? b : a,
  );
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
        target: { on: 'ratio', op: '>=', limit: CPU_VS_BARE },
        note: 'the baseline: bare worker_threads, one postMessage per task, two tasks in flight per thread, a FIFO queue',
      },
      eff.procgroups!,
      'bare workers, minimal queue',
      eff['bare workers']!,
    ),
    paired(
      {
        id: 'cpu-efficiency-piscina',
        label: `${cpuTasks} tasks of 1 ms CPU, fraction of ideal`,
        unit: '×',
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
