/**
 * `npm run bench [-- <name>…] [--quick]`: runs benchmarks, prints their tables, and
 * writes bench/results/<name>.json.
 */
import { calls } from './calls.js';
import { dispatch } from './dispatch.js';
import { indexRead } from './index-read.js';
import { type BenchResult, save, table } from './lib/report.js';
import { memory } from './memory.js';
import { monitor } from './monitor.js';
import { pg } from './pg.js';

type Bench = (opts: {
  quick: boolean;
  progress: (done: number, total: number, what: string) => void;
}) => Promise<BenchResult>;

const benches: Record<string, Bench> = {
  'index-read': indexRead,
  calls,
  dispatch,
  pg,
  memory,
  monitor,
};

function progress(name: string) {
  return (done: number, total: number, what: string) => {
    if (!process.stderr.isTTY) return;
    const width = 30;
    const filled = Math.round((done / total) * width);
    process.stderr.write(
      `\r${name} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${what}`.padEnd(
        100,
      ),
    );
    if (done === total) process.stderr.write(`${'\r'.padEnd(101)}\r`);
  };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const names = args.filter((a) => !a.startsWith('--'));
  const unknown = names.filter((n) => !(n in benches));
  if (unknown.length > 0) {
    console.error(
      `unknown benchmark: ${unknown.join(', ')}; known: ${Object.keys(benches).join(', ')}`,
    );
    process.exitCode = 2;
    return;
  }
  for (const name of names.length > 0 ? names : Object.keys(benches)) {
    const r = await benches[name]!({ quick, progress: progress(name) });
    const file = save(r);
    console.log(`${table(r)}\n\nwritten to ${file}\n`);
  }
}

await main();
