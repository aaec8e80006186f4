/**
 * Backpressure of group dispatch: at most `maxInFlight` calls of this thread per
 * member, a bounded FIFO queue per group beyond that, `QueueFullError` past the queue,
 * nothing dropped; and `dispatchStats`.
 *
 * Members are `gate` processes: each message that reaches one is counted on its node
 * and announced to the probe, and waits there until the test opens the gate. A round
 * trip to a worker (`ping`) after the fact shows what did *not* reach it: links keep
 * order, so anything sent to it before has been delivered by the time it answers.
 */
import { getEventListeners } from 'node:events';
import test, { type ExecutionContext } from 'ava';
import {
  CallTimeoutError,
  type DispatchOptions,
  InvalidGroupError,
  NodeDownError,
  NoMembersError,
  NoScopeError,
  type Pid,
  QueueFullError,
} from '../src/index.js';
import { after } from '../src/core/timer.js';
import {
  type DispatchNode,
  type DispatchStats,
  orAfter,
  type Rig,
  rig,
  spawnNode,
  track,
  type Tracked,
} from './support/dispatch.js';
import type { Reply } from './support/processes.js';
import { Rng } from './support/random.js';
import { sorted } from './support/views.js';
import { handled, turns } from './support/wait.js';

const states = (ds: Tracked<unknown>[]) => ds.map((d) => d.state);

/** A rig of two worker nodes, each with one `gate` member of `group`, both visible here. */
async function twoGated(t: ExecutionContext, group: string) {
  const r = await rig(t, 2);
  const [w1, w2] = r.workers as [DispatchNode, DispatchNode];
  const [a] = await w1.spawn('gate', 1, group);
  const [b] = await w2.spawn('gate', 1, group);
  await r.pg.waitForMembers(group, { count: 2 });
  return { r, w1, w2, a: a!, b: b! };
}

test('maxInFlight: 2 — the 3rd dispatch per member waits without reaching it, and goes when one completes', async (t) => {
  const { r, w1, w2, a, b } = await twoGated(t, 'bp');

  const ds = Array.from({ length: 6 }, (_, i) =>
    track(r.pg.dispatch<Reply>('bp', i, { maxInFlight: 2 })),
  );
  t.is(r.pg.dispatchStats('bp').queued, 2, 'two wait in the queue');
  await r.probe.arrived(4);
  await w1.ping();
  await w2.ping();
  t.is((await w1.received(a!)).length, 2, 'member a got two');
  t.is((await w2.received(b!)).length, 2, 'member b got two');
  t.is(r.probe.count(), 4, 'nothing else reached a member');
  t.deepEqual(r.probe.arrivals.map((x) => x.msg).sort(), [0, 1, 2, 3], 'the first four went out');
  t.true(states(ds).every((s) => s === 'pending'));

  // One call on a completes: the first queued dispatch goes, to a (b is still full).
  t.is(await w1.open(a, 1), 1);
  await r.probe.arrived(5);
  t.is(r.probe.arrivals[4]!.msg, 4, 'the first queued dispatch went first');
  t.is(r.probe.arrivals[4]!.pid, a!);
  t.is(r.pg.dispatchStats('bp').queued, 1);
  t.is(states(ds).filter((s) => s === 'fulfilled').length, 1);
  await w2.ping();
  t.is((await w2.received(b!)).length, 2, 'b still has two');

  await r.openAll();
  const replies = await Promise.all(ds.map((d) => d.promise));
  t.deepEqual(
    replies.map((x) => x.msg),
    [0, 1, 2, 3, 4, 5],
  );
  t.is(r.probe.count(), 6, 'each reached a member once');
  t.like(r.pg.dispatchStats('bp'), { calls: 6, failures: 0, queued: 0 });
});

test('maxQueue: 5 — the next dispatch rejects at once with QueueFullError saying what to do; the others all complete', async (t) => {
  const { r, w1, w2 } = await twoGated(t, 'full');
  const opts = { maxInFlight: 2, maxQueue: 5 };
  const ds = Array.from({ length: 9 }, (_, i) => track(r.pg.dispatch<Reply>('full', i, opts)));
  t.is(r.pg.dispatchStats('full').queued, 5);
  const over = track(r.pg.dispatch<Reply>('full', 'one too many', opts));
  await turns(1);
  t.is(over.state, 'rejected', 'rejected at once, not queued');
  const e = over.error as QueueFullError;
  t.true(e instanceof QueueFullError, String(e));
  t.is(e.name, 'QueueFullError');
  t.is(e.code, 'ERR_PG_QUEUE_FULL');
  t.regex(e.message, /"full"/, 'it names the group');
  t.regex(e.message, /maxInFlight/);
  t.regex(e.message, /maxQueue/);
  t.regex(e.message, /add members/);
  t.true(
    states(ds).every((s) => s === 'pending'),
    'the others still wait',
  );
  t.is(r.pg.dispatchStats('full').queued, 5);

  // maxQueue: 0 — no waiting at all.
  await t.throwsAsync(r.pg.dispatch('full', 'no queue', { maxInFlight: 2, maxQueue: 0 }), {
    instanceOf: QueueFullError,
  });

  await r.probe.arrived(4);
  await r.openAll();
  const replies = await Promise.all(ds.map((d) => d.promise));
  t.deepEqual(
    replies.map((x) => x.msg),
    [0, 1, 2, 3, 4, 5, 6, 7, 8],
  );
  await w1.ping();
  await w2.ping();
  const got = [
    ...(await w1.cmd<[Pid, unknown[]][]>({ cmd: 'receivedAll' })),
    ...(await w2.cmd<[Pid, unknown[]][]>({ cmd: 'receivedAll' })),
  ].flatMap(([, msgs]) => msgs);
  t.deepEqual(
    got.sort(),
    [0, 1, 2, 3, 4, 5, 6, 7, 8],
    'the rejected ones never reached a member; the others each once',
  );
  t.like(r.pg.dispatchStats('full'), { calls: 9, failures: 0, queued: 0 });
});

test('queued dispatches go out, and complete, in FIFO order as members free up', async (t) => {
  const r = await rig(t, 1);
  const w1 = r.workers[0]!;
  const [a] = await w1.spawn('gate', 1, 'fifo');
  const [b] = await r.spawnLocal('gate', 1, 'fifo');
  await r.pg.waitForMembers('fifo', { count: 2 });
  const done: number[] = [];
  const ds = Array.from({ length: 10 }, (_, i) =>
    handled(
      r.pg.dispatch<Reply>('fifo', i, { maxInFlight: 1 }).then((x) => {
        done.push(i);
        return x;
      }),
    ),
  );
  await r.probe.arrived(2);
  t.is(r.pg.dispatchStats('fifo').queued, 8);
  // Free one slot at a time, alternating members (each holds one message at a time).
  const released = new Map<Pid, number>([
    [a!, 0],
    [b!, 0],
  ]);
  for (let k = 2; k < 10; k++) {
    const m = [a!, b!].find((p) => r.probe.count(p) > released.get(p)!)!;
    released.set(m, released.get(m)! + 1);
    if (m === a) t.is(await w1.open(a, 1), 1);
    else t.is(r.local.open(b, 1), 1);
    await r.probe.arrived(k + 1);
    t.is(r.probe.arrivals[k]!.msg, k, `the ${k}th dispatch went out ${k}th`);
    t.is(r.probe.arrivals[k]!.pid, m, 'to the member that was freed');
  }
  await r.openAll();
  t.deepEqual(
    (await Promise.all(ds)).map((x) => x.msg),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  );
  t.is(done.length, 10);

  // One member, one at a time: completion order is dispatch order.
  const [c] = await w1.spawn('gate', 1, 'fifo-1');
  await r.pg.waitForMembers('fifo-1');
  const order: number[] = [];
  const more = Array.from({ length: 7 }, (_, i) =>
    handled(r.pg.dispatch('fifo-1', i, { maxInFlight: 1 }).then(() => order.push(i))),
  );
  await r.probe.arrived(1, c);
  await w1.open(c, undefined, true);
  await Promise.all(more);
  t.deepEqual(order, [0, 1, 2, 3, 4, 5, 6]);
  t.deepEqual(await w1.received(c!), [0, 1, 2, 3, 4, 5, 6], 'the member got them in order');
});

test('nothing is silently dropped: every dispatch resolves once at a member or rejects with QueueFullError (seeded run)', async (t) => {
  for (const seed of [7, 42]) {
    const r = await rig(t, 2);
    const [w1, w2] = r.workers as [DispatchNode, DispatchNode];
    const [a] = await w1.spawn('gate', 1, 'nd');
    const [b] = await w2.spawn('gate', 1, 'nd');
    const [c] = await r.spawnLocal('gate', 1, 'nd');
    await r.pg.waitForMembers('nd', { count: 3 });
    const rng = new Rng(seed);
    const opts = { maxInFlight: 2, maxQueue: 4 };
    const ds: Tracked<Reply>[] = [];
    for (let step = 0; step < 80; step++) {
      // A burst first (6 in flight, 4 queued, the rest rejected), then a random mix.
      if (step < 15 || rng.below(10) < 6) {
        ds.push(track(r.pg.dispatch<Reply>('nd', ds.length, opts)));
      } else {
        const which = rng.below(3);
        if (which === 0) await w1.open(a, 1);
        else if (which === 1) await w2.open(b, 1);
        else {
          r.local.open(c, 1);
          await turns(1);
        }
      }
    }
    await r.openAll();
    const all = await orAfter(
      Promise.allSettled(ds.map((d) => d.promise)),
      15_000,
      'some dispatch never settled' as const,
    );
    if (typeof all === 'string') {
      t.fail(`seed ${seed}: ${all}: ${ds.filter((d) => d.state === 'pending').length} pending`);
      continue;
    }
    const ok: number[] = [];
    let full = 0;
    all.forEach((o, i) => {
      if (o.status === 'fulfilled') {
        t.is(o.value.msg, i, 'its own answer');
        ok.push(i);
      } else if (o.reason instanceof QueueFullError) full++;
      else t.fail(`seed ${seed}: dispatch ${i} rejected with ${String(o.reason)}`);
    });
    t.true(full > 0, `seed ${seed}: some were refused (${full})`);
    t.is(ok.length + full, ds.length);
    // Each answered dispatch reached a member exactly once; no refused one reached any.
    t.deepEqual(sorted(r.probe.arrivals.map((x) => x.msg as number)), ok, `seed ${seed}`);
    t.like(r.pg.dispatchStats('nd'), { calls: ok.length, failures: 0, queued: 0 });
  }
});

test('a queued dispatch rejects with the reason as soon as its signal aborts, not when a member frees up', async (t) => {
  const r = await rig(t, 1);
  const w1 = r.workers[0]!;
  const [a] = await w1.spawn('gate', 1, 'qa');
  await r.pg.waitForMembers('qa');
  const d0 = handled(r.pg.dispatch('qa', 'first', { maxInFlight: 1 }));
  await r.probe.arrived(1, a);
  const ac = new AbortController();
  const reason = new Error('caller gave up');
  const d1 = track(r.pg.dispatch('qa', 'second', { maxInFlight: 1, signal: ac.signal }));
  t.is(r.pg.dispatchStats('qa').queued, 1);
  ac.abort(reason);
  await w1.ping(); // plenty of turns for the abort to take effect
  t.is(d1.state, 'rejected', 'rejected while the member is still busy');
  t.is(d1.error, reason);
  t.is(r.pg.dispatchStats('qa').queued, 0, 'it left the queue');
  await r.openAll();
  await d0;
  await d1.promise.catch(() => {});
  await w1.ping();
  t.deepEqual(await w1.received(a!), ['first'], 'the aborted dispatch never reached the member');
});

test('a queued dispatch with a timeout rejects with CallTimeoutError when the wait outlasts it', async (t) => {
  const r = await rig(t, 1);
  const w1 = r.workers[0]!;
  const [a] = await w1.spawn('gate', 1, 'qt');
  await r.pg.waitForMembers('qt');
  const d0 = handled(r.pg.dispatch('qt', 'first', { maxInFlight: 1 }));
  await r.probe.arrived(1, a);
  const d1 = track(r.pg.dispatch('qt', 'second', { maxInFlight: 1, timeout: 100 }));
  t.is(r.pg.dispatchStats('qt').queued, 1);
  // The member stays busy. A guard turns a hang into a failure (the timeout is 100 ms).
  const outcome = await orAfter(
    d1.promise.then(
      () => 'resolved',
      (e: unknown) => e,
    ),
    5_000,
    'still pending 5 s later' as const,
  );
  t.true(outcome instanceof CallTimeoutError, `expected CallTimeoutError, got ${String(outcome)}`);
  await r.openAll();
  await d0;
  await d1.promise.catch(() => {});
});

test('a dispatch queued on one group goes out when a member it shares with another group frees up', async (t) => {
  const r = await rig(t, 1);
  const w1 = r.workers[0]!;
  const [p] = await w1.spawn('gate', 1, 'x');
  await w1.join('y', [p!]);
  await r.pg.waitForMembers('y');
  // maxInFlight counts this thread's calls to the member, whichever group they came through.
  const d0 = handled(r.pg.dispatch('x', 'via x', { maxInFlight: 1 }));
  await r.probe.arrived(1, p);
  const d1 = track(r.pg.dispatch('y', 'via y', { maxInFlight: 1 }));
  t.is(r.pg.dispatchStats('y').queued, 1, 'the member is full: the dispatch on y waits');
  t.is(await w1.open(p, 1), 1);
  await d0;
  await w1.ping(); // had the dispatch on y gone out when p freed up, it has reached p by now
  t.deepEqual(
    await w1.received(p!),
    ['via x', 'via y'],
    'the dispatch queued on y went to p once p had room',
  );
  await r.openAll();
  // Left pending if the bug is there: do not wait on it forever.
  await orAfter(d1.promise, 2_000, undefined);
});

/** A gated member of `group` on each of the rig's two workers, both visible here. */
async function gatePerWorker(r: Rig, group: string) {
  const [w1, w2] = r.workers as [DispatchNode, DispatchNode];
  const [a] = await w1.spawn('gate', 1, group);
  const [b] = await w2.spawn('gate', 1, group);
  await r.pg.waitForMembers(group, { count: 2 });
  return { w1, w2, a: a!, b: b! };
}

/** A key that the 'hash' strategy routes to `pid` in `group`. */
function keyFor(r: Rig, group: string, pid: Pid): string {
  const key = Array.from({ length: 200 }, (_, i) => `k${i}`).find(
    (k) => r.pg.pick(group, 'hash', k) === pid,
  );
  if (key === undefined) throw new Error(`no key of 200 hashes to ${pid} in ${group}`);
  return key;
}

test('hash: a dispatch waiting for a free owner is not held up behind one waiting for a busy owner', async (t) => {
  const r = await rig(t, 2);
  const { w1, w2, a, b } = await gatePerWorker(r, 'hh');
  const ka = keyFor(r, 'hh', a);
  const kb = keyFor(r, 'hh', b);
  const opts = (key: string) => ({ strategy: 'hash' as const, key, maxInFlight: 1 });
  const d1 = handled(r.pg.dispatch('hh', 'a1', opts(ka)));
  const d2 = handled(r.pg.dispatch('hh', 'b1', opts(kb)));
  await r.probe.arrived(2);
  const d3 = track(r.pg.dispatch('hh', 'a2', opts(ka))); // waits for a
  const d4 = track(r.pg.dispatch('hh', 'b2', opts(kb))); // waits for b
  t.is(r.pg.dispatchStats('hh').queued, 2);
  // b finishes; a stays busy.
  t.is(await w2.open(b, 1), 1);
  await d2;
  await w2.ping();
  t.deepEqual(await w2.received(b), ['b1', 'b2'], 'b2 went to b as soon as b had room');
  t.deepEqual(await w1.received(a), ['a1']);
  await r.openAll();
  await Promise.all([d1, d3.promise, d4.promise]);
});

test('a random dispatch does not wait behind hash dispatches waiting for their busy owner: it goes to the member with room', async (t) => {
  const r = await rig(t, 2);
  const { w1, w2, a, b } = await gatePerWorker(r, 'hr');
  const ka = keyFor(r, 'hr', a);
  const hashed = { strategy: 'hash' as const, key: ka, maxInFlight: 1 };
  const d1 = handled(r.pg.dispatch('hr', 'a1', hashed));
  await r.probe.arrived(1);
  const d2 = track(r.pg.dispatch('hr', 'a2', hashed)); // waits for a
  t.is(r.pg.dispatchStats('hr').queued, 1);
  // The queue's watch on the group (a monitor) is in place: its answer came before this
  // later request's, so what follows is not started by it.
  await r.pg.join('barrier', r.node.self());
  // a is busy and its waiter is sticky; b is idle: a random dispatch goes to b now.
  const d3 = handled(r.pg.dispatch('hr', 'any', { maxInFlight: 1 }));
  await r.probe.arrived(2);
  await w2.ping();
  t.deepEqual(await w2.received(b), ['any']);
  t.deepEqual(await w1.received(a), ['a1']);
  t.is(d2.state, 'pending');
  await r.openAll();
  await Promise.all([d1, d2.promise, d3]);
});

test('maxInFlight must be at least 1', async (t) => {
  const r = await rig(t);
  await r.spawnLocal('echo', 1, 'mif');
  for (const bad of [0, -1, 0.5, Number.NaN])
    await t.throwsAsync(r.pg.dispatch('mif', 'x', { maxInFlight: bad }), {
      instanceOf: RangeError,
      message: /maxInFlight/,
    });
});

// Stats --------------------------------------------------------------------------------

test('dispatchStats: calls, failures, retries and queued match what happened; latency percentiles after calls', async (t) => {
  const r = await rig(t, 1);
  const w1 = r.workers[0]!;
  const echoes = [...(await w1.spawn('echo', 2, 'st')), ...(await r.spawnLocal('echo', 1, 'st'))];
  const [thrower] = await w1.spawn('thrower', 1, 'st');
  const [mortal] = await w1.spawn('mortal', 1, 'st');
  await r.pg.waitForMembers('st', { count: 5 });
  const zero: DispatchStats = {
    calls: 0,
    failures: 0,
    retries: 0,
    queued: 0,
    p50: 0,
    p90: 0,
    p99: 0,
    max: 0,
  };
  t.deepEqual(r.pg.dispatchStats('st'), zero, 'nothing yet');
  t.deepEqual(r.pg.dispatchStats('never-used'), zero);

  const toEcho = (members: readonly Pid[]) => members.find((p) => echoes.includes(p));
  for (let i = 0; i < 20; i++) await r.pg.dispatch('st', i, { strategy: toEcho });
  const s1 = r.pg.dispatchStats('st');
  t.like(s1, { calls: 20, failures: 0, retries: 0, queued: 0 });
  t.true(s1.p50 > 0, `p50 ${s1.p50}`);
  t.true(s1.p50 <= s1.p90 && s1.p90 <= s1.p99 && s1.p99 <= s1.max, JSON.stringify(s1));

  const toThrower = (members: readonly Pid[]) => (members.includes(thrower!) ? thrower : undefined);
  for (let i = 0; i < 2; i++)
    await t.throwsAsync(r.pg.dispatch('st', 'x', { strategy: toThrower, retries: 2 }));
  t.like(r.pg.dispatchStats('st'), { calls: 22, failures: 2, retries: 0 });

  const toMortal = (members: readonly Pid[]) =>
    members.includes(mortal!) ? mortal : toEcho(members);
  await r.pg.dispatch('st', 'y', { strategy: toMortal, retries: 1 });
  const s3 = r.pg.dispatchStats('st');
  t.like(s3, { calls: 24, failures: 3, retries: 1, queued: 0 });
  t.true(s3.max >= s1.max);

  // Stats are per calling thread: a worker's dispatches are its own.
  await w1.spawn('echo', 2, 'st-w');
  await r.pg.waitForMembers('st-w', { count: 2 });
  for (let i = 0; i < 5; i++) await w1.cmd({ cmd: 'dispatch', group: 'st-w', msg: i });
  const theirs = await w1.cmd<DispatchStats>({ cmd: 'dispatchStats', group: 'st-w' });
  t.like(theirs, { calls: 5, failures: 0, retries: 0, queued: 0 });
  t.true(theirs.p50 > 0);
  t.like(r.pg.dispatchStats('st-w'), { calls: 0 }, 'node 0 made none');
  t.like(await w1.cmd<DispatchStats>({ cmd: 'dispatchStats', group: 'st' }), { calls: 0 });
  t.like(r.pg.dispatchStats('st'), { calls: 24 });
});

test('dispatchStats: a dispatch that sent nothing (aborted before, uncloneable) counts as a failure with no latency', async (t) => {
  const r = await rig(t, 1);
  await r.workers[0]!.spawn('echo', 1, 'st-unsent');
  await r.pg.waitForMembers('st-unsent');
  const signal = AbortSignal.abort(new Error('never mind'));
  for (let i = 0; i < 50; i++) {
    await t.throwsAsync(r.pg.dispatch('st-unsent', i, { signal }), { message: 'never mind' });
    await t.throwsAsync(
      r.pg.dispatch('st-unsent', () => i),
      { name: 'MessageCloneError' },
    );
  }
  t.like(r.pg.dispatchStats('st-unsent'), { failures: 100, p50: 0, p99: 0, max: 0 });
  await r.pg.dispatch('st-unsent', 'sent');
  const s = r.pg.dispatchStats('st-unsent');
  t.true(s.p50 > 0 && s.p50 === s.max, 'only the call that went is timed');
});

test('dispatchStats: queued counts the dispatches waiting right now', async (t) => {
  const r = await rig(t, 1);
  const w1 = r.workers[0]!;
  await w1.spawn('gate', 1, 'sq');
  await r.pg.waitForMembers('sq');
  const ds = Array.from({ length: 4 }, (_, i) =>
    handled(r.pg.dispatch('sq', i, { maxInFlight: 1 })),
  );
  t.is(r.pg.dispatchStats('sq').queued, 3);
  await r.probe.arrived(1);
  await w1.open(undefined, 1);
  await r.probe.arrived(2);
  t.is(r.pg.dispatchStats('sq').queued, 2);
  await r.openAll();
  await Promise.all(ds);
  t.like(r.pg.dispatchStats('sq'), { calls: 4, queued: 0 });
});

test('dispatchStats keeps a tuple group apart from a string group (["shard", 3] is not "ts5:shardn1:3")', async (t) => {
  const r = await rig(t);
  await r.spawnLocal('echo', 1, ['shard', 3]);
  for (let i = 0; i < 3; i++) await r.pg.dispatch(['shard', 3], i);
  t.is(r.pg.dispatchStats(['shard', 3]).calls, 3);
  t.is(r.pg.dispatchStats('shard,3').calls, 0);
  t.is(
    r.pg.dispatchStats('ts5:shardn1:3').calls,
    0,
    'a string group that spells the canonical key of the tuple is another group',
  );
  t.is(r.pg.dispatchStats(3).calls, 0);
  t.is(r.pg.dispatchStats('3').calls, 0);
  t.throws(() => r.pg.dispatchStats({} as never), { instanceOf: InvalidGroupError });
});

test('waiting dispatches fail with NoScopeError as soon as their scope stops, in FIFO and sticky queues alike', async (t) => {
  const r = await rig(t);
  await r.cluster.startScope('side');
  const side = r.node.scope('side');
  const [m] = await r.spawnLocal('gate', 1);
  await side.join('q', m!);
  const opts = { maxInFlight: 1 };
  // Held at the gate: the member is saturated, so the next two wait.
  const first = track(side.dispatch<Reply>('q', 'first', opts));
  const queued = track(side.dispatch('q', 'fifo', opts));
  const sticky = track(side.dispatch('q', 'sticky', { ...opts, strategy: 'hash', key: 'k' }));
  t.is(side.dispatchStats('q').queued, 2);
  t.true(await r.cluster.stopScope('side'));
  await Promise.allSettled([queued.promise, sticky.promise]);
  t.is(queued.state, 'rejected');
  t.true(queued.error instanceof NoScopeError, String(queued.error));
  t.true(sticky.error instanceof NoScopeError, String(sticky.error));
  t.is(side.dispatchStats('q').queued, 0);
  // The call that was in flight is not the scope's to cancel: it completes.
  await r.openAll();
  t.is((await first.promise).msg, 'first');
});

/**
 * A dispatch waits behind the one busy member of `group`, which then leaves: the waiter
 * fails with NoMembersError at once, and the call in flight still completes.
 */
const failsWhenTheGroupEmpties = test.macro(
  async (t, group: string, waitOptions: Omit<DispatchOptions, 'maxInFlight'>) => {
    const r = await rig(t);
    const [busy] = await r.spawnLocal('gate', 1, group);
    const held = track(r.pg.dispatch<Reply>(group, 'held', { ...waitOptions, maxInFlight: 1 }));
    const waiting = track(r.pg.dispatch(group, 'waits', { ...waitOptions, maxInFlight: 1 }));
    t.is(r.pg.dispatchStats(group).queued, 1);
    t.is(await r.pg.leave(group, busy!), 'ok');
    // The waiter hears that the group emptied, and fails; the call in flight completes.
    await Promise.allSettled([waiting.promise]);
    t.true(waiting.error instanceof NoMembersError, String(waiting.error));
    t.is(held.state, 'pending');
    await r.openAll();
    t.is((await held.promise).msg, 'held');
    t.is(r.pg.dispatchStats(group).queued, 0);
  },
);

test(
  'a sticky dispatch waiting for its member fails at once with NoMembersError when the group empties',
  failsWhenTheGroupEmpties,
  's',
  { strategy: 'hash', key: 'k' },
);

test(
  'dispatches waiting behind a busy member fail at once with NoMembersError when the group empties',
  failsWhenTheGroupEmpties,
  'shrink',
  {},
);

test('timeouts too large for setTimeout (Infinity, 2^31 ms and more) mean no limit, not 1 ms', async (t) => {
  // Node's setTimeout turns these into 1 ms: no timer may be set for them.
  for (const ms of [Number.POSITIVE_INFINITY, 2 ** 31, Number.MAX_SAFE_INTEGER]) {
    t.is(
      after(ms, () => t.fail(`the timer of ${ms} ms fired`)),
      undefined,
      `${ms} ms`,
    );
  }
  const timer = after(2 ** 31 - 1, () => t.fail('fired'));
  t.not(timer, undefined);
  clearTimeout(timer);
  // And through the API: a member that comes from a thread spawned after the wait began.
  const r = await rig(t);
  const waiting = track(r.pg.waitForMembers('later', { timeout: Number.POSITIVE_INFINITY }));
  const dispatching = track(
    r.pg.dispatch<Reply>('later', 'hi', {
      waitForMembers: Number.POSITIVE_INFINITY,
      timeout: 2 ** 40,
    }),
  );
  const w = await spawnNode(r.cluster, r.probe.pid);
  await w.spawn('echo', 1, 'later');
  t.is((await waiting.promise).length, 1);
  t.is((await dispatching.promise).msg, 'hi');
});

test('a member that joins while dispatches wait takes them at once, though the saturated member never finishes', async (t) => {
  const r = await rig(t);
  const [busy] = await r.spawnLocal('gate', 1, 'grow');
  const opts = { maxInFlight: 1 };
  const held = track(r.pg.dispatch<Reply>('grow', 'held', opts));
  const waiting = [1, 2, 3].map((i) => track(r.pg.dispatch<Reply>('grow', i, opts)));
  t.is(r.pg.dispatchStats('grow').queued, 3);
  // A new member, on another thread; the gate of the busy one stays shut.
  const w = await spawnNode(r.cluster, r.probe.pid);
  const [fresh] = await w.spawn('echo', 1, 'grow');
  const replies = await Promise.all(waiting.map((d) => d.promise));
  t.deepEqual(
    replies.map((x) => [x.msg, x.pid]),
    [
      [1, fresh],
      [2, fresh],
      [3, fresh],
    ],
  );
  t.is(held.state, 'pending', 'the busy member still holds its call');
  t.is(r.pg.dispatchStats('grow').queued, 0);
  await r.openAll();
  t.is((await held.promise).pid, busy!);
});

test('a waiting dispatch whose group empties spends its waitForMembers, as a new one would (rolling restart)', async (t) => {
  const r = await rig(t);
  const [old] = await r.spawnLocal('gate', 1, 'roll');
  const opts = { maxInFlight: 1, waitForMembers: 60_000 };
  const held = track(r.pg.dispatch<Reply>('roll', 'held', opts));
  const waiting = track(r.pg.dispatch<Reply>('roll', 'waits', opts));
  t.is(r.pg.dispatchStats('roll').queued, 1);
  t.is(await r.pg.leave('roll', old!), 'ok');
  // The group is empty now; the replacement comes from a new thread.
  const w = await spawnNode(r.cluster, r.probe.pid);
  const [replacement] = await w.spawn('echo', 1, 'roll');
  t.deepEqual((await waiting.promise).pid, replacement);
  await r.openAll();
  t.is((await held.promise).pid, old!);
});

test('a strategy function that throws while its dispatch waits fails that dispatch, and nothing else', async (t) => {
  const r = await rig(t);
  const [busy] = await r.spawnLocal('gate', 1, 'fn');
  let calls = 0;
  const picky = (members: readonly Pid[]) => {
    if (++calls > 1) throw new Error('the strategy broke');
    return members[0];
  };
  const first = track(r.pg.dispatch<Reply>('fn', 'first', { maxInFlight: 1 }));
  const second = track(r.pg.dispatch('fn', 'second', { maxInFlight: 1, strategy: picky }));
  t.is(r.pg.dispatchStats('fn').queued, 1);
  // The pump runs when the first call completes; the throw lands on the second dispatch.
  await r.openAll();
  t.is((await first.promise).pid, busy!);
  await Promise.allSettled([second.promise]);
  t.is((second.error as Error).message, 'the strategy broke');
});

test('default window: a burst to a member that holds its calls stays queued at the caller, and a member that joins late takes the backlog at once', async (t) => {
  const r = await rig(t);
  const [busy] = await r.spawnLocal('gate', 1, 'late');
  // Default options: the window of a member never measured is small, and it only grows
  // as calls come back; this member answers none until its gate opens.
  const burst = Array.from({ length: 100 }, (_, i) => track(r.pg.dispatch<Reply>('late', i)));
  const queued = r.pg.dispatchStats('late').queued;
  t.true(queued >= 90, `most of the burst waits at the caller (${queued} queued)`);
  // The first ones went to the member (its window), the rest wait, in order.
  const waiting = burst.slice(100 - queued);
  const w = await spawnNode(r.cluster, r.probe.pid);
  const [fresh] = await w.spawn('echo', 1, 'late');
  const replies = await Promise.all(waiting.map((d) => d.promise));
  t.true(
    replies.every((x) => x.pid === fresh),
    'every dispatch that waited went to the member that joined',
  );
  await r.openAll();
  const all = await Promise.all(burst.map((d) => d.promise));
  t.is(
    all.filter((x) => x.pid === busy).length,
    100 - queued,
    'the held ones finish on their member',
  );
});

test('a deep burst whose member dies mid-burst: its calls in flight fail with NodeDownError, and the 5,000 queued behind go to the member left', async (t) => {
  const { r, w1, w2, a, b } = await twoGated(t, 'deep');
  // Default options: each member takes its first window (a few calls) and holds them at
  // its gate; the rest of the burst waits in this thread's queue.
  const n = 5000;
  const burst = Array.from({ length: n }, (_, i) => track(r.pg.dispatch<Reply>('deep', i)));
  const queued = r.pg.dispatchStats('deep').queued;
  await r.probe.arrived(n - queued);
  const heldAtB = r.probe.arrivals.filter((x) => x.pid === b).map((x) => x.msg as number);
  t.true(heldAtB.length > 0 && r.probe.count(a) > 0, 'each member took a few');
  t.true(queued > n - 20, `the rest wait (${queued} queued)`);

  // b's node dies with its calls held: they fail, which frees b's slots, and the passes
  // over the queue that follow find b gone (a start to it fails at once) and a full.
  await w2.terminate();
  for (const i of heldAtB) {
    const e = await t.throwsAsync(burst[i]!.promise, { instanceOf: NodeDownError });
    t.is(e.node, w2.id);
  }
  t.is(r.pg.dispatchStats('deep').queued, queued, 'the queued ones still wait, none lost');

  // a opens: the whole queue drains through it.
  await w1.open(a, undefined, true);
  const settled = await Promise.allSettled(burst.map((d) => d.promise));
  const failed = settled.flatMap((x, i) => (x.status === 'rejected' ? [i] : []));
  t.deepEqual(
    failed,
    [...heldAtB].sort((x, y) => x - y),
    'only the calls held at b failed',
  );
  t.true(
    settled.every((x, i) => x.status === 'rejected' || (x.value.pid === a && x.value.msg === i)),
    'every other dispatch was answered by a, with its own answer',
  );
  t.is(r.pg.dispatchStats('deep').queued, 0);

  // The queue keeps working for the next burst, on the member left.
  const more = await Promise.all(
    Array.from({ length: 2000 }, (_, i) => r.pg.dispatch<Reply>('deep', n + i)),
  );
  t.true(more.every((x, i) => x.pid === a && x.msg === n + i));
});

/** Warnings Node emits on this thread from now until the test ends. */
function warningsDuring(t: ExecutionContext): Error[] {
  const seen: Error[] = [];
  const listener = (w: Error) => seen.push(w);
  process.on('warning', listener);
  t.teardown(() => void process.off('warning', listener));
  return seen;
}

test('one AbortSignal for a whole batch (dispatches in flight and queued, calls, a wait): one listener, no leak warning; abort rejects them all and leaves none', async (t) => {
  const warnings = warningsDuring(t);
  const r = await rig(t, 1);
  const w1 = r.workers[0]!;
  const [a] = await w1.spawn('gate', 1, 'sig');
  await r.pg.waitForMembers('sig');
  const ac = new AbortController();
  const { signal } = ac;
  // 200 dispatches: 50 reach the member and wait at its gate, 150 wait in the queue.
  const ds = Array.from({ length: 200 }, (_, i) =>
    track(r.pg.dispatch('sig', i, { maxInFlight: 50, signal })),
  );
  const calls = Array.from({ length: 20 }, (_, i) => track(r.node.call(a!, `c${i}`, { signal })));
  const wait = track(r.pg.waitForMembers('sig-empty', { signal }));
  await r.probe.arrived(50, a);
  t.is(r.pg.dispatchStats('sig').queued, 150);
  t.is(getEventListeners(signal, 'abort').length, 1, 'one listener for all 221');
  const reason = new Error('batch cancelled');
  ac.abort(reason);
  await Promise.allSettled([...ds, ...calls, wait].map((x) => x.promise));
  for (const x of [...ds, ...calls, wait]) {
    t.is(x.state, 'rejected');
    t.is(x.error, reason);
  }
  t.is(getEventListeners(signal, 'abort').length, 0);
  await r.openAll();
  await w1.ping();
  t.deepEqual(
    warnings.filter((w) => w.name === 'MaxListenersExceededWarning'),
    [],
    'no MaxListenersExceededWarning',
  );
});

test('a signal shared by dispatches and calls that all complete is left with no listener', async (t) => {
  const r = await rig(t, 1);
  const w1 = r.workers[0]!;
  const [a] = await w1.spawn('echo', 1, 'sig-done');
  await r.pg.waitForMembers('sig-done');
  const ac = new AbortController();
  const { signal } = ac;
  const all = [
    ...Array.from({ length: 30 }, (_, i) => r.pg.dispatch('sig-done', i, { signal })),
    ...Array.from({ length: 30 }, (_, i) => r.node.call(a!, i, { signal })),
  ];
  t.is(getEventListeners(signal, 'abort').length, 1);
  await Promise.all(all);
  t.is(getEventListeners(signal, 'abort').length, 0, 'the listener went with the last call');
});
