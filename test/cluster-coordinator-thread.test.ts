/**
 * `startCluster({ coordinator: 'thread' })`: the coordinator in a thread of its own.
 * Writes of other nodes (joins, a node-down) complete while the main thread is blocked
 * in a synchronous loop; the loop ends only on a SharedArrayBuffer flag that a worker
 * sets once it saw its writes done, so the tests prove progress without timing (with
 * the coordinator on the main thread, those loops could never end: nothing would ack).
 */
import type { Worker } from 'node:worker_threads';
import test from 'ava';
import {
  CoordinatorThreadError,
  NotConnectedError,
  type Transport,
  TransportError,
  startCluster,
} from '../src/index.js';
import { coordinatorOf } from '../src/coordinator/cluster.js';
import { natsTransport } from '../src/nats/index.js';
import { spawnAgent, start } from './support/cluster.js';
import { fixture, nextMessage } from './support/workers.js';

const PEER = fixture('busy-main-peer');

/** A generous cap so that a broken build fails instead of spinning for ever. */
const CAP_MS = 60_000;

/** Blocks this thread until `flag[0]` is 1; false if the cap passed first. */
function blockUntil(flag: Int32Array): boolean {
  return Atomics.wait(flag, 0, 0, CAP_MS) !== 'timed-out';
}

/** A busy loop rather than a wait: the main thread running its own code. */
function spinUntil(flag: Int32Array): boolean {
  const end = Date.now() + CAP_MS;
  while (Atomics.load(flag, 0) === 0) if (Date.now() > end) return false;
  return true;
}

async function peer(cluster: Awaited<ReturnType<typeof startCluster>>): Promise<Worker> {
  const w = await cluster.spawn(PEER, { ready: 'connected' });
  await nextMessage(w.worker, 'listening');
  return w.worker;
}

const newFlag = () => new Int32Array(new SharedArrayBuffer(4));

test("a worker's joins are acked while the main thread spins", async (t) => {
  const cluster = await start(t, { coordinator: 'thread' });
  const w = await peer(cluster);
  const flag = newFlag();
  w.postMessage({ cmd: 'join', flag, n: 200 });
  t.true(spinUntil(flag), 'the joins were acked while main was busy');
  // And main sees them once it is free.
  await cluster.node.pg.waitForMembers('g', { count: 200 });
  t.is(cluster.node.pg.getMembers('g').length, 200);
});

test("a dead worker's members are gone for a reader while the main thread is blocked", async (t) => {
  const cluster = await start(t, { coordinator: 'thread' });
  const victim = await peer(cluster);
  const watcher = await peer(cluster);
  const flag = newFlag();
  const joined = newFlag();
  watcher.postMessage({ cmd: 'watch-gone', flag, joined });
  victim.postMessage({ cmd: 'join-and-exit', joined });
  // Main never turns its event loop here: it cannot see the worker's exit, so the
  // coordinator thread dropped the node on its own (its control port closed).
  t.true(blockUntil(flag), 'the node went down while main was blocked');
  t.deepEqual(cluster.node.pg.getMembers('gone'), []);
});

test('the public API works with a coordinator thread; main is node 0', async (t) => {
  const cluster = await start(t, { coordinator: 'thread', scopes: ['extra'] });
  t.is(cluster.node.id, 0);
  const a = await spawnAgent(cluster);
  t.deepEqual(cluster.nodes(), [0, a.id]);
  t.deepEqual(cluster.scopes(), ['pg', 'extra']);
  t.deepEqual(cluster.peers(), []);
  t.like(cluster.stats(), { nodes: 2, malformed: 0, forged: 0, ignored: 0 });
  const pid = cluster.node.spawn(() => 'pong');
  await cluster.node.pg.join('main', pid);
  t.deepEqual(await a.cmd({ cmd: 'members', group: 'main' }), [pid]);
  t.true(await cluster.startScope('late'));
  t.false(await cluster.startScope('late'));
  t.true(await cluster.stopScope('late'));
  t.false(await cluster.stopScope('late'));
  await a.terminate();
  t.deepEqual(cluster.nodes(), [0]);
  t.false(cluster.node.nodes().includes(a.id));
});

test('coordinatorOf(), and a transport a coordinator thread cannot make, throw CoordinatorThreadError', async (t) => {
  const cluster = await start(t, { coordinator: 'thread' });
  t.throws(() => coordinatorOf(cluster), {
    instanceOf: CoordinatorThreadError,
    code: 'ERR_PG_COORDINATOR_THREAD',
  } as never);
  // No recipe: nothing tells the thread how to make it.
  await t.throwsAsync(startCluster({ coordinator: 'thread', transport: {} as Transport }), {
    instanceOf: CoordinatorThreadError,
    message: /has no `recipe`/,
  });
  // A wrapper spread from a transport does not pass for it (the recipe is not enumerable):
  // the thread would make the plain transport, without the wrapper's own `open`.
  const plain = natsTransport({ servers: 'nats://127.0.0.1:1', cluster: 'c' });
  const wrapped: Transport = { ...plain, open: (self, handlers) => plain.open(self, handlers) };
  await t.throwsAsync(startCluster({ coordinator: 'thread', transport: wrapped }), {
    instanceOf: CoordinatorThreadError,
    message: /has no `recipe`/,
  });
  // A function among NATS's own options: not data, so it cannot reach the thread.
  const withHandler = natsTransport({
    servers: 'nats://127.0.0.1:1',
    cluster: 'c',
    reconnectDelayHandler: () => 10,
  });
  await t.throwsAsync(startCluster({ coordinator: 'thread', transport: withHandler }), {
    instanceOf: CoordinatorThreadError,
    message: /cannot be sent to the coordinator thread .*plain data/,
  });
  // Made there, it fails there as it would here: no broker at that address.
  const nowhere = natsTransport({ servers: 'nats://127.0.0.1:1', cluster: 'c' });
  await t.throwsAsync(startCluster({ coordinator: 'thread', transport: nowhere }), {
    instanceOf: TransportError,
    code: 'ERR_PG_TRANSPORT',
  } as never);
  // A recipe naming a function its module does not have: the thread says so.
  const module = new URL('../src/core/errors.js', import.meta.url).href;
  const wrong = { recipe: { module, factory: 'makeNothing', options: {} } } as Transport;
  await t.throwsAsync(startCluster({ coordinator: 'thread', transport: wrong }), {
    instanceOf: CoordinatorThreadError,
    message: /makeNothing, which .*errors\.js does not export as a function/,
  });
  await t.throwsAsync(startCluster({ coordinator: 'elsewhere' as never }), {
    instanceOf: TypeError,
  });
});

test('stop() ends the coordinator thread; stats and nodes answer after it', async (t) => {
  const cluster = await startCluster({ coordinator: 'thread' });
  await spawnAgent(cluster);
  await cluster.stop();
  t.deepEqual(cluster.nodes(), []);
  t.is(typeof cluster.stats().malformed, 'number');
  await t.throwsAsync(cluster.spawn(PEER), { instanceOf: NotConnectedError });
});
