/**
 * pg_SUITE's monitor cases (OTP 25.1+): monitor_nonempty_scope, monitor_scope, monitor,
 * monitor_self, multi_monitor.
 *
 * pg_SUITE's peer node is an agent (a worker thread running test/fixtures/agent.ts); its
 * `wait_message` (a receive with a timeout) becomes a round trip to the nodes involved
 * (`flush`) followed by an exact check of what the monitor collected. pg_SUITE's white-box
 * checks of pg's state (`sys:get_state`) become a wire spy: a node on this thread whose
 * control port the test also listens to, so that the test sees every event the
 * coordinator still sends for a monitor.
 */
import test, { type ExecutionContext } from 'ava';
import { type Group, NotLocalError, type Pid } from '../src/index.js';
import { flush, spawnAgent, spawnLocal, start } from './support/cluster.js';
import {
  type CollectorState,
  join,
  leave,
  spyNode,
  type Started,
  watch,
} from './support/monitor.js';
import { sorted, viewFrom } from './support/views.js';

test('monitor_nonempty_scope: monitorScope returns every group of the scope with its members', async (t) => {
  const cluster = await start(t);
  const pg = cluster.node.pg;
  const w = await spawnAgent(cluster);
  const [pid] = spawnLocal(cluster.node) as [Pid];
  const [remote] = (await w.sideCmd<Pid[]>({ cmd: 'spawn', n: 1 })) as [Pid];
  await pg.join('one', pid);
  t.is(await w.sideCmd({ cmd: 'join', group: 'one', pids: remote }), 'ok');

  const first = await pg.monitorScope();
  t.deepEqual(sorted(first.groups.get('one') ?? []), sorted([pid, remote]));
  // No extra group in the scope.
  t.is(first.groups.size, 1);
  await pg.demonitor(first.ref);

  // Again: the same map.
  const again = await pg.monitorScope();
  t.deepEqual(viewFrom(again.groups), viewFrom(first.groups));
  // And as seen from the worker.
  const remoteSnap = await w.sideCmd<Started>({ cmd: 'watch', name: 'scope' });
  t.deepEqual(viewFrom(remoteSnap.snapshot), viewFrom(first.groups));
  await pg.demonitor(again.ref);
});

/**
 * pg_SUITE's monitor_test_impl, for a scope monitor (`group` undefined in the calls) or
 * a group monitor.
 */
async function monitorTestImpl(t: ExecutionContext, group: Group, kind: 'scope' | 'group') {
  const cluster = await start(t);
  const node = cluster.node;
  const pg = node.pg;
  const target = kind === 'group' ? group : undefined;
  const [self] = spawnLocal(node) as [Pid];

  // Demonitoring a monitor that is not installed does nothing (pg answers false).
  t.is(await pg.demonitor(987_654), undefined);

  const first = await watch(pg, target);
  t.deepEqual(first.snapshot, kind === 'scope' ? [] : [[group, []]], 'initial snapshot');

  // Local join.
  await pg.join(group, self);
  await flush(cluster, [0]);
  t.deepEqual(first.c.events, [join(group, [self])], 'Local join');

  // A second monitor, which has 1 local pid at the start.
  const second = await watch(pg, target);
  t.deepEqual(second.snapshot, [[group, [self]]], 'second monitor snapshot');

  // A remote node, and a monitor there.
  const w = await spawnAgent(cluster);
  const third = await w.sideCmd<Started>(
    kind === 'group' ? { cmd: 'watch', name: 'third', group } : { cmd: 'watch', name: 'third' },
  );
  t.deepEqual(third.snapshot, [[group, [self]]], 'remote monitor snapshot');

  // Remote join, the same pid twice.
  const [remote] = (await w.sideCmd<Pid[]>({ cmd: 'spawn', n: 1 })) as [Pid];
  t.is(await w.sideCmd({ cmd: 'join', group, pids: [remote, remote] }), 'ok');
  await flush(cluster, [w.id, 0]);
  t.deepEqual(first.c.events.at(-1), join(group, [remote, remote]), 'Remote join');

  // Local leave.
  t.deepEqual(pg.getLocalMembers(group), [self]);
  t.is(await pg.leave(group, self), 'ok');
  await flush(cluster, [0]);
  t.deepEqual(first.c.events.at(-1), leave(group, [self]), 'Local leave');

  // Remote leave: one of the two joins.
  t.is(await w.sideCmd({ cmd: 'leave', group, pids: remote }), 'ok');
  await flush(cluster, [w.id, 0]);
  t.deepEqual(first.c.events.at(-1), leave(group, [remote]), 'Remote leave');

  // The second monitor and the remote one saw exactly these.
  const expected = [join(group, [remote, remote]), leave(group, [self]), leave(group, [remote])];
  t.deepEqual(second.c.events, expected, 'Local monitor failed');
  const thirdState = await w.sideCmd<CollectorState>({ cmd: 'watchEvents', name: 'third' });
  t.deepEqual(
    thirdState,
    { events: expected, ended: false, error: undefined },
    'Remote monitor failed',
  );
  t.deepEqual(first.c.events, [join(group, [self]), ...expected]);

  // The peer stops: its remaining member leaves; its monitor goes with it.
  await w.terminate();
  t.false(cluster.nodes().includes(w.id));
  await flush(cluster, [0]);
  t.deepEqual(first.c.events.at(-1), leave(group, [remote]), 'Remote stop');
  t.deepEqual(second.c.events.at(-1), leave(group, [remote]));
  t.deepEqual(pg.getMembers(group), []);

  // The scope keeps serving monitors on other nodes (the dead node's monitor did not
  // break it): a new peer monitors and sees the next change.
  const w2 = await spawnAgent(cluster);
  const fourth = await w2.sideCmd<Started>(
    kind === 'group' ? { cmd: 'watch', name: 'fourth', group } : { cmd: 'watch', name: 'fourth' },
  );
  t.deepEqual(fourth.snapshot, kind === 'scope' ? [] : [[group, []]]);

  // Demonitor; a second demonitor does nothing.
  t.is(await pg.demonitor(first.ref), undefined);
  t.is(await pg.demonitor(first.ref), undefined);
  await first.c.done;
  t.true(first.c.ended);
  t.is(first.c.error, undefined);
  const seen = first.c.events.length;

  // No event after demonitor; the live monitors of the same kind get it.
  await pg.join(group, self);
  await flush(cluster);
  t.is(first.c.events.length, seen, 'join should not be here');
  t.deepEqual(second.c.events.at(-1), join(group, [self]));
  t.deepEqual((await w2.sideCmd<CollectorState>({ cmd: 'watchEvents', name: 'fourth' })).events, [
    join(group, [self]),
  ]);
}

test('monitor_scope: scope monitor sees local and remote joins and leaves, and leaves of a peer that stops', async (t) => {
  await monitorTestImpl(t, 'monitor_scope', 'scope');
});

test('monitor: group monitor sees local and remote joins and leaves, and leaves of a peer that stops', async (t) => {
  await monitorTestImpl(t, ['monitor', 1], 'group');
});

test('monitor: a group monitor sees only its group; a scope monitor every group', async (t) => {
  const cluster = await start(t);
  const pg = cluster.node.pg;
  const [a] = spawnLocal(cluster.node) as [Pid];
  const scope = await watch(pg);
  const one = await watch(pg, 'one');
  const tuple = await watch(pg, ['one']);
  await pg.join('one', a);
  await pg.join(['one'], a);
  await pg.join('other', a);
  await flush(cluster, [0]);
  t.deepEqual(one.c.events, [join('one', [a])]);
  t.deepEqual(tuple.c.events, [join(['one'], [a])]);
  t.deepEqual(scope.c.events, [join('one', [a]), join(['one'], [a]), join('other', [a])]);
});

test('dead monitors are removed: one whose owner exits and one whose node goes away', async (t) => {
  const cluster = await start(t);
  const spy = await spyNode(cluster);
  const pg = spy.node.pg;
  const [owner, member] = spawnLocal(spy.node, 2) as [Pid, Pid];
  const owned = await watch(pg, undefined, { owner });
  const ownedGroup = await watch(pg, 'g', { owner });
  const live = await watch(pg);
  const liveGroup = await watch(pg, 'g');

  await pg.join('g', member);
  await flush(cluster, [spy.node.id]);
  t.deepEqual(owned.c.events, [join('g', [member])]);
  t.deepEqual(ownedGroup.c.events, [join('g', [member])]);

  t.true(spy.node.exit(owner));
  await owned.c.done;
  await ownedGroup.c.done;
  t.true(owned.c.ended && ownedGroup.c.ended);
  t.is(owned.c.error, undefined);
  t.is(ownedGroup.c.error, undefined);

  // A worker holds monitors too, then goes away.
  const w = await spawnAgent(cluster);
  await w.sideCmd({ cmd: 'watch', name: 'scope' });
  await w.sideCmd({ cmd: 'watch', name: 'group', group: 'g' });
  await w.terminate();

  // The scope works on: later events reach the live monitors of the same kinds...
  await pg.leave('g', member);
  await pg.join('g', [member, member]);
  await flush(cluster);
  const after = [join('g', [member]), leave('g', [member]), join('g', [member, member])];
  t.deepEqual(live.c.events, after);
  t.deepEqual(liveGroup.c.events, after);
  // ...and the coordinator sent nothing more for the owned monitors: only the one join
  // each saw before its owner exited ever crossed the wire for them.
  const forRef = (ref: number) => spy.wire.filter((e) => e.ref === ref).length;
  t.is(forRef(owned.ref), 1, 'the owned scope monitor is still installed on the coordinator');
  t.is(forRef(ownedGroup.ref), 1, 'the owned group monitor is still installed on the coordinator');
  t.is(forRef(live.ref), 3);
});

// OTP's GH-7625: a process that monitors a group, joins it and exits.
test('monitor_self: a monitor owned by a process that joins its group and exits gets only that join, then ends; other monitors see every join and leave', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const pg = node.pg;
  const observer = await watch(pg, 'monitor_self');

  // On this thread.
  const [p] = spawnLocal(node) as [Pid];
  const own = await watch(pg, 'monitor_self', { owner: p });
  await pg.join('monitor_self', p);
  t.true(node.exit(p));
  await own.c.done;
  t.true(own.c.ended);
  t.is(own.c.error, undefined);
  t.deepEqual(own.c.events, [join('monitor_self', [p])]);

  // On a worker.
  const w = await spawnAgent(cluster);
  const [q] = (await w.sideCmd<Pid[]>({ cmd: 'spawn', n: 1 })) as [Pid];
  await w.sideCmd({ cmd: 'watch', name: 'own', group: 'monitor_self', owner: q });
  await w.sideCmd({ cmd: 'join', group: 'monitor_self', pids: q });
  t.deepEqual(await w.sideCmd({ cmd: 'exit', pids: [q] }), [true]);
  await flush(cluster, [w.id, 0]);
  t.deepEqual(await w.sideCmd<CollectorState>({ cmd: 'watchEvents', name: 'own' }), {
    events: [join('monitor_self', [q])],
    ended: true,
    error: undefined,
  });

  // The scope still works: the observer saw both lives, and sees a new member.
  const [r] = spawnLocal(node) as [Pid];
  await pg.join('monitor_self', r);
  await flush(cluster, [0]);
  t.deepEqual(observer.c.events, [
    join('monitor_self', [p]),
    leave('monitor_self', [p]),
    join('monitor_self', [q]),
    leave('monitor_self', [q]),
    join('monitor_self', [r]),
  ]);
  t.deepEqual(pg.getMembers('monitor_self'), [r]);
});

test('multi_monitor: two group monitors and a scope monitor of one process, joins to two groups give 4 events', async (t) => {
  const cluster = await start(t);
  const spy = await spyNode(cluster);
  const pg = spy.node.pg;
  const [p] = spawnLocal(spy.node) as [Pid];
  const one = await watch(pg, 'one', { owner: p });
  const two = await watch(pg, 'two', { owner: p });
  const scope = await watch(pg, undefined, { owner: p });
  t.deepEqual(one.snapshot, [['one', []]]);
  t.deepEqual(two.snapshot, [['two', []]]);
  await pg.join('one', p);
  await pg.join('two', p);
  await flush(cluster, [spy.node.id]);
  t.deepEqual(one.c.events, [join('one', [p])]);
  t.deepEqual(two.c.events, [join('two', [p])]);
  t.deepEqual(scope.c.events, [join('one', [p]), join('two', [p])]);
  const refs = new Set([one.ref, two.ref, scope.ref]);
  t.is(spy.wire.filter((e) => refs.has(e.ref)).length, 4);

  // The process exits normally: every monitor it owned ends, and the coordinator keeps
  // none of them (pg_SUITE checks pg's state is empty of monitors).
  t.true(spy.node.exit(p, 'normal'));
  await Promise.all([one.c.done, two.c.done, scope.c.done]);
  const [q] = spawnLocal(spy.node) as [Pid];
  await pg.join('one', q);
  await pg.join('two', q);
  await flush(cluster);
  t.is(spy.wire.filter((e) => refs.has(e.ref)).length, 4, 'events still sent for removed monitors');
  t.deepEqual(pg.getMembers('one'), [q]);
  t.deepEqual(pg.getMembers('two'), [q]);
});

test('monitor options: an owner of another node is refused; an owner that already exited ends the monitor at once', async (t) => {
  const cluster = await start(t);
  const pg = cluster.node.pg;
  const w = await spawnAgent(cluster);
  const [remote] = (await w.sideCmd<Pid[]>({ cmd: 'spawn', n: 1 })) as [Pid];
  const err = await pg.monitorScope({ owner: remote }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.true(err instanceof NotLocalError, `expected NotLocalError, got ${String(err)}`);

  // A monitor for a process that is already gone: like a join of an exited pid (which
  // "leaves again at once"), it must not outlive its owner. Either the call refuses, or
  // the stream ends.
  const [dead] = spawnLocal(cluster.node) as [Pid];
  cluster.node.exit(dead);
  const outcome = await watch(pg, undefined, { owner: dead }).then(
    async (m) => {
      const [other] = spawnLocal(cluster.node) as [Pid];
      await cluster.node.pg.join('after', other);
      await flush(cluster, [0]);
      return m.c.ended ? 'ended' : `still open, got ${JSON.stringify(m.c.events)}`;
    },
    (e: unknown) => `refused (${e instanceof Error ? e.name : String(e)})`,
  );
  t.regex(outcome, /^(ended|refused)/, 'a monitor owned by a dead process stays installed');
});
