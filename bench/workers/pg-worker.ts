/**
 * A node of the pg benchmark, driven by the main thread's commands:
 * - `latency`: join, wait until the watcher saw it, leave, wait until it saw that;
 * - `watch`: spin on reads of the shared index and time how long each join took to show;
 * - `pipelined`: joins and leaves with many in flight; `raw-pipelined`, its baseline: as
 *   many raw messages in flight to an echo on the coordinator's thread;
 * - `fill` / `watch-drop`: a big membership, and the time until node-down removed it;
 * - `stamp-member`: a receiver of broadcasts that stamps their arrival.
 * Times come from `process.hrtime.bigint()`, one clock for every thread of the process.
 */

import { createHistogram } from 'node:perf_hooks';
import { type MessagePort, parentPort } from 'node:worker_threads';
import { connect } from '../../src/index.js';
import { percentiles, pipelined, portPipelined, sequential, serveEcho } from '../lib/pipeline.js';

export type PgCommand =
  | { cmd: 'latency'; samples: number; clock: BigInt64Array; flag: Int32Array }
  | { cmd: 'watch'; samples: number; clock: BigInt64Array; flag: Int32Array }
  | { cmd: 'pipelined'; ms: number; inflight: number }
  | { cmd: 'raw-pipelined'; port?: MessagePort; ms: number; inflight: number }
  | { cmd: 'fill'; groups: number; perGroup: number }
  | { cmd: 'watch-drop'; clock: BigInt64Array; flag: Int32Array }
  | { cmd: 'echo-serve'; port: MessagePort }
  | StampMember
  | { cmd: 'echo-measure'; port?: MessagePort; ms: number }
  | { cmd: 'mon-watch'; samples: number; clock: BigInt64Array; flag: Int32Array }
  | { cmd: 'mon-drive'; samples: number; clock: BigInt64Array; flag: Int32Array };

/**
 * A receiver of the scale benchmark's broadcasts: a process in group `all` or, with a
 * port, a raw listener on it. Each message stamps `stamps[slot]` and counts in `count[0]`.
 */
export interface StampMember {
  cmd: 'stamp-member';
  stamps: BigInt64Array;
  count: Int32Array;
  slot: number;
  port?: MessagePort;
}

// Handshake states in `flag[0]`.
const IDLE = 0;
const ARMED = 1; // the watcher spins, waiting for the join
const JOINING = 2; // the writer stamped the clock and is joining
const SEEN = 3; // the watcher saw the join

const node = await connect();
const port = parentPort!;
const pg = node.pg;
const self = node.self();
const tick = () => new Promise((r) => setImmediate(r));
/** The client end of the raw echo channel, kept across trials. */
let echo: MessagePort | undefined;
/** The client end of the raw channel to the coordinator's thread, kept across trials. */
let toCoordinator: MessagePort | undefined;

async function until(flag: Int32Array, state: number): Promise<void> {
  while (Atomics.load(flag, 0) !== state) await tick();
}

port.on('message', async (m: PgCommand) => {
  switch (m.cmd) {
    case 'latency':
      for (let i = 0; i < m.samples; i++) {
        await until(m.flag, ARMED);
        m.clock[0] = process.hrtime.bigint();
        Atomics.store(m.flag, 0, JOINING);
        await pg.join('latency', self);
        await until(m.flag, SEEN);
        await pg.leave('latency', self);
        Atomics.store(m.flag, 0, IDLE);
      }
      port.postMessage({ type: 'done' });
      break;
    case 'watch': {
      const micros: number[] = [];
      for (let i = 0; i < m.samples; i++) {
        await until(m.flag, IDLE);
        while (pg.count('latency') !== 0) {
          pg.refresh();
          await tick();
        }
        Atomics.store(m.flag, 0, ARMED);
        // Spin: renew the read section on every poll so that the newest version shows at once.
        while (Atomics.load(m.flag, 0) !== JOINING || pg.count('latency') === 0) pg.refresh();
        micros.push(Number(process.hrtime.bigint() - m.clock[0]!) / 1000);
        Atomics.store(m.flag, 0, SEEN);
      }
      port.postMessage({ type: 'watched', micros });
      break;
    }
    case 'pipelined': {
      let i = 0;
      const rate = await pipelined(
        () => (i++ % 2 === 0 ? pg.join('pipe', self) : pg.leave('pipe', self)),
        m.inflight,
        m.ms,
      );
      // Leave whatever is still joined, so that the next trial starts empty.
      for (const p of pg.getLocalMembers('pipe')) await pg.leave('pipe', p);
      port.postMessage({ type: 'piped', rate });
      break;
    }
    case 'raw-pipelined': {
      toCoordinator = m.port ?? toCoordinator;
      const rate = await portPipelined(toCoordinator!, m.inflight, m.ms);
      port.postMessage({ type: 'raw-piped', rate });
      break;
    }
    case 'fill': {
      const pids = Array.from({ length: m.perGroup }, () => node.spawn(() => null));
      for (let g = 0; g < m.groups; g++) await pg.join(`drop-${g}`, pids);
      port.postMessage({ type: 'filled' });
      break;
    }
    case 'stamp-member': {
      const { stamps, count, slot } = m;
      const stamp = () => {
        stamps[slot] = process.hrtime.bigint();
        Atomics.add(count, 0, 1);
      };
      if (m.port !== undefined) m.port.on('message', stamp);
      else await pg.join('all', node.spawn(stamp));
      port.postMessage({ type: 'member' });
      break;
    }
    case 'echo-serve':
      serveEcho(m.port);
      port.postMessage({ type: 'serving' });
      break;
    case 'echo-measure': {
      echo = m.port ?? echo;
      const p = echo!;
      const once = () =>
        new Promise<void>((resolve) => {
          p.once('message', () => resolve());
          p.postMessage(null);
        });
      port.postMessage({ type: 'echoed', ...(await sequential(once, m.ms)) });
      break;
    }
    case 'mon-watch': {
      // A group monitor; each join event is timed from the stamp the driver took just
      // before its join call.
      const h = createHistogram();
      let seen = 0;
      const sub = await pg.monitor('mon', {
        onEvent: (e) => {
          if (e.kind !== 'join') return;
          h.record(Math.max(1, Number(process.hrtime.bigint() - m.clock[0]!)));
          Atomics.store(m.flag, 0, SEEN);
          if (++seen === m.samples) {
            void pg
              .demonitor(sub.ref)
              .then(() => port.postMessage({ type: 'mon-watched', percentiles: percentiles(h) }));
          }
        },
      });
      port.postMessage({ type: 'mon-ready' });
      break;
    }
    case 'mon-drive':
      for (let i = 0; i < m.samples; i++) {
        Atomics.store(m.flag, 0, JOINING);
        m.clock[0] = process.hrtime.bigint();
        await pg.join('mon', self);
        await until(m.flag, SEEN);
        await pg.leave('mon', self);
      }
      port.postMessage({ type: 'done' });
      break;
    case 'watch-drop':
      Atomics.store(m.flag, 0, ARMED);
      while (pg.count('drop-0') === 0) pg.refresh();
      port.postMessage({ type: 'armed' });
      while (pg.count('drop-0') > 0) pg.refresh();
      m.clock[1] = process.hrtime.bigint();
      port.postMessage({ type: 'dropped' });
      break;
  }
});
port.postMessage({ type: 'ready' });
