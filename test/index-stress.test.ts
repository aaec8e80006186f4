/**
 * Concurrency stress test of the shared index: one writer thread, two reader threads,
 * real SharedArrayBuffer, nothing mocked. The invariant is described in
 * test/support/stress.ts. The negative control runs the same readers against a writer
 * that publishes the two halves of each change separately, to show that the checker
 * does catch torn updates.
 */
import test, { type ExecutionContext } from 'ava';
import type { IndexHandle } from '../src/index.js';
import type { ReaderData } from './fixtures/stress-reader.js';
import type { WriterData, WriterDone } from './fixtures/stress-writer.js';
import { C_WORDS, K, type ReaderReport } from './support/stress.js';
import { nextMessage, startWorker, type Tagged } from './support/workers.js';

const READERS = 2;

interface Run {
  writer: WriterDone;
  readers: (ReaderReport & { chunks: number })[];
}

async function stress(
  t: ExecutionContext,
  mode: WriterData['mode'],
  ops: number,
  minReads: number,
): Promise<Run> {
  const control = new Int32Array(new SharedArrayBuffer(C_WORDS * 4));
  const finals = new Int32Array(new SharedArrayBuffer(K * 4));
  const writerData: WriterData = { mode, ops, seed: 0x5eed, control, finals };
  const writer = startWorker(t, 'stress-writer', writerData);
  const { handle } = await nextMessage<Tagged & { handle: IndexHandle }>(writer, 'ready');
  const readers = Array.from({ length: READERS }, (_, reader) => {
    const readerData: ReaderData = { handle, control, finals, reader, minReads, seed: 1 + reader };
    return startWorker(t, 'stress-reader', readerData);
  });
  await Promise.all(readers.map((r) => nextMessage(r, 'ready')));
  const reports = readers.map((r) => nextMessage<ReaderReport & { chunks: number }>(r, 'report'));
  const done = nextMessage<WriterDone>(writer, 'done');
  writer.postMessage({ type: 'go' });
  const [w, ...rs] = await Promise.all([done, ...reports]);
  return { writer: w, readers: rs };
}

function logRun(t: ExecutionContext, run: Run): void {
  const { writer } = run;
  t.log(
    `writer: ${writer.ops} operations, ${writer.publishes} versions, moves ${JSON.stringify(writer.kinds)}, ` +
      `${(writer.stats.usedBytes / 1024).toFixed(0)} KiB used, hash seed ${writer.hashSeed}`,
  );
  for (const r of run.readers) {
    t.log(
      `reader ${r.reader}: ${r.reads} reads (${r.readsDuringWrites} while the writer wrote), ` +
        `${r.violations} violations, ${r.versionsSeen} versions seen, ${r.chunks} jobs`,
    );
    for (const s of r.samples) t.log(`  ${s}`);
  }
  const reads = run.readers.reduce((n, r) => n + r.reads, 0);
  const violations = run.readers.reduce((n, r) => n + r.violations, 0);
  t.log(`total: ${reads} reads, ${violations} violations`);
}

test.serial(
  'two reader threads never see a torn or stale-going-back version while a writer thread churns',
  async (t) => {
    const run = await stress(t, 'batch', 40_000, 1_000_000);
    logRun(t, run);
    t.deepEqual(run.writer.selfErrors, [], 'the writer’s own results and view');
    const reads = run.readers.reduce((n, r) => n + r.reads, 0);
    t.true(reads >= 2_000_000, `${reads} reads`);
    for (const r of run.readers) {
      t.is(r.violations, 0, `reader ${r.reader}: ${r.samples.join('; ')}`);
      t.true(r.finalOk, `reader ${r.reader} sees the final version of every group`);
      t.true(r.readsDuringWrites > 0, `reader ${r.reader} read while the writer wrote`);
      t.true(r.versionsSeen > K, `reader ${r.reader} saw progress (${r.versionsSeen} versions)`);
    }
    for (const kind of Object.keys(run.writer.kinds)) t.true(run.writer.kinds[kind]! > 0, kind);
  },
);

test.serial(
  'negative control: the same checker catches a writer that publishes leave and join separately',
  async (t) => {
    const run = await stress(t, 'split', 5_000_000, 0);
    logRun(t, run);
    const violations = run.readers.reduce((n, r) => n + r.violations, 0);
    t.true(violations > 0, 'the readers noticed torn updates');
    t.true(run.writer.ops < 5_000_000, `the writer stopped early, after ${run.writer.ops} moves`);
    t.deepEqual(run.writer.selfErrors, []);
  },
);
