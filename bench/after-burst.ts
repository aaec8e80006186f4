/**
 * After a deep burst: no-op throughput on the calling thread, in 1,000-deep batches to 2
 * worker threads, before and after one burst of 20,000 tasks submitted at once, in the
 * same process; for `node.call`, for `dispatch`, and for a raw `MessagePort` echo (the
 * baseline: the same before-and-after on Node's own message path).
 *
 * Each trial runs in a fresh OS process (workers/after-burst-process.ts), because what
 * this looks for outlives the burst. Before runtime/call-table.ts, on Node 20, one such
 * burst left later no-op batches 35-45% slower through procgroups for as long as the
 * process lived (a forced full collection did not end it), with V8 promoting most of
 * what each scavenge found alive; the raw echo lost 15-25%. The first batches after any
 * deep burst pay for its garbage and for recompiling what it deoptimized, so `after` is
 * measured once as many tasks again have run. No target: the figures say what is left,
 * against the raw path's own.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { rotate } from './lib/measure.js';
import type { BenchOptions, Figure } from './lib/report.js';
import { paired, result } from './lib/report.js';
// Types only: importing the trial's module would run it.
import type { Kind, Trial } from './workers/after-burst-process.js';

const run = promisify(execFile);
const child = fileURLToPath(new URL('./workers/after-burst-process.js', import.meta.url));
/** Tasks submitted at once in the burst. */
const DEEP = 20_000;
const KINDS: readonly Kind[] = ['call', 'dispatch', 'raw'];
const LABEL: Record<Kind, string> = {
  call: 'node.call',
  dispatch: 'dispatch',
  raw: 'raw MessagePort echo',
};

async function trial(kind: Kind, total: number): Promise<Trial> {
  const { stdout } = await run(process.execPath, [child, kind, String(total), String(DEEP)]);
  return JSON.parse(stdout) as Trial;
}

export async function afterBurst(opts: BenchOptions) {
  const trials = opts.quick ? 2 : 5;
  const total = opts.quick ? 30_000 : 100_000;
  const s = Object.fromEntries(KINDS.map((k) => [k, [] as Trial[]])) as Record<Kind, Trial[]>;
  let step = 0;
  for (let t = 0; t < trials; t++) {
    for (const kind of rotate(KINDS, t)) {
      s[kind].push(await trial(kind, total));
      opts.progress(++step, trials * KINDS.length, kind);
    }
  }
  const deep = DEEP.toLocaleString('en');
  const slowdown = (k: Kind) => s[k].map((x) => x.after / x.before);
  const figures: Figure[] = [
    ...KINDS.map((k) =>
      paired(
        {
          id: `after-burst-${k}`,
          label: `${LABEL[k]}: 1k-deep no-op batches, starting ${total.toLocaleString('en')} tasks after a ${deep}-deep burst`,
          unit: 'ops/s',
        },
        s[k].map((x) => x.after),
        'the same, before the burst (same process)',
        s[k].map((x) => x.before),
      ),
    ),
    ...(['call', 'dispatch'] as const).map((k) =>
      paired(
        {
          id: `after-burst-${k}-vs-raw`,
          label: `${LABEL[k]}: throughput after ÷ before, against the raw echo's`,
          unit: '×',
          note: 'below 1: the burst slows procgroups more than it slows the raw path',
        },
        slowdown(k),
        "raw MessagePort echo's after ÷ before",
        slowdown('raw'),
      ),
    ),
  ];
  return result(
    'after-burst',
    `After a deep burst: 1k-deep no-op batches before and after ${deep} tasks at once, each trial a fresh process`,
    opts.quick,
    trials,
    figures,
  );
}
