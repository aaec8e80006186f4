/**
 * pg over the cluster: how fast a join shows on another thread, how many joins and
 * leaves one worker can pipeline, and how soon a dead node's members are gone.
 *
 * - visibility: a join on worker A until a reader on worker B sees it, against a raw
 *   MessagePort round trip between the same two workers;
 * - pipelined join + leave from one worker, 1,000 in flight, against 1,000 raw messages
 *   in flight between the same worker and an echo on the coordinator's thread;
 * - node down: from the coordinator seeing a worker's exit to a reader on another
 *   worker seeing its members gone (100 groups × 100 members).
 */
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { type Cluster, startCluster } from '../src/index.js';
import type { BenchOptions } from './lib/report.js';
import { joinVisibleMicros, nodeDownMs } from './lib/cluster-timing.js';
import { paired, result, single } from './lib/report.js';
import { serveEcho } from './lib/pipeline.js';
import { next } from './lib/threads.js';
import type { PgCommand } from './workers/pg-worker.js';

const workerUrl = new URL('./workers/pg-worker.js', import.meta.url);
/** Target of join + leave against the raw pipeline (how it was chosen: bench/README.md). */
const JOIN_LEAVE_VS_RAW = 0.15;

async function spawn(cluster: Cluster): Promise<Worker> {
  const w = await cluster.spawn(workerUrl, { ready: 'connected' });
  await next(w.worker, 'ready');
  return w.worker;
}

function send(w: Worker, c: PgCommand, transfer?: MessagePort[]): void {
  w.postMessage(c, transfer);
}

export async function pg(opts: BenchOptions) {
  const trials = opts.quick ? 3 : 7;
  const samples = opts.quick ? 50 : 200;
  const ms = opts.quick ? 150 : 500;
  const steps = trials * 3;
  let step = 0;
  const tick = (what: string) => opts.progress(++step, steps, what);
  const cluster = await startCluster();
  const s = {
    visible: [] as number[],
    rtt: [] as number[],
    piped: [] as number[],
    rawPiped: [] as number[],
    drop: [] as number[],
  };
  try {
    const a = await spawn(cluster);
    const b = await spawn(cluster);
    const echo = new MessageChannel();
    const serving = next(b, 'serving');
    send(b, { cmd: 'echo-serve', port: echo.port1 }, [echo.port1]);
    await serving;
    let echoPort: MessagePort | undefined = echo.port2;
    // A raw echo on this thread, the coordinator's: the path a join takes, with nothing on it.
    const toMain = new MessageChannel();
    serveEcho(toMain.port1);
    let rawPort: MessagePort | undefined = toMain.port2;
    for (let t = 0; t < trials; t++) {
      // Raw round trip between the same two workers, then join visibility.
      const echoed = next<{ type: string; median: number }>(a, 'echoed');
      if (echoPort !== undefined) {
        send(a, { cmd: 'echo-measure', port: echoPort, ms }, [echoPort]);
        echoPort = undefined;
      } else {
        send(a, { cmd: 'echo-measure', ms });
      }
      s.rtt.push((await echoed).median);
      s.visible.push(await joinVisibleMicros(a, b, samples));
      tick('join visibility');

      // Pipelined join + leave, and raw messages to the coordinator's thread, in turn.
      for (const raw of t % 2 === 0 ? [false, true] : [true, false]) {
        if (raw) {
          const piped = next<{ type: string; rate: number }>(a, 'raw-piped');
          if (rawPort !== undefined) {
            send(a, { cmd: 'raw-pipelined', port: rawPort, ms, inflight: 1000 }, [rawPort]);
            rawPort = undefined;
          } else {
            send(a, { cmd: 'raw-pipelined', ms, inflight: 1000 });
          }
          s.rawPiped.push((await piped).rate);
        } else {
          const piped = next<{ type: string; rate: number }>(a, 'piped');
          send(a, { cmd: 'pipelined', ms, inflight: 1000 });
          s.piped.push((await piped).rate);
        }
      }
      tick('pipelined join + leave');

      // Node down: a fresh worker with 10,000 memberships, a watcher on another worker.
      s.drop.push(await nodeDownMs(cluster, await spawn(cluster), b));
      tick('node down');
    }
  } finally {
    await cluster.stop();
  }
  const figures = [
    paired(
      {
        id: 'join-visible-vs-rtt',
        label: 'join on A seen by a reader on B, median',
        unit: 'µs',
        target: { on: 'ratio', op: '<=', limit: 2 },
      },
      s.visible,
      'raw MessagePort round trip A↔B',
      s.rtt,
    ),
    paired(
      {
        id: 'join-leave-pipelined',
        label: 'join + leave from one worker, 1,000 in flight',
        unit: 'ops/s',
        target: { on: 'ratio', op: '>=', limit: JOIN_LEAVE_VS_RAW },
        note: 'the baseline: 1,000 raw messages in flight from the same worker to an echo on the coordinator thread',
      },
      s.piped,
      'raw MessagePort, worker ↔ coordinator thread',
      s.rawPiped,
    ),
    single(
      {
        id: 'node-down-visible',
        label: 'node down: exit seen → members gone for a reader',
        unit: 'ms',
        target: { on: 'value', op: '<=', limit: 5 },
        note: '100 groups × 100 members of the dead node',
      },
      s.drop,
    ),
  ];
  return result(
    'pg',
    'pg over the cluster: visibility, write throughput, node down',
    opts.quick,
    trials,
    figures,
  );
}
