/**
 * Membership changes timed across threads, as the pg and scale benchmarks do it; the
 * nodes run bench/workers/pg-worker.ts. Times come from `process.hrtime.bigint()`, one
 * clock for every thread of the process.
 */
import type { Worker } from 'node:worker_threads';
import type { Cluster } from '../../src/index.js';
import { coordinatorOf } from '../../src/coordinator/cluster.js';
import { spread } from './measure.js';
import { next } from './threads.js';

/** A join on `a` until a reader spinning on `b` sees it, `samples` times: the median, in µs. */
export async function joinVisibleMicros(a: Worker, b: Worker, samples: number): Promise<number> {
  const clock = new BigInt64Array(new SharedArrayBuffer(16));
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const watched = next<{ type: string; micros: number[] }>(b, 'watched');
  const done = next(a, 'done');
  b.postMessage({ cmd: 'watch', samples, clock, flag });
  a.postMessage({ cmd: 'latency', samples, clock, flag });
  const { micros } = await watched;
  await done;
  return spread(micros).median;
}

/** The flag value that says the clock holds the start; the watcher uses 0–3. */
const STAMPED = 9;

/**
 * Node down: from the coordinator starting to drop a node (it saw the worker's exit or
 * its port close) to a reader on another node seeing that node's members gone.
 * Fills `victim` with `groups` × `perGroup` memberships, arms a watcher on `watcher`,
 * ends `victim`, and returns the milliseconds from the first `nodeDown` call to the
 * watcher's last read that still saw a member.
 */
export async function nodeDownMs(
  cluster: Cluster,
  victim: Worker,
  watcher: Worker,
  groups = 100,
  perGroup = 100,
): Promise<number> {
  const clock = new BigInt64Array(new SharedArrayBuffer(16));
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const filled = next(victim, 'filled');
  victim.postMessage({ cmd: 'fill', groups, perGroup });
  await filled;
  const armed = next(watcher, 'armed');
  const dropped = next(watcher, 'dropped');
  watcher.postMessage({ cmd: 'watch-drop', clock, flag });
  await armed;
  // The start is stamped inside the coordinator, so that the worker's own shutdown time
  // is not counted: the port's close and the worker's exit may each call nodeDown
  // first, and only the first counts.
  const coordinator = coordinatorOf(cluster);
  const nodeDown = coordinator.nodeDown.bind(coordinator);
  coordinator.nodeDown = (id: number, drain?: boolean) => {
    if (Atomics.load(flag, 0) !== STAMPED) {
      clock[0] = process.hrtime.bigint();
      Atomics.store(flag, 0, STAMPED);
    }
    nodeDown(id, drain);
  };
  try {
    await victim.terminate();
    await dropped;
  } finally {
    coordinator.nodeDown = nodeDown;
  }
  return Number(clock[1]! - clock[0]!) / 1e6;
}
