/**
 * Shared memory per membership, and what churn does to it.
 *
 * - 1M memberships over 100k groups (10 members each, from 10 nodes): bytes of the
 *   index's SharedArrayBuffer in use per membership, against the heap bytes of a
 *   `Map<string, number[]>` holding the same (same run);
 * - then millions of join/leave cycles over rotating group names (each cycle creates a
 *   group and removes it): bytes in use after the churn against before it.
 */
import { encodeGroup, IndexWriter, makePid } from '../src/index.js';
import { gc } from './lib/gc.js';
import type { BenchOptions } from './lib/report.js';
import { paired, result, single } from './lib/report.js';

function heapUsed(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

export async function memory(opts: BenchOptions) {
  const trials = opts.quick ? 1 : 3;
  const groups = opts.quick ? 20_000 : 100_000;
  const perGroup = 10;
  const churn = opts.quick ? 1_000_000 : 10_000_000;
  const s = {
    perMembership: [] as number[],
    mapPerMembership: [] as number[],
    before: [] as number[],
    after: [] as number[],
  };
  for (let t = 0; t < trials; t++) {
    const writer = new IndexWriter({ maxBytes: 2 ** 31 });
    const keys = Array.from({ length: groups }, (_, g) => encodeGroup(`group-${g}`));
    const pidsOf = (g: number) => Array.from({ length: perGroup }, (_, j) => makePid(1 + j, g + 1));
    writer.batch(() => {
      for (let g = 0; g < groups; g++) writer.join(keys[g]!, pidsOf(g));
    });
    const memberships = groups * perGroup;
    const used = writer.stats().usedBytes;
    s.perMembership.push(used / memberships);

    // The same content in a plain Map, on the heap.
    const h0 = heapUsed();
    const map = new Map<string, number[]>();
    for (let g = 0; g < groups; g++) map.set(`group-${g}`, pidsOf(g));
    s.mapPerMembership.push((heapUsed() - h0) / memberships);
    if (map.size !== groups) throw new Error('map baseline lost entries');

    // Churn: each cycle joins a pid to a brand-new group and leaves it again.
    s.before.push(used);
    const pid = makePid(99, 1);
    for (let i = 0; i < churn; i++) {
      const key = encodeGroup(`rotating-${i}`);
      writer.join(key, [pid]);
      writer.leave(key, [pid]);
      if ((i & 0xfffff) === 0)
        opts.progress(t * 20 + Math.floor((i / churn) * 20), trials * 20, 'churn');
    }
    s.after.push(writer.stats().usedBytes);
    if (writer.stats().members !== memberships)
      throw new Error('churn changed the membership count');
    writer.close();
  }
  const figures = [
    paired(
      {
        id: 'bytes-per-membership',
        label: `shared bytes per membership (${(groups * perGroup) / 1e6}M over ${groups / 1000}k groups)`,
        unit: 'B',
        target: { on: 'value', op: '<=', limit: 48 },
        note: 'SharedArrayBuffer bytes in use (high-water mark), header included',
      },
      s.perMembership,
      'Map<string, number[]> heap bytes',
      s.mapPerMembership,
    ),
    paired(
      {
        id: 'churn-growth',
        label: `bytes in use after ${churn / 1e6}M join/leave cycles on rotating groups`,
        unit: 'B',
        target: { on: 'ratio', op: '<=', limit: 2 },
      },
      s.after,
      'before the churn',
      s.before,
    ),
    single(
      {
        id: 'churn-after-per-membership',
        label: 'shared bytes per membership after churn',
        unit: 'B',
      },
      s.after.map((b) => b / (groups * perGroup)),
    ),
  ];
  return result(
    'memory',
    'Shared memory per membership, and under churn',
    opts.quick,
    trials,
    figures,
  );
}
