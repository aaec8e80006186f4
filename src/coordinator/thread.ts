/**
 * The entry of a coordinator thread (`startCluster({ coordinator: 'thread' })`). It builds
 * the Coordinator here, so that joins, leaves and node-downs are applied however busy the
 * cluster's own thread is, and serves the cluster's requests (thread-protocol.ts). The
 * cluster's thread still creates the workers (`cluster.spawn()` returns them) and hands
 * their control ports over in `accept`. With a transport, this thread makes its own from
 * the transport's recipe and peers from here, so heartbeats and relayed frames do not wait
 * on the cluster's thread either.
 */
import { workerData } from 'node:worker_threads';
import { CoordinatorThreadError } from '../core/errors.js';
import { toWire } from '../core/wire-error.js';
import type { Transport, TransportRecipe } from '../peering/transport.js';
import { Coordinator } from './coordinator.js';
import type { Event, Op, Reply, Request, ThreadData } from './thread-protocol.js';

const { port, replies, signal, index, scopes, transport } = workerData as ThreadData;
const post = (m: Event | Reply) => port.postMessage(m);

// A warning raised here (a peer process of another version, say) is for the cluster's
// thread, where the application listens for `process.on('warning')`: it is emitted
// there, and printed there (once), not here.
process.removeAllListeners('warning');
process.on('warning', (w) => post({ ev: 'warning', name: w.name, message: w.message }));

/** The transport the cluster's thread described (cluster.ts, `recipeOf`), made here. */
async function make(recipe: TransportRecipe): Promise<Transport> {
  const module = (await import(recipe.module)) as Record<string, unknown>;
  const factory = module[recipe.factory];
  if (typeof factory !== 'function')
    throw new CoordinatorThreadError(
      `the transport's recipe names ${recipe.factory}, which ${recipe.module} does not export as a function`,
    );
  return (factory as (options: unknown) => Transport)(recipe.options);
}

let coordinator: Coordinator;
try {
  coordinator = new Coordinator(index, transport === undefined ? undefined : await make(transport));
  coordinator.startScope('pg');
  for (const name of scopes) coordinator.startScope(name);
  await coordinator.open();
  post({ ev: 'up' });
} catch (e) {
  post({ ev: 'failed', error: toWire(e) });
  port.close();
  replies.close();
  throw e;
}

function run(m: Op): unknown {
  const c = coordinator;
  switch (m.op) {
    case 'accept': {
      const hook = m.hook;
      c.accept(
        m.port,
        undefined,
        hook === undefined
          ? undefined
          : {
              registered: (id) => post({ ev: 'registered', hook, id }),
              ready: () => post({ ev: 'ready', hook }),
            },
      );
      return;
    }
    case 'nodeDown':
      return c.nodeDown(m.id, m.drain);
    case 'barrier':
      return c.barrier(m.node);
    case 'startScope':
      return c.startScope(m.name, m.index);
    case 'stopScope':
      return c.stopScope(m.name);
    case 'partition':
      return c.partition(m.node, m.scope, m.cut);
    case 'drain':
      return c.drain(m.timeout);
    case 'closePeering':
      return c.closePeering();
    case 'stop':
      c.stop();
      // The last counters, for a `cluster.stats()` after the stop.
      return c.stats();
    case 'scopes':
      return c.scopes();
    case 'nodeIds':
      return c.nodeIds();
    case 'peers':
      return c.peers();
    case 'stats':
      return c.stats();
  }
}

function answer(m: Request, reply: Reply): void {
  if (!m.sync) {
    post(reply);
    return;
  }
  // Posted before the bump: once the waiting thread sees the bump, the reply is readable.
  replies.postMessage(reply);
  Atomics.add(signal, 0, 1);
  Atomics.notify(signal, 0);
}

port.on('message', (m: Request) => {
  let value: unknown;
  try {
    value = run(m);
  } catch (e) {
    if (m.ref !== 0) answer(m, { ref: m.ref, error: toWire(e) });
    return;
  }
  if (m.op === 'stop') {
    answer(m, { ref: m.ref, value });
    // Nothing is left to serve: closing the ports lets this thread end.
    port.close();
    replies.close();
    return;
  }
  if (m.ref === 0) return;
  if (value instanceof Promise) {
    value.then(
      (v: unknown) => answer(m, { ref: m.ref, value: v }),
      (e: unknown) => answer(m, { ref: m.ref, error: toWire(e) }),
    );
  } else answer(m, { ref: m.ref, value });
});
