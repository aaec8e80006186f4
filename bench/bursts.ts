/**
 * Bursts: how dispatch holds up when work comes in deep batches, against the raw
 * message path and against its own `node.call`, on 2 worker threads, same run.
 *
 * - 100,000 no-op dispatches to a group of 2 worker nodes (default options), submitted
 *   in batches of 10,000 against batches of 1,000 (each batch once the one before has
 *   finished);
 * - the 1,000-deep batches against a raw MessagePort echo in the same topology (main →
 *   2 bare workers, one `postMessage` per task) and against `node.call` to the same two
 *   members, alternating;
 * - fine-grained tasks of 20 µs and 100 µs of CPU submitted at once, as a fraction of
 *   the ideal (total work ÷ 2 threads), against piscina and tinypool (default options).
 */
import { rotate, spread } from './lib/measure.js';
import type { BenchOptions, Figure } from './lib/report.js';
import { paired, result } from './lib/report.js';
import {
  bare,
  batches,
  burst,
  calls,
  piscina,
  procgroups,
  taskUrl,
  tinypool,
} from './lib/systems.js';

const task = taskUrl('pool-task');
const RIVALS = ['piscina (default)', 'tinypool (default)'];

export async function bursts(opts: BenchOptions) {
  const trials = opts.quick ? 2 : 5;
  const total = opts.quick ? 20_000 : 100_000;
  /** Fine-grained tasks: CPU per task, and how many (250 ms of ideal time each; 20 ms quick). */
  const fine = [
    { us: 20, n: opts.quick ? 2000 : 25_000 },
    { us: 100, n: opts.quick ? 400 : 5000 },
  ];
  const pg = await procgroups(task);
  const call = calls(pg);
  const raw = bare(task, Number.POSITIVE_INFINITY, 'raw MessagePort');
  const pools = [piscina(task), tinypool(task)];
  const systems = [pg, raw, ...pools];
  // Every measurement of a trial, by name; a trial runs them all, in a rotated order.
  const runs: [string, () => Promise<number>][] = [
    ['dispatch 10k', () => batches(pg, total, 10_000, null)],
    ['dispatch 1k', () => batches(pg, total, 1000, null)],
    ['raw 1k', () => batches(raw, total, 1000, null)],
    ['call 1k', () => batches(call, total, 1000, null)],
    ...fine.flatMap(({ us, n }) =>
      [pg, ...pools].map((sys): [string, () => Promise<number>] => [
        `${sys.name} ${us}`,
        async () => (n * us) / 1000 / 2 / (await burst(sys, n, us / 1000)),
      ]),
    ),
  ];
  const s: Record<string, number[]> = Object.fromEntries(runs.map(([name]) => [name, []]));
  let step = 0;
  try {
    // Threads started and code optimized, in every system, before anything is measured:
    // one whole round, unrecorded. (A short burst alone never filled the members'
    // windows, so the queued path of the first 10k-deep run was compiled while timed,
    // and that trial ran at half the rate of the others.)
    for (const sys of systems) await burst(sys, 2000, null);
    for (const [, run] of runs) await run();
    for (let t = 0; t < trials; t++) {
      for (const [name, run] of rotate(runs, t)) {
        s[name]!.push(await run());
        opts.progress(++step, trials * runs.length, name);
      }
    }
  } finally {
    for (const sys of systems) await sys.close();
  }

  const k = (n: number) => `${n / 1000}k`;
  const noop = (id: string, base: string, baseLabel: string, limit: number) =>
    paired(
      {
        id,
        label: `${k(total)} no-op dispatches, 1k-deep batches`,
        unit: 'ops/s',
        target: { on: 'ratio', op: '>=', limit },
      },
      s['dispatch 1k']!,
      baseLabel,
      s[base]!,
    );
  const figures: Figure[] = [
    paired(
      {
        id: 'burst-10k-vs-1k',
        label: `${k(total)} no-op dispatches, 10k-deep batches`,
        unit: 'ops/s',
        target: { on: 'ratio', op: '>=', limit: 0.8 },
      },
      s['dispatch 10k']!,
      '1k-deep batches',
      s['dispatch 1k']!,
    ),
    noop('burst-vs-raw-port', 'raw 1k', 'raw MessagePort, main → 2 workers', 1),
    noop('burst-vs-call', 'call 1k', 'node.call to the same members', 0.8),
    ...fine.flatMap(({ us, n }) => {
      const ours = s[`procgroups ${us}`]!;
      const theirs = RIVALS.map((r) => s[`${r} ${us}`]!);
      // The best rival of each trial; and, for the note, the one with the best median.
      const best = ours.map((_, i) => Math.max(...theirs.map((x) => x[i]!)));
      const medians = theirs.map((x) => spread(x).median);
      const usually = RIVALS[medians.indexOf(Math.max(...medians))];
      const label = `${n.toLocaleString('en')} tasks of ${us} µs CPU, fraction of ideal`;
      return [
        paired(
          {
            id: `fine-${us}us-vs-best`,
            label,
            unit: '×',
            target: { on: 'ratio', op: '>=', limit: 1 },
            note: `best of piscina and tinypool (defaults), per trial (by median: ${usually})`,
          },
          ours,
          'best of piscina, tinypool',
          best,
        ),
        ...RIVALS.map((r, i) =>
          paired(
            { id: `fine-${us}us-vs-${r.split(' ')[0]!}`, label, unit: '×' },
            ours,
            r,
            theirs[i]!,
          ),
        ),
      ];
    }),
  ];
  return result(
    'bursts',
    'Bursts: deep batches, raw and call baselines, fine-grained tasks (2 worker threads)',
    opts.quick,
    trials,
    figures,
  );
}
