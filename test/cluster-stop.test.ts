/**
 * After cluster.stop(), nothing of the cluster keeps the process alive: no MessagePort,
 * no Worker. This file's single test ends with `await cluster.stop()`, then looks.
 */
import test from 'ava';
import { startCluster } from '../src/index.js';
import { spawnAgent } from './support/cluster.js';

const clusterResources = () =>
  process.getActiveResourcesInfo().filter((r) => r === 'MessagePort' || r === 'Worker');

test('after cluster.stop() no MessagePort or Worker is left', async (t) => {
  const baseline = clusterResources();
  t.log('before the cluster:', process.getActiveResourcesInfo());
  const cluster = await startCluster({ scopes: ['jobs'] });
  const node = cluster.node;
  const agents = await Promise.all([spawnAgent(cluster), spawnAgent(cluster), spawnAgent(cluster)]);
  const [a, b, c] = agents;
  // Links between every pair, memberships, monitors, a call left pending.
  const echoes = await Promise.all(agents.map((x) => x.spawn('echo')));
  for (const x of agents) for (const e of echoes) await x.cmd({ cmd: 'call', pid: e, msg: 'hi' });
  for (const e of echoes) t.is(await node.call(e, 'hi'), 'hi');
  const local = node.spawn(() => 'ok');
  await node.pg.join('everyone', local);
  for (const x of agents) await x.cmd({ cmd: 'join', group: 'everyone' });
  t.is(node.pg.getMembers('everyone').length, 4);
  node.monitor(echoes[0]!);
  await a!.cmd({ cmd: 'monitorStart', pid: local });
  const hang = await b!.spawn('hang');
  const pending = node.call(hang, 'x').catch(() => 'settled');
  await c!.terminate();
  t.true(clusterResources().length > baseline.length);

  await cluster.stop();

  t.is(await pending, 'settled');
  const left = clusterResources();
  if (left.length > baseline.length)
    t.log('still active after stop():', process.getActiveResourcesInfo());
  t.deepEqual(left, baseline);
});
