/**
 * A node of the call benchmark. The server answers three ways (a procgroups process,
 * a raw MessagePort echo, a comlink-exposed object); the client measures all three
 * against it, in the same run, on the same two threads.
 */
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import * as Comlink from 'comlink/dist/esm/comlink.mjs';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { connect, type Pid } from '../../src/index.js';
import {
  type Percentiles,
  pipelined,
  portPipelined,
  sequential,
  serveEcho,
} from '../lib/pipeline.js';

export type CallCase =
  'pg-pipelined' | 'raw-pipelined' | 'comlink-pipelined' | 'pg-seq' | 'raw-seq' | 'comlink-seq';

export interface RunCommand {
  cmd: 'run';
  cases: CallCase[];
  ms: number;
  inflight: number;
}

interface SetupCommand {
  cmd: 'setup';
  pid: Pid;
  raw: MessagePort;
  comlink: MessagePort;
}

const node = await connect();
const port = parentPort!;

if ((workerData as { role: string }).role === 'server') {
  const noop = node.spawn(() => null);
  port.once('message', (m: { raw: MessagePort; comlink: MessagePort }) => {
    serveEcho(m.raw);
    Comlink.expose({ noop: () => null }, nodeEndpoint(m.comlink));
    port.postMessage({ type: 'ready', pid: noop });
  });
} else {
  let pid = 0 as Pid;
  let raw!: MessagePort;
  let api!: { noop(): Promise<null> };
  const rawOnce = () =>
    new Promise<void>((resolve) => {
      raw.once('message', () => resolve());
      raw.postMessage(null);
    });
  port.on('message', async (m: SetupCommand | RunCommand) => {
    if (m.cmd === 'setup') {
      pid = m.pid;
      raw = m.raw;
      api = Comlink.wrap(nodeEndpoint(m.comlink)) as unknown as { noop(): Promise<null> };
      port.postMessage({ type: 'ready' });
      return;
    }
    const { cases, ms, inflight } = m;
    const values: number[] = [];
    const dists: Partial<Record<CallCase, Percentiles>> = {};
    const seq = async (c: CallCase, issue: () => Promise<unknown>) => {
      const p = await sequential(issue, ms);
      dists[c] = p;
      return p.median;
    };
    for (const c of cases) {
      switch (c) {
        case 'pg-pipelined':
          values.push(await pipelined(() => node.call(pid, null), inflight, ms));
          break;
        case 'comlink-pipelined':
          values.push(await pipelined(() => api.noop(), inflight, ms));
          break;
        case 'raw-pipelined':
          values.push(await portPipelined(raw, inflight, ms));
          break;
        case 'pg-seq':
          values.push(await seq(c, () => node.call(pid, null)));
          break;
        case 'comlink-seq':
          values.push(await seq(c, () => api.noop()));
          break;
        case 'raw-seq':
          values.push(await seq(c, rawOnce));
          break;
      }
    }
    port.postMessage({ type: 'measured', values, dists });
  });
  port.postMessage({ type: 'started' });
}
