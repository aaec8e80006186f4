/**
 * Node's own floor for the busy-main node-down figure: bare worker threads, no
 * procgroups. A victim's `exit` handler posts its slot to a relay thread (the
 * coordinator's part), which posts it to a reader thread (the reader's part): the same
 * two hops between threads as a node going down, with nothing else done on them.
 * - `victim`: waits (without blocking) for `go[slot]`, stamps `ended[slot]` and calls
 *   `process.exit()`;
 * - `relay`: forwards what arrives on each port the main thread hands it to `out`;
 * - `reader`: on `start`, for each slot in turn, waits until the previous victim's
 *   thread is gone (`gone`, set by the main thread), sets `go[slot]`, and records the
 *   time from `ended[slot]` until the slot arrives; answers `downs` with the percentiles
 *   and every sample (µs) and sets `done[0]`.
 */
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { DownTimes } from '../lib/pipeline.js';

export type BareExitData =
  | { role: 'victim'; slot: number; go: Int32Array; ended: BigInt64Array; port: MessagePort }
  | { role: 'relay'; out: MessagePort }
  | {
      role: 'reader';
      slots: number;
      inp: MessagePort;
      go: Int32Array;
      ended: BigInt64Array;
      gone: Int32Array;
      done: Int32Array;
    };

const port = parentPort!;
const data = workerData as BareExitData;

const release = (cell: Int32Array, i: number) => {
  Atomics.store(cell, i, 1);
  Atomics.notify(cell, i);
};

async function until(cell: Int32Array, i: number): Promise<void> {
  const w = Atomics.waitAsync(cell, i, 0);
  if (w.async) await w.value;
}

switch (data.role) {
  case 'victim': {
    const { slot, go, ended, port: out } = data;
    process.once('exit', () => out.postMessage(slot));
    port.on('message', () => {}); // stays alive until told to go
    port.postMessage({ type: 'armed' });
    await until(go, slot);
    Atomics.store(ended, slot, process.hrtime.bigint());
    process.exit(0);
    break;
  }
  case 'relay': {
    const { out } = data;
    port.on('message', (m: { port: MessagePort }) =>
      m.port.on('message', (slot: number) => out.postMessage(slot)),
    );
    port.postMessage({ type: 'ready' });
    break;
  }
  case 'reader': {
    const { slots, inp, go, ended, gone, done } = data;
    const arrivals: ((slot: number) => void)[] = [];
    inp.on('message', (slot: number) => arrivals.shift()?.(slot));
    port.once('message', async () => {
      const downs = new DownTimes();
      for (let slot = 0; slot < slots; slot++) {
        if (slot > 0) await until(gone, slot - 1);
        const arrived = new Promise<number>((r) => arrivals.push(r));
        release(go, slot);
        downs.record(Atomics.load(ended, await arrived));
      }
      inp.close();
      release(done, 0);
      port.postMessage(downs.report());
    });
    port.postMessage({ type: 'ready' });
    break;
  }
}
