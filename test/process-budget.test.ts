/**
 * The fast path's limit: synchronous handlers run back to back in one job, but once a
 * thread's handlers have run for about a millisecond in the job, the rest of a mailbox
 * waits for the next turn of the event loop, so that the replies so far leave (channels
 * send at the end of a job) and a caller sees its first result after one job, not after
 * the whole batch. Each handler here works for 2 ms of CPU and schedules a callback for
 * the next turn: that callback must run before the next message starts.
 */
import test from 'ava';
import { startCluster } from '../src/index.js';

/** Keeps the CPU busy for `ms` milliseconds (work, not a wait). */
function work(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

test('after a millisecond of handler time, the next message waits for the next turn of the event loop', async (t) => {
  const cluster = await startCluster();
  t.teardown(() => cluster.stop({ timeout: 0 }));
  const log: string[] = [];
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const pid = cluster.node.spawn((i: number) => {
    log.push(`start ${i}`);
    work(2);
    setImmediate(() => {
      log.push(`next turn after ${i}`);
      if (i === 4) done();
    });
  });
  for (let i = 0; i < 5; i++) cluster.node.send(pid, i);
  await finished;
  t.deepEqual(
    log,
    [0, 1, 2, 3, 4].flatMap((i) => [`start ${i}`, `next turn after ${i}`]),
  );
});

test('short handlers still run back to back in one job', async (t) => {
  const cluster = await startCluster();
  t.teardown(() => cluster.stop({ timeout: 0 }));
  // A thread the OS preempts mid-batch can see its millisecond pass: of a few batches,
  // one is enough to show the fast path.
  const together: number[] = [];
  for (let batch = 0; batch < 5 && !together.includes(100); batch++) {
    const log: string[] = [];
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const pid = cluster.node.spawn((i: number) => {
      log.push(`start ${i}`);
      setImmediate(() => {
        log.push(`next turn after ${i}`);
        if (i === 99) done();
      });
    });
    for (let i = 0; i < 100; i++) cluster.node.send(pid, i);
    await finished;
    // How many started before the first callback of the next turn ran.
    together.push(log.indexOf('next turn after 0'));
  }
  t.true(together.includes(100), `messages started in the first job: ${together.join(', ')}`);
});
