/**
 * pg over the cluster: how fast a join shows on another thread, how many joins and
 * leaves one worker can pipeline, and how soon a dead node's members are gone.
 *
 * - visibility: a join on worker A until a reader on worker B sees it, against a raw
 *   MessagePort round trip between the same two workers;
 * - pipelined join + leave from one worker, 1,000 in flight;
 * - node down: from the coordinator seeing a worker's exit to a reader on another
 *   worker seeing its members gone (100 groups × 100 members).
 */
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { type Cluster, startCluster } from '../src/index.js';
import { spread } from './lib/measure.js';
import type { BenchOptions } from './lib/report.js';
import { paired, result, single } from './lib/report.js';
import { next } from './lib/threads.js';
import type { PgCommand } from './workers/pg-worker.js';
import { coordinatorOf } from '../src/coordinator/cluster.js';

const workerUrl = new URL('./workers/pg-worker.js', import.meta.url);

async function spawn(cluster: Cluster): Promise<Worker> {
  const w = await cluster.spawn(workerUrl);
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
      const clock = new BigInt64Array(new SharedArrayBuffer(16));
      const flag = new Int32Array(new SharedArrayBuffer(4));
      const watched = next<{ type: string; micros: number[] }>(b, 'watched');
      send(b, { cmd: 'watch', samples, clock, flag });
      send(a, { cmd: 'latency', samples, clock, flag });
      s.visible.push(spread((await watched).micros).median);
      await next(a, 'done');
      tick('join visibility');

      const piped = next<{ type: string; rate: number }>(a, 'piped');
      send(a, { cmd: 'pipelined', ms, inflight: 1000 });
      s.piped.push((await piped).rate);
      tick('pipelined join + leave');

      // Node down: a fresh worker with 10,000 memberships, a watcher on another worker.
      const x = await spawn(cluster);
      const filled = next(x, 'filled');
      send(x, { cmd: 'fill', groups: 100, perGroup: 100 });
      await filled;
      const armed = next(b, 'armed');
      const dropped = next(b, 'dropped');
      send(b, { cmd: 'watch-drop', clock, flag });
      await armed;
      const coordinator = coordinatorOf(cluster);
      const nodeDown = coordinator.nodeDown.bind(coordinator);
      coordinator.nodeDown = (id: number) => {
        if (clock[0] === 0n || Atomics.load(flag, 0) !== 9) {
          clock[0] = process.hrtime.bigint();
          Atomics.store(flag, 0, 9);
        }
        nodeDown(id);
      };
      clock[0] = 0n;
      await x.terminate();
      await dropped;
      coordinator.nodeDown = nodeDown;
      s.drop.push(Number(clock[1]! - clock[0]!) / 1e6);
      Atomics.store(flag, 0, 0);
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
    single(
      {
        id: 'join-leave-pipelined',
        label: 'join + leave from one worker, 1,000 in flight',
        unit: 'ops/s',
        target: { on: 'value', op: '>=', limit: 200_000 },
      },
      s.piped,
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
