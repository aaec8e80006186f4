/**
 * A node of the busy-main benchmark, driven by the main thread's commands while the main
 * thread runs its own work in synchronous chunks (so everything here that waits on the
 * coordinator shows whether the coordinator waits on the main thread):
 * - `joins`: `n` sequential joins of this node's root process, each timed from the call
 *   to its ack; answers `joined` with the percentiles (µs) and sets `done[0]`;
 * - `victim`: joins `perVictim` memberships to `gone-<slot>`, then waits (without
 *   blocking) for `go[slot]`, stamps `ended[slot]` and calls `process.exit()`;
 * - `watch-downs`: for each victim slot in turn, waits until the previous victim's
 *   thread is gone (`gone`, set by the main thread on the worker's `exit`), monitors
 *   `gone-<slot>`, sets `go[slot]`, reads the group after each event until it is empty,
 *   and records the time since `ended[slot]`; answers `downs` with the percentiles and
 *   every sample (µs), and sets `done[0]`.
 */
import { createHistogram } from 'node:perf_hooks';
import { parentPort } from 'node:worker_threads';
import { connect } from '../../src/index.js';
import { DownTimes, percentiles } from '../lib/pipeline.js';

export type BusyCommand =
  | { cmd: 'joins'; n: number; done: Int32Array }
  | { cmd: 'victim'; slot: number; perVictim: number; go: Int32Array; ended: BigInt64Array }
  | {
      cmd: 'watch-downs';
      slots: number;
      go: Int32Array;
      ended: BigInt64Array;
      gone: Int32Array;
      done: Int32Array;
    };

const node = await connect({ name: 'busy-worker' });
const port = parentPort!;

const finish = (done: Int32Array) => {
  Atomics.store(done, 0, 1);
  Atomics.notify(done, 0);
};

async function joins(n: number, done: Int32Array): Promise<void> {
  const self = node.self();
  const h = createHistogram();
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await node.pg.join(`j${i}`, self);
    h.record(Math.max(1, Number(process.hrtime.bigint() - t)));
  }
  // Cleaned up before the next phase starts: 2,000 leaves still in flight at the
  // coordinator held up the first node-down of every trial (9 to 48 ms, traced).
  const leaves: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) leaves.push(node.pg.leave(`j${i}`, self));
  await Promise.all(leaves);
  finish(done);
  port.postMessage({ type: 'joined', percentiles: percentiles(h) });
}

async function victim(
  slot: number,
  perVictim: number,
  go: Int32Array,
  ended: BigInt64Array,
): Promise<void> {
  const pids = Array.from({ length: perVictim }, () => node.spawn(() => {}));
  await node.pg.join(`gone-${slot}`, pids);
  port.postMessage({ type: 'armed' });
  const w = Atomics.waitAsync(go, slot, 0);
  if (w.async) await w.value;
  // The worker ends now: what follows is its `exit` handlers (the node's among them)
  // and Node tearing the thread down.
  Atomics.store(ended, slot, process.hrtime.bigint());
  process.exit(0);
}

async function watchDowns(
  slots: number,
  go: Int32Array,
  ended: BigInt64Array,
  gone: Int32Array,
  done: Int32Array,
): Promise<void> {
  const downs = new DownTimes();
  for (let slot = 0; slot < slots; slot++) {
    const group = `gone-${slot}`;
    // One worker ending at a time: the previous one's teardown (2 to 5 ms of CPU) would
    // otherwise overlap this one on a machine of two cores, a burst of deaths rather than
    // a worker ending.
    if (slot > 0) {
      const w = Atomics.waitAsync(gone, slot - 1, 0);
      if (w.async) await w.value;
    }
    // Asleep in the event loop until the coordinator says the group changed, as a user
    // would wait. (This reader used to poll `count` once per turn: a thread spinning like
    // that holds one of the machine's two cores, and the figure measured its own load.)
    const m = await node.pg.monitor(group);
    const events = m.events[Symbol.asyncIterator]();
    Atomics.store(go, slot, 1);
    Atomics.notify(go, slot);
    // The members are gone for a reader when the index read on this thread says so: a
    // monitor event only says when to look again.
    while (node.pg.count(group) > 0) await events.next();
    // Stamped before the victim's exit, so always set by now.
    downs.record(Atomics.load(ended, slot));
    await node.pg.demonitor(m);
  }
  finish(done);
  port.postMessage(downs.report());
}

port.on('message', (m: BusyCommand) => {
  switch (m.cmd) {
    case 'joins':
      void joins(m.n, m.done);
      break;
    case 'victim':
      void victim(m.slot, m.perVictim, m.go, m.ended);
      break;
    case 'watch-downs':
      void watchDowns(m.slots, m.go, m.ended, m.gone, m.done);
      break;
  }
});
port.postMessage({ type: 'ready' });
