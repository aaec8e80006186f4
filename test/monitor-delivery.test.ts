/**
 * How monitor events are delivered: the callback form (`onEvent`) against the iterator,
 * a consumer that falls behind (`maxBuffer`, `MonitorOverflowError`), and `demonitor`.
 */
import { getEventListeners } from 'node:events';
import test from 'ava';
import {
  type MembershipEvent,
  MonitorOverflowError,
  NoMembersError,
  NoScopeError,
  type Pid,
} from '../src/index.js';
import { flush, spawnAgent, spawnAgents, spawnLocal, start } from './support/cluster.js';
import { Collector, type CollectorState, join, spyNode, watch } from './support/monitor.js';
import { viewFrom, viewOf } from './support/views.js';

test('onEvent delivers the same events, in the same order, as the iterator', async (t) => {
  const cluster = await start(t);
  const pg = cluster.node.pg;
  const [a, b, watcher] = await spawnAgents(cluster, 3);
  const [p, q] = spawnLocal(cluster.node, 2) as [Pid, Pid];
  await pg.join('pre', p);

  const iter = await watch(pg);
  const cb = await watch(pg, undefined, { callback: true });
  // A callback never overflows: it buffers nothing.
  const cbTiny = await watch(pg, undefined, { callback: true, maxBuffer: 1 });
  const iterG = await watch(pg, 'g');
  const cbG = await watch(pg, 'g', { callback: true });
  t.deepEqual(cb.snapshot, iter.snapshot);
  t.deepEqual(cbG.snapshot, iterG.snapshot);
  for (const name of ['iter', 'cb']) {
    await watcher!.sideCmd({ cmd: 'watch', name, callback: name === 'cb' });
    await watcher!.sideCmd({ cmd: 'watch', name: `${name}G`, group: 'g', callback: name === 'cb' });
  }

  const [x, y] = (await a!.sideCmd<Pid[]>({ cmd: 'spawn', n: 2 })) as [Pid, Pid];
  const [z] = (await b!.sideCmd<Pid[]>({ cmd: 'spawn', n: 1 })) as [Pid];
  await Promise.all([
    pg.join('g', [p, p, q]),
    a!.sideCmd({ cmd: 'join', group: 'g', pids: [x, y, x] }),
    b!.sideCmd({ cmd: 'join', group: ['g', 2], pids: [z] }),
    b!.sideCmd({ cmd: 'join', group: 'g', pids: [z, z] }),
  ]);
  await Promise.all([pg.leave('g', [p, q]), a!.sideCmd({ cmd: 'leave', group: 'g', pids: x })]);
  cluster.node.exit(p);
  await a!.sideCmd({ cmd: 'exit', pids: [y] });
  await cluster.partition(b!.id);
  await b!.sideCmd({ cmd: 'join', group: 'g', pids: [z] });
  await cluster.heal(b!.id);
  await a!.terminate();
  // Many events in one go.
  const many = spawnLocal(cluster.node, 40);
  await Promise.all(many.map((m) => pg.join('many', m)));
  await flush(cluster);

  t.true(iter.c.events.length > 40);
  t.deepEqual(cb.c.events, iter.c.events);
  t.deepEqual(cbTiny.c.events, iter.c.events);
  t.deepEqual(cbG.c.events, iterG.c.events);
  t.deepEqual(
    iterG.c.events,
    iter.c.events.filter((e) => e.group === 'g'),
  );
  const remote = async (name: string) =>
    (await watcher!.sideCmd<CollectorState>({ cmd: 'watchEvents', name })).events;
  t.deepEqual(await remote('cb'), await remote('iter'));
  t.deepEqual(await remote('cbG'), await remote('iterG'));
  t.deepEqual(await remote('iter'), iter.c.events);
  t.false(iter.c.ended);
});

test('overflow: a consumer that never reads gets its buffered events, then MonitorOverflowError; the scope works on', async (t) => {
  const cluster = await start(t);
  const spy = await spyNode(cluster);
  const pg = spy.node.pg;
  const observer = await watch(pg);
  const idle = await pg.monitorScope({ maxBuffer: 10 });
  const idleGroup = await pg.monitor('g', { maxBuffer: 10 });
  const pids = spawnLocal(spy.node, 25);
  for (const p of pids) await pg.join('g', p);
  await flush(cluster, [spy.node.id]);
  t.is(observer.c.events.length, 25);

  // The iterator yields the 10 buffered events, then the error.
  for (const events of [idle.events, idleGroup.events]) {
    const got: MembershipEvent[] = [];
    const it = events[Symbol.asyncIterator]();
    let error: unknown;
    try {
      for (;;) {
        const r = await it.next();
        if (r.done) break;
        got.push(r.value);
      }
    } catch (e) {
      error = e;
    }
    t.deepEqual(got, observer.c.events.slice(0, 10));
    t.true(
      error instanceof MonitorOverflowError,
      `expected MonitorOverflowError, got ${String(error)}`,
    );
    t.is((error as MonitorOverflowError).name, 'MonitorOverflowError');
    t.is((error as MonitorOverflowError).code, 'ERR_PG_MONITOR_OVERFLOW');
    // After the error, the iterator is finished.
    t.deepEqual(await it.next(), { value: undefined, done: true });
  }

  // The scope keeps working, and the coordinator no longer sends the overflowed
  // monitors anything.
  const wired = (ref: number) => spy.wire.filter((e) => e.ref === ref).length;
  const before = [wired(idle.ref), wired(idleGroup.ref)];
  t.true(before[0]! >= 11, 'the 11th event made it overflow');
  const more = spawnLocal(spy.node, 5);
  await pg.join('g', more);
  t.is(await pg.leave('g', pids.slice(0, 3)), 'ok');
  await flush(cluster);
  t.is(observer.c.events.length, 27);
  t.deepEqual([wired(idle.ref), wired(idleGroup.ref)], before, 'overflowed monitors still fed');
  t.deepEqual(viewOf(pg), viewFrom([['g', [...pids.slice(3), ...more]]]));
  // A new monitor starts from the current state.
  const fresh = await pg.monitor('g');
  t.is(fresh.members.length, 27);
});

test('overflow: exactly maxBuffer buffered events do not overflow', async (t) => {
  const cluster = await start(t);
  const pg = cluster.node.pg;
  const m = await pg.monitorScope({ maxBuffer: 10 });
  const pids = spawnLocal(cluster.node, 10);
  for (const p of pids) await pg.join('g', p);
  await flush(cluster, [0]);
  const c = new Collector(m.events);
  await c.until((events) => events.length === 10);
  t.deepEqual(
    c.events,
    pids.map((p) => join('g', [p])),
  );
  t.false(c.ended);
  await pg.demonitor(m.ref);
  await c.done;
  t.is(c.error, undefined);
});

test('overflow on a worker: the same, and the worker keeps working', async (t) => {
  const cluster = await start(t);
  const w = await spawnAgent(cluster);
  await w.sideCmd({ cmd: 'watch', name: 'idle', maxBuffer: 10, idle: true });
  await w.sideCmd({ cmd: 'watch', name: 'live' });
  const pids = spawnLocal(cluster.node, 15);
  for (const p of pids) await cluster.node.pg.join(['g', 1], p);
  await flush(cluster);
  const drained = await w.sideCmd<CollectorState>({ cmd: 'watchDrain', name: 'idle' });
  t.deepEqual(
    drained.events,
    pids.slice(0, 10).map((p) => join(['g', 1], [p])),
  );
  t.true(drained.ended);
  t.is(drained.error, 'MonitorOverflowError');
  const [own] = (await w.sideCmd<Pid[]>({ cmd: 'spawn', n: 1 })) as [Pid];
  await w.sideCmd({ cmd: 'join', group: 'mine', pids: own });
  await flush(cluster);
  const live = await w.sideCmd<CollectorState>({ cmd: 'watchEvents', name: 'live' });
  t.is(live.events.length, 16);
  t.deepEqual(live.events.at(-1), join('mine', [own]));
});

test('maxBuffer must be a positive integer', async (t) => {
  const cluster = await start(t);
  const pg = cluster.node.pg;
  for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    const e = await pg.monitorScope({ maxBuffer: bad }).then(
      () => undefined,
      (err: unknown) => err,
    );
    t.true(e instanceof RangeError, `maxBuffer ${bad}: ${String(e)}`);
    const g = await pg.monitor('g', { maxBuffer: bad }).then(
      () => undefined,
      (err: unknown) => err,
    );
    t.true(g instanceof RangeError, `maxBuffer ${bad} (group): ${String(g)}`);
  }
});

test('demonitor: a waiting iterator finishes, and nothing arrives after it resolves', async (t) => {
  const cluster = await start(t);
  const spy = await spyNode(cluster);
  const pg = spy.node.pg;
  const w = await spawnAgent(cluster);
  const [p] = spawnLocal(spy.node) as [Pid];
  const [r] = (await w.sideCmd<Pid[]>({ cmd: 'spawn', n: 1 })) as [Pid];

  const scope = await watch(pg);
  const group = await watch(pg, 'g');
  const cb = await watch(pg, undefined, { callback: true });
  const other = await watch(pg);
  await pg.join('g', p);
  await flush(cluster);
  for (const m of [scope, group, cb]) t.deepEqual(m.c.events, [join('g', [p])]);

  // Traffic in flight from another node while demonitoring.
  const traffic = (async () => {
    for (let i = 0; i < 20; i++) await w.sideCmd({ cmd: 'join', group: 'g', pids: r });
  })();
  await Promise.all([pg.demonitor(scope.ref), pg.demonitor(group.ref), pg.demonitor(cb.ref)]);
  const frozen = [scope.c.events.length, group.c.events.length, cb.c.events.length];
  const wired = () =>
    [scope.ref, group.ref, cb.ref].map((ref) => spy.wire.filter((e) => e.ref === ref).length);
  const wiredAtDemonitor = wired();
  // The iterators (one was waiting in next()) have finished.
  await Promise.all([scope.c.done, group.c.done]);
  t.true(scope.c.ended && group.c.ended);
  t.is(scope.c.error, undefined);
  await traffic;
  await pg.join('g', p);
  await flush(cluster);

  t.deepEqual([scope.c.events.length, group.c.events.length, cb.c.events.length], frozen);
  // The coordinator sends nothing more for them either.
  t.deepEqual(wired(), wiredAtDemonitor);
  // The live monitor got everything.
  t.is(other.c.events.length, 1 + 20 + 1);
  // Demonitor again, or with an unknown ref: nothing happens.
  t.is(await pg.demonitor(scope.ref), undefined);
  t.is(await pg.demonitor({ ref: 424242 }), undefined);
});

test('demonitor on a worker: its iterator finishes and it receives nothing more', async (t) => {
  const cluster = await start(t);
  const pg = cluster.node.pg;
  const w = await spawnAgent(cluster);
  await w.sideCmd({ cmd: 'watch', name: 'scope' });
  await w.sideCmd({ cmd: 'watch', name: 'group', group: 'g' });
  await w.sideCmd({ cmd: 'watch', name: 'cb', callback: true });
  const [p] = spawnLocal(cluster.node) as [Pid];
  await pg.join('g', p);
  await flush(cluster);
  for (const name of ['scope', 'group', 'cb']) await w.sideCmd({ cmd: 'demonitor', name });
  await pg.leave('g', p);
  await pg.join('g', [p, p]);
  await flush(cluster);
  const state = async (name: string) => w.sideCmd<CollectorState>({ cmd: 'watchEvents', name });
  t.deepEqual(await state('scope'), { events: [join('g', [p])], ended: true, error: undefined });
  t.deepEqual(await state('group'), { events: [join('g', [p])], ended: true, error: undefined });
  t.deepEqual((await state('cb')).events, [join('g', [p])]);
});

test('a monitor ends when its scope stops', async (t) => {
  const cluster = await start(t, { scopes: ['side'] });
  const w = await spawnAgent(cluster);
  const side = cluster.node.scope('side');
  const m = await watch(side);
  const g = await watch(side, 'g');
  const [p] = spawnLocal(cluster.node) as [Pid];
  await side.join('g', p);
  await flush(cluster, [0]);
  t.deepEqual(m.c.events, [join('g', [p])]);
  t.true(await cluster.stopScope('side'));
  await flush(cluster, [0, w.id]);
  await Promise.all([m.c.done, g.c.done]);
  t.true(m.c.ended && g.c.ended);
  // The default scope is untouched.
  const d = await watch(cluster.node.pg);
  await cluster.node.pg.join('g', p);
  await flush(cluster, [0]);
  t.deepEqual(d.c.events, [join('g', [p])]);
});

test('a callback that throws does not cost the node its other messages (acks, other monitors, its life)', async (t) => {
  // Run on a worker, so that what happens to the node cannot take the test process down.
  const cluster = await start(t);
  const w = await spawnAgent(cluster);
  await w.sideCmd({ cmd: 'watch', name: 'throws', throwing: true });
  await w.sideCmd({ cmd: 'watch', name: 'other' });
  const [p] = spawnLocal(cluster.node) as [Pid];
  const [q] = (await w.sideCmd<Pid[]>({ cmd: 'spawn', n: 1 })) as [Pid];

  // A change made elsewhere, then one made by the worker itself: its ack comes in the
  // same delivery as the events of that change.
  await cluster.node.pg.join('g', p);
  const own = await w.sideCmd({ cmd: 'join', group: 'g', pids: q }).then(
    (v) => v,
    (e: unknown) => `rejected: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`,
  );
  t.is(own, 'ok', "the worker's join did not complete");
  t.true(cluster.nodes().includes(w.id), 'the worker node went down');
  if (cluster.nodes().includes(w.id)) {
    await flush(cluster);
    const other = await w.sideCmd<CollectorState>({ cmd: 'watchEvents', name: 'other' });
    t.deepEqual(other.events, [join('g', [p]), join('g', [q])], 'the other monitor missed events');
    const throwing = await w.sideCmd<CollectorState>({ cmd: 'watchEvents', name: 'throws' });
    t.deepEqual(throwing.events, [join('g', [p]), join('g', [q])]);
  }
});

test('onEnd tells a callback monitor that it ended: demonitor, owner exit and scope stop, once each', async (t) => {
  const cluster = await start(t, { scopes: ['side'] });
  const side = cluster.node.scope('side');
  const ends: string[] = [];
  const onEnd = (name: string) => (error?: unknown) =>
    ends.push(error === undefined ? name : `${name}: ${String(error)}`);
  const byDemonitor = await side.monitor('g', { onEvent: () => {}, onEnd: onEnd('demonitor') });
  const [owner] = spawnLocal(cluster.node) as [Pid];
  await side.monitorScope({ onEvent: () => {}, onEnd: onEnd('owner'), owner });
  await side.monitor('g', { onEvent: () => {}, onEnd: onEnd('stop') });
  await side.demonitor(byDemonitor.ref);
  await side.demonitor(byDemonitor.ref);
  t.deepEqual(ends, ['demonitor']);
  cluster.node.exit(owner);
  t.deepEqual(ends, ['demonitor', 'owner']);
  t.true(await cluster.stopScope('side'));
  t.deepEqual(ends, ['demonitor', 'owner', 'stop']);
  await t.throwsAsync(side.monitor('g', { onEnd: 'no' as never }), { instanceOf: TypeError });
});

test('waitForMembers rejects with NoScopeError when its scope stops while it waits, and leaves no listener behind', async (t) => {
  const cluster = await start(t, { scopes: ['side'] });
  const side = cluster.node.scope('side');
  const ac = new AbortController();
  const waiting = side.waitForMembers('nobody', { signal: ac.signal });
  waiting.catch(() => {});
  // Let the monitor behind the wait be set up, then stop the scope under it.
  await flush(cluster, [0]);
  t.is(getEventListeners(ac.signal, 'abort').length, 1);
  t.true(await cluster.stopScope('side'));
  const e = await t.throwsAsync(waiting, { instanceOf: NoScopeError });
  t.regex(e.message, /stopped .* while waiting for 1 member/);
  t.is(getEventListeners(ac.signal, 'abort').length, 0, 'the abort listener went with the wait');
  // A wait that times out does not leave its listener on a long-lived signal either.
  const pg = cluster.node.pg;
  for (let i = 0; i < 20; i++) {
    await t.throwsAsync(pg.waitForMembers('nobody', { timeout: 0, signal: ac.signal }), {
      instanceOf: NoMembersError,
    });
    await t.throwsAsync(pg.dispatch('nobody', 'x', { waitForMembers: 1, signal: ac.signal }), {
      instanceOf: NoMembersError,
    });
  }
  t.is(getEventListeners(ac.signal, 'abort').length, 0);
});
