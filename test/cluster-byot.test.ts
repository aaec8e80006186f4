/**
 * Bring your own thread: real piscina and tinypool workers join a cluster with
 * `connect(port)`, given a port from `cluster.connectPort()`.
 */
import { threadId } from 'node:worker_threads';
import test from 'ava';
import { Piscina } from 'piscina';
import { Tinypool } from 'tinypool';
import { NodeDownError, type Pid } from '../src/index.js';
import { nodeEvent, rejects, spawnAgent, start } from './support/cluster.js';
import { fixture } from './support/workers.js';

interface Connected {
  id: number;
  pid: Pid;
  threadId: number;
  nodes: number[];
}

const TASK = fixture('cluster-pool-task').href;

// Both pools park idle threads in a blocking Atomics.wait by default, which stops their
// event loop: a node in such a thread would answer nothing between tasks. Pool threads
// that host a node need piscina's `atomics: 'async'` (or 'disabled') and tinypool's
// `useAtomics: false`.

test('a piscina worker joins with connect(port), serves calls, and its node goes down with piscina.destroy()', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const ups: number[] = [];
  node.on('nodeup', (id) => ups.push(id));
  const agent = await spawnAgent(cluster);
  const pool = new Piscina({ filename: TASK, minThreads: 1, maxThreads: 1, atomics: 'async' });
  let destroyed = false;
  t.teardown(async () => {
    if (!destroyed) await pool.destroy();
  });

  const port = cluster.connectPort();
  const info = (await pool.run(
    { op: 'connect', port, name: 'piscina' },
    { transferList: [port] },
  )) as Connected;
  if (!ups.includes(info.id)) await nodeEvent(node, 'nodeup', info.id);
  t.true(ups.includes(info.id));
  t.not(info.threadId, threadId);
  t.deepEqual(info.nodes, [0, agent.id, info.id]);
  t.true(cluster.nodes().includes(info.id));

  // Node 0 calls the process on the piscina thread and gets the answer.
  t.deepEqual(await node.call(info.pid, 21), {
    answer: 42,
    node: info.id,
    from: node.self(),
    threadId: info.threadId,
  });
  // A spawned worker node calls it too.
  t.deepEqual(await agent.cmd({ cmd: 'call', pid: info.pid, msg: 5 }), {
    answer: 10,
    node: info.id,
    from: agent.root,
    threadId: info.threadId,
  });
  // And the piscina thread calls a process of node 0 (through another task).
  const local = node.spawn((m: string) => `node 0 got ${m}`);
  t.is(await pool.run({ op: 'call', pid: local, msg: 'hi' }), 'node 0 got hi');

  const down = nodeEvent(node, 'nodedown', info.id);
  const agentSaw = agent.cmd({ cmd: 'waitDown', id: info.id });
  await pool.destroy();
  destroyed = true;
  await down;
  t.true(await agentSaw);
  t.false(cluster.nodes().includes(info.id));
  await rejects(t, node.call(info.pid, 1), { instanceOf: NodeDownError });
});

test('a tinypool worker joins with connect(port), serves calls, and its node goes down with pool.destroy()', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const pool = new Tinypool({
    filename: TASK,
    minThreads: 1,
    maxThreads: 1,
    isolateWorkers: false,
    useAtomics: false,
  });
  let destroyed = false;
  t.teardown(async () => {
    if (!destroyed) await pool.destroy();
  });

  const port = cluster.connectPort();
  const info = (await pool.run(
    { op: 'connect', port, name: 'tinypool' },
    { transferList: [port] },
  )) as Connected;
  t.is(info.id, 1);
  t.not(info.threadId, threadId);
  t.deepEqual(await node.call(info.pid, 4), {
    answer: 8,
    node: info.id,
    from: node.self(),
    threadId: info.threadId,
  });
  const local = node.spawn((m: string) => `node 0 got ${m}`);
  t.is(await pool.run({ op: 'call', pid: local, msg: 'tiny' }), 'node 0 got tiny');

  const down = nodeEvent(node, 'nodedown', info.id);
  await pool.destroy();
  destroyed = true;
  await down;
  t.deepEqual(cluster.nodes(), [0]);
  await rejects(t, node.call(info.pid, 1), { instanceOf: NodeDownError });
});

test('several threads of one piscina pool each become a node', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const pool = new Piscina({ filename: TASK, minThreads: 2, maxThreads: 2, atomics: 'disabled' });
  let destroyed = false;
  t.teardown(async () => {
    if (!destroyed) await pool.destroy();
  });
  const ports = [cluster.connectPort(), cluster.connectPort(), cluster.connectPort()];
  const infos = (await Promise.all(
    ports.map((port, i) =>
      pool.run({ op: 'connect', port, name: `p${i}` }, { transferList: [port] }),
    ),
  )) as Connected[];
  t.deepEqual(infos.map((i) => i.id).sort(), [1, 2, 3]);
  const answers = await Promise.all(
    infos.map((i, k) => node.call<{ answer: number; node: number }>(i.pid, k)),
  );
  t.deepEqual(
    answers.map((a) => a.answer),
    [0, 2, 4],
  );
  t.deepEqual(
    answers.map((a) => a.node),
    infos.map((i) => i.id),
  );
  const downs = infos.map((i) => nodeEvent(node, 'nodedown', i.id));
  await pool.destroy();
  destroyed = true;
  await Promise.all(downs);
  t.deepEqual(cluster.nodes(), [0]);
});
