/**
 * Processes: self(), spawn, call, send, mailbox order and concurrency, exit, isAlive,
 * and process monitors (local and remote).
 */
import test from 'ava';
import { makePid, type Node, NotLocalError, type Pid, ProcessExitError } from '../src/index.js';
import { nodeEvent, rejects, spawnAgent, start, tracker } from './support/cluster.js';

test('self() is the root process, and node.handle gives it a handler that answers other nodes', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  t.is(node.self(), makePid(0, 1));
  await t.throwsAsync(node.call(node.self(), 'hi'), { message: /no handler/ });
  node.handle((m, ctx) => ({ got: m, self: ctx.self, from: ctx.from, isCall: ctx.isCall }));
  t.deepEqual(await node.call(node.self(), 'hi'), {
    got: 'hi',
    self: node.self(),
    from: node.self(),
    isCall: true,
  });
  const a = await spawnAgent(cluster);
  t.is(a.root, makePid(a.id, 1));
  // The agent calls node 0's root process.
  t.deepEqual(await a.cmd({ cmd: 'call', pid: node.self(), msg: 'from afar' }), {
    got: 'from afar',
    self: node.self(),
    from: a.root,
    isCall: true,
  });
});

test('node.handle swaps the root handler in place: the running call ends with the old one, waiting calls get the new one', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  node.handle(async (m) => {
    started();
    await gate;
    return `old:${String(m)}`;
  });
  const first = node.call(node.self(), 1);
  await running;
  // These two wait in the mailbox behind the first.
  const second = node.call(node.self(), 2);
  const third = node.call(node.self(), 3);
  node.handle((m) => `new:${String(m)}`);
  t.true(node.isAlive(node.self()));
  release();
  t.deepEqual(await Promise.all([first, second, third]), ['old:1', 'new:2', 'new:3']);
  t.throws(() => node.handle('not a function' as never), {
    instanceOf: TypeError,
    message: /handler function/,
  });
});

test('spawn + call, with handlers returning a value or a promise, locally and remotely', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const double = node.spawn((m: number) => m * 2);
  const later = node.spawn(async (m: number) => {
    await new Promise((r) => setImmediate(r));
    return m + 1;
  });
  t.not(double, later);
  t.is(await node.call(double, 21), 42);
  t.is(await node.call(later, 41), 42);
  t.true(node.isAlive(double));

  const a = await spawnAgent(cluster);
  const echo = await a.spawn('echo');
  const slow = await a.spawn('slowEcho');
  t.is(Math.floor(echo / 2 ** 32), a.id);
  t.deepEqual(await node.call(echo, { x: [1, 2, 3] }), { x: [1, 2, 3] });
  t.deepEqual(await node.call(slow, { y: 'later' }), { y: 'later' });
  // The agent calls a process of node 0.
  t.is(await a.cmd({ cmd: 'call', pid: double, msg: 5 }), 10);
  t.is(await a.cmd({ cmd: 'call', pid: later, msg: 5 }), 6);
});

test('messages to one process are handled one at a time, in order (local)', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const tr = tracker();
  const pid = node.spawn((m: number) => tr.run(m, 3));
  const n = 30;
  const resolved: number[] = [];
  const calls = Array.from({ length: n }, (_, i) =>
    node.call<number>(pid, i).then((v) => {
      resolved.push(v);
      return v;
    }),
  );
  t.deepEqual(
    await Promise.all(calls),
    Array.from({ length: n }, (_, i) => i),
  );
  const order = Array.from({ length: n }, (_, i) => i);
  t.is(tr.maxActive, 1);
  t.deepEqual(tr.started, order);
  t.deepEqual(tr.finished, order);
  t.deepEqual(resolved, order);
});

test('messages to one process are handled one at a time, in order (remote)', async (t) => {
  const cluster = await start(t);
  const a = await spawnAgent(cluster);
  const pid = await a.spawn('tracked');
  const n = 30;
  const resolved: number[] = [];
  const replies = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      cluster.node.call<{ m: number; max: number }>(pid, i).then((r) => {
        resolved.push(r.m);
        return r;
      }),
    ),
  );
  t.deepEqual(
    replies.map((r) => r.m),
    Array.from({ length: n }, (_, i) => i),
  );
  t.deepEqual(
    resolved,
    Array.from({ length: n }, (_, i) => i),
  );
  t.is(Math.max(...replies.map((r) => r.max)), 1);
});

test('concurrency: 3 lets up to 3 messages be handled at once (local)', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const tr = tracker();
  const pid = node.spawn((m: number) => tr.run(m, 3), { concurrency: 3 });
  const n = 12;
  const results = await Promise.all(Array.from({ length: n }, (_, i) => node.call(pid, i)));
  t.deepEqual(
    results,
    Array.from({ length: n }, (_, i) => i),
  );
  t.is(tr.maxActive, 3);
  // They still start in arrival order.
  t.deepEqual(
    tr.started,
    Array.from({ length: n }, (_, i) => i),
  );
  t.throws(() => node.spawn(() => 1, { concurrency: 0 }), { instanceOf: RangeError });
  t.throws(() => node.spawn(() => 1, { concurrency: 1.5 }), { instanceOf: RangeError });
});

test('concurrency: 3 lets up to 3 messages be handled at once (remote)', async (t) => {
  const cluster = await start(t);
  const a = await spawnAgent(cluster);
  const pid = await a.spawn('tracked', 3);
  const serial = await a.spawn('tracked', 1);
  const n = 12;
  const [wide, narrow] = await Promise.all(
    [pid, serial].map((p) =>
      Promise.all(
        Array.from({ length: n }, (_, i) => cluster.node.call<{ m: number; max: number }>(p, i)),
      ),
    ),
  );
  t.deepEqual(
    wide!.map((r) => r.m),
    Array.from({ length: n }, (_, i) => i),
  );
  t.is(Math.max(...wide!.map((r) => r.max)), 3);
  t.is(Math.max(...narrow!.map((r) => r.max)), 1);
});

test('send is fire-and-forget and delivered in order (local)', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const got: unknown[] = [];
  const pid = node.spawn(async (m: unknown, ctx) => {
    if (ctx.isCall) return got.slice();
    await new Promise((r) => setImmediate(r));
    got.push(m);
    return 'ignored';
  });
  for (let i = 0; i < 200; i++) t.true(node.send(pid, i));
  // A call from the same sender comes after every send.
  t.deepEqual(
    await node.call(pid, 'get'),
    Array.from({ length: 200 }, (_, i) => i),
  );
});

test('send is fire-and-forget and delivered in order (remote)', async (t) => {
  const cluster = await start(t);
  const a = await spawnAgent(cluster);
  const rec = await a.spawn('recorder');
  const n = 500;
  for (let i = 0; i < n; i++) t.true(cluster.node.send(rec, { seq: i }));
  const got = await a.cmd<{ seq: number }[]>({ cmd: 'received', pid: rec, count: n });
  t.deepEqual(
    got.map((m) => m.seq),
    Array.from({ length: n }, (_, i) => i),
  );
});

test('exit ends a local process; isAlive follows it; exit of a remote pid is refused', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const pid = node.spawn(() => 'x');
  t.true(node.isAlive(pid));
  t.true(node.exit(pid, 'done'));
  t.false(node.isAlive(pid));
  t.false(node.exit(pid));
  t.false(node.isAlive(makePid(0, 987_654)));

  const a = await spawnAgent(cluster);
  const remote = await a.spawn('echo');
  t.true(await a.cmd({ cmd: 'isAlive', pid: remote }));
  t.true(node.isAlive(remote));
  // Another node's pid: NotLocalError, as for pg.join (exit there instead).
  t.throws(() => node.exit(remote), { instanceOf: NotLocalError });
  t.true(await a.cmd({ cmd: 'exit', pid: remote, reason: 'bye' }));
  t.false(await a.cmd({ cmd: 'isAlive', pid: remote }));
  t.false(await a.cmd({ cmd: 'exit', pid: remote }));
  // Node 0 learns of the node's end like any other node: by its nodedown.
  const down = nodeEvent(node, 'nodedown', a.id);
  await a.terminate();
  await down;
  t.false(node.isAlive(remote));
  t.false(node.isAlive(a.root));
});

test('local monitors: normal, a custom reason, an Error reason, noproc', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const spawn = () => node.spawn(() => 'ok');

  const p1 = spawn();
  const m1 = node.monitor(p1);
  node.exit(p1);
  t.is(await m1.down, 'normal');

  const p2 = spawn();
  const m2 = node.monitor(p2);
  node.exit(p2, { why: 'rebalanced', shard: 3 });
  t.deepEqual(await m2.down, { why: 'rebalanced', shard: 3 });

  const p3 = spawn();
  const m3 = node.monitor(p3);
  const reason = new TypeError('bad state');
  node.exit(p3, reason);
  const r3 = await m3.down;
  t.true(r3 instanceof Error);
  t.is((r3 as Error).name, 'TypeError');
  t.is((r3 as Error).message, 'bad state');

  const p4 = spawn();
  const m4 = node.monitor(p4);
  const custom = new Error('disk on fire');
  custom.name = 'FatalError';
  node.exit(p4, custom);
  const r4 = (await m4.down) as Error;
  t.is(r4.name, 'FatalError');
  t.is(r4.message, 'disk on fire');

  t.is(await node.monitor(p1).down, 'noproc');
  t.is(await node.monitor(makePid(0, 999_999)).down, 'noproc');

  // Several monitors on one process all fire.
  const p5 = spawn();
  const downs = [node.monitor(p5), node.monitor(p5), node.monitor(p5)].map((m) => m.down);
  node.exit(p5, 'all');
  t.deepEqual(await Promise.all(downs), ['all', 'all', 'all']);
});

test('remote monitors: normal, a custom reason, an Error reason, noproc, nodedown', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const a = await spawnAgent(cluster);

  const p1 = await a.spawn('echo');
  const m1 = node.monitor(p1);
  await a.cmd({ cmd: 'exit', pid: p1 });
  t.is(await m1.down, 'normal');

  const p2 = await a.spawn('echo');
  const m2 = node.monitor(p2);
  await a.cmd({ cmd: 'exit', pid: p2, reason: { why: 'rebalanced', shard: 3 } });
  t.deepEqual(await m2.down, { why: 'rebalanced', shard: 3 });

  const p3 = await a.spawn('echo');
  const m3 = node.monitor(p3);
  await a.cmd({
    cmd: 'exit',
    pid: p3,
    errorReason: { name: 'FatalError', message: 'disk on fire' },
  });
  const r3 = await m3.down;
  t.true(r3 instanceof Error);
  t.is((r3 as Error).name, 'FatalError');
  t.is((r3 as Error).message, 'disk on fire');

  // Already dead, and never existed on a live node.
  t.is(await node.monitor(p1).down, 'noproc');
  t.is(await node.monitor(makePid(a.id, 999_999)).down, 'noproc');

  // The agent monitors a process of node 0.
  const local = node.spawn(() => 'ok');
  const key = await a.cmd<number>({ cmd: 'monitorStart', pid: local });
  node.exit(local, 'from node 0');
  t.is(await a.cmd({ cmd: 'monitorResult', key }), 'from node 0');

  // The node goes away.
  const p4 = await a.spawn('echo');
  const m4 = node.monitor(p4);
  const m5 = node.monitor(a.root);
  await a.terminate();
  t.is(await m4.down, 'nodedown');
  t.is(await m5.down, 'nodedown');
  // A monitor on a pid of a node that is gone.
  t.is(await node.monitor(p4).down, 'nodedown');
});

/**
 * Two monitors of `pid`: `stopped`, which the test demonitors, and `kept`; `fired()`
 * says whether the DOWN of `stopped` came all the same.
 */
function monitorPair(node: Node, pid: Pid) {
  const stopped = node.monitor(pid);
  const kept = node.monitor(pid);
  let fired = false;
  void stopped.down.then(() => {
    fired = true;
  });
  return { stopped, kept, fired: () => fired };
}

test('demonitor stops a local monitor', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const pid = node.spawn(() => 'ok');
  const m = monitorPair(node, pid);
  node.demonitor(m.stopped);
  node.demonitor(m.stopped); // twice is harmless
  node.exit(pid, 'gone');
  t.is(await m.kept.down, 'gone');
  await Promise.resolve();
  t.false(m.fired());
  // By ref too.
  const pid2 = node.spawn(() => 'ok');
  const m2 = monitorPair(node, pid2);
  node.demonitor(m2.stopped.ref);
  node.exit(pid2);
  t.is(await m2.kept.down, 'normal');
  await Promise.resolve();
  t.false(m2.fired());
});

test('demonitor stops a remote monitor (exit and nodedown)', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const a = await spawnAgent(cluster);
  const pid = await a.spawn('echo');
  const m = monitorPair(node, pid);
  node.demonitor(m.stopped);
  await a.cmd({ cmd: 'exit', pid, reason: 'gone' });
  t.is(await m.kept.down, 'gone');
  await Promise.resolve();
  t.false(m.fired());

  const m2 = monitorPair(node, await a.spawn('echo'));
  node.demonitor(m2.stopped);
  await a.terminate();
  t.is(await m2.kept.down, 'nodedown');
  await Promise.resolve();
  t.false(m2.fired());
});

test('a process that ends itself while handling a call fails that call with ProcessExitError, locally and remotely', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  // A synchronous handler: the exit happens before the handler returns its value.
  const sync = node.spawn((_m, ctx) => {
    node.exit(ctx.self, 'done');
    return 'an answer nobody may see';
  });
  const e1 = await rejects<ProcessExitError>(t, node.call(sync, 'go'), {
    instanceOf: ProcessExitError,
  });
  t.is(e1.reason, 'done');
  // An async handler that exits before its first await.
  const early = node.spawn(async (_m, ctx) => {
    node.exit(ctx.self, 'early');
    await null;
    return 'too late';
  });
  const e2 = await rejects<ProcessExitError>(t, node.call(early, 'go'), {
    instanceOf: ProcessExitError,
  });
  t.is(e2.reason, 'early');
  // A process on another node that ends itself while answering this node's call.
  const a = await spawnAgent(cluster);
  const mortal = await a.spawn('mortal');
  const e3 = await rejects<ProcessExitError>(t, node.call(mortal, 'die'), {
    instanceOf: ProcessExitError,
  });
  t.is(e3.reason, 'race');
  t.false(node.isAlive(sync));
  t.false(node.isAlive(early));
});

test('monitors from several nodes on one process do not overwrite each other, even with the same ref', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const target = node.spawn(() => 'ok');
  // Two nodes that did the same things so far number their monitors alike.
  const [a, b] = await Promise.all([spawnAgent(cluster), spawnAgent(cluster)]);
  const ka = await a.cmd<number>({ cmd: 'monitorStart', pid: target });
  const kb = await b.cmd<number>({ cmd: 'monitorStart', pid: target });
  const ra = await a.cmd<number>({ cmd: 'monitorRef', key: ka });
  const rb = await b.cmd<number>({ cmd: 'monitorRef', key: kb });
  t.is(ra, rb, 'the two nodes were expected to pick the same ref: the test needs the collision');
  const mine = node.monitor(target);
  node.exit(target, 'bye');
  t.deepEqual(
    await Promise.all([
      a.cmd({ cmd: 'monitorResult', key: ka }),
      b.cmd({ cmd: 'monitorResult', key: kb }),
      mine.down,
    ]),
    ['bye', 'bye', 'bye'],
  );
});

test('with 3,000 calls running in async handlers and a third of them answered, last first, exit fails exactly the other two thirds', async (t) => {
  // The calls a process is running sit in its table (call-table.ts), which grows here
  // from its 16 slots; the answered ones leave it out of order.
  const cluster = await start(t);
  const node = cluster.node;
  const gates = new Map<number, () => void>();
  const pid = node.spawn(
    (m: number) =>
      new Promise<number>((resolve) => {
        gates.set(m, () => resolve(m));
      }),
    { concurrency: 1 << 20 },
  );
  const n = 3000;
  const calls = Array.from({ length: n }, (_, i) => node.call<number>(pid, i));
  while (gates.size < n) await new Promise((r) => setImmediate(r));
  // Every third call is answered, last first.
  const answered = Array.from({ length: n }, (_, i) => i).filter((i) => i % 3 === 0);
  for (const i of answered.reverse()) gates.get(i)!();
  for (const i of answered) t.is(await calls[i], i);
  node.exit(pid, 'enough');
  const rest = Array.from({ length: n }, (_, i) => i).filter((i) => i % 3 !== 0);
  for (const i of rest) await t.throwsAsync(calls[i]!, { instanceOf: ProcessExitError });
  // A handler that finishes after the exit is ignored (its caller was already told).
  gates.get(1)!();
  await new Promise((r) => setImmediate(r));
  t.false(node.isAlive(pid));
});
