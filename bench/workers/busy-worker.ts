/**
 * A node of the busy-main benchmark, driven by the main thread's commands while the main
 * thread runs its own work in synchronous chunks (so everything here that waits on the
 * coordinator shows whether the coordinator waits on the main thread):
 * - `joins`: `n` sequential joins of this node's root process, each timed from the call
 *   to its ack; answers `joined` with the percentiles (µs) and sets `done[0]`;
 * - `victim`: joins `perVictim` memberships to `gone-<slot>`, then waits (without
 *   blocking) for `go[slot]` and ends its thread at once, stamping `ended[slot]` in its
 *   last `exit` handler;
 * - `watch-downs`: for each victim slot in turn, sets `go[slot]`, reads `gone-<slot>`
 *   until it is empty, and records the time since `ended[slot]` (none when the members
 *   were gone before it was stamped); answers `downs` with the percentiles (µs) and sets
 *   `done[0]`.
 */
import { createHistogram } from 'node:perf_hooks';
import { parentPort } from 'node:worker_threads';
import { connect } from '../../src/index.js';
import { percentiles } from '../lib/pipeline.js';

export type BusyCommand =
  | { cmd: 'joins'; n: number; done: Int32Array }
  | { cmd: 'victim'; slot: number; perVictim: number; go: Int32Array; ended: BigInt64Array }
  | { cmd: 'watch-downs'; slots: number; go: Int32Array; ended: BigInt64Array; done: Int32Array };

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
  for (let i = 0; i < n; i++) void node.pg.leave(`j${i}`, self);
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
  // The last moment this thread runs code: what follows is Node tearing it down.
  process.once('exit', () => Atomics.store(ended, slot, process.hrtime.bigint()));
  process.exit(0);
}

async function watchDowns(
  slots: number,
  go: Int32Array,
  ended: BigInt64Array,
  done: Int32Array,
): Promise<void> {
  const h = createHistogram();
  for (let slot = 0; slot < slots; slot++) {
    const group = `gone-${slot}`;
    Atomics.store(go, slot, 1);
    Atomics.notify(go, slot);
    // A read per turn of the event loop. (Not asleep in Atomics.wait between reads: a
    // thread blocked there holds up the teardown of the ending worker by 100+ ms.)
    while (node.pg.count(group) > 0) await tick();
    // Gone before the victim's last `exit` handler ran (its node says bye from an earlier
    // one): no time at all after it ended.
    const end = Atomics.load(ended, slot);
    h.record(end === 0n ? 1 : Math.max(1, Number(process.hrtime.bigint() - end)));
  }
  finish(done);
  port.postMessage({ type: 'downs', percentiles: percentiles(h) });
}

const tick = () => new Promise((r) => setImmediate(r));

port.on('message', (m: BusyCommand) => {
  switch (m.cmd) {
    case 'joins':
      void joins(m.n, m.done);
      break;
    case 'victim':
      void victim(m.slot, m.perVictim, m.go, m.ended);
      break;
    case 'watch-downs':
      void watchDowns(m.slots, m.go, m.ended, m.done);
      break;
  }
});
port.postMessage({ type: 'ready' });
