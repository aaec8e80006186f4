/**
 * Protocol validation: malformed messages to the coordinator are counted and dropped,
 * forged ones (naming another node's pids) are dropped, and the cluster keeps working.
 */
import test from 'ava';
import { encodeGroup, type Pid } from '../src/index.js';
import { spawnAgent, start } from './support/cluster.js';
import { sorted } from './support/views.js';
import { coordinatorOf } from '../src/coordinator/cluster.js';

/** Most pids in one message and most groups in one sync (src/protocol.ts). */
const MAX_PIDS = 1 << 22;
const MAX_SYNC_GROUPS = 1 << 22;
/** Most messages in one batch (src/batch-port.ts). */
const MAX_BATCH = 1 << 20;

function garbage(pid: Pid): unknown[] {
  const key = encodeGroup('g');
  const join = { t: 'join', scope: 'pg', ref: 1, key, pids: [pid] };
  return [
    null,
    undefined,
    0,
    42,
    -1,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    'join',
    '',
    true,
    false,
    10n,
    Symbol('join'),
    () => join,
    new Date(),
    new Map([['t', 'join']]),
    {},
    { t: 'nope' },
    { t: 42 },
    { t: null },
    { t: ['join'] },
    { T: 'join', scope: 'pg', ref: 1, key, pids: [pid] },
    // join with missing or wrong fields
    { t: 'join' },
    { ...join, scope: undefined },
    { ...join, scope: '' },
    { ...join, scope: 'x'.repeat(257) },
    { ...join, scope: 5 },
    { ...join, ref: undefined },
    { ...join, ref: -1 },
    { ...join, ref: 1.5 },
    { ...join, ref: '1' },
    { ...join, ref: Number.MAX_SAFE_INTEGER + 2 },
    { ...join, key: undefined },
    { ...join, key: 'g' },
    { ...join, key: 'bogus' },
    { ...join, key: 123 },
    { ...join, key: null },
    { ...join, key: ['g'] },
    { ...join, key: `s${'x'.repeat(5000)}` },
    { ...join, pids: undefined },
    { ...join, pids: 'x' },
    { ...join, pids: pid },
    { ...join, pids: { 0: pid, length: 1 } },
    // join with non-pid values
    { ...join, pids: [0] },
    { ...join, pids: [-5] },
    { ...join, pids: [1.5] },
    { ...join, pids: [Number.NaN] },
    { ...join, pids: [2 ** 32] },
    { ...join, pids: [Number.MAX_SAFE_INTEGER + 2] },
    { ...join, pids: [String(pid)] },
    { ...join, pids: [null] },
    { ...join, pids: [BigInt(pid)] },
    { ...join, pids: [pid, 'x'] },
    { ...join, pids: [pid, [pid]] },
    // huge arrays
    { ...join, pids: new Array(MAX_PIDS + 1) },
    { ...join, pids: new Array(100_000).fill('x') },
    { t: 'sync', scope: 'pg', groups: new Array(MAX_SYNC_GROUPS + 1) },
    // the other message kinds, wrong
    { t: 'leave', scope: 'pg', ref: 1, key, pids: ['x'] },
    { t: 'leave', scope: 'pg', ref: 'x', key, pids: [pid] },
    { t: 'sync', scope: 'pg', groups: 'x' },
    { t: 'sync', scope: 'pg', groups: [[key]] },
    { t: 'sync', scope: 'pg', groups: [[key, 'x']] },
    { t: 'sync', scope: 'pg', groups: [['bogus', [pid]]] },
    { t: 'sync', scope: 'pg', groups: [[key, [pid], 'extra']] },
    { t: 'sync', scope: 'pg' },
    { t: 'exit', scope: 'pg', pid: 'x', keys: [] },
    { t: 'exit', scope: 'pg', pid, keys: [5] },
    { t: 'exit', scope: 'pg', pid, keys: key },
    { t: 'monitor', scope: 'pg', ref: 'x' },
    { t: 'monitor', scope: 'pg', ref: 1, key: 7 },
    { t: 'demonitor', scope: 'pg', ref: 1 },
    { t: 'demonitor', scope: 'pg', ref: 1, monitor: -1 },
    { t: 'link', peer: 1, port: 'not a port' },
    { t: 'link', peer: -1 },
    { t: 'bye', ack: 5 },
    { t: 'bye', ack: new Int32Array(1) },
    { t: 'bye', ack: new Int32Array(new SharedArrayBuffer(0)) },
    { t: 'bye', ack: new Float64Array(new SharedArrayBuffer(8)) },
    { t: 'done', ref: 'x' },
    { t: 'done' },
    { t: 'hello', threadId: 'x', name: 'again' },
    { t: 'hello', threadId: 1, name: 'again' },
  ];
}

test.serial(
  'malformed messages are counted and dropped, and the cluster keeps working',
  async (t) => {
    const cluster = await start(t);
    const node = cluster.node;
    const a = await spawnAgent(cluster);
    // A join round trip: the agent's sync (sent when it attached) has been applied.
    t.is(await a.cmd({ cmd: 'join', group: 'warmup' }), 'ok');
    const before = cluster.stats();
    t.is(before.nodes, 2);
    const items = garbage(a.root);
    for (const from of [a.id, 0]) {
      const m0 = cluster.stats().malformed;
      for (const g of items) t.notThrows(() => coordinatorOf(cluster).inject(from, g));
      t.is(cluster.stats().malformed - m0, items.length, `from node ${from}`);
    }
    // An array is a batch: each of its messages is parsed on its own; a batch that is too
    // long is one malformed message.
    const m1 = cluster.stats().malformed;
    coordinatorOf(cluster).inject(a.id, [1, 2, 3]);
    coordinatorOf(cluster).inject(a.id, [[], {}]);
    coordinatorOf(cluster).inject(a.id, []);
    coordinatorOf(cluster).inject(a.id, items);
    coordinatorOf(cluster).inject(a.id, new Array(MAX_BATCH + 1));
    t.is(cluster.stats().malformed - m1, 3 + 2 + 0 + items.length + 1);
    // Garbage in a batch does not stop the good messages in it.
    const m2 = cluster.stats().malformed;
    const key = encodeGroup('batched');
    coordinatorOf(cluster).inject(a.id, [
      null,
      { t: 'join', scope: 'pg', ref: 424_242, key, pids: [a.root] },
      'x',
    ]);
    t.is(cluster.stats().malformed - m2, 2);
    t.deepEqual(node.pg.getMembers('batched'), [a.root]);

    const after = cluster.stats();
    t.is(after.forged, before.forged);
    t.is(after.nodes, 2);
    t.deepEqual(cluster.nodes().sort(), [0, a.id]);

    // A join/getMembers round trip still works, on node 0 and on the worker.
    const p = node.spawn(() => 'ok');
    await node.pg.join('after', p);
    t.is(await a.cmd({ cmd: 'join', group: 'after' }), 'ok');
    t.deepEqual(sorted(node.pg.getMembers('after')), [p, a.root]);
    t.deepEqual(sorted(await a.cmd<Pid[]>({ cmd: 'members', group: 'after' })), [p, a.root]);
    t.is(await node.pg.leave('after', p), 'ok');
    t.deepEqual(node.pg.getMembers('after'), [a.root]);
    // And calls between the nodes.
    const echo = await a.spawn('echo');
    t.is(await node.call(echo, 'still here'), 'still here');
  },
);

test.serial(
  'malformed messages from the coordinator to a node are counted and dropped by the node',
  async (t) => {
    const cluster = await start(t);
    const node = cluster.node;
    const a = await spawnAgent(cluster);
    const bad = [
      null,
      1,
      'x',
      {},
      { t: 'nope' },
      { t: 'nodeup' },
      { t: 'nodedown', id: -1 },
      { t: 'ack', ref: 'x' },
      [1, 2],
    ];
    const expected = bad.length + 1; // [1, 2] is a batch of two
    for (const [id, stats] of [
      [0, async () => node.stats()],
      [a.id, () => a.cmd<{ malformed: number }>({ cmd: 'stats' })],
    ] as const) {
      const port = coordinatorOf(cluster).port(id);
      t.truthy(port);
      const m0 = (await stats()).malformed;
      for (const m of bad) port!.postMessage(m);
      // A join's ack comes back on the same port after the garbage.
      if (id === 0) await node.pg.join('sync-point', node.self());
      else await a.cmd({ cmd: 'join', group: 'sync-point' });
      t.is((await stats()).malformed - m0, expected, `node ${id}`);
    }
    t.deepEqual(node.nodes(), [0, a.id]);
    t.is(await node.call(await a.spawn('echo'), 'ok'), 'ok');
  },
);

test.serial(
  'a forged join, leave, sync or exit naming another node’s pid is dropped',
  async (t) => {
    const cluster = await start(t);
    const node = cluster.node;
    const a = await spawnAgent(cluster);
    const b = await spawnAgent(cluster);
    // A join round trip from each: their syncs (sent when they attached) have been applied,
    // so their messages are not merely ignored as coming from outside the scope.
    t.is(await b.cmd({ cmd: 'join', group: 'warmup' }), 'ok');
    const p0 = node.spawn(() => 'ok');
    const key = encodeGroup('g');
    await node.pg.join('g', p0);
    t.is(await a.cmd({ cmd: 'join', group: 'g' }), 'ok');
    const sortedMembers = () => sorted(node.pg.getMembers('g'));
    const members = [p0, a.root];
    t.deepEqual(sortedMembers(), members);
    const s0 = cluster.stats();

    const forgeries: [number, unknown][] = [
      // A claims node 0's pid joins.
      [a.id, { t: 'join', scope: 'pg', ref: 999_999, key, pids: [p0] }],
      // A claims B's root joins, along with its own root: all or nothing.
      [a.id, { t: 'join', scope: 'pg', ref: 999_998, key, pids: [a.root, b.root] }],
      // Node 0 tries to take A's pid out.
      [0, { t: 'leave', scope: 'pg', ref: 999_997, key, pids: [a.root] }],
      // B syncs a membership made of A's pid.
      [b.id, { t: 'sync', scope: 'pg', groups: [[key, [a.root]]] }],
      // A syncs its own pid plus node 0's: the whole sync is dropped, A keeps what it had.
      [a.id, { t: 'sync', scope: 'pg', groups: [[key, [a.root, p0]]] }],
      // B reports that node 0's process exited.
      [b.id, { t: 'exit', scope: 'pg', pid: p0, keys: [key] }],
    ];
    for (const [i, [from, m]] of forgeries.entries()) {
      coordinatorOf(cluster).inject(from, m);
      t.is(cluster.stats().forged - s0.forged, i + 1, `forgery ${i}`);
      t.is(cluster.stats().ignored, s0.ignored, `forgery ${i}`);
      t.deepEqual(sortedMembers(), members, `forgery ${i}`);
    }
    const s1 = cluster.stats();
    t.is(s1.malformed, s0.malformed);
    // The workers still see the same members, and real writes still work.
    t.deepEqual(sorted(await b.cmd<Pid[]>({ cmd: 'members', group: 'g' })), members);
    t.is(await b.cmd({ cmd: 'join', group: 'g' }), 'ok');
    t.deepEqual(sortedMembers(), [p0, a.root, b.root]);
  },
);
