/**
 * startCluster / spawn / connect: node ids, membership of the node list, nodeup and
 * nodedown events, and spawn failures that must reject rather than hang.
 */
import { Worker } from 'node:worker_threads';
import test from 'ava';
import { connect, makePid, NotConnectedError } from '../src/index.js';
import { nodeEvent, spawnAgent, start } from './support/cluster.js';
import { sorted } from './support/views.js';
import { fixture } from './support/workers.js';

test('the starting thread is node 0 and spawned workers get ids 1, 2, 3…', async (t) => {
  const cluster = await start(t);
  t.is(cluster.node.id, 0);
  t.is(cluster.node.self(), makePid(0, 1));
  t.deepEqual(cluster.nodes(), [0]);
  t.deepEqual(cluster.node.nodes(), [0]);
  const a = await spawnAgent(cluster);
  const b = await spawnAgent(cluster);
  const c = await spawnAgent(cluster);
  t.deepEqual([a.id, b.id, c.id], [1, 2, 3]);
  // Each worker knows its own id.
  t.deepEqual(await Promise.all([a, b, c].map((w) => w.cmd({ cmd: 'id' }))), [1, 2, 3]);
  t.deepEqual(sorted(cluster.nodes()), [0, 1, 2, 3]);
});

test('node ids are never reused after a worker exits', async (t) => {
  const cluster = await start(t);
  const a = await spawnAgent(cluster);
  const b = await spawnAgent(cluster);
  t.deepEqual([a.id, b.id], [1, 2]);
  await b.terminate();
  t.deepEqual(sorted(cluster.nodes()), [0, 1]);
  const c = await spawnAgent(cluster);
  t.is(c.id, 3);
  await a.terminate();
  await c.terminate();
  t.deepEqual(cluster.nodes(), [0]);
  const d = await spawnAgent(cluster);
  t.is(d.id, 4);
  t.deepEqual(sorted(cluster.nodes()), [0, 4]);
});

test('cluster.nodes() and node.nodes() follow nodes up and down, with nodeup/nodedown events everywhere', async (t) => {
  const cluster = await start(t);
  const main = cluster.node;
  const seen: [string, number][] = [];
  main.on('nodeup', (id) => seen.push(['up', id]));
  main.on('nodedown', (id) => seen.push(['down', id]));

  const aUp = nodeEvent(main, 'nodeup', 1);
  const a = await spawnAgent(cluster);
  await aUp;
  t.deepEqual(main.nodes(), [0, 1]);
  t.deepEqual(await a.cmd({ cmd: 'nodes' }), [0, 1]);

  const bUp = nodeEvent(main, 'nodeup', 2);
  const b = await spawnAgent(cluster);
  await bUp;
  // A hears of B; B learns of 0 and A when it joins.
  t.true(await a.cmd({ cmd: 'waitUp', id: b.id }));
  t.deepEqual(await a.cmd({ cmd: 'nodes' }), [0, 1, 2]);
  t.deepEqual(await b.cmd({ cmd: 'nodes' }), [0, 1, 2]);
  t.deepEqual(main.nodes(), [0, 1, 2]);
  t.deepEqual(sorted(cluster.nodes()), [0, 1, 2]);

  const bDown = nodeEvent(main, 'nodedown', b.id);
  await b.terminate();
  await bDown;
  t.true(await a.cmd({ cmd: 'waitDown', id: b.id }));
  t.deepEqual(await a.cmd({ cmd: 'nodes' }), [0, 1]);
  t.deepEqual(main.nodes(), [0, 1]);
  t.deepEqual(cluster.nodes(), [0, 1]);
  t.false(main.isAlive(makePid(b.id, 1)));
  t.true(main.isAlive(makePid(a.id, 1)));
  t.deepEqual(await a.cmd({ cmd: 'nodeEvents' }), [
    ['up', 2],
    ['down', 2],
  ]);
  t.deepEqual(seen, [
    ['up', 1],
    ['up', 2],
    ['down', 2],
  ]);
});

test('spawn passes workerData and worker options through', async (t) => {
  const cluster = await start(t);
  const a = await spawnAgent(cluster, {
    workerData: { role: 'resize', n: [1, 2, 3] },
    name: 'agent-with-options',
    resourceLimits: { maxOldGenerationSizeMb: 64 },
  });
  t.deepEqual(await a.cmd({ cmd: 'workerData' }), { role: 'resize', n: [1, 2, 3] });
});

test("spawn rejects with an error of the library's own class when the worker ends with one", async (t) => {
  const cluster = await start(t);
  const error = await t.throwsAsync(cluster.spawn(fixture('cluster-throws-own')), {
    instanceOf: NotConnectedError,
    message: /already called in this worker/,
  });
  t.is(error.code, 'ERR_PG_NOT_CONNECTED');
  t.deepEqual(cluster.nodes(), [0]);
});

test('spawn rejects when the worker script throws at startup', async (t) => {
  const cluster = await start(t);
  // Node hands the worker's error over as an Error that is not a native error object,
  // which t.throwsAsync refuses: check it by hand.
  const error = await cluster.spawn(fixture('cluster-throws')).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.true(error instanceof Error);
  t.regex((error as Error).message, /startup boom/);
  t.deepEqual(cluster.nodes(), [0]);
  // The cluster still works.
  const a = await spawnAgent(cluster);
  t.is(await a.cmd({ cmd: 'id' }), a.id);
});

test('spawn rejects when the worker calls process.exit() before connect()', async (t) => {
  const cluster = await start(t);
  await t.throwsAsync(
    cluster.spawn(fixture('cluster-early-exit'), { workerData: { mode: 'exit', code: 3 } }),
    {
      message: /exited \(code 3\) before it called connect\(\)/,
    },
  );
  t.deepEqual(cluster.nodes(), [0]);
});

test('spawn rejects when the worker script ends without calling connect()', async (t) => {
  const cluster = await start(t);
  await t.throwsAsync(
    cluster.spawn(fixture('cluster-early-exit'), { workerData: { mode: 'return' } }),
    {
      message: /exited \(code 0\) before it called connect\(\)/,
    },
  );
  t.deepEqual(cluster.nodes(), [0]);
});

test('spawn rejects when the worker never calls connect() within connectTimeout', async (t) => {
  const cluster = await start(t);
  await t.throwsAsync(cluster.spawn(fixture('cluster-never'), { connectTimeout: 200 }), {
    message: /did not call connect\(\) within 200 ms/,
  });
  t.deepEqual(cluster.nodes(), [0]);
  const a = await spawnAgent(cluster);
  t.is(await a.cmd({ cmd: 'id' }), a.id);
});

test('connect() without a port on the main thread throws NotConnectedError', async (t) => {
  const error = await t.throwsAsync(connect(), { instanceOf: NotConnectedError });
  t.is(error.name, 'NotConnectedError');
  t.is(error.code, 'ERR_PG_NOT_CONNECTED');
  t.regex(error.message, /startCluster|connectPort/);
});

test('connect() without a port in a worker not started by cluster.spawn throws NotConnectedError', async (t) => {
  const worker = new Worker(fixture('cluster-plain'));
  t.teardown(() => worker.terminate());
  const result = await new Promise<{ name?: string; code?: string; connected?: boolean }>(
    (resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    },
  );
  t.is(result.connected, undefined);
  t.is(result.name, 'NotConnectedError');
  t.is(result.code, 'ERR_PG_NOT_CONNECTED');
});
