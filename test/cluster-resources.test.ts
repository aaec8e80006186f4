/**
 * Resources and leaving: node.close() in a worker, stop() settling what is pending,
 * threads ending on their own, and the API refusing work after stop().
 */
import { Worker } from 'node:worker_threads';
import test from 'ava';
import { NodeDownError, NotConnectedError, type Pid, startCluster } from '../src/index.js';
import { AGENT, exitOf, nodeEvent, rejects, spawnAgent, start } from './support/cluster.js';
import { handled, outcome } from './support/wait.js';
import { fixture } from './support/workers.js';

test('spawn, connectPort, startScope and node calls after stop() throw NotConnectedError', async (t) => {
  const cluster = await startCluster();
  const node = cluster.node;
  const pid = node.spawn(() => 'ok');
  await cluster.stop();
  await t.throwsAsync(cluster.spawn(AGENT), { instanceOf: NotConnectedError });
  t.throws(() => cluster.connectPort(), { instanceOf: NotConnectedError });
  await t.throwsAsync(cluster.startScope('late'), { instanceOf: NotConnectedError });
  t.false(node.connected);
  t.throws(() => node.spawn(() => 1), { instanceOf: NotConnectedError });
  t.throws(() => node.send(pid, 'x'), { instanceOf: NotConnectedError });
  await t.throwsAsync(node.call(pid, 'x'), { instanceOf: NotConnectedError });
  // Stopping twice is fine.
  await cluster.stop();
});

test('node.close() in a worker: it leaves, the others see nodedown, and its thread ends on its own', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const a = await spawnAgent(cluster);
  const b = await spawnAgent(cluster);
  const echo = await a.spawn('echo');
  t.is(await b.cmd({ cmd: 'call', pid: echo, msg: 'link up' }), 'link up');
  const monitor = node.monitor(echo);

  const down = nodeEvent(node, 'nodedown', a.id);
  const exited = exitOf(a.worker);
  t.is(await a.cmd({ cmd: 'close' }), 'closing');
  await down;
  t.true(await b.cmd({ cmd: 'waitDown', id: a.id }));
  // No terminate(): the thread ends because nothing holds it any more.
  t.is(await exited, 0);
  t.false(cluster.nodes().includes(a.id));
  t.deepEqual(node.nodes(), [0, b.id]);
  t.is(await monitor.down, 'nodedown');
  await rejects(t, node.call(echo, 'gone'), { instanceOf: NodeDownError });
  await rejects(t, b.cmd({ cmd: 'call', pid: echo, msg: 'gone' }), { instanceOf: NodeDownError });
});

test('calls in flight from other nodes to a node that closes reject with NodeDownError', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const a = await spawnAgent(cluster);
  const b = await spawnAgent(cluster);
  const hang = await a.spawn('hang', 2);
  const fromNode0 = handled(node.call(hang, 'from node 0'));
  const fromB = handled(b.cmd({ cmd: 'call', pid: hang, msg: 'from B' }));
  await a.cmd({ cmd: 'received', pid: hang, count: 2 });
  const down = nodeEvent(node, 'nodedown', a.id);
  t.is(await a.cmd({ cmd: 'close' }), 'closing');
  await down;
  // The callers' own nodes are connected: NotConnectedError ("this node left its
  // cluster") would point at the wrong node. The target's node went down.
  const e0 = await rejects(t, fromNode0, { instanceOf: NodeDownError, name: 'NodeDownError' });
  t.log(`node 0 got ${e0.name}: ${e0.message}`);
  const eB = await rejects(t, fromB, { instanceOf: NodeDownError, name: 'NodeDownError' });
  t.log(`node ${b.id} got ${eB.name}: ${eB.message}`);
  t.true(node.connected);
});

test('a thread that joined with connect(port) ends on its own after cluster.stop()', async (t) => {
  const cluster = await startCluster();
  t.teardown(() => cluster.stop());
  const port = cluster.connectPort();
  const worker = new Worker(fixture('cluster-own-thread'), {
    workerData: { port },
    transferList: [port],
  });
  const exited = exitOf(worker);
  const info = await new Promise<{ id: number; pid: Pid }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  t.is(info.id, 1);
  t.is(await cluster.node.call(info.pid, 'hi'), 'own thread got hi');
  await cluster.stop();
  // The cluster told its node to shut down; the thread has nothing left to do.
  t.is(await exited, 0);
});

test('stop() while a spawn is under way: the spawn settles and its worker does not outlive the cluster', async (t) => {
  t.timeout(20_000);
  const cluster = await startCluster();
  t.teardown(() => cluster.stop());
  const spawning = outcome(cluster.spawn(AGENT));
  await cluster.stop();
  const result = await spawning;
  if (result.ok) {
    // It made it before the stop: then stop() must have ended it.
    const exited = await new Promise<boolean>((resolve) => {
      if (result.value.worker.threadId === -1) resolve(true);
      else result.value.worker.once('exit', () => resolve(true));
    });
    t.true(exited);
  } else {
    t.true(result.error instanceof Error, String(result.error));
    t.log(String(result.error));
  }
});

test('stop() settles calls and monitors that are pending on every node', async (t) => {
  const cluster = await startCluster();
  t.teardown(() => cluster.stop());
  const node = cluster.node;
  const a = await spawnAgent(cluster);
  const hang = await a.spawn('hang');
  const localHang = node.spawn(() => new Promise(() => {}));
  const remoteCall = node.call(hang, 'x');
  const localCall = node.call(localHang, 'x');
  const remoteMonitor = node.monitor(hang).down;
  const localMonitor = node.monitor(localHang).down;
  await a.cmd({ cmd: 'received', pid: hang, count: 1 });
  const exited = exitOf(a.worker);
  await cluster.stop();
  t.is(typeof (await exited), 'number');
  const remote = await outcome(remoteCall);
  const local = await outcome(localCall);
  t.false(remote.ok);
  t.false(local.ok);
  t.true(
    !remote.ok &&
      (remote.error instanceof NodeDownError || remote.error instanceof NotConnectedError),
    String(!remote.ok && remote.error),
  );
  t.true(!local.ok && local.error instanceof NotConnectedError, String(!local.ok && local.error));
  t.true(['nodedown', 'shutdown'].includes((await remoteMonitor) as string));
  t.is(await localMonitor, 'shutdown');
});
