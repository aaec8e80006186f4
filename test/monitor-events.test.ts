/**
 * The exact contents of monitor events: what a join, a leave, a process exit, a node
 * going down and a sync that changes groups each deliver, to scope and group monitors,
 * on this thread and on a worker.
 */
import test from 'ava';
import { encodeGroup, type Pid } from '../src/index.js';
import { flush, spawnAgent, spawnAgents, spawnLocal, start } from './support/cluster.js';
import {
  type CollectorState,
  eventMultiset,
  join,
  leave,
  sortedEvent,
  type Started,
  watch,
} from './support/monitor.js';
import { viewFrom, viewOf } from './support/views.js';
import { coordinatorOf } from '../src/coordinator/cluster.js';

test('a local join of [p, p] delivers [p, p]; a leave delivers exactly the pids that left', async (t) => {
  const cluster = await start(t);
  const pg = cluster.node.pg;
  const [p, q, r] = spawnLocal(cluster.node, 3) as [Pid, Pid, Pid];
  const scope = await watch(pg);
  const group = await watch(pg, 'g');

  await pg.join('g', [p, p]);
  await pg.join('g', [q, p, r]);
  // Leave p twice and q once; r stays. p is in the group three times.
  t.is(await pg.leave('g', [p, q, p]), 'ok');
  // A list with a pid that is not a member: only the member leaves.
  t.is(await pg.leave('g', [r, q]), 'ok');
  // Nothing of it is a member: no event.
  t.is(await pg.leave('g', [q]), 'not_joined');
  t.is(await pg.leave('nowhere', [p]), 'not_joined');
  // A marker, so that a stray event from the not_joined leaves would show before it.
  await pg.join('marker', q);
  await flush(cluster, [0]);

  const inG = [join('g', [p, p]), join('g', [q, p, r]), leave('g', [p, q, p]), leave('g', [r])];
  t.deepEqual(group.c.events.map(sortedEvent), inG.map(sortedEvent));
  t.deepEqual(scope.c.events.map(sortedEvent), [...inG, join('marker', [q])].map(sortedEvent));
  // Joins carry the pids in the order given.
  t.deepEqual(group.c.events[0], join('g', [p, p]));
  t.deepEqual(group.c.events[1], join('g', [q, p, r]));
  t.deepEqual(pg.getMembers('g'), [p]);
});

test('remote joins and leaves deliver the same pids to monitors on every node', async (t) => {
  const cluster = await start(t);
  const pg = cluster.node.pg;
  const [a, b] = await spawnAgents(cluster, 2);
  const here = await watch(pg);
  await b!.sideCmd({ cmd: 'watch', name: 'scope' });
  await b!.sideCmd({ cmd: 'watch', name: 'group', group: ['g', 1] });
  const [x, y] = (await a!.sideCmd<Pid[]>({ cmd: 'spawn', n: 2 })) as [Pid, Pid];

  await a!.sideCmd({ cmd: 'join', group: ['g', 1], pids: [x, x, y] });
  await a!.sideCmd({ cmd: 'join', group: 'g,1', pids: [y] });
  t.is(await a!.sideCmd({ cmd: 'leave', group: ['g', 1], pids: [x, y, y] }), 'ok');
  await flush(cluster);

  const expected = [join(['g', 1], [x, x, y]), join('g,1', [y]), leave(['g', 1], [x, y])];
  t.deepEqual(here.c.events.map(sortedEvent), expected);
  t.deepEqual(
    (await b!.sideCmd<CollectorState>({ cmd: 'watchEvents', name: 'scope' })).events.map(
      sortedEvent,
    ),
    expected,
  );
  t.deepEqual(
    (await b!.sideCmd<CollectorState>({ cmd: 'watchEvents', name: 'group' })).events.map(
      sortedEvent,
    ),
    [expected[0], expected[2]],
  );
});

test('a process exit gives one leave of [pid] per counted join', async (t) => {
  const cluster = await start(t);
  const pg = cluster.node.pg;
  const w = await spawnAgent(cluster);
  const [p, other] = spawnLocal(cluster.node, 2) as [Pid, Pid];
  const [q] = (await w.sideCmd<Pid[]>({ cmd: 'spawn', n: 1 })) as [Pid];

  await pg.join('a', [p, p, other]);
  await pg.join('b', p);
  await pg.join(['c'], [p, p, p]);
  await w.sideCmd({ cmd: 'join', group: 'a', pids: [q, q] });
  await w.sideCmd({ cmd: 'join', group: 'd', pids: [q] });
  await flush(cluster);

  const scope = await watch(pg);
  const groupA = await watch(pg, 'a');
  await w.sideCmd({ cmd: 'watch', name: 'scope' });

  t.true(cluster.node.exit(p));
  t.deepEqual(await w.sideCmd({ cmd: 'exit', pids: [q] }), [true]);
  await flush(cluster);

  const pLeaves = [
    leave('a', [p]),
    leave('a', [p]),
    leave('b', [p]),
    leave(['c'], [p]),
    leave(['c'], [p]),
    leave(['c'], [p]),
  ];
  const qLeaves = [leave('a', [q]), leave('a', [q]), leave('d', [q])];
  t.deepEqual(eventMultiset(scope.c.events), eventMultiset([...pLeaves, ...qLeaves]));
  t.deepEqual(
    eventMultiset((await w.sideCmd<CollectorState>({ cmd: 'watchEvents', name: 'scope' })).events),
    eventMultiset([...pLeaves, ...qLeaves]),
  );
  t.deepEqual(
    eventMultiset(groupA.c.events),
    eventMultiset([leave('a', [p]), leave('a', [p]), leave('a', [q]), leave('a', [q])]),
  );
  t.deepEqual(viewOf(pg), [['sa', [other]]]);
});

test("a node going down gives one leave per group with that node's pids", async (t) => {
  const cluster = await start(t);
  const pg = cluster.node.pg;
  const [w, closing, other] = await spawnAgents(cluster, 3);
  const [mine] = spawnLocal(cluster.node) as [Pid];
  const [p1, p2] = (await w!.sideCmd<Pid[]>({ cmd: 'spawn', n: 2 })) as [Pid, Pid];
  const [c1] = (await closing!.sideCmd<Pid[]>({ cmd: 'spawn', n: 1 })) as [Pid];
  const [o1] = (await other!.sideCmd<Pid[]>({ cmd: 'spawn', n: 1 })) as [Pid];
  await w!.sideCmd({ cmd: 'join', group: 'a', pids: [p1, p1, p2] });
  await w!.sideCmd({ cmd: 'join', group: 'b', pids: [p2] });
  await w!.sideCmd({ cmd: 'join', group: ['t', 2], pids: [p1] });
  await closing!.sideCmd({ cmd: 'join', group: 'a', pids: [c1, c1] });
  await other!.sideCmd({ cmd: 'join', group: 'a', pids: [o1] });
  await pg.join('a', mine);
  await flush(cluster);

  const scope = await watch(pg);
  const groupA = await watch(pg, 'a');
  const groupB = await watch(pg, 'b');
  await other!.sideCmd({ cmd: 'watch', name: 'scope' });

  // The worker's thread is terminated.
  await w!.terminate();
  await flush(cluster);
  const down = [leave('a', [p1, p1, p2]), leave('b', [p2]), leave(['t', 2], [p1])];
  t.deepEqual(eventMultiset(scope.c.events), eventMultiset(down));
  t.deepEqual(groupA.c.events.map(sortedEvent), [sortedEvent(down[0]!)]);
  t.deepEqual(groupB.c.events, [leave('b', [p2])]);
  t.deepEqual(
    eventMultiset(
      (await other!.sideCmd<CollectorState>({ cmd: 'watchEvents', name: 'scope' })).events,
    ),
    eventMultiset(down),
  );

  // A node that leaves the cluster by itself (node.close()): the same.
  t.is(await closing!.sideCmd({ cmd: 'close' }), 'closing');
  await closing!.terminate();
  await flush(cluster);
  t.deepEqual(scope.c.events.slice(3), [leave('a', [c1, c1])]);
  t.deepEqual(groupA.c.events.slice(1), [leave('a', [c1, c1])]);
  t.deepEqual(viewOf(pg), viewFrom([['a', [mine, o1]]]));
});

test('a sync after partition and heal emits the difference as events', async (t) => {
  const cluster = await start(t);
  const pg = cluster.node.pg;
  const w = await spawnAgent(cluster);
  const watcher = await spawnAgent(cluster);
  const [p1, p2, p3] = (await w.sideCmd<Pid[]>({ cmd: 'spawn', n: 3 })) as [Pid, Pid, Pid];
  await w.sideCmd({ cmd: 'join', group: 'a', pids: [p1, p2] });
  await w.sideCmd({ cmd: 'join', group: 'b', pids: [p3] });
  await w.sideCmd({ cmd: 'join', group: 'same', pids: [p3, p3] });
  await flush(cluster);
  const scope = await watch(pg);
  const groupA = await watch(pg, 'a');
  await watcher.sideCmd({ cmd: 'watch', name: 'scope' });

  // Cut off: the coordinator drops the node's members (as for a node that went away).
  await cluster.partition(w.id);
  await flush(cluster);
  const cut = [leave('a', [p1, p2]), leave('b', [p3]), leave('same', [p3, p3])];
  t.deepEqual(eventMultiset(scope.c.events), eventMultiset(cut));

  // While cut, the node changes its memberships; nobody else hears of it.
  t.is(await w.sideCmd({ cmd: 'leave', group: 'a', pids: p1 }), 'ok');
  await w.sideCmd({ cmd: 'join', group: 'a', pids: [p2] });
  await w.sideCmd({ cmd: 'join', group: 'c', pids: [p1] });
  t.is(await w.sideCmd({ cmd: 'leave', group: 'b', pids: p3 }), 'ok');
  await flush(cluster);
  t.is(scope.c.events.length, 3);

  // Healed: the node syncs, and its new memberships arrive as joins.
  await cluster.heal(w.id);
  await flush(cluster);
  const healed = [join('a', [p2, p2]), join('c', [p1]), join('same', [p3, p3])];
  t.deepEqual(eventMultiset(scope.c.events.slice(3)), eventMultiset(healed));
  t.deepEqual(groupA.c.events.map(sortedEvent), [sortedEvent(cut[0]!), healed[0]]);
  t.deepEqual(
    eventMultiset(
      (await watcher.sideCmd<CollectorState>({ cmd: 'watchEvents', name: 'scope' })).events,
    ),
    eventMultiset([...cut, ...healed]),
  );
  t.deepEqual(
    viewOf(pg),
    viewFrom([
      ['a', [p2, p2]],
      ['c', [p1]],
      ['same', [p3, p3]],
    ]),
  );
  t.deepEqual(await w.sideCmd({ cmd: 'localView' }), viewOf(pg));
});

test('a sync that changes groups emits exactly the difference, joins and leaves', async (t) => {
  const cluster = await start(t);
  const pg = cluster.node.pg;
  const w = await spawnAgent(cluster);
  const watcher = await spawnAgent(cluster);
  const [p1, p2, p3, p4] = (await w.sideCmd<Pid[]>({ cmd: 'spawn', n: 4 })) as [Pid, Pid, Pid, Pid];
  const [mine] = spawnLocal(cluster.node) as [Pid];
  await w.sideCmd({ cmd: 'join', group: 'a', pids: [p1, p1, p2] });
  await w.sideCmd({ cmd: 'join', group: 'b', pids: [p3] });
  await w.sideCmd({ cmd: 'join', group: 'same', pids: [p4] });
  await pg.join('a', mine);
  await flush(cluster);
  const real = viewOf(pg);

  const scope = await watch(pg);
  const groupA = await watch(pg, 'a');
  await watcher.sideCmd({ cmd: 'watch', name: 'scope' });

  // A sync from the node that lists other memberships than the coordinator holds (what
  // a node that changed its memberships while cut off sends): a keeps one p1 and gains
  // p4, loses p1 once and p2; b is gone; c is new; 'same' is unchanged.
  coordinatorOf(cluster).inject(w.id, {
    t: 'sync',
    scope: 'pg',
    groups: [
      ['sa', [p1, p4]],
      ['sc', [p2, p2]],
      ['ssame', [p4]],
    ],
  });
  await flush(cluster);
  const diff = [join('a', [p4]), leave('a', [p1, p2]), leave('b', [p3]), join('c', [p2, p2])];
  t.deepEqual(eventMultiset(scope.c.events), eventMultiset(diff));
  t.deepEqual(eventMultiset(groupA.c.events), eventMultiset([diff[0]!, diff[1]!]));
  t.deepEqual(
    viewOf(pg),
    viewFrom([
      ['a', [mine, p1, p4]],
      ['c', [p2, p2]],
      ['same', [p4]],
    ]),
  );

  // The node's own sync (pg's discover) puts its real memberships back: the reverse.
  coordinatorOf(cluster).discover(w.id, 'pg');
  await flush(cluster);
  const back = [leave('a', [p4]), join('a', [p1, p2]), join('b', [p3]), leave('c', [p2, p2])];
  t.deepEqual(eventMultiset(scope.c.events.slice(diff.length)), eventMultiset(back));
  t.deepEqual(viewOf(pg), real);
  t.deepEqual(
    eventMultiset(
      (await watcher.sideCmd<CollectorState>({ cmd: 'watchEvents', name: 'scope' })).events,
    ),
    eventMultiset([...diff, ...back]),
  );

  // A sync that changes nothing emits nothing.
  coordinatorOf(cluster).discover(w.id, 'pg');
  await flush(cluster);
  t.is(scope.c.events.length, diff.length + back.length);
});

test('snapshots decode groups: a tuple, its string look-alike and a number stay apart', async (t) => {
  const cluster = await start(t);
  const pg = cluster.node.pg;
  const w = await spawnAgent(cluster);
  const [p] = spawnLocal(cluster.node) as [Pid];
  await pg.join(['shard', 3], p);
  await pg.join('shard,3', [p, p]);
  await pg.join(3, p);
  const m = await pg.monitorScope();
  t.deepEqual(
    [...m.groups].sort((a, b) => (encodeGroup(a[0]) < encodeGroup(b[0]) ? -1 : 1)),
    [
      [3, [p]],
      ['shard,3', [p, p]],
      [['shard', 3], [p]],
    ],
  );
  const g = await pg.monitor(['shard', 3]);
  t.deepEqual(g.members, [p]);
  const remote = await w.sideCmd<Started>({ cmd: 'watch', name: 'tuple', group: ['shard', 3] });
  t.deepEqual(remote.snapshot, [[['shard', 3], [p]]]);
  const empty = await pg.monitor('nobody');
  t.deepEqual(empty.members, []);
});
