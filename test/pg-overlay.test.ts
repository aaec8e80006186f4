/**
 * pg_SUITE, the white-box cases: overlay_missing, forced_sync, thundering_herd,
 * scope_restart.
 *
 * pg_SUITE sends hand-made `join`/`leave`/`sync` messages to the scope process;
 * here `coordinatorOf(cluster).inject(node, message)` feeds the coordinator a raw protocol
 * message as if `node` had sent it, and `coordinatorOf(cluster).discover(node, scope)` is
 * pg's `{discover, Peer}`.
 */
import test from 'ava';
import { encodeGroup, NoScopeError, type Pid } from '../src/index.js';
import {
  type Agent,
  barrier,
  rejects,
  spawnAgent,
  spawnAgents,
  spawnLocal,
  start,
} from './support/cluster.js';
import { LocalModel, startScope } from './support/pg.js';
import { localViewOf, sorted, unionOf, type View, viewOf } from './support/views.js';
import { type PollResult, settle, turn } from './support/wait.js';
import { coordinatorOf } from '../src/coordinator/cluster.js';

test('overlay_missing: join/leave/exit from a node outside the scope are ignored (pg_SUITE overlay_missing)', async (t) => {
  const cluster = await start(t);
  const w = await spawnAgent(cluster);
  const pg = cluster.node.pg;
  const self = cluster.node.self();
  t.is(await pg.join('group', self), undefined);
  const [remote] = (await w.cmd<Pid[]>({ cmd: 'spawn', n: 1 })) as [Pid];
  await w.cmd({ cmd: 'join', group: 'other', pids: remote });
  t.deepEqual((await settle(() => pg.getMembers('other'), [remote])).value, [remote]);

  // inject() applies a message synchronously, but reads on this thread see one version
  // per synchronous job (a read section): the checks below read after a turn of the
  // event loop, or poll.

  // Positive control: from a node that is part of the scope, an injected join applies.
  const key = encodeGroup('group');
  const both = sorted([self, remote]);
  coordinatorOf(cluster).inject(w.id, {
    t: 'join',
    scope: 'pg',
    ref: 900_001,
    key,
    pids: [remote],
  });
  t.deepEqual((await settle(() => sorted(pg.getMembers('group')), both)).value, both);
  coordinatorOf(cluster).inject(w.id, {
    t: 'leave',
    scope: 'pg',
    ref: 900_002,
    key,
    pids: [remote],
  });
  t.deepEqual((await settle(() => pg.getMembers('group'), [self])).value, [self]);

  // Take the node out of the scope's overlay (pg_SUITE stops the peer's scope process).
  await cluster.partition(w.id);
  t.deepEqual(pg.getMembers('other'), []);
  const before = viewOf(pg);
  const stats = cluster.stats();

  coordinatorOf(cluster).inject(w.id, {
    t: 'join',
    scope: 'pg',
    ref: 900_003,
    key,
    pids: [remote],
  });
  await turn();
  t.deepEqual(pg.getMembers('group'), [self], 'the crafted join is rejected');
  t.is(cluster.stats().ignored, stats.ignored + 1);

  coordinatorOf(cluster).inject(w.id, {
    t: 'leave',
    scope: 'pg',
    ref: 900_004,
    key,
    pids: [remote],
  });
  await turn();
  t.deepEqual(pg.getMembers('group'), [self], 'the crafted leave too');
  t.is(cluster.stats().ignored, stats.ignored + 2);

  coordinatorOf(cluster).inject(w.id, { t: 'exit', scope: 'pg', pid: remote, keys: [key] });
  t.is(cluster.stats().ignored, stats.ignored + 3, 'and a crafted exit');

  // Many of them, in a burst: nothing changes.
  for (let i = 0; i < 1000; i++) {
    coordinatorOf(cluster).inject(w.id, {
      t: i % 2 === 0 ? 'join' : 'leave',
      scope: 'pg',
      ref: 910_000 + i,
      key: encodeGroup(['burst', i % 7]),
      pids: [remote, remote],
    });
  }
  t.is(cluster.stats().ignored, stats.ignored + 1003);
  await turn();
  t.deepEqual(viewOf(pg), before, 'the index did not change');
  t.like(cluster.stats(), { malformed: stats.malformed, forged: stats.forged });
  // The ignored messages were answered to the node, which owns no such request: it
  // must not have been disturbed, and still works once back in the scope.
  await cluster.heal(w.id);
  t.deepEqual((await settle(() => pg.getMembers('other'), [remote])).value, [remote]);
  await w.cmd({ cmd: 'join', group: 'group', pids: remote });
  t.deepEqual((await settle(() => sorted(pg.getMembers('group')), both)).value, both);
});

test('forced_sync: a fake sync replaces the node view, discover restores it, an extra sync changes nothing (pg_SUITE forced_sync)', async (t) => {
  const cluster = await start(t);
  const w = await spawnAgent(cluster);
  const pg = cluster.node.pg;
  const [pid] = spawnLocal(cluster.node) as [Pid];
  const [remote] = (await w.cmd<Pid[]>({ cmd: 'spawn', n: 1 })) as [Pid];
  const expected = sorted([pid, remote]);
  await pg.join('one', pid);
  t.is(await w.cmd({ cmd: 'join', group: 'one', pids: remote }), 'ok');
  t.is(await w.cmd({ cmd: 'join', group: 'stays', pids: remote }), 'ok');

  // Partition, then reconnect.
  await cluster.partition(w.id);
  await cluster.heal(w.id);
  t.deepEqual((await settle(() => sorted(pg.getMembers('one')), expected)).value, expected);
  const real = viewOf(pg);

  // White-box: a broken sync. 'one' is replaced, 'forced_sync' appears, 'stays' goes.
  coordinatorOf(cluster).inject(w.id, {
    t: 'sync',
    scope: 'pg',
    groups: [
      [encodeGroup('one'), [remote, remote]],
      [encodeGroup('forced_sync'), [remote, remote]],
    ],
  });
  const broken: View = [
    [encodeGroup('forced_sync'), [remote, remote]],
    [encodeGroup('one'), sorted([remote, remote, pid])],
  ];
  t.deepEqual((await settle(() => viewOf(pg), broken)).value, broken);
  t.deepEqual(pg.getMembers('forced_sync'), [remote, remote]);
  t.deepEqual(sorted(pg.getMembers('one')), sorted([remote, remote, pid]));
  t.deepEqual(pg.getMembers('stays'), []);
  t.deepEqual(
    await w.cmd({ cmd: 'localView' }),
    [
      [encodeGroup('one'), [remote]],
      [encodeGroup('stays'), [remote]],
    ],
    'the node itself is untouched',
  );

  // Force a real sync: ask the node to send one.
  coordinatorOf(cluster).discover(w.id, 'pg');
  t.deepEqual((await settle(() => viewOf(pg), real)).value, real);
  await barrier(cluster, w.id);
  t.deepEqual(sorted(pg.getMembers('one')), expected);
  t.deepEqual(pg.getMembers('forced_sync'), []);
  t.deepEqual(pg.getMembers('stays'), [remote]);

  // An extra sync, asked for or repeated by hand, changes nothing.
  coordinatorOf(cluster).discover(w.id, 'pg');
  await barrier(cluster, w.id);
  t.deepEqual(viewOf(pg), real);
  const local = await w.cmd<View>({ cmd: 'localView' });
  for (let i = 0; i < 3; i++)
    coordinatorOf(cluster).inject(w.id, { t: 'sync', scope: 'pg', groups: local });
  await turn();
  t.deepEqual(viewOf(pg), real);
  t.like(await w.cmd<PollResult<View>>({ cmd: 'waitView', expected: real }), { ok: true });
});

test('thundering_herd: 10,000 groups and 2,000 syncs at once, the next join still completes (pg_SUITE thundering_herd)', async (t) => {
  const cluster = await start(t);
  const pg = cluster.node.pg;
  const self = cluster.node.self();
  const groupCount = 10_000;
  const syncCount = 2_000;
  const joins: Promise<void>[] = [];
  for (let seq = 1; seq <= groupCount; seq++) joins.push(pg.join(['group', seq], self));
  await Promise.all(joins);
  t.is(pg.whichGroups().length, groupCount);

  const w = await spawnAgent(cluster);
  const [peerPid] = (await w.cmd<Pid[]>({ cmd: 'spawn', n: 1 })) as [Pid];
  // The peer's real memberships: a few groups, one of them shared with ours.
  for (let seq = 1; seq <= 10; seq++)
    await w.cmd({ cmd: 'join', group: ['group', seq], pids: peerPid });
  await w.cmd({ cmd: 'join', group: 'peer', pids: peerPid });

  const started = performance.now();
  // Fake syncs, all at once (white-box, as pg_SUITE does)…
  const fake = [[encodeGroup(['group', 1]), [peerPid, peerPid]]];
  for (let i = 0; i < syncCount; i++)
    coordinatorOf(cluster).inject(w.id, { t: 'sync', scope: 'pg', groups: fake });
  // …and as many real ones, asked of the node, arriving while the join below is on its way.
  for (let i = 0; i < syncCount; i++) coordinatorOf(cluster).discover(w.id, 'pg');
  // The next call must complete.
  await pg.join('thundering_herd', self);
  const elapsed = performance.now() - started;
  t.log(
    `join after ${syncCount} fake + ${syncCount} real syncs completed in ${elapsed.toFixed(0)} ms`,
  );
  t.deepEqual(pg.getMembers('thundering_herd'), [self]);

  // Once the real syncs are in, the peer's view is its own again.
  await barrier(cluster, w.id);
  t.deepEqual(sorted(pg.getMembers(['group', 1])), sorted([self, peerPid]));
  t.deepEqual(sorted(pg.getMembers(['group', 10])), sorted([self, peerPid]));
  t.deepEqual(pg.getMembers(['group', 11]), [self]);
  t.deepEqual(pg.getMembers('peer'), [peerPid]);
  t.is(pg.whichGroups().length, groupCount + 2);
  t.is(cluster.stats().malformed, 0);
});

test('thundering_herd: a join racing 2,000 syncs from real nodes completes, and the index ends as the union of what the nodes joined', async (t) => {
  const cluster = await start(t);
  const pg = cluster.node.pg;
  const self = cluster.node.self();
  const workers = await spawnAgents(cluster, 4);
  const models = new Map<number, LocalModel>();
  for (const w of workers) {
    const pids = await w.cmd<Pid[]>({ cmd: 'spawn', n: 5 });
    const m = new LocalModel();
    for (let i = 0; i < 50; i++) {
      await w.cmd({ cmd: 'join', group: ['herd', i], pids });
      m.join(['herd', i], pids);
    }
    models.set(w.id, m);
  }
  for (let i = 0; i < 2_000; i++)
    coordinatorOf(cluster).discover(workers[i % workers.length]!.id, 'pg');
  await pg.join('after', self);
  t.deepEqual(pg.getMembers('after'), [self]);
  await Promise.all(workers.map((w) => barrier(cluster, w.id)));
  const union = unionOf(...[...models.values()].map((m) => m.view()), [
    [encodeGroup('after'), [self]],
  ]);
  t.deepEqual(viewOf(pg), union);
});

test('scope_restart: the coordinator thread loses its memberships, every worker node syncs its own back (pg_SUITE scope_restart)', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const scope = 'scope_restart';
  t.true(await startScope(cluster, scope));
  const s = node.scope(scope);
  const [pid] = spawnLocal(cluster.node) as [Pid];
  await s.join(scope, [pid, pid]);
  const [w1, w2] = (await spawnAgents(cluster, 2)) as [Agent, Agent];
  const [r1, doomed] = (await w1.cmd<Pid[]>({ cmd: 'spawn', n: 2 })) as [Pid, Pid];
  const [r2] = (await w2.cmd<Pid[]>({ cmd: 'spawn', n: 1 })) as [Pid];
  await w1.cmd({ cmd: 'join', scope, group: scope, pids: r1 });
  await w1.cmd({ cmd: 'join', scope, group: 'doomed', pids: doomed });
  await w2.cmd({ cmd: 'join', scope, group: 'other', pids: [r2, r2] });
  const all = sorted([r1, pid, pid]);
  t.deepEqual((await settle(() => sorted(s.getMembers(scope)), all)).value, all);

  // Stop the scope and restart it.
  t.true(await cluster.stopScope(scope));
  // While it is down: writes fail, reads are empty (on the worker too), and a member
  // that exits meanwhile must not come back.
  t.like(await w1.cmd({ cmd: 'waitView', scope, expected: [] }), { ok: true });
  await rejects(t, w1.cmd({ cmd: 'join', scope, group: 'late', pids: r1 }), {
    instanceOf: NoScopeError,
    name: 'NoScopeError',
    label: 'join while stopped',
  });
  t.deepEqual(await w1.cmd({ cmd: 'exit', pids: [doomed] }), [true]);
  t.true(await cluster.startScope(scope));

  const expected: View = [
    [encodeGroup('other'), [r2, r2]],
    [encodeGroup(scope), [r1]],
  ];
  t.deepEqual((await settle(() => viewOf(s), expected)).value, expected);
  await barrier(cluster, 0);
  t.deepEqual(s.getMembers(scope), [r1], 'remote pids joined, local ones are missing');
  t.deepEqual(localViewOf(s), [], 'the coordinator thread lost its own memberships');
  t.deepEqual(s.whichLocalGroups(), []);
  t.true(node.isAlive(pid), 'its processes live on');
  t.deepEqual(await w1.cmd({ cmd: 'localView', scope }), [[encodeGroup(scope), [r1]]]);
  t.deepEqual(await w2.cmd({ cmd: 'localView', scope }), [[encodeGroup('other'), [r2, r2]]]);
  t.like(await w2.cmd({ cmd: 'waitView', scope, expected }), { ok: true });

  // Everything works again.
  await s.join(scope, pid);
  await w1.cmd({ cmd: 'leave', scope, group: scope, pids: r1 });
  t.deepEqual((await settle(() => s.getMembers(scope), [pid])).value, [pid]);
});
