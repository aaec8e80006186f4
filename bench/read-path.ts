/**
 * The public read path: `pg.getMembers`, `pg.count` and `pg.pick` as users call them,
 * on the coordinator thread (the one that called `startCluster()`) and on a worker node,
 * against the same-thread `Map` operation, in the same run.
 *
 * A holder node's processes are the members of 1,000 groups of 8 (string keys, read in
 * a fixed rotation) and of one group of 64 and one of 1,024. Each trial measures every
 * pair back to back on each thread, in alternating order, in `SLICES` short windows
 * (so that a burst of load from elsewhere on the machine hits both sides of a pair
 * alike; the ratios are per trial):
 * - `getMembers(k)` against `map.get(k).slice()`;
 * - `count(k)` and `pick(k)` (no allocation) against `map.get(k)`;
 * - `getMembers` of the large groups against `slice()` of an array of that size.
 */
import type { Worker } from 'node:worker_threads';
import { type Cluster, startCluster } from '../src/index.js';
import { LARGE, measureReads, type ReadCase, readCases } from './lib/read-cases.js';
import type { BenchOptions, Figure, Target } from './lib/report.js';
import { paired, result } from './lib/report.js';
import { next } from './lib/threads.js';
import type { ReadCommand } from './workers/read-worker.js';

const workerUrl = new URL('./workers/read-worker.js', import.meta.url);

/** Each set is measured back to back, in this order or reversed. */
const SETS: ReadCase[][] = [
  ['members', 'slice'],
  ['count', 'pick', 'get'],
  ...LARGE.map((n): ReadCase[] => [`members-${n}`, `slice-${n}`]),
];

/** Windows per set and trial, each side of a pair measured once per window, alternating which goes first. */
const SLICES = 6;

const THREADS = ['coordinator', 'worker'] as const;
type Thread = (typeof THREADS)[number];

async function node(cluster: Cluster, role: string): Promise<Worker> {
  const w = await cluster.spawn(workerUrl, { workerData: { role }, ready: 'connected' });
  await next(w.worker, 'ready');
  return w.worker;
}

async function onWorker(reader: Worker, cases: ReadCase[], ms: number): Promise<number[]> {
  const done = next<{ type: string; values: number[] }>(reader, 'measured');
  reader.postMessage({ cases, ms } satisfies ReadCommand);
  return (await done).values;
}

export async function readPath(opts: BenchOptions) {
  const trials = opts.quick ? 3 : 7;
  const ms = opts.quick ? 60 : 300;
  const steps = trials * THREADS.length;
  let step = 0;
  const cluster = await startCluster();
  const s = Object.fromEntries(
    THREADS.map((t) => [t, Object.fromEntries(SETS.flat().map((c) => [c, [] as number[]]))]),
  ) as Record<Thread, Record<ReadCase, number[]>>;
  try {
    await node(cluster, 'holder');
    const reader = await node(cluster, 'reader');
    const here = readCases(cluster.node.pg);
    for (let t = 0; t < trials; t++) {
      const flip = t % 2 === 1;
      for (const thread of flip ? [...THREADS].reverse() : THREADS) {
        for (const set of SETS) {
          const mean = set.map(() => 0);
          for (let k = 0; k < SLICES; k++) {
            const order = flip !== (k % 2 === 1) ? [...set].reverse() : set;
            const values =
              thread === 'coordinator'
                ? measureReads(here, order, ms / SLICES)
                : await onWorker(reader, order, ms / SLICES);
            order.forEach((c, i) => (mean[set.indexOf(c)]! += values[i]! / SLICES));
          }
          set.forEach((c, i) => s[thread][c].push(mean[i]!));
        }
        opts.progress(++step, steps, `${thread} thread`);
      }
    }
  } finally {
    await cluster.stop();
  }

  const at = (ratio: number): Target => ({ on: 'ratio', op: '>=', limit: ratio });
  const figures: Figure[] = THREADS.flatMap((thread) => {
    const x = s[thread];
    const on = `on the ${thread} thread`;
    return [
      paired(
        {
          id: `getmembers-${thread}`,
          label: `pg.getMembers(k), groups of 8, ${on}`,
          unit: 'ops/s',
          target: at(0.9),
        },
        x.members,
        'map.get(k).slice()',
        x.slice,
      ),
      paired(
        { id: `count-${thread}`, label: `pg.count(k), ${on}`, unit: 'ops/s', target: at(0.8) },
        x.count,
        'map.get(k)',
        x.get,
      ),
      paired(
        { id: `pick-${thread}`, label: `pg.pick(k), ${on}`, unit: 'ops/s', target: at(0.8) },
        x.pick,
        'map.get(k)',
        x.get,
      ),
      ...LARGE.map((n) =>
        paired(
          {
            id: `getmembers-${n}-${thread}`,
            label: `pg.getMembers(k), a group of ${n.toLocaleString('en')}, ${on}`,
            unit: 'ops/s',
            target: at(0.67),
            note: 'within 1.5× of the time of slice()',
          },
          x[`members-${n}`],
          `slice() of ${n.toLocaleString('en')}`,
          x[`slice-${n}`],
        ),
      ),
    ];
  });
  return result(
    'read-path',
    'The public read path: pg.getMembers, count, pick on the coordinator and on a worker',
    opts.quick,
    trials,
    figures,
  );
}
