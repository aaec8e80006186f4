/**
 * Real CPU jobs as users run them: 1,000 jobs of chained sha256 (about 1 ms of CPU each;
 * the chain length is calibrated at start on this machine) submitted at once to two
 * worker threads, every system with its default options: `pg.dispatch` to a group of 2
 * worker nodes, piscina, tinypool. Reported per trial: the time to the first result,
 * to the median result and to the last, each as a ratio to piscina's (and tinypool's,
 * for information); and, for the chart, every system's results over time.
 */
import { performance } from 'node:perf_hooks';
import { rotate, spread } from './lib/measure.js';
import type { BenchOptions, Curve, Figure } from './lib/report.js';
import { paired, result, single } from './lib/report.js';
import { completions, piscina, procgroups, type System, taskUrl, tinypool } from './lib/systems.js';
import { chain } from './workers/sha-task.js';

const task = taskUrl('sha-task');
/** What is reported of each run, and the targets on its ratio to piscina's. */
const MEASURES = [
  { id: 'first', label: 'first result', limit: 1.5 },
  { id: 'p50', label: 'median result', limit: undefined },
  { id: 'total', label: 'last result', limit: 1.1 },
] as const;
type Measure = (typeof MEASURES)[number]['id'];

/** Points per line in the chart: enough for its shape, few enough for the JSON. */
const POINTS = 100;

/** The chain length of a job of about `ms` on this thread, and how long a job of it took. */
function calibrate(ms: number): { n: number; took: number[] } {
  const probe = 2000;
  chain(probe); // warm up
  const per = Math.min(
    ...Array.from({ length: 5 }, () => {
      const start = performance.now();
      chain(probe);
      return (performance.now() - start) / probe;
    }),
  );
  const n = Math.max(1, Math.round(ms / per));
  const took = Array.from({ length: 5 }, () => {
    const start = performance.now();
    chain(n);
    return performance.now() - start;
  });
  return { n, took };
}

/** Completed jobs against time, thinned to about `POINTS` points, from (0, 0). */
function line(times: readonly number[]): [number, number][] {
  const every = Math.max(1, Math.floor(times.length / POINTS));
  const points: [number, number][] = [[0, 0]];
  times.forEach((t, i) => {
    if (i % every === 0 || i === times.length - 1) points.push([t, i + 1]);
  });
  return points;
}

export async function jobs(opts: BenchOptions) {
  const trials = opts.quick ? 2 : 5;
  // The quick run keeps --quick short; the figures are the full run's.
  const count = opts.quick ? 300 : 1000;
  const { n, took } = calibrate(1);
  const systems: System[] = [await procgroups(task), piscina(task), tinypool(task)];
  const times = { first: {}, p50: {}, total: {} } as Record<Measure, Record<string, number[]>>;
  const last: Record<string, number[]> = {};
  let step = 0;
  try {
    for (const sys of systems) {
      for (const m of MEASURES) times[m.id][sys.name] = [];
      // Threads started and code optimized, in every system, before anything is measured.
      await completions(sys, 50, n);
    }
    for (let t = 0; t < trials; t++) {
      for (const sys of rotate(systems, t)) {
        const done = await completions(sys, count, n);
        times.first[sys.name]!.push(done[0]!);
        times.p50[sys.name]!.push(spread(done).median);
        times.total[sys.name]!.push(done[done.length - 1]!);
        last[sys.name] = done;
        opts.progress(++step, trials * systems.length, sys.name);
      }
    }
  } finally {
    for (const sys of systems) await sys.close();
  }

  const what = `${count.toLocaleString('en')} sha256 jobs of ~1 ms at once`;
  const vs = (rival: string, targets: boolean): Figure[] =>
    MEASURES.map((m) =>
      paired(
        {
          id: `jobs-${m.id}-vs-${rival.split(' ')[0]!}`,
          label: `${what}: ${m.label}`,
          unit: 'ms',
          ...(targets && m.limit !== undefined
            ? { target: { on: 'ratio', op: '<=', limit: m.limit } }
            : {}),
        },
        times[m.id].procgroups!,
        rival,
        times[m.id][rival]!,
      ),
    );
  const figures: Figure[] = [
    ...vs('piscina (default)', true),
    ...vs('tinypool (default)', false),
    single(
      {
        id: 'job-ms',
        label: 'one job on the main thread',
        unit: 'ms',
        note: `a chain of ${n} sha256 digests, calibrated at start`,
      },
      took,
    ),
  ];
  const curve: Curve = {
    id: 'jobs-over-time',
    label: `${what}, 2 threads: results over time (last trial)`,
    x: { title: 'since submit', unit: 'ms' },
    y: { title: 'jobs completed', unit: '' },
    lines: systems.map((s) => ({ name: s.name, points: line(last[s.name] ?? []) })),
  };
  return result(
    'jobs',
    'Real CPU jobs: chained sha256 on 2 threads, default options',
    opts.quick,
    trials,
    figures,
    [],
    [curve],
  );
}
