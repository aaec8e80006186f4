/**
 * The shared index, read from worker threads, against a same-thread Map baseline.
 *
 * Setup: a writer thread owns an index of 1,000 groups of 8 members (string keys),
 * plus 1,000 other groups that only the churn touches. Reader threads hold a handle and
 * a `Map<string, number[]>` with the same content; they read random keys.
 *
 * Figures (each trial measures both sides back to back, in the same thread):
 * - `members(group)` (a fresh array) against `map.get(key).slice()`;
 * - `count(group)` and `memberAt(group, i)` (no allocation) against `map.get(key)`;
 * - two reader threads against one;
 * - one reader while the writer churns other groups, against the same reader idle;
 * - the writer's member changes per second, one change per version and 64 per version,
 *   against the same changes on a copy-on-write Map in the writer's thread.
 */
import type { Worker } from 'node:worker_threads';
import { SIZES } from './lib/index-data.js';
import type { BenchOptions, Figure } from './lib/report.js';
import { paired, result } from './lib/report.js';
import { next, start } from './lib/threads.js';
import type { Command, ReadCase } from './workers/index-worker.js';

const workerUrl = new URL('./workers/index-worker.js', import.meta.url);
const GROUPS = 1000;
const MEMBERS = 8;
/** Target of the writer against its Map baseline (how it was chosen: bench/README.md). */
const WRITER_VS_MAP = 0.2;

function send(w: Worker, c: Command): void {
  w.postMessage(c);
}

async function measure(
  w: Worker,
  cases: ReadCase[],
  ms: number,
  go?: Int32Array,
): Promise<number[]> {
  const done = next<{ type: string; values: number[] }>(w, 'measured');
  send(w, go === undefined ? { cmd: 'measure', cases, ms } : { cmd: 'measure', cases, ms, go });
  return (await done).values;
}

export async function indexRead(opts: BenchOptions) {
  const trials = opts.quick ? 3 : 7;
  const ms = opts.quick ? 60 : 300;
  const steps = trials * 6;
  let step = 0;
  const tick = (what: string) => opts.progress(++step, steps, what);

  const [writer, ready] = await start<{ type: string; handle: unknown }>(workerUrl, {
    role: 'writer',
    groups: GROUPS,
    members: MEMBERS,
    churnGroups: GROUPS,
  });
  const readerData = { role: 'reader', handle: ready.handle, groups: GROUPS, members: MEMBERS };
  const [r1] = await start(workerUrl, readerData);
  const [r2] = await start(workerUrl, readerData);
  const s = {
    members: [] as number[],
    slice: [] as number[],
    count: [] as number[],
    pick: [] as number[],
    get: [] as number[],
    one: [] as number[],
    two: [] as number[],
    idle: [] as number[],
    churn: [] as number[],
    write1: [] as number[],
    write64: [] as number[],
    map1: [] as number[],
    map64: [] as number[],
    sizes: SIZES.map(() => ({ ours: [] as number[], base: [] as number[] })),
  };
  try {
    for (let t = 0; t < trials; t++) {
      // Alternate the order within a trial so that drift does not favour one side.
      const flip = t % 2 === 1;
      const [a, b] = await measure(r1, flip ? ['slice', 'members'] : ['members', 'slice'], ms);
      s.members.push(flip ? b! : a!);
      s.slice.push(flip ? a! : b!);
      tick('members vs slice');
      const [c, p, g] = await measure(
        r1,
        flip ? ['get', 'pick', 'count'] : ['count', 'pick', 'get'],
        ms,
      );
      s.count.push(flip ? g! : c!);
      s.pick.push(p!);
      s.get.push(flip ? c! : g!);
      tick('count, pick vs get');

      // Scaling: one reader alone, then both readers started together.
      const [one] = await measure(r1, ['members'], ms);
      const go = new Int32Array(new SharedArrayBuffer(4));
      const both = Promise.all([
        measure(r1, ['members'], ms, go),
        measure(r2, ['members'], ms, go),
      ]);
      await new Promise((resolve) => setTimeout(resolve, 20)); // let both reach Atomics.wait
      Atomics.store(go, 0, 1);
      Atomics.notify(go, 0);
      const [[x], [y]] = await both;
      s.one.push(one!);
      s.two.push(x! + y!);
      tick('two readers');

      // A concurrent writer on other groups.
      const [idle] = await measure(r1, ['members'], ms);
      const stop = new Int32Array(new SharedArrayBuffer(4));
      const churned = next(writer, 'churned');
      send(writer, { cmd: process.env.SPIN ? 'spin' : 'churn', stop });
      const [busy] = await measure(r1, ['members'], ms);
      Atomics.store(stop, 0, 1);
      await churned;
      s.idle.push(idle!);
      s.churn.push(busy!);
      tick('reader with a writer');

      for (const batch of [1, 64]) {
        // The index and its Map baseline in the writer's thread, in turn.
        for (const map of flip ? [true, false] : [false, true]) {
          const done = next<{ type: string; perSecond: number }>(writer, 'written');
          send(writer, { cmd: 'write', ms, batch, map });
          const rate = (await done).perSecond;
          if (map) (batch === 1 ? s.map1 : s.map64).push(rate);
          else (batch === 1 ? s.write1 : s.write64).push(rate);
        }
      }
      tick('writer');
      const sized = next<{ type: string; values: [number, number][] }>(r1, 'sized');
      send(r1, { cmd: 'sizes', ms: ms / 2 });
      (await sized).values.forEach(([ours, base], i) => {
        s.sizes[i]!.ours.push(ours);
        s.sizes[i]!.base.push(base);
      });
      tick('group sizes');
    }
  } finally {
    for (const w of [writer, r1, r2]) await w.terminate();
  }

  const figures: Figure[] = [
    paired(
      {
        id: 'members-vs-slice',
        label: 'members(group) → new array',
        unit: 'ops/s',
        target: { on: 'ratio', op: '>=', limit: 0.6 },
      },
      s.members,
      'map.get(k).slice()',
      s.slice,
    ),
    paired(
      {
        id: 'count-vs-get',
        label: 'count(group), no allocation',
        unit: 'ops/s',
        target: { on: 'ratio', op: '>=', limit: 0.5 },
      },
      s.count,
      'map.get(k)',
      s.get,
    ),
    paired(
      {
        id: 'pick-vs-get',
        label: 'memberAt(group, i), no allocation',
        unit: 'ops/s',
        target: { on: 'ratio', op: '>=', limit: 0.5 },
      },
      s.pick,
      'map.get(k)',
      s.get,
    ),
    paired(
      {
        id: 'two-readers',
        label: 'members(), 2 reader threads',
        unit: 'ops/s',
        target: { on: 'ratio', op: '>=', limit: 1.6 },
      },
      s.two,
      '1 reader thread',
      s.one,
    ),
    paired(
      {
        id: 'reader-with-writer',
        label: 'members(), writer churning other groups',
        unit: 'ops/s',
        target: { on: 'ratio', op: '>=', limit: 0.8 },
        note: 'a cost of at most 20%',
      },
      s.churn,
      'writer idle',
      s.idle,
    ),
    paired(
      {
        id: 'writer-1',
        label: 'writer, 1 change per version',
        unit: 'changes/s',
        target: { on: 'ratio', op: '>=', limit: WRITER_VS_MAP },
        note: 'the baseline does the same joins and leaves on a same-thread Map, copy-on-write (a new member list per change)',
      },
      s.write1,
      'copy-on-write Map',
      s.map1,
    ),
    paired(
      { id: 'writer-64', label: 'writer, 64 changes per version', unit: 'changes/s' },
      s.write64,
      'copy-on-write Map',
      s.map64,
    ),
    ...SIZES.map((n, i) =>
      paired(
        {
          id: `members-size-${n}`,
          label: `members() of a group of ${n.toLocaleString('en')}`,
          unit: 'ns',
        },
        s.sizes[i]!.ours,
        'slice() of an array that size',
        s.sizes[i]!.base,
      ),
    ),
  ];
  return result(
    'index-read',
    'Shared index: reads from worker threads, same-thread Map baseline',
    opts.quick,
    trials,
    figures,
  );
}
