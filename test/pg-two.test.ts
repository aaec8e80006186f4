/**
 * pg_SUITE, cluster group, the cases with one or two peer nodes: two, initial,
 * nolocal, double, process_owner_check, empty_group_by_remote_leave, group_leave,
 * plus reads of the shared index from any thread.
 *
 * A peer node is an agent (a worker thread running test/fixtures/agent.ts); pg_SUITE's
 * `rpc:call(Peer, pg, ...)` is `w.cmd(...)`.
 */
import test from 'ava';
import { encodeGroup, InvalidPidError, makePid, NotLocalError, type Pid } from '../src/index.js';
import { barrier, rejects, spawnAgent, spawnAgents, spawnLocal, start } from './support/cluster.js';
import { sorted, viewOf } from './support/views.js';
import { type PollResult, settle, turn } from './support/wait.js';
import { coordinatorOf } from '../src/coordinator/cluster.js';

test('two: a peer sees our join and our exit, we see its joins, its members go when it stops (pg_SUITE two)', async (t) => {
  const cluster = await start(t);
  const w = await spawnAgent(cluster);
  const pg = cluster.node.pg;
  const [pid] = spawnLocal(cluster.node) as [Pid];

  t.is(await pg.join('two', pid), undefined);
  t.deepEqual(pg.getLocalMembers('two'), [pid]);
  t.like(await w.cmd<PollResult<Pid[]>>({ cmd: 'waitMembers', group: 'two', expected: [pid] }), {
    ok: true,
  });
  t.deepEqual(await w.cmd({ cmd: 'localMembers', group: 'two' }), []);

  t.true(cluster.node.exit(pid, 'kill'));
  t.deepEqual(pg.getLocalMembers('two'), []);
  t.like(await w.cmd<PollResult<Pid[]>>({ cmd: 'waitMembers', group: 'two', expected: [] }), {
    ok: true,
  });

  const [p2, p3] = (await w.cmd<Pid[]>({ cmd: 'spawn', n: 2 })) as [Pid, Pid];
  t.is(await w.cmd({ cmd: 'join', group: 'two', pids: p2 }), 'ok');
  t.is(await w.cmd({ cmd: 'join', group: 'two', pids: p3 }), 'ok');
  const both = sorted([p2, p3]);
  t.deepEqual((await settle(() => sorted(pg.getMembers('two')), both)).value, both);
  t.deepEqual(pg.getLocalMembers('two'), []);

  await w.terminate();
  t.false(cluster.nodes().includes(w.id));
  t.deepEqual((await settle(() => pg.getMembers('two'), [])).value, []);
  t.deepEqual(pg.whichGroups(), []);
});

test('two: a peer that leaves the cluster or whose thread exits takes its members with it', async (t) => {
  const cluster = await start(t);
  const [closing, exiting, staying] = await spawnAgents(cluster, 3);
  const pg = cluster.node.pg;
  const members: Pid[] = [];
  for (const w of [closing!, exiting!, staying!]) {
    const pids = await w.cmd<Pid[]>({ cmd: 'spawn', n: 2 });
    await w.cmd({ cmd: 'join', group: 'all', pids });
    await w.cmd({ cmd: 'join', group: ['node', w.id], pids: [...pids, ...pids] });
    members.push(...pids);
  }
  t.is((await settle(() => pg.count('all'), 6)).value, 6);
  const stayingPids = members.slice(4);

  t.is(await closing!.cmd({ cmd: 'close' }), 'closing');
  const afterClose = sorted(members.slice(2));
  t.deepEqual((await settle(() => sorted(pg.getMembers('all')), afterClose)).value, afterClose);
  t.deepEqual(pg.getMembers(['node', closing!.id]), []);

  t.is(await exiting!.cmd({ cmd: 'exitProcess', code: 0 }), 'exiting');
  t.deepEqual(
    (await settle(() => sorted(pg.getMembers('all')), sorted(stayingPids))).value,
    sorted(stayingPids),
  );
  t.deepEqual(pg.getMembers(['node', exiting!.id]), []);
  t.deepEqual((await settle(() => cluster.nodes().sort(), [0, staying!.id])).value, [
    0,
    staying!.id,
  ]);
  t.deepEqual(viewOf(pg), [
    [encodeGroup('all'), sorted(stayingPids)],
    [encodeGroup(['node', staying!.id]), sorted([...stayingPids, ...stayingPids])],
  ]);
});

test('initial: a node that attaches later sees the members already there (pg_SUITE initial)', async (t) => {
  const cluster = await start(t);
  const pg = cluster.node.pg;
  const [pid] = spawnLocal(cluster.node) as [Pid];
  await pg.join('initial', pid);
  t.deepEqual(pg.getLocalMembers('initial'), [pid]);

  const w = await spawnAgent(cluster);
  // The shared index is there from the start: no wait should be needed, but allow one.
  const seen = await w.cmd<PollResult<Pid[]>>({
    cmd: 'waitMembers',
    group: 'initial',
    expected: [pid],
  });
  t.like(seen, { ok: true, value: [pid] });
  t.deepEqual(await w.cmd({ cmd: 'members', group: 'initial' }), [pid]);
  t.deepEqual(await w.cmd({ cmd: 'localMembers', group: 'initial' }), []);
  t.deepEqual(await w.cmd({ cmd: 'whichGroups' }), ['initial']);
  t.deepEqual(await w.cmd({ cmd: 'whichLocalGroups' }), []);

  cluster.node.exit(pid, 'kill');
  t.like(await w.cmd({ cmd: 'waitMembers', group: 'initial', expected: [] }), {
    ok: true,
    value: [],
  });
  t.deepEqual(await w.cmd({ cmd: 'whichGroups' }), []);
});

test('nolocal: remote members never appear in getLocalMembers (pg_SUITE nolocal)', async (t) => {
  const cluster = await start(t);
  const w = await spawnAgent(cluster);
  const pg = cluster.node.pg;
  const [rp] = (await w.cmd<Pid[]>({ cmd: 'spawn', n: 1 })) as [Pid];
  t.is(await w.cmd({ cmd: 'join', group: 'nolocal', pids: rp }), 'ok');
  t.is(await w.cmd({ cmd: 'join', group: 'nolocal', pids: rp }), 'ok');
  t.deepEqual((await settle(() => pg.getMembers('nolocal'), [rp, rp])).value, [rp, rp]);
  t.deepEqual(pg.getLocalMembers('nolocal'), []);
  t.deepEqual(pg.whichLocalGroups(), []);
  t.deepEqual(pg.whichGroups(), ['nolocal']);
  t.deepEqual(await w.cmd({ cmd: 'localMembers', group: 'nolocal' }), [rp, rp]);
  t.deepEqual(await w.cmd({ cmd: 'whichLocalGroups' }), ['nolocal']);
});

test('double: a pid joined twice shows twice, locally and on a peer (pg_SUITE double)', async (t) => {
  const cluster = await start(t);
  const pg = cluster.node.pg;
  const [pid] = spawnLocal(cluster.node) as [Pid];
  await pg.join('double', pid);
  const w = await spawnAgent(cluster);
  await pg.join('double', [pid]);
  t.deepEqual(pg.getMembers('double'), [pid, pid]);
  t.deepEqual(pg.getLocalMembers('double'), [pid, pid]);
  t.is(pg.count('double'), 2);
  t.like(await w.cmd({ cmd: 'waitMembers', group: 'double', expected: [pid, pid] }), {
    ok: true,
    value: [pid, pid],
  });
  t.is(await w.cmd({ cmd: 'count', group: 'double' }), 2);
  // Counted: one leave takes one occurrence.
  t.is(await pg.leave('double', pid), 'ok');
  t.like(await w.cmd({ cmd: 'waitMembers', group: 'double', expected: [pid] }), { ok: true });
});

test('process_owner_check: remote pids reject with NotLocalError, non-pids with a TypeError (pg_SUITE process_owner_check)', async (t) => {
  const cluster = await start(t);
  const w = await spawnAgent(cluster);
  const node = cluster.node;
  const pg = node.pg;
  const [remote] = (await w.cmd<Pid[]>({ cmd: 'spawn', n: 1 })) as [Pid];
  const [local] = spawnLocal(cluster.node) as [Pid];
  const g = 'process_owner_check';

  const e1 = await t.throwsAsync(pg.join(g, remote), { instanceOf: NotLocalError });
  t.is((e1 as NotLocalError).pid, remote, 'the error names the offending pid');
  await t.throwsAsync(pg.join(g, [remote, remote]), { instanceOf: NotLocalError });
  const e3 = await t.throwsAsync(pg.join(g, [local, remote]), { instanceOf: NotLocalError });
  t.is((e3 as NotLocalError).pid, remote);
  await t.throwsAsync(pg.leave(g, remote), { instanceOf: NotLocalError });
  await t.throwsAsync(pg.leave(g, [local, remote]), { instanceOf: NotLocalError });
  // A pid of a node that does not exist is not local either.
  await t.throwsAsync(pg.join(g, makePid(9999, 1)), { instanceOf: NotLocalError });

  // Non-pids: a TypeError (InvalidPidError), alone or in a list.
  for (const bad of [undefined, null, 'pid', 0, -1, 1.5, Number.NaN, {}, [[local]], 2 ** 53]) {
    const e = await t.throwsAsync(pg.join(g, bad as never), { instanceOf: InvalidPidError });
    t.true(e instanceof TypeError);
    await t.throwsAsync(pg.join(g, [bad] as never), { instanceOf: InvalidPidError });
    await t.throwsAsync(pg.join(g, [local, bad] as never), { instanceOf: InvalidPidError });
    await t.throwsAsync(pg.leave(g, bad as never), { instanceOf: InvalidPidError });
  }

  // The same from the peer's side: our pid is remote there.
  const root = node.self();
  const fromPeer = await rejects(t, w.cmd({ cmd: 'join', group: g, pids: root }), {
    instanceOf: NotLocalError,
    name: 'NotLocalError',
    label: 'peer joins our pid',
  });
  t.is((fromPeer as NotLocalError | undefined)?.pid, root);
  await rejects(t, w.cmd({ cmd: 'join', group: g, pids: [remote, root] }), {
    instanceOf: NotLocalError,
    name: 'NotLocalError',
    label: 'peer joins its pid and ours',
  });
  await rejects(t, w.cmd({ cmd: 'join', group: g, pids: [null] as never }), {
    instanceOf: InvalidPidError,
    name: 'InvalidPidError',
    label: 'peer joins a non-pid',
  });

  // And a node that forges a message naming another node's pid is not obeyed.
  const forged = cluster.stats().forged;
  coordinatorOf(cluster).inject(w.id, {
    t: 'join',
    scope: 'pg',
    ref: 1_000_000,
    key: encodeGroup(g),
    pids: [local],
  });
  t.is(cluster.stats().forged, forged + 1);
  await turn(); // inject() applied it synchronously: read in a new job (a new read section)

  // Nothing was joined, anywhere, by any of it.
  t.deepEqual(pg.getMembers(g), []);
  t.deepEqual(pg.whichGroups(), []);
  t.deepEqual(pg.whichLocalGroups(), []);
  t.deepEqual(await w.cmd({ cmd: 'localView' }), []);
  // Both sides still work.
  await pg.join(g, local);
  await w.cmd({ cmd: 'join', group: g, pids: remote });
  const both = sorted([local, remote]);
  t.deepEqual((await settle(() => sorted(pg.getMembers(g)), both)).value, both);
});

test('empty_group_by_remote_leave: after remote leaves the group is gone everywhere (pg_SUITE empty_group_by_remote_leave)', async (t) => {
  const cluster = await start(t);
  const w = await spawnAgent(cluster);
  const pg = cluster.node.pg;
  const g = 'empty_group_by_remote_leave';
  const key = encodeGroup(g);
  const writer = coordinatorOf(cluster).scope('pg')!.writer;
  const [r1, r2] = (await w.cmd<Pid[]>({ cmd: 'spawn', n: 2 })) as [Pid, Pid];

  t.is(await w.cmd({ cmd: 'join', group: g, pids: r1 }), 'ok');
  t.deepEqual((await settle(() => pg.getMembers(g), [r1])).value, [r1]);
  t.deepEqual(pg.whichGroups(), [g]);
  t.true(writer.keys().includes(key));

  t.is(await w.cmd({ cmd: 'leave', group: g, pids: r1 }), 'ok');
  t.deepEqual((await settle(() => pg.getMembers(g), [])).value, []);
  t.deepEqual(pg.whichGroups(), [], 'the empty group is not listed');
  t.false(writer.keys().includes(key), "the coordinator's table has no entry left for it");
  t.deepEqual(await w.cmd({ cmd: 'whichGroups' }), []);
  t.deepEqual(await w.cmd({ cmd: 'whichLocalGroups' }), []);
  t.deepEqual(await w.cmd({ cmd: 'members', group: g }), []);

  // Join [R1, R2], leave [R2, R1]: the other order.
  t.is(await w.cmd({ cmd: 'join', group: g, pids: [r1, r2] }), 'ok');
  const both = sorted([r1, r2]);
  t.deepEqual((await settle(() => sorted(pg.getMembers(g)), both)).value, both);
  t.is(await w.cmd({ cmd: 'leave', group: g, pids: [r2, r1] }), 'ok');
  t.deepEqual((await settle(() => pg.getMembers(g), [])).value, []);
  t.deepEqual(pg.whichGroups(), []);
  t.false(writer.keys().includes(key));
  t.deepEqual(await w.cmd({ cmd: 'whichGroups' }), []);
  t.deepEqual(await w.cmd({ cmd: 'localMembers', group: g }), []);
  // A leave of a group that emptied answers not_joined.
  t.is(await w.cmd({ cmd: 'leave', group: g, pids: r1 }), 'not_joined');
  // A sync now changes nothing (the node's contribution to the group is empty too).
  coordinatorOf(cluster).discover(w.id, 'pg');
  await barrier(cluster, w.id);
  t.deepEqual(viewOf(pg), []);
});

test('group_leave: a pid joined 16 times and left 4 times shows 12; node down clears them (pg_SUITE group_leave)', async (t) => {
  const cluster = await start(t);
  const w = await spawnAgent(cluster);
  const pg = cluster.node.pg;
  const [rp] = (await w.cmd<Pid[]>({ cmd: 'spawn', n: 1 })) as [Pid];
  const total = Array<Pid>(16).fill(rp);
  const left = total.slice(0, 4);
  const remain = total.slice(4);
  t.is(await w.cmd({ cmd: 'join', group: 'two', pids: total }), 'ok');
  t.is(await w.cmd({ cmd: 'leave', group: 'two', pids: left }), 'ok');
  t.deepEqual((await settle(() => pg.getMembers('two'), remain)).value, remain);
  t.is(pg.count('two'), 12);
  t.deepEqual(await w.cmd({ cmd: 'localMembers', group: 'two' }), remain);
  await w.terminate();
  t.deepEqual((await settle(() => pg.getMembers('two'), [])).value, []);
  t.deepEqual(pg.whichGroups(), []);
});

test('group_leave: a list leave takes one occurrence per listed pid (more than joined is ok), an exit takes all', async (t) => {
  const cluster = await start(t);
  const w = await spawnAgent(cluster);
  const pg = cluster.node.pg;
  const [a, b] = (await w.cmd<Pid[]>({ cmd: 'spawn', n: 2 })) as [Pid, Pid];
  await w.cmd({ cmd: 'join', group: 'g', pids: [a, a, a, b, b] });
  t.is(await w.cmd({ cmd: 'leave', group: 'g', pids: [a, b, b, b] }), 'ok');
  t.deepEqual((await settle(() => pg.getMembers('g'), [a, a])).value, [a, a]);
  t.deepEqual(await w.cmd({ cmd: 'localMembers', group: 'g' }), [a, a]);
  t.is(await w.cmd({ cmd: 'leave', group: 'g', pids: [b] }), 'not_joined');
  await w.cmd({ cmd: 'join', group: 'h', pids: [a, a] });
  t.deepEqual(await w.cmd({ cmd: 'exit', pids: [a] }), [true]);
  t.deepEqual((await settle(() => viewOf(pg), [])).value, []);
  t.deepEqual(await w.cmd({ cmd: 'localView' }), []);
});

test('reads are synchronous and come from the shared index on any thread', async (t) => {
  const cluster = await start(t);
  const [writer, reader] = await spawnAgents(cluster, 2);
  const pg = cluster.node.pg;
  const [rp] = (await writer!.cmd<Pid[]>({ cmd: 'spawn', n: 1 })) as [Pid];

  // The reader starts polling its own index view before the writer joins: what it
  // sees reaches it through shared memory, not through any message to it.
  const watching = reader!.sideCmd<PollResult<Pid[]>>({
    cmd: 'waitMembers',
    group: ['shared', 1],
    expected: [rp, rp],
  });
  t.is(await writer!.cmd({ cmd: 'join', group: ['shared', 1], pids: [rp, rp] }), 'ok');
  const seen = await watching;
  t.like(seen, { ok: true, value: [rp, rp] });
  t.is(await reader!.cmd({ cmd: 'count', group: ['shared', 1] }), 2);
  t.deepEqual(await reader!.cmd({ cmd: 'whichGroups' }), [['shared', 1]]);
  t.deepEqual(await reader!.cmd({ cmd: 'localMembers', group: ['shared', 1] }), []);
  // Tuples and their string look-alikes are different groups.
  t.deepEqual(await reader!.cmd({ cmd: 'members', group: 'shared,1' }), []);
  t.deepEqual(await reader!.cmd({ cmd: 'members', group: ['shared', '1'] }), []);

  // On this thread: plain arrays, right away, no promise.
  const members = pg.getMembers(['shared', 1]);
  t.true(Array.isArray(members));
  t.deepEqual(members, [rp, rp]);
  t.is(pg.count(['shared', 1]), 2);

  // A leave is seen the same way.
  const emptied = reader!.sideCmd<PollResult<Pid[]>>({
    cmd: 'waitMembers',
    group: ['shared', 1],
    expected: [],
  });
  t.deepEqual(await writer!.cmd({ cmd: 'exit', pids: [rp] }), [true]);
  t.like(await emptied, { ok: true, value: [] });
  t.deepEqual((await settle(() => pg.getMembers(['shared', 1]), [])).value, []);
});
