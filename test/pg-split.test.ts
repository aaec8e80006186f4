/**
 * pg_SUITE, cluster group, the netsplit cases: netsplit, trisplit, foursplit, exchange.
 *
 * pg_SUITE disconnects Erlang nodes; here `cluster.partition(node)` cuts one node's
 * link to the scope on both sides (the coordinator drops the node's members and
 * ignores it; the node's joins, leaves and exits stay local) and `cluster.heal(node)`
 * restores it (the node syncs). After every heal the cluster must converge: the
 * coordinator thread's view is the union of every live node's local memberships, each
 * node holds exactly what it joined, and every thread reads the same view.
 */
import test, { type ExecutionContext } from 'ava';
import { type Cluster, encodeGroup, type Pid } from '../src/index.js';
import {
  type Agent,
  barrier,
  spawnAgent,
  spawnAgents,
  spawnLocal,
  start,
} from './support/cluster.js';
import { LocalModel } from './support/pg.js';
import { localViewOf, sorted, unionOf, type View, viewOf } from './support/views.js';
import { type PollResult, settle } from './support/wait.js';
import { coordinatorOf } from '../src/coordinator/cluster.js';

interface Member {
  /** Undefined for the coordinator's own thread. */
  worker: Agent | undefined;
  model: LocalModel;
}

/** The scope's nodes, as the coordinator sees them. */
function attached(cluster: Cluster): number[] {
  return sorted(coordinatorOf(cluster).scope('pg')!.attached());
}

/**
 * Checks the convergence invariant: every node holds what its model says it joined;
 * the coordinator thread's view becomes their union; so does each worker's.
 */
async function converged(t: ExecutionContext, cluster: Cluster, members: Member[]): Promise<View> {
  const locals: View[] = [];
  for (const m of members) {
    const local = m.worker
      ? await m.worker.cmd<View>({ cmd: 'localView' })
      : localViewOf(cluster.node.pg);
    t.deepEqual(local, m.model.view(), `node ${m.worker?.id ?? 0} holds what it joined`);
    locals.push(local);
  }
  const union = unionOf(...locals);
  const main = await settle(() => viewOf(cluster.node.pg), union);
  t.deepEqual(
    main.value,
    union,
    "the coordinator thread's view is the union of every node's local memberships",
  );
  for (const m of members) {
    if (m.worker === undefined) continue;
    const r = await m.worker.cmd<PollResult<View>>({ cmd: 'waitView', expected: union });
    t.deepEqual(r.value, union, `node ${m.worker.id} reads the same view`);
  }
  return union;
}

test('netsplit: joins, leaves and exits made during a cut converge after heal (pg_SUITE netsplit)', async (t) => {
  const cluster = await start(t);
  const pg = cluster.node.pg;
  const w = await spawnAgent(cluster);
  const m0 = new LocalModel();
  const mw = new LocalModel();
  const members: Member[] = [
    { worker: undefined, model: m0 },
    { worker: w, model: mw },
  ];

  const [oldPid, doomed] = (await w.cmd<Pid[]>({ cmd: 'spawn', n: 2 })) as [Pid, Pid];
  t.is(await w.cmd({ cmd: 'join', group: '$invisible', pids: oldPid }), 'ok');
  mw.join('$invisible', oldPid);
  t.is(await w.cmd({ cmd: 'join', group: 'doomed', pids: [doomed, doomed] }), 'ok');
  mw.join('doomed', [doomed, doomed]);
  await converged(t, cluster, members);

  // Partition: the coordinator forgets the node's members at once…
  await cluster.partition(w.id);
  t.deepEqual(attached(cluster), [0]);
  t.deepEqual(viewOf(pg), []);
  // …while the node keeps them.
  t.deepEqual(await w.cmd({ cmd: 'localView' }), mw.view());

  // Writes during the cut, on the cut node: they stay local.
  const [remotePid] = (await w.cmd<Pid[]>({ cmd: 'spawn', n: 1 })) as [Pid];
  t.is(await w.cmd({ cmd: 'join', group: 'netsplit', pids: remotePid }), 'ok');
  mw.join('netsplit', remotePid);
  t.is(await w.cmd({ cmd: 'leave', group: '$invisible', pids: oldPid }), 'ok');
  mw.leave('$invisible', oldPid);
  t.is(await w.cmd({ cmd: 'join', group: '$visible', pids: oldPid }), 'ok');
  mw.join('$visible', oldPid);
  t.deepEqual(await w.cmd({ cmd: 'localMembers', group: '$visible' }), [oldPid]);
  t.deepEqual(await w.cmd({ cmd: 'exit', pids: [doomed] }), [true]);
  mw.exit(doomed);
  // …and on this side of the cut.
  const [localPid] = spawnLocal(cluster.node) as [Pid];
  await pg.join('netsplit', localPid);
  m0.join('netsplit', localPid);

  await barrier(cluster, w.id);
  t.deepEqual(viewOf(pg), m0.view(), 'nothing the cut node did reached the coordinator');
  t.deepEqual(await w.cmd({ cmd: 'localView' }), mw.view());

  await cluster.heal(w.id);
  t.deepEqual(attached(cluster), [0, w.id]);
  await converged(t, cluster, members);
  const both = sorted([remotePid, localPid]);
  t.like(await w.cmd({ cmd: 'waitMembers', group: 'netsplit', expected: both }), {
    ok: true,
    value: both,
  });
  t.deepEqual(pg.getMembers('$visible'), [oldPid]);
  t.deepEqual(pg.getMembers('$invisible'), []);
  t.deepEqual(pg.getMembers('doomed'), []);
});

test('trisplit: a node cut and healed, then a third node attaches and sees the result (pg_SUITE trisplit)', async (t) => {
  const cluster = await start(t);
  const pg = cluster.node.pg;
  const self = cluster.node.self();
  const w1 = await spawnAgent(cluster);
  const m0 = new LocalModel();
  const m1 = new LocalModel();
  const [p1, p2] = (await w1.cmd<Pid[]>({ cmd: 'spawn', n: 2 })) as [Pid, Pid];
  await w1.cmd({ cmd: 'join', group: 'three', pids: p2 });
  m1.join('three', p2);
  await cluster.partition(w1.id);
  await cluster.heal(w1.id);
  await w1.cmd({ cmd: 'join', group: 'one', pids: p2 });
  m1.join('one', p2);

  const w2 = await spawnAgent(cluster);
  const m2 = new LocalModel();
  t.like(await w2.cmd({ cmd: 'waitMembers', group: 'one', expected: [p2] }), { ok: true });
  t.like(await w2.cmd({ cmd: 'waitMembers', group: 'three', expected: [p2] }), { ok: true });
  const members: Member[] = [
    { worker: undefined, model: m0 },
    { worker: w1, model: m1 },
    { worker: w2, model: m2 },
  ];
  await converged(t, cluster, members);

  // Both peers cut at once; each side writes; healed in the other order.
  await cluster.partition(w1.id);
  await cluster.partition(w2.id);
  t.deepEqual(attached(cluster), [0]);
  t.deepEqual(viewOf(pg), []);
  t.is(await w1.cmd({ cmd: 'leave', group: 'three', pids: p2 }), 'ok');
  m1.leave('three', p2);
  await w1.cmd({ cmd: 'join', group: 'tri', pids: [p1, p2] });
  m1.join('tri', [p1, p2]);
  const [q] = (await w2.cmd<Pid[]>({ cmd: 'spawn', n: 1 })) as [Pid];
  await w2.cmd({ cmd: 'join', group: 'tri', pids: q });
  m2.join('tri', q);
  await w2.cmd({ cmd: 'join', group: ['two', 2], pids: [q, q] });
  m2.join(['two', 2], [q, q]);
  await pg.join('tri', self);
  m0.join('tri', self);
  t.deepEqual(viewOf(pg), m0.view());

  await cluster.heal(w2.id);
  const half = unionOf(m0.view(), m2.view());
  t.deepEqual((await settle(() => viewOf(pg), half)).value, half, 'the healed node is back');
  await w1.cmd({ cmd: 'exit', pids: [p1] });
  m1.exit(p1);
  await cluster.heal(w1.id);
  await converged(t, cluster, members);
  t.deepEqual(sorted(pg.getMembers('tri')), sorted([self, p2, q]));
  t.deepEqual(pg.getMembers('three'), []);
  t.deepEqual(pg.getMembers('one'), [p2]);
});

test('foursplit: exits and not_joined around a cut, then overlapping cuts of three peers (pg_SUITE foursplit)', async (t) => {
  const cluster = await start(t);
  const pg = cluster.node.pg;
  const m0 = new LocalModel();
  const [pid] = spawnLocal(cluster.node) as [Pid];
  const w1 = await spawnAgent(cluster);
  const m1 = new LocalModel();
  await pg.join('one', pid);
  await pg.join('two', pid);
  m0.join('one', pid);
  m0.join('two', pid);
  const [peerPid1] = (await w1.cmd<Pid[]>({ cmd: 'spawn', n: 1 })) as [Pid];
  await w1.cmd({ cmd: 'join', group: 'four', pids: peerPid1 });
  m1.join('four', peerPid1);
  t.is(await pg.leave('one', pid), 'ok');
  m0.leave('one', pid);
  t.is(await pg.leave('three', pid), 'not_joined');

  await cluster.partition(w1.id);
  t.deepEqual(await w1.cmd({ cmd: 'exit', pids: [peerPid1] }), [true]);
  m1.exit(peerPid1);
  t.is(await pg.leave('three', pid), 'not_joined');
  await cluster.heal(w1.id);
  t.deepEqual(pg.getMembers('one'), []);
  t.deepEqual(await w1.cmd({ cmd: 'members', group: 'one' }), []);
  t.like(await w1.cmd({ cmd: 'waitMembers', group: 'two', expected: [pid] }), { ok: true });
  t.deepEqual(pg.getMembers('four'), []);
  const members: Member[] = [
    { worker: undefined, model: m0 },
    { worker: w1, model: m1 },
  ];
  await converged(t, cluster, members);

  // Four nodes, overlapping cuts.
  const [w2, w3] = (await spawnAgents(cluster, 2)) as [Agent, Agent];
  const m2 = new LocalModel();
  const m3 = new LocalModel();
  members.push({ worker: w2, model: m2 }, { worker: w3, model: m3 });
  const p2 = await w2.cmd<Pid[]>({ cmd: 'spawn', n: 3 });
  const p3 = await w3.cmd<Pid[]>({ cmd: 'spawn', n: 3 });
  const [p1] = (await w1.cmd<Pid[]>({ cmd: 'spawn', n: 1 })) as [Pid];
  await w2.cmd({ cmd: 'join', group: 'four', pids: p2 });
  m2.join('four', p2);
  await w3.cmd({ cmd: 'join', group: 'four', pids: p3 });
  m3.join('four', p3);
  await converged(t, cluster, members);

  await cluster.partition(w1.id);
  await cluster.partition(w2.id);
  await w1.cmd({ cmd: 'join', group: 'four', pids: [p1, p1] });
  m1.join('four', [p1, p1]);
  t.is(await w2.cmd({ cmd: 'leave', group: 'four', pids: [p2[0]!, p2[1]!] }), 'ok');
  m2.leave('four', [p2[0]!, p2[1]!]);
  await w2.cmd({ cmd: 'exit', pids: [p2[2]!] });
  m2.exit(p2[2]!);
  await cluster.heal(w1.id);
  await cluster.partition(w3.id);
  t.deepEqual(attached(cluster), [0, w1.id]);
  await w3.cmd({ cmd: 'join', group: 'split', pids: p3 });
  m3.join('split', p3);
  t.is(await w3.cmd({ cmd: 'leave', group: 'four', pids: p3[0]! }), 'ok');
  m3.leave('four', p3[0]!);
  await pg.join('split', pid);
  m0.join('split', pid);
  const partial = unionOf(m0.view(), m1.view());
  t.deepEqual((await settle(() => viewOf(pg), partial)).value, partial);
  await cluster.heal(w2.id);
  await cluster.heal(w3.id);
  t.deepEqual(attached(cluster), sorted([0, w1.id, w2.id, w3.id]));
  await converged(t, cluster, members);
  t.deepEqual(sorted(pg.getMembers('four')), sorted([p1, p1, p3[1]!, p3[2]!]));
  t.deepEqual(sorted(pg.getMembers('split')), sorted([pid, ...p3]));
});

test('exchange: killed members leave, writes of two cut peers stay on them until the heal, then every node converges, and list leaves take their pids (pg_SUITE exchange)', async (t) => {
  const cluster = await start(t);
  const pg = cluster.node.pg;
  const [w1, w2, w3] = (await spawnAgents(cluster, 3)) as [Agent, Agent, Agent];
  const m1 = new LocalModel();
  const m2 = new LocalModel();
  const m3 = new LocalModel();
  const members: Member[] = [
    { worker: undefined, model: new LocalModel() },
    { worker: w1, model: m1 },
    { worker: w2, model: m2 },
    { worker: w3, model: m3 },
  ];
  const g = 'exchange';
  const pids10 = await w1.cmd<Pid[]>({ cmd: 'spawn', n: 10 });
  const pids2 = await w2.cmd<Pid[]>({ cmd: 'spawn', n: 10 });
  const pids11 = await w1.cmd<Pid[]>({ cmd: 'spawn', n: 10 });
  const pids3 = await w3.cmd<Pid[]>({ cmd: 'spawn', n: 5 });
  const toKill = pids10.slice(0, 3);
  const pids1 = pids10.slice(3);

  // The third peer is never cut: its members stay visible throughout.
  t.is(await w3.cmd({ cmd: 'join', group: g, pids: pids3 }), 'ok');
  m3.join(g, pids3);
  t.is(await w1.cmd({ cmd: 'join', group: g, pids: pids10 }), 'ok');
  m1.join(g, pids10);
  const all10 = sorted([...pids10, ...pids3]);
  t.deepEqual((await settle(() => sorted(pg.getMembers(g)), all10)).value, all10);
  t.deepEqual(await w1.cmd({ cmd: 'exit', pids: toKill }), [true, true, true]);
  for (const p of toKill) m1.exit(p);
  const all7 = sorted([...pids1, ...pids3]);
  t.deepEqual((await settle(() => sorted(pg.getMembers(g)), all7)).value, all7);

  await cluster.partition(w1.id);
  await cluster.partition(w2.id);
  t.deepEqual(attached(cluster), [0, w3.id]);
  t.deepEqual(sorted(pg.getMembers(g)), sorted(pids3), 'only the uncut peer is left');

  for (const p of pids2) t.is(await w2.cmd({ cmd: 'join', group: g, pids: p }), 'ok');
  m2.join(g, pids2);
  for (const p of pids11) t.is(await w1.cmd({ cmd: 'join', group: 'second', pids: p }), 'ok');
  m1.join('second', pids11);
  t.is(await w1.cmd({ cmd: 'join', group: 'third', pids: pids11 }), 'ok');
  m1.join('third', pids11);
  await barrier(cluster, w1.id);
  await barrier(cluster, w2.id);
  t.deepEqual(pg.getMembers('second'), [], 'writes of a cut node stay on that node');
  t.deepEqual(pg.getMembers('third'), []);
  t.deepEqual(sorted(pg.getMembers(g)), sorted(pids3));

  // Restore both links.
  await cluster.heal(w1.id);
  await cluster.heal(w2.id);
  t.deepEqual(attached(cluster), sorted([0, w1.id, w2.id, w3.id]));
  const everyone = sorted([...pids1, ...pids2, ...pids11, ...pids3]);
  t.deepEqual(
    (await settle(() => sorted([...pg.getMembers('second'), ...pg.getMembers(g)]), everyone)).value,
    everyone,
  );
  t.deepEqual(sorted(pg.getMembers('third')), sorted(pids11));
  await converged(t, cluster, members);

  const left = pids11.slice(0, 3);
  const stay = pids11.slice(3);
  t.is(await w1.cmd({ cmd: 'leave', group: 'third', pids: left }), 'ok');
  m1.leave('third', left);
  t.deepEqual(
    (await settle(() => sorted(pg.getMembers('third')), sorted(stay))).value,
    sorted(stay),
  );
  t.is(await w1.cmd({ cmd: 'leave', group: 'left', pids: stay }), 'not_joined');
  t.is(await w1.cmd({ cmd: 'leave', group: 'third', pids: stay }), 'ok');
  m1.leave('third', stay);
  t.deepEqual((await settle(() => pg.getMembers('third'), [])).value, []);
  t.false(pg.whichGroups().some((x) => encodeGroup(x) === encodeGroup('third')));
  await converged(t, cluster, members);
});
