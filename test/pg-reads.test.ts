/**
 * The public read path of a scope (`getMembers`, `count`, `pick`) over the readers' held
 * arrays and its own fast paths: a thread reads its own writes as soon as they resolve,
 * in the same job; `getMembers` hands out arrays the caller owns; the fast picks only
 * ever return members, and `undefined` once the group is empty.
 */
import test from 'ava';
import type { Pid } from '../src/index.js';
import { spawnAgent, spawnLocal, start } from './support/cluster.js';
import { settle } from './support/wait.js';

test('on the coordinator thread, every read sees the thread’s own write as soon as it resolves', async (t) => {
  const cluster = await start(t);
  const pg = cluster.node.pg;
  const pids = spawnLocal(cluster.node, 4);
  const model: Pid[] = [];
  for (let round = 0; round < 24; round++) {
    const p = pids[round % pids.length]!;
    // Read first, so that the reader holds an array of the group as it was.
    t.deepEqual(pg.getMembers('g'), model);
    if (round % 3 === 2) {
      t.is(await pg.leave('g', p), model.includes(p) ? 'ok' : 'not_joined');
      const at = model.indexOf(p);
      if (at >= 0) model.splice(at, 1);
    } else {
      await pg.join('g', p);
      model.push(p);
    }
    // Same job as the write's continuation: no refresh(), no turn of the event loop.
    t.deepEqual(pg.getMembers('g'), model, `round ${round}`);
    t.is(pg.count('g'), model.length);
    const picked = pg.pick('g');
    t.true(picked !== undefined && model.includes(picked));
    const next = pg.pick('g', 'round-robin');
    t.true(next !== undefined && model.includes(next));
  }
  await pg.leave('g', [...model]);
  t.deepEqual(pg.getMembers('g'), []);
  t.is(pg.count('g'), 0);
  t.is(pg.pick('g'), undefined);
  t.is(pg.pick('g', 'round-robin'), undefined);
});

test('getMembers returns a new array on each call, which the caller may change', async (t) => {
  const cluster = await start(t);
  const pg = cluster.node.pg;
  const pids = spawnLocal(cluster.node, 70);
  await pg.join('small', pids.slice(0, 3));
  await pg.join('large', pids);
  for (const [group, expected] of [
    ['small', pids.slice(0, 3)],
    ['large', pids],
  ] as const) {
    const a = pg.getMembers(group);
    const b = pg.getMembers(group);
    t.not(a, b);
    a.reverse();
    a.push(a[0]!);
    b.length = 1;
    t.deepEqual(pg.getMembers(group), [...expected]);
    t.is(pg.count(group), expected.length);
  }
});

test('round-robin picks on a thread go through every member of a group a worker joined', async (t) => {
  const cluster = await start(t);
  const pg = cluster.node.pg;
  const agent = await spawnAgent(cluster);
  const pids = await agent.cmd<Pid[]>({ cmd: 'spawn', n: 5 });
  await agent.cmd({ cmd: 'join', group: 'rr', pids });
  t.true((await settle(() => pg.count('rr'), 5)).ok);
  const seen = new Set<Pid>();
  for (let i = 0; i < 5; i++) seen.add(pg.pick('rr', 'round-robin')!);
  t.deepEqual([...seen].sort(), [...pids].sort());
  t.deepEqual(pg.getMembers('rr'), pids);
});
