/**
 * `cluster.stop()` is graceful: what was sent before it is handled, calls in flight
 * finish, within a bounded time; `stop({ timeout: 0 })` is the immediate way out. Each
 * worker counts what its processes handled in a SharedArrayBuffer, read after the
 * workers are gone.
 */
import test from 'ava';
import { NodeDownError, NotConnectedError, startCluster } from '../src/index.js';
import { rejects, spawnAgent } from './support/cluster.js';
import { cpuLoad } from './support/load.js';
import { errorName, type Outcome, outcome } from './support/wait.js';
import { fixture } from './support/workers.js';

const ROUNDS = 5;
const MEMBERS = 3;
const BROADCASTS = 10;
const SENDS = 30;

test.serial(
  'broadcasts and sends followed by await cluster.stop() are all handled, under CPU load',
  async (t) => {
    cpuLoad(t);
    for (let round = 0; round < ROUNDS; round++) {
      const counter = new SharedArrayBuffer(4);
      const cluster = await startCluster();
      const agents = await Promise.all(
        Array.from({ length: MEMBERS }, () => spawnAgent(cluster, { workerData: { counter } })),
      );
      const pids = await Promise.all(agents.map((a) => a.spawn('counter')));
      for (const [i, a] of agents.entries())
        await a.cmd({ cmd: 'join', group: 'all', pids: pids[i] });
      t.is(cluster.node.pg.getMembers('all').length, MEMBERS);
      let sent = 0;
      for (let i = 0; i < BROADCASTS; i++) sent += cluster.node.pg.broadcast('all', { i });
      for (let i = 0; i < SENDS; i++) for (const pid of pids) if (cluster.node.send(pid, i)) sent++;
      await cluster.stop();
      t.is(Atomics.load(new Int32Array(counter), 0), sent, `round ${round}: every message handled`);
      t.is(sent, MEMBERS * (BROADCASTS + SENDS));
    }
  },
);

test.serial('messages between two workers sent before the stop are handled too', async (t) => {
  const counter = new SharedArrayBuffer(4);
  const cluster = await startCluster();
  const [a, b] = await Promise.all([
    spawnAgent(cluster, { workerData: { counter } }),
    spawnAgent(cluster, { workerData: { counter } }),
  ]);
  const sink = await b!.spawn('counter');
  t.is(await a!.cmd({ cmd: 'sendSeq', pid: sink, n: 200 }), 200);
  await cluster.stop();
  t.is(Atomics.load(new Int32Array(counter), 0), 200);
});

test.serial('calls in flight finish before the workers end', async (t) => {
  const counter = new SharedArrayBuffer(4);
  const cluster = await startCluster();
  const a = await spawnAgent(cluster, { workerData: { counter } });
  const pid = await a.spawn('counter');
  const calls = Array.from({ length: 50 }, () => cluster.node.call(pid, 'work'));
  const stopped = cluster.stop();
  t.deepEqual(
    await Promise.all(calls),
    Array.from({ length: 50 }, () => 'counted'),
  );
  await stopped;
  t.is(Atomics.load(new Int32Array(counter), 0), 50);
});

test.serial(
  'joins and leaves made just before the stop complete, with either coordinator',
  async (t) => {
    for (const coordinator of ['main', 'thread'] as const) {
      const cluster = await startCluster({ coordinator });
      const { node } = cluster;
      const self = node.self();
      // Not awaited: in flight to the coordinator when the stop begins, and nothing else
      // is (a worker's drain, or a call in flight, would hold the stop until after their
      // answers anyway).
      const made: Promise<Outcome<unknown>>[] = Array.from({ length: 50 }, (_, i) =>
        outcome(node.pg.join(`g${i}`, self)),
      );
      made.push(outcome(node.pg.leave('g0', self)));
      await cluster.stop();
      const names = (await Promise.all(made)).map((o) => (o.ok ? o.value : errorName(o.error)));
      t.deepEqual(names, [...Array(50).fill(undefined), 'ok'], `coordinator: ${coordinator}`);
    }
  },
);

test.serial('a call that never ends holds the stop only for its timeout, then fails', async (t) => {
  const cluster = await startCluster();
  const a = await spawnAgent(cluster);
  const hang = await a.spawn('hang');
  const call = cluster.node.call(hang, 'forever');
  await a.cmd({ cmd: 'received', pid: hang, count: 1 });
  await cluster.stop({ timeout: 50 });
  // Its worker was terminated under it.
  await rejects(t, call, { instanceOf: NodeDownError });
});

test.serial('stop({ timeout: 0 }) ends at once: work in flight is dropped', async (t) => {
  const cluster = await startCluster();
  const a = await spawnAgent(cluster);
  const hang = await a.spawn('hang');
  const call = cluster.node.call(hang, 'forever');
  await a.cmd({ cmd: 'received', pid: hang, count: 1 });
  await cluster.stop({ timeout: 0 });
  const e = await rejects(t, call);
  t.true(e instanceof NotConnectedError || e instanceof NodeDownError, String(e));
});

test('stop rejects bad options with a clear error, and stops nothing', async (t) => {
  const cluster = await startCluster();
  t.teardown(() => cluster.stop({ timeout: 0 }));
  t.throws(() => cluster.stop({ timeout: -1 }), { instanceOf: RangeError, message: /timeout/ });
  t.throws(() => cluster.stop('now' as never), { instanceOf: TypeError, message: /stop options/ });
  t.deepEqual(cluster.nodes(), [0]);
});

test.serial(
  'a spawn still starting when the cluster stops rejects, and its worker ends with the cluster',
  async (t) => {
    const cluster = await startCluster();
    const spawning = cluster.spawn(fixture('cluster-role'), { workerData: { role: 'late' } });
    await cluster.stop();
    await rejects(t, spawning, { instanceOf: NotConnectedError, message: /cluster was stopped/ });
    t.deepEqual(cluster.nodes(), []);
  },
);
