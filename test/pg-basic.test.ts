/**
 * pg_SUITE, basic group: the cases that run on the coordinator's own thread (node 0),
 * plus the scope-not-running and bad-input cases.
 *
 * pg_SUITE's `errors` and `dyn_distribution` cases test gen_server callbacks and
 * Erlang's net_kernel; their analogues here are the bad-input tests below.
 */
import test from 'ava';
import {
  encodeGroup,
  InvalidGroupError,
  NoProcessError,
  NoScopeError,
  type Pid,
} from '../src/index.js';
import { barrier, rejects, spawnAgent, spawnLocal, start } from './support/cluster.js';
import type { BadGroupReport } from './support/commands.js';
import { outcomeName, startScope, stopScope } from './support/pg.js';
import { localViewOf, sorted, type View, viewOf } from './support/views.js';
import { settle } from './support/wait.js';

test('pg: the default scope API (pg_SUITE pg)', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const pg = node.pg;
  t.true(cluster.scopes().includes('pg'), 'the default scope runs from the start');
  t.is(node.scope('pg'), pg, "node.pg is scope 'pg'");
  t.true(pg.running);
  const self = node.self();

  t.is(await pg.join('pg', self), undefined);
  t.deepEqual(pg.getLocalMembers('pg'), [self]);
  t.deepEqual(pg.getMembers('pg'), [self]);
  t.is(pg.count('pg'), 1);
  t.deepEqual(pg.whichGroups(), ['pg']);
  t.deepEqual(pg.whichLocalGroups(), ['pg']);

  t.is(await pg.leave('pg', self), 'ok');
  t.deepEqual(pg.getMembers('pg'), []);
  t.deepEqual(pg.getLocalMembers('pg'), []);
  t.is(pg.count('pg'), 0);
  t.deepEqual(pg.whichGroups(), []);
  t.deepEqual(pg.whichLocalGroups(), []);
});

test('single: counted joins, not_joined, empty groups vanish, an exited member is removed (pg_SUITE single)', async (t) => {
  const cluster = await start(t);
  t.true(await startScope(cluster, 'single'));
  const node = cluster.node;
  const s = node.scope('single');
  const self = node.self();

  t.is(await s.join('single', self), undefined);
  t.is(await s.join('single', [self, self]), undefined);
  t.deepEqual(s.getLocalMembers('single'), [self, self, self]);
  t.deepEqual(s.getMembers('single'), [self, self, self]);
  t.is(await s.leave('$missing$', self), 'not_joined');
  t.is(await s.leave('single', [self, self]), 'ok');
  t.deepEqual(s.getMembers('single'), [self]);
  t.is(await s.leave('single', self), 'ok');
  t.deepEqual(s.whichGroups(), []);
  t.deepEqual(s.whichLocalGroups(), []);
  t.deepEqual(s.getLocalMembers('single'), []);
  t.deepEqual(s.getMembers('single'), []);
  t.is(await s.leave('single', self), 'not_joined', 'a group that emptied is gone');

  // "double": self and another process.
  t.is(await s.join('single', self), undefined);
  const [pid] = spawnLocal(cluster.node) as [Pid];
  t.is(await s.join('single', pid), undefined);
  const expected = sorted([pid, self]);
  t.deepEqual(sorted(s.getMembers('single')), expected);
  t.deepEqual(sorted(s.getLocalMembers('single')), expected);

  t.true(node.exit(pid, 'kill'));
  t.deepEqual(s.getLocalMembers('single'), [self], 'the exit leaves at once locally');
  const seen = await settle(() => s.getMembers('single'), [self]);
  t.deepEqual(seen.value, [self], 'the exit reaches the index');
  t.is(await s.leave('single', self), 'ok');
  t.deepEqual(s.whichGroups(), []);
});

test('leave_exit_race: join then leave of an already-exited process, 100 times (pg_SUITE leave_exit_race)', async (t) => {
  // pg.erl: join of a dead local pid passes ensure_local, is inserted and monitored;
  // the monitor's 'DOWN' (noproc) is already queued when join replies `ok`, so pg
  // handles it (removing the pid) before the leave, and the leave answers `not_joined`.
  const cluster = await start(t);
  t.true(await startScope(cluster, 'leave_exit_race'));
  const node = cluster.node;
  const s = node.scope('leave_exit_race');
  const joins: string[] = [];
  const leaves: string[] = [];
  for (let i = 0; i < 100; i++) {
    const [pid] = spawnLocal(cluster.node) as [Pid];
    node.exit(pid);
    joins.push(await outcomeName(s.join('test', pid)));
    leaves.push(await outcomeName(s.leave('test', pid)));
  }
  t.deepEqual((await settle(() => viewOf(s), [])).value, [], 'nothing is left in the index');
  t.deepEqual(s.getMembers('test'), []);
  t.deepEqual(s.whichLocalGroups(), []);

  // The scope still works.
  const self = node.self();
  await s.join('test', self);
  t.deepEqual(s.getMembers('test'), [self]);
  t.is(await s.leave('test', self), 'ok');
  t.deepEqual(s.whichGroups(), []);
  t.deepEqual(cluster.stats().malformed, 0);

  // Last, as ava stops at the first failed assertion: what each call answered.
  t.deepEqual(
    { joins: [...new Set(joins)], leaves: [...new Set(leaves)] },
    { joins: ['ok'], leaves: ['not_joined'] },
    "join of an exited local process answers ok, as pg's join does; its leave then answers not_joined",
  );
});

test('leave_exit_race: a join in flight when its process exits answers ok, the leave after the exit not_joined, and the index ends empty (100 times)', async (t) => {
  // The literal race of pg_SUITE: the join is on its way when the process exits, and
  // the leave comes after the exit. pg answers the join `ok` and the leave `not_joined`.
  const cluster = await start(t);
  t.true(await startScope(cluster, 'leave_exit_race'));
  const node = cluster.node;
  const s = node.scope('leave_exit_race');
  const joins: Promise<string>[] = [];
  const leaves: string[] = [];
  for (let i = 0; i < 100; i++) {
    const [pid] = spawnLocal(cluster.node) as [Pid];
    joins.push(outcomeName(s.join('test', pid)));
    node.exit(pid);
    leaves.push(await outcomeName(s.leave('test', pid)));
  }
  t.deepEqual([...new Set(await Promise.all(joins))], ['ok']);
  t.deepEqual([...new Set(leaves)], ['not_joined']);
  const seen = await settle(() => viewOf(s), []);
  t.deepEqual(seen.value, [], 'nothing is left in the index');
  t.deepEqual(s.whichLocalGroups(), []);
  const self = node.self();
  await s.join('test', self);
  t.deepEqual(s.getMembers('test'), [self]);
});

test('missing_scope_join: join/leave on a scope that is not running reject with NoScopeError, reads are [] (pg_SUITE missing_scope_join)', async (t) => {
  const cluster = await start(t);
  const w = await spawnAgent(cluster);
  const node = cluster.node;
  const missing = node.scope('missing_scope_join');
  const self = node.self();
  t.false(missing.running);

  await t.throwsAsync(missing.join('g', self), { instanceOf: NoScopeError });
  await t.throwsAsync(missing.leave('g', self), { instanceOf: NoScopeError });
  t.deepEqual(missing.getMembers('g'), []);
  t.deepEqual(missing.getLocalMembers('g'), []);
  t.is(missing.count('g'), 0);
  t.deepEqual(missing.whichGroups(), []);
  t.deepEqual(missing.whichLocalGroups(), []);

  // On a peer, as pg_SUITE does it.
  const [rp] = await w.cmd<Pid[]>({ cmd: 'spawn', n: 1 });
  await rejects(t, w.cmd({ cmd: 'join', scope: 'missing_scope_join', group: 'g', pids: rp! }), {
    instanceOf: NoScopeError,
    name: 'NoScopeError',
    label: 'worker join',
  });
  await rejects(t, w.cmd({ cmd: 'leave', scope: 'missing_scope_join', group: 'g', pids: rp! }), {
    instanceOf: NoScopeError,
    name: 'NoScopeError',
    label: 'worker leave',
  });
  t.deepEqual(await w.cmd({ cmd: 'members', scope: 'missing_scope_join', group: 'g' }), []);
  t.deepEqual(await w.cmd({ cmd: 'whichGroups', scope: 'missing_scope_join' }), []);
  t.deepEqual(await w.cmd({ cmd: 'localView', scope: 'missing_scope_join' }), []);
  // Nothing went into the default scope either.
  t.deepEqual(viewOf(node.pg), []);
});

test('a stopped scope: join/leave reject with NoScopeError on every node, reads are []', async (t) => {
  const cluster = await start(t);
  t.true(await startScope(cluster, 'stopped'));
  const w = await spawnAgent(cluster);
  const node = cluster.node;
  const s = node.scope('stopped');
  const self = node.self();
  const [rp] = (await w.cmd<Pid[]>({ cmd: 'spawn', n: 1 })) as [Pid];
  await s.join('g', self);
  await w.cmd({ cmd: 'join', scope: 'stopped', group: 'g', pids: rp });
  t.deepEqual(
    (await settle(() => sorted(s.getMembers('g')), sorted([self, rp]))).value,
    sorted([self, rp]),
  );

  t.true(await stopScope(cluster, 'stopped'));
  t.false(await stopScope(cluster, 'stopped'), 'stopping twice answers false');
  t.false(cluster.scopes().includes('stopped'));

  // Reads: [] on this thread and on the worker (it learns of the stop by message).
  const gone = await settle(() => [s.running, viewOf(s), s.count('g')], [false, [], 0]);
  t.deepEqual(gone.value, [false, [], 0]);
  t.deepEqual(s.getLocalMembers('g'), [], "the coordinator thread's memberships are gone");
  t.deepEqual(s.whichLocalGroups(), []);
  const wv = await w.cmd({ cmd: 'waitView', scope: 'stopped', expected: [] });
  t.like(wv, { ok: true, value: [] });
  t.deepEqual(await w.cmd({ cmd: 'members', scope: 'stopped', group: 'g' }), []);
  t.is(await w.cmd({ cmd: 'count', scope: 'stopped', group: 'g' }), 0);

  // Writes: NoScopeError everywhere, on members and non-members alike.
  await t.throwsAsync(s.join('g', self), { instanceOf: NoScopeError });
  await t.throwsAsync(s.leave('g', self), { instanceOf: NoScopeError });
  await rejects(t, w.cmd({ cmd: 'join', scope: 'stopped', group: 'g', pids: rp }), {
    instanceOf: NoScopeError,
    name: 'NoScopeError',
    label: 'worker join',
  });
  await rejects(t, w.cmd({ cmd: 'leave', scope: 'stopped', group: 'g', pids: rp }), {
    instanceOf: NoScopeError,
    name: 'NoScopeError',
    label: 'worker leave of a member',
  });
  await rejects(t, w.cmd({ cmd: 'leave', scope: 'stopped', group: 'h', pids: rp }), {
    instanceOf: NoScopeError,
    name: 'NoScopeError',
    label: 'worker leave of a non-member',
  });
  // Other scopes are not affected.
  await node.pg.join('still', self);
  t.deepEqual(node.pg.getMembers('still'), [self]);
});

test('disconnected_start: a scope starts and stops on a cluster with no worker nodes (pg_SUITE disconnected_start)', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  t.deepEqual(cluster.nodes(), [0]);
  const self = node.self();

  t.true(await startScope(cluster, 'disconnected_start'));
  t.false(await startScope(cluster, 'disconnected_start'), 'starting twice answers false');
  const s = node.scope('disconnected_start');
  t.true(s.running);
  await s.join('g', self);
  t.deepEqual(s.getMembers('g'), [self]);
  t.true(await stopScope(cluster, 'disconnected_start'));
  t.false(s.running);
  t.deepEqual(s.getMembers('g'), []);
  await t.throwsAsync(s.join('g', self), { instanceOf: NoScopeError });
  t.true(await startScope(cluster, 'disconnected_start'));
  t.true(s.running);
  t.deepEqual(viewOf(s), [], 'a restarted scope starts empty on the coordinator thread');
  await s.join('g', self);
  t.deepEqual(s.getMembers('g'), [self]);
  t.true(await stopScope(cluster, 'disconnected_start'));

  // The default scope too, as pg_SUITE does with its per-test scope.
  t.true(await stopScope(cluster, 'pg'));
  t.true(await startScope(cluster, 'pg'));
  t.true(await stopScope(cluster, 'pg'));
  const pid = node.spawn(() => 'pong');
  t.true(node.isAlive(pid), 'the node still spawns processes');
  t.is(await node.call(pid, 'ping'), 'pong');
  t.true(await startScope(cluster, 'pg'));
  await node.pg.join('g', pid);
  t.deepEqual(node.pg.getMembers('g'), [pid]);
});

test('startScope resolves once the scope is usable on the calling thread', async (t) => {
  // pg's start/start_link return once the scope's table exists: a join right after
  // works. The same is expected of cluster.startScope on the thread that called it.
  const cluster = await start(t);
  const node = cluster.node;
  const self = node.self();
  const s = node.scope('fresh');
  const started = await cluster.startScope('fresh');
  const running = s.running;
  const joined = await outcomeName(s.join('g', self));
  await barrier(cluster, 0);
  t.deepEqual(
    { started, running, joined, members: s.getMembers('g') },
    { started: true, running: true, joined: 'ok', members: [self] },
  );
});

test('stopScope + startScope: a join made after startScope resolved is not failed by the stop before it', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const self = node.self();
  const s = node.scope('fresh');
  t.true(await startScope(cluster, 'fresh'));
  await s.join('g', self);

  const stopped = await cluster.stopScope('fresh');
  const runningAfterStop = s.running;
  const started = await cluster.startScope('fresh');
  const joined = await outcomeName(s.join('h', self));
  await barrier(cluster, 0);
  t.true(s.running);
  t.is(await outcomeName(s.join('i', self)), 'ok', 'a join once the node caught up');
  t.deepEqual(
    { stopped, runningAfterStop, started, joined },
    { stopped: true, runningAfterStop: false, started: true, joined: 'ok' },
  );
});

const BAD_GROUPS: [string, unknown][] = [
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['-Infinity', Number.NEGATIVE_INFINITY],
  ['object', { a: 1 }],
  ['empty object', {}],
  ['symbol', Symbol('g')],
  ['null', null],
  ['undefined', undefined],
  ['boolean', true],
  ['bigint', 10n],
  ['Date', new Date(0)],
  ['function', () => 1],
  ['tuple with NaN', ['ok', Number.NaN]],
  ['tuple with object', ['ok', {}]],
  ['tuple with symbol', [Symbol('t')]],
  ['nested tuple', [['inner']]],
];

test('bad groups (NaN, objects, symbols…) reject or throw InvalidGroupError and lose nothing', async (t) => {
  const cluster = await start(t);
  const w = await spawnAgent(cluster);
  const node = cluster.node;
  const pg = node.pg;
  const self = node.self();
  const [rp] = (await w.cmd<Pid[]>({ cmd: 'spawn', n: 1 })) as [Pid];
  await pg.join('keep', self);
  await pg.join(['t', 1], [self, self]);
  await w.cmd({ cmd: 'join', group: 'keep', pids: rp });
  await w.cmd({ cmd: 'join', group: 'remote', pids: rp });
  const before = (
    await settle(() => viewOf(pg), [
      [encodeGroup('keep'), sorted([self, rp])],
      [encodeGroup('remote'), [rp]],
      [encodeGroup(['t', 1]), [self, self]],
    ] as View)
  ).value;
  t.is(before.length, 3);
  const localBefore = localViewOf(pg);
  const statsBefore = cluster.stats();

  for (const [label, bad] of BAD_GROUPS) {
    const g = bad as never;
    const err = { instanceOf: InvalidGroupError };
    await t.throwsAsync(pg.join(g, self), err, `join(${label}) rejects`);
    await t.throwsAsync(pg.leave(g, self), err, `leave(${label}) rejects`);
    t.throws(() => pg.getMembers(g), err, `getMembers(${label}) throws`);
    t.throws(() => pg.getLocalMembers(g), err, `getLocalMembers(${label}) throws`);
    t.throws(() => pg.count(g), err, `count(${label}) throws`);
    // …also on a scope that is not running, where the answer would otherwise be [].
    const idle = node.scope('never-started');
    t.throws(() => idle.getMembers(g), err, `getMembers(${label}) on a missing scope throws`);
    t.throws(() => idle.getLocalMembers(g), err, `getLocalMembers(${label}) on a missing scope`);
  }
  t.true(new InvalidGroupError('x') instanceof TypeError, 'InvalidGroupError is a TypeError');

  // The same on a worker thread.
  const reports = await w.cmd<BadGroupReport[]>({ cmd: 'badGroups' });
  t.true(reports.length >= 10);
  for (const r of reports) {
    t.deepEqual(
      r,
      {
        label: r.label,
        join: 'InvalidGroupError',
        leave: 'InvalidGroupError',
        getMembers: 'InvalidGroupError',
        getLocalMembers: 'InvalidGroupError',
        count: 'InvalidGroupError',
      },
      `worker, ${r.label}`,
    );
  }

  // Nothing already joined was lost, anywhere.
  t.deepEqual(viewOf(pg), before);
  t.deepEqual(localViewOf(pg), localBefore);
  t.deepEqual(await w.cmd({ cmd: 'view' }), before);
  t.deepEqual(await w.cmd({ cmd: 'localView' }), [
    [encodeGroup('keep'), [rp]],
    [encodeGroup('remote'), [rp]],
  ]);
  t.deepEqual(cluster.stats(), statsBefore, 'nothing reached the coordinator');
  // A join of a live process after all that still works.
  await pg.join('keep', self);
  t.is(pg.count('keep'), 3);
});

test('join of a pid of this node that never existed', async (t) => {
  // Not in pg_SUITE: pg would monitor it, get 'DOWN' noproc at once and drop it again.
  // Whatever the answer, nothing must stay behind.
  const cluster = await start(t);
  const pg = cluster.node.pg;
  const ghost = (cluster.node.self() + 1000) as Pid;
  const r = await outcomeName(pg.join('ghost', ghost));
  t.true(r === 'ok' || r === NoProcessError.name, `join answered ${r}`);
  const seen = await settle(() => viewOf(pg), []);
  t.deepEqual(seen.value, []);
  t.deepEqual(pg.whichLocalGroups(), []);
});
