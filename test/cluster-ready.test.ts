/**
 * Readiness and the first minutes of a user: `await cluster.spawn(url)` resolves once
 * the worker's module has finished evaluating (its top-level joins done), so a burst
 * dispatched right after reaches every worker; and the mistakes a newcomer makes get a
 * named error that says what to do.
 */
import test from 'ava';
import { makePid, NoProcessError, NotConnectedError } from '../src/index.js';
import { start } from './support/cluster.js';
import { fixture } from './support/workers.js';
import { cpuLoad } from './support/load.js';

const ROLE = fixture('cluster-role');

test('a burst dispatched right after await spawn() reaches every worker: their top-level joins are done, under CPU load', async (t) => {
  cpuLoad(t);
  const cluster = await start(t);
  const workers = [];
  for (let i = 0; i < 3; i++)
    workers.push(await cluster.spawn(ROLE, { workerData: { role: 'resize' } }));
  const pg = cluster.node.pg;
  t.is(pg.getMembers('resize').length, 3, 'every spawned worker has joined already');
  const answered = new Set(
    await Promise.all(Array.from({ length: 60 }, () => pg.dispatch<number>('resize', 'x'))),
  );
  t.deepEqual([...answered].sort(), workers.map((w) => w.id).sort());
});

test("spawn(url, { ready: 'connected' }) resolves at connect(), before the module's joins", async (t) => {
  const cluster = await start(t);
  const monitor = await cluster.node.pg.monitor('late');
  const w = await cluster.spawn(ROLE, { workerData: { role: 'late' }, ready: 'connected' });
  t.true(cluster.nodes().includes(w.id));
  // The join comes afterwards; wait for it as an event.
  for await (const e of monitor.events) if (e.kind === 'join') break;
  t.is(cluster.node.pg.getMembers('late').length, 1);
});

test('spawn rejects a bad ready option with a TypeError that lists the choices', async (t) => {
  const cluster = await start(t);
  await t.throwsAsync(cluster.spawn(ROLE, { ready: 'soon' as never }), {
    instanceOf: TypeError,
    message: /'evaluated' or 'connected'/,
  });
});

test('pg.join of a number that is no pid of this node rejects with NoProcessError, and joins nothing', async (t) => {
  const cluster = await start(t);
  const pg = cluster.node.pg;
  const e = await t.throwsAsync(pg.join('g', 42 as never), { instanceOf: NoProcessError });
  t.regex(e!.message, /<0\.42> was never a process of this node; pids come from node\.spawn\(\)/);
  const real = cluster.node.spawn(() => 'ok');
  await t.throwsAsync(pg.join('g', [real, makePid(0, 9_999)]), { instanceOf: NoProcessError });
  t.deepEqual(pg.getMembers('g'), []);
});

test('connect() on the main thread, and a bad argument to connect(), say what to do', async (t) => {
  const { connect } = await import('../src/index.js');
  await t.throwsAsync(connect(), { instanceOf: NotConnectedError, message: /startCluster\(\)/ });
  await t.throwsAsync(connect(42 as never), { instanceOf: TypeError, message: /connectPort\(\)/ });
  await t.throwsAsync(connect({}, {}), { instanceOf: TypeError, message: /connectPort\(\)/ });
});

test('in a spawned worker, connect({ handler }) takes its options first, and a second connect() says the thread is a node already', async (t) => {
  const cluster = await start(t);
  const w = await cluster.spawn(fixture('cluster-connect-twice'));
  const second = await cluster.node.call<{ name: string; message: string }>(makePid(w.id, 1), 'x');
  t.is(second.name, 'NotConnectedError');
  t.regex(second.message, /already called in this worker: a thread is one node/);
});
