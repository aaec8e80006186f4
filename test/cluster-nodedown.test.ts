/**
 * Calls in flight to a node that dies, by worker.terminate(), by an uncaught exception,
 * and by process.exit(): they reject with NodeDownError, and the rest of the cluster
 * carries on.
 */
import test, { type ExecutionContext } from 'ava';
import { type Cluster, makePid, NodeDownError, type Pid } from '../src/index.js';
import { type Agent, exitOf, nodeEvent, rejects, spawnAgent, start } from './support/cluster.js';
import { handled } from './support/wait.js';
import { sorted } from './support/views.js';
import { fixture } from './support/workers.js';

/** Starts calls that cannot finish on the agent: to a hanging process, and queued ones behind it. */
async function callsInFlight(cluster: Cluster, a: Agent) {
  const hang = await a.spawn('hang');
  const hang2 = await a.spawn('hang');
  const calls = [
    cluster.node.call(hang, 1),
    cluster.node.call(hang, 2),
    cluster.node.call(hang2, 3),
  ].map((c) => handled(c));
  // Make sure the calls reached the agent: the hanging processes recorded their messages.
  await a.cmd({ cmd: 'received', pid: hang, count: 1 });
  await a.cmd({ cmd: 'received', pid: hang2, count: 1 });
  return { calls, pids: [hang, hang2] };
}

async function expectNodeDown(
  t: ExecutionContext,
  cluster: Cluster,
  a: Agent,
  calls: Promise<unknown>[],
  pids: Pid[],
  witness: Agent,
) {
  for (const c of calls) {
    const e = await rejects<NodeDownError>(t, c, {
      instanceOf: NodeDownError,
      name: 'NodeDownError',
      code: 'ERR_PG_NODE_DOWN',
    });
    t.is(e.node, a.id);
  }
  // Later calls and sends to the dead node fail at once too.
  await rejects(t, cluster.node.call(pids[0]!, 'late'), { instanceOf: NodeDownError });
  t.true(await witness.cmd({ cmd: 'waitDown', id: a.id }));
  // The witness's own calls to the dead node fail the same way.
  await rejects(t, witness.cmd({ cmd: 'call', pid: pids[0]!, msg: 'late' }), {
    instanceOf: NodeDownError,
  });
  t.false(cluster.node.isAlive(pids[0]!));
  t.false(cluster.nodes().includes(a.id));
  // The rest of the cluster works.
  const echo = await witness.spawn('echo');
  t.is(await cluster.node.call(echo, 'alive'), 'alive');
}

/** Calls in flight to an agent that `kill` ends, and what must hold after. */
const nodeDies = test.macro(
  async (t, kill: (t: ExecutionContext, a: Agent) => Promise<void>): Promise<void> => {
    const cluster = await start(t);
    const a = await spawnAgent(cluster);
    const witness = await spawnAgent(cluster);
    const { calls, pids } = await callsInFlight(cluster, a);
    const down = nodeEvent(cluster.node, 'nodedown', a.id);
    await kill(t, a);
    await down;
    await expectNodeDown(t, cluster, a, calls, pids, witness);
  },
);

test(
  'calls in flight to a node whose worker is terminated reject with NodeDownError',
  nodeDies,
  (_t, a) => a.terminate(),
);

test(
  'calls in flight to a node that dies of an uncaught exception reject with NodeDownError',
  nodeDies,
  async (t, a) => {
    const exited = exitOf(a.worker);
    const errored = new Promise<Error>((resolve) => a.worker.once('error', resolve));
    t.is(await a.cmd({ cmd: 'crash' }), 'crashing');
    t.is((await errored).message, 'boom');
    t.is(await exited, 1);
  },
);

test(
  'calls in flight to a node that calls process.exit() reject with NodeDownError',
  nodeDies,
  async (t, a) => {
    const exited = exitOf(a.worker);
    t.is(await a.cmd({ cmd: 'exitProcess', code: 3 }), 'exiting');
    t.is(await exited, 3);
  },
);

test('calls from a worker to a node that dies reject with NodeDownError', async (t) => {
  const cluster = await start(t);
  const a = await spawnAgent(cluster);
  const b = await spawnAgent(cluster);
  const hang = await a.spawn('hang');
  // B calls the hanging process on A; A then dies.
  const viaB = handled(b.cmd({ cmd: 'call', pid: hang, msg: 'from B' }));
  await a.cmd({ cmd: 'received', pid: hang, count: 1 });
  await a.terminate();
  await rejects(t, viaB, { instanceOf: NodeDownError, name: 'NodeDownError' });
  t.deepEqual(await b.cmd({ cmd: 'nodes' }), [0, b.id]);
});

test('monitors and calls on many nodes dying at once all settle', async (t) => {
  t.timeout(25_000);
  const cluster = await start(t);
  const agents = await Promise.all(Array.from({ length: 4 }, () => spawnAgent(cluster)));
  const hangs = await Promise.all(agents.map((a) => a.spawn('hang')));
  const calls = hangs.map((p) => handled(cluster.node.call(p, 'x')));
  const monitors = hangs.map((p) => cluster.node.monitor(p).down);
  await Promise.all(agents.map((a, i) => a.cmd({ cmd: 'received', pid: hangs[i]!, count: 1 })));
  await Promise.all(
    agents.map((a, i) => (i % 2 === 0 ? a.terminate() : a.cmd({ cmd: 'exitProcess', code: 0 }))),
  );
  for (const c of calls) await rejects(t, c, { instanceOf: NodeDownError });
  t.deepEqual(await Promise.all(monitors), ['nodedown', 'nodedown', 'nodedown', 'nodedown']);
  t.is(makePid(0, 1), cluster.node.self());
});

test("a node with no 'nodedown' listener and no channel to a node that dies sees it gone at once: nodes(), isAlive(), and calls fail with NodeDownError", async (t) => {
  const cluster = await start(t);
  // Main's channel to `deaf` exists before the down (a first call after it would make the
  // coordinator send `deaf` a channel, and the kept notice with it).
  const deaf = await spawnAgent(cluster, { workerData: { downs: false } });
  const b = await spawnAgent(cluster);
  const echo = await b.spawn('echo');
  t.deepEqual(sorted(await deaf.cmd<number[]>({ cmd: 'nodes' })), [0, deaf.id, b.id]);
  t.true(await deaf.cmd<boolean>({ cmd: 'isAlive', pid: echo }));
  const down = nodeEvent(cluster.node, 'nodedown', b.id);
  await b.terminate();
  await down;
  // `deaf` is sent its notice later (coordinator/down-notices.ts), but the coordinator
  // marked b's load table down before it told main, and `deaf` reads that table.
  t.deepEqual(sorted(await deaf.cmd<number[]>({ cmd: 'nodes' })), [0, deaf.id]);
  t.false(await deaf.cmd<boolean>({ cmd: 'isAlive', pid: echo }));
  const e = await deaf.cmd<{ name: string; instance: boolean }>({
    cmd: 'callError',
    pid: echo,
    msg: 'x',
  });
  t.deepEqual([e.name, e.instance], ['NodeDownError', true]);
});

test("a worker's members leave as it exits, before its own slow 'exit' listeners are done", async (t) => {
  const cluster = await start(t);
  t.timeout(40_000); // on failure, the worker's listener gives up after 30 s
  const hold = new Int32Array(new SharedArrayBuffer(8));
  const release = () => {
    Atomics.store(hold, 0, 1);
    Atomics.notify(hold, 0);
  };
  t.teardown(release);
  const monitor = await cluster.node.pg.monitor('slow');
  const events = monitor.events[Symbol.asyncIterator]();
  const { worker } = await cluster.spawn(fixture('cluster-slow-exit'), {
    workerData: { hold, group: 'slow' },
  });
  while (cluster.node.pg.count('slow') === 0) await events.next();
  const exited = exitOf(worker);
  worker.postMessage('exit');
  // The node's listener runs first (it is prepended): its members are gone while the
  // listener the worker added before connect() still holds the thread.
  while (cluster.node.pg.count('slow') > 0) await events.next();
  t.is(Atomics.load(hold, 1), 0, "the worker's own exit listener is still running");
  release();
  t.is(await exited, 0);
  await cluster.node.pg.demonitor(monitor);
});
