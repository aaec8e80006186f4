/**
 * One trial of the after-burst benchmark, in an OS process of its own: what it measures
 * lasts as long as the main thread's heap, so a trial cannot share a process with the
 * one before it. Arguments: the path (`Kind`), the tasks per measurement, the depth of
 * the burst. Runs 1,000-deep batches of no-op tasks through the path, then one burst of
 * that depth at once, then the same batches twice more, and prints `{ before, after }`
 * (tasks per second; `after` from the second time) as one JSON line.
 */
import { bare, batches, burst, calls, procgroups, type System, taskUrl } from '../lib/systems.js';

export type Kind = 'call' | 'dispatch' | 'raw';
export interface Trial {
  before: number;
  after: number;
}

async function system(kind: Kind): Promise<System> {
  const task = taskUrl('pool-task');
  if (kind === 'raw') return bare(task, Number.POSITIVE_INFINITY, 'raw MessagePort');
  const pg = await procgroups(task);
  return kind === 'dispatch' ? pg : { ...calls(pg), close: pg.close };
}

const kind = process.argv[2] as Kind;
const total = Number(process.argv[3]);
const deep = Number(process.argv[4]);
const sys = await system(kind);
try {
  // Until the optimizing compiler is done with the path (the first ~100k are slower).
  await batches(sys, 100_000, 1000, null);
  const before = await batches(sys, total, 1000, null);
  await burst(sys, deep, null);
  // The first batches after the burst also pay for its garbage and for recompiling what
  // it deoptimized; this measures what lasts.
  await batches(sys, total, 1000, null);
  const after = await batches(sys, total, 1000, null);
  process.stdout.write(`${JSON.stringify({ before, after } satisfies Trial)}\n`);
} finally {
  await sys.close();
}
