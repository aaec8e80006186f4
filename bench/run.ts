/**
 * `npm run bench [-- <name>…] [--quick]`: runs benchmarks, prints their tables, writes
 * bench/results/<name>.json, and regenerates BENCHMARKS.md with its charts (from the
 * full runs only: `--quick` results go to <name>.quick.json and into no report).
 * `npm run bench -- --report` only regenerates the report.
 */
import { afterBurst } from './after-burst.js';
import { bursts } from './bursts.js';
import { busyMain } from './busy-main.js';
import { calls } from './calls.js';
import { dispatch } from './dispatch.js';
import { indexRead } from './index-read.js';
import { jobs } from './jobs.js';
import { writeReport } from './lib/markdown.js';
import { type BenchOptions, type BenchResult, save, table } from './lib/report.js';
import { memory } from './memory.js';
import { monitor } from './monitor.js';
import { nats } from './nats.js';
import { pg } from './pg.js';
import { readPath } from './read-path.js';
import { scale } from './scale.js';
import { services } from './services.js';

type Bench = (opts: BenchOptions) => Promise<BenchResult>;

/** Every benchmark, in the order they run and appear in the report. */
const benches: Record<string, Bench> = {
  'index-read': indexRead,
  'read-path': readPath,
  memory,
  calls,
  pg,
  monitor,
  dispatch,
  services,
  jobs,
  bursts,
  'after-burst': afterBurst,
  'busy-main': busyMain,
  scale,
  nats,
};

/** A one-line progress bar on stderr, when stderr is a terminal. */
function progress(name: string) {
  return (done: number, total: number, what: string) => {
    if (!process.stderr.isTTY) return;
    const width = 30;
    const filled = Math.min(width, Math.round((done / total) * width));
    const line = `${name} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${what}`;
    process.stderr.write(`\r${line.padEnd(100)}`);
    if (done >= total) process.stderr.write(`\r${' '.repeat(100)}\r`);
  };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  if (args.includes('--report')) {
    console.log(`written: ${(await writeReport(Object.keys(benches))).join(', ')}`);
    return;
  }
  const names = args.filter((a) => !a.startsWith('--'));
  const unknown = names.filter((n) => !(n in benches));
  if (unknown.length > 0) {
    console.error(
      `unknown benchmark: ${unknown.join(', ')}; known: ${Object.keys(benches).join(', ')}`,
    );
    process.exitCode = 2;
    return;
  }
  const run = new Date().toISOString();
  for (const name of names.length > 0 ? names : Object.keys(benches)) {
    const r = await benches[name]!({ quick, progress: progress(name) });
    const file = save({ ...r, run });
    console.log(`${table(r)}\n\nwritten to ${file}\n`);
  }
  if (!quick) console.log(`report: ${(await writeReport(Object.keys(benches))).join(', ')}`);
}

await main();
