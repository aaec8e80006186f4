/**
 * A node of the services benchmark. The server serves the same no-op three ways: a
 * typed service (`node.serve`), a process with a hand-written `[op, ...args]` switch
 * joined to a group (what a user writes without services), and a comlink-exposed
 * object on a raw MessagePort. The client measures all three against it, in the same
 * run, on the same two threads.
 */
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import * as Comlink from 'comlink/dist/esm/comlink.mjs';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { connect } from '../../src/index.js';
import { type Percentiles, pipelined, sequential } from '../lib/pipeline.js';

export type ServiceCase =
  | 'typed-pipelined'
  | 'dispatch-pipelined'
  | 'comlink-pipelined'
  | 'typed-seq'
  | 'dispatch-seq'
  | 'comlink-seq';

export interface Noop {
  noop(): null;
}

const node = await connect();
const port = parentPort!;

if ((workerData as { role: string }).role === 'server') {
  await node.serve<Noop>('typed', { noop: () => null });
  // The same work behind a hand-written protocol: the message names the operation.
  const plain = node.spawn((m: unknown[]) => {
    switch (m[0]) {
      case 'noop':
        return null;
      default:
        throw new TypeError(`unknown op ${String(m[0])}`);
    }
  });
  await node.pg.join('plain', plain);
  port.once('message', (m: { comlink: MessagePort }) => {
    Comlink.expose({ noop: () => null }, nodeEndpoint(m.comlink));
    port.postMessage({ type: 'ready' });
  });
} else {
  const pg = node.pg;
  const api = pg.service<Noop>('typed');
  let remote!: Comlink.Remote<Noop>;
  port.on(
    'message',
    async (
      m:
        | { cmd: 'setup'; comlink: MessagePort }
        | { cmd: 'run'; cases: ServiceCase[]; ms: number; inflight: number },
    ) => {
      if (m.cmd === 'setup') {
        remote = Comlink.wrap<Noop>(nodeEndpoint(m.comlink));
        port.postMessage({ type: 'ready' });
        return;
      }
      const { cases, ms, inflight } = m;
      const values: number[] = [];
      const dists: Partial<Record<ServiceCase, Percentiles>> = {};
      const typed = () => api.noop();
      const plain = () => pg.dispatch('plain', ['noop']);
      const comlink = () => remote.noop();
      const seq = async (c: ServiceCase, issue: () => Promise<unknown>) => {
        const p = await sequential(issue, ms);
        dists[c] = p;
        return p.median;
      };
      for (const c of cases) {
        switch (c) {
          case 'typed-pipelined':
            values.push(await pipelined(typed, inflight, ms));
            break;
          case 'dispatch-pipelined':
            values.push(await pipelined(plain, inflight, ms));
            break;
          case 'comlink-pipelined':
            values.push(await pipelined(comlink, inflight, ms));
            break;
          case 'typed-seq':
            values.push(await seq(c, typed));
            break;
          case 'dispatch-seq':
            values.push(await seq(c, plain));
            break;
          case 'comlink-seq':
            values.push(await seq(c, comlink));
            break;
        }
      }
      port.postMessage({ type: 'measured', values, dists });
    },
  );
  port.postMessage({ type: 'started' });
}
