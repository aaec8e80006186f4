/**
 * Dispatch when there is no member (at once, or after waiting for one), when the
 * picked member dies during the call (retried only when `retries` allows it, never on
 * the same member), when its handler throws (never retried), on timeout and on abort.
 *
 * A function strategy that prefers one member makes the first pick certain; it records
 * what it was offered, which shows which members a retry may still pick.
 */
import test, { type ExecutionContext } from 'ava';
import {
  CallTimeoutError,
  makePid,
  NodeDownError,
  NoMembersError,
  NoProcessError,
  type PickFunction,
  type Pid,
  ProcessExitError,
} from '../src/index.js';
import { barrier, spawnLocal, start } from './support/cluster.js';
import { type DispatchNode, rig, tally, track } from './support/dispatch.js';
import { flushed, newSignal, waitSignal } from './support/reliability.js';
import type { Reply } from './support/processes.js';
import { handled, turns } from './support/wait.js';

/** Picks `target` while it is offered, then the first member offered; logs every offer. */
function prefer(target: Pid, offers: Pid[][]): PickFunction {
  return (members) => {
    offers.push([...members]);
    return members.includes(target) ? target : members[0];
  };
}

// No members ---------------------------------------------------------------------------

test('empty group: dispatch rejects at once with NoMembersError naming the group', async (t) => {
  const r = await rig(t);
  const d = track(r.pg.dispatch('nobody-home', 'x'));
  await turns(1);
  t.is(d.state, 'rejected', 'settled within one turn of the event loop');
  t.true(d.error instanceof NoMembersError, String(d.error));
  t.is((d.error as NoMembersError).code, 'ERR_PG_NO_MEMBERS');
  t.regex((d.error as Error).message, /nobody-home/);
  // Whatever the strategy.
  for (const strategy of ['random', 'round-robin', 'local-first', 'least-loaded'] as const)
    await t.throwsAsync(r.pg.dispatch('nobody-home', 'x', { strategy }), {
      instanceOf: NoMembersError,
    });
  await t.throwsAsync(r.pg.dispatch('nobody-home', 'x', { strategy: 'hash', key: 1 }), {
    instanceOf: NoMembersError,
  });
  t.is(r.pg.dispatchStats('nobody-home').calls, 0, 'no call was made');
});

test('waitForMembers: the dispatch waits, and succeeds on a member that joins later', async (t) => {
  const r = await rig(t, 1);
  const w = r.workers[0]!;
  const d = track(r.pg.dispatch<Reply>('late', 'hello', { waitForMembers: 60_000 }));
  await w.ping();
  t.is(d.state, 'pending', 'it waits');
  const [member] = await w.spawn('echo', 1, 'late');
  const reply = await d.promise;
  t.is(reply.pid, member!);
  t.is(reply.msg, 'hello');
  t.deepEqual(await w.received(member!), ['hello']);
});

test('waitForMembers: rejects with NoMembersError after the timeout when nobody joins', async (t) => {
  const r = await rig(t);
  const err = await t.throwsAsync(r.pg.dispatch('never', 'x', { waitForMembers: 50 }), {
    instanceOf: NoMembersError,
  });
  t.regex(err?.message ?? '', /never/);
  t.is(r.pg.dispatchStats('never').calls, 0);
});

test('waitForMembers is bounded by the dispatch timeout: the shorter one ends the wait, each with its own error', async (t) => {
  const r = await rig(t);
  // The timeout comes first: the dispatch as a whole timed out.
  const timedOut = await t.throwsAsync(
    r.pg.dispatch('never-2', 'x', { waitForMembers: 60_000, timeout: 30 }),
    { instanceOf: CallTimeoutError },
  );
  t.regex(timedOut.message, /no member within its timeout of 30 ms/);
  // waitForMembers comes first: the group stayed empty.
  await t.throwsAsync(r.pg.dispatch('never-3', 'x', { waitForMembers: 30, timeout: 60_000 }), {
    instanceOf: NoMembersError,
  });
  t.is(r.pg.getMembers('never-2').length, 0);
});

test('waitForMembers: aborting the signal while it waits rejects with the reason, and nothing is sent', async (t) => {
  const r = await rig(t, 1);
  const w = r.workers[0]!;
  const ac = new AbortController();
  const reason = new Error('caller gave up');
  const d = track(r.pg.dispatch('abort-wait', 'x', { waitForMembers: 60_000, signal: ac.signal }));
  await w.ping();
  t.is(d.state, 'pending');
  ac.abort(reason);
  await t.throwsAsync(d.promise, { is: reason });
  // A member that joins afterwards gets nothing.
  const [member] = await w.spawn('echo', 1, 'abort-wait');
  await r.pg.waitForMembers('abort-wait');
  await w.ping();
  t.deepEqual(await w.received(member!), []);
  // An already aborted signal rejects at once, with its reason.
  const before = AbortSignal.abort(reason);
  await t.throwsAsync(
    r.pg.dispatch('abort-wait-2', 'x', { waitForMembers: 60_000, signal: before }),
    {
      is: reason,
    },
  );
});

// A member dies during the call -------------------------------------------------------------

/** A group with one `mortal` member on worker 1 and echo members on worker 2 and node 0. */
async function mortalGroup(t: ExecutionContext, group: string) {
  const r = await rig(t, 2);
  const [w1, w2] = r.workers as [DispatchNode, DispatchNode];
  const [mortal] = await w1.spawn('mortal', 1, group);
  const good = [...(await w2.spawn('echo', 1, group)), ...(await r.spawnLocal('echo', 1, group))];
  await r.pg.waitForMembers(group, { count: 3 });
  return { r, w1, w2, mortal: mortal!, good };
}

test('process exit mid-call, retries: 0 → ProcessExitError surfaces, no other member is tried', async (t) => {
  const { r, w2, mortal, good } = await mortalGroup(t, 'f0');
  const offers: Pid[][] = [];
  const err = await t.throwsAsync<ProcessExitError>(
    r.pg.dispatch('f0', 'job', { strategy: prefer(mortal, offers), retries: 0 }),
    { instanceOf: ProcessExitError },
  );
  t.is(err?.code, 'ERR_PG_EXIT');
  t.is(err?.pid, mortal);
  t.is(err?.reason, 'killed');
  t.is(offers.length, 1, 'picked once');
  t.is(r.probe.count(mortal), 1);
  await w2.ping();
  t.deepEqual(await w2.received(good[0]!), []);
  t.deepEqual(r.local.received(good[1]!), []);
  // The default is no retry.
  const [m2] = await r.workers[0]!.spawn('mortal', 1, 'f0');
  await t.throwsAsync(r.pg.dispatch('f0', 'job', { strategy: prefer(m2!, []) }), {
    instanceOf: ProcessExitError,
  });
  const s = r.pg.dispatchStats('f0');
  t.like(s, { calls: 2, failures: 2, retries: 0, queued: 0 });
});

test('process exit mid-call, retries: 1 → succeeds on another member, and the dead one is not tried again', async (t) => {
  const { r, mortal, good } = await mortalGroup(t, 'f1');
  const offers: Pid[][] = [];
  const reply = await r.pg.dispatch<Reply>('f1', 'job', {
    strategy: prefer(mortal, offers),
    retries: 1,
  });
  t.true(good.includes(reply.pid), 'answered by a live member');
  t.is(reply.msg, 'job');
  t.is(offers.length, 2);
  t.true(offers[0]!.includes(mortal));
  t.false(offers[1]!.includes(mortal), 'the retry is not offered the member that died');
  t.is(r.probe.count(mortal), 1, 'the dead member got the message once');
  t.like(r.pg.dispatchStats('f1'), { calls: 2, failures: 1, retries: 1, queued: 0 });
});

test('node terminated mid-call → NodeDownError with retries: 0; with retries: 1 another member answers', async (t) => {
  const r = await rig(t, 3);
  const [w1, w2, w3] = r.workers as [DispatchNode, DispatchNode, DispatchNode];
  const [h1] = await w1.spawn('hang', 1, 'nd');
  const [h2] = await w2.spawn('hang', 1, 'nd');
  const good = [...(await w3.spawn('echo', 1, 'nd')), ...(await r.spawnLocal('echo', 1, 'nd'))];
  await r.pg.waitForMembers('nd', { count: 4 });

  const offers0: Pid[][] = [];
  const d0 = track(r.pg.dispatch('nd', 'job-0', { strategy: prefer(h1!, offers0), retries: 0 }));
  await r.probe.arrived(1, h1);
  await w1.terminate();
  await t.throwsAsync(d0.promise, { instanceOf: NodeDownError });
  t.is((d0.error as NodeDownError).code, 'ERR_PG_NODE_DOWN');
  t.is((d0.error as NodeDownError).node, w1.id);
  t.is(offers0.length, 1);

  const offers1: Pid[][] = [];
  const d1 = handled(
    r.pg.dispatch<Reply>('nd', 'job-1', { strategy: prefer(h2!, offers1), retries: 1 }),
  );
  await r.probe.arrived(1, h2);
  await w2.terminate();
  const reply = await d1;
  t.true(good.includes(reply.pid), 'a member on a live node answered');
  t.is(offers1.length, 2);
  t.false(offers1[1]!.includes(h2!), 'the member of the dead node is not offered again');
  t.is(r.probe.count(h2), 1);
  t.like(r.pg.dispatchStats('nd'), { calls: 3, failures: 2, retries: 1 });
});

test('retries with a built-in strategy: every dying member is tried at most once and a live one answers', async (t) => {
  const r = await rig(t, 2);
  const [w1, w2] = r.workers as [DispatchNode, DispatchNode];
  for (const strategy of ['round-robin', 'random', 'least-loaded', 'local-first'] as const) {
    const group = `retry-${strategy}`;
    const mortals = [
      ...(await w1.spawn('mortal', 3, group)),
      ...(await w2.spawn('mortal', 2, group)),
    ];
    const [good] = await w2.spawn('echo', 1, group);
    await r.pg.waitForMembers(group, { count: 6 });
    const reply = await r.pg.dispatch<Reply>(group, strategy, { strategy, retries: 10 });
    t.is(reply.pid, good!, `${strategy}: the live member answered`);
    let died = 0;
    for (const m of mortals) {
      t.true(r.probe.count(m) <= 1, `${strategy}: ${m} tried at most once`);
      died += r.probe.count(m);
    }
    t.like(
      r.pg.dispatchStats(group),
      { calls: died + 1, failures: died, retries: died },
      `${strategy}: every failure was a member going away, and was retried`,
    );
  }
});

test('every member dies and retries remain → NoMembersError ("every member tried failed"), each tried once', async (t) => {
  const r = await rig(t, 2);
  const [w1, w2] = r.workers as [DispatchNode, DispatchNode];
  const mortals = [
    ...(await w1.spawn('mortal', 1, 'all-die')),
    ...(await w2.spawn('mortal', 1, 'all-die')),
  ];
  await r.pg.waitForMembers('all-die', { count: 2 });
  const err = await t.throwsAsync(r.pg.dispatch('all-die', 'job', { retries: 5 }), {
    instanceOf: NoMembersError,
  });
  t.regex(err?.message ?? '', /all-die/);
  t.regex(err?.message ?? '', /every member .* tried failed/);
  for (const m of mortals) t.is(r.probe.count(m), 1, `${m} tried exactly once`);
  t.like(r.pg.dispatchStats('all-die'), { calls: 2, failures: 2, retries: 2 });
});

test('retries exhausted → the error of the last member tried surfaces', async (t) => {
  const r = await rig(t, 1);
  const w1 = r.workers[0]!;
  const mortals = await w1.spawn('mortal', 3, 'exhaust');
  await r.pg.waitForMembers('exhaust', { count: 3 });
  const offers: Pid[][] = [];
  const choices: Pid[] = [];
  const first: PickFunction = (members) => {
    offers.push([...members]);
    choices.push(members[0]!);
    return members[0];
  };
  const err = await t.throwsAsync<ProcessExitError>(
    r.pg.dispatch('exhaust', 'job', { strategy: first, retries: 1 }),
    { instanceOf: ProcessExitError },
  );
  t.is(choices.length, 2);
  t.is<number | undefined, number | undefined>(
    err?.pid,
    choices[1],
    'the error is the second member’s',
  );
  const untouched = mortals.filter((m) => !choices.includes(m));
  t.is(untouched.length, 1);
  t.is(r.probe.count(untouched[0]!), 0);
});

test('a member that is already gone (NoProcessError) counts as gone: retried with retries, surfaced without', async (t) => {
  const r = await rig(t, 1);
  const w1 = r.workers[0]!;
  const [good] = await w1.spawn('echo', 1, 'noproc');
  await r.pg.waitForMembers('noproc');
  const ghost = makePid(w1.id, 999_999);
  const once = (): PickFunction => {
    let n = 0;
    return (members) => (n++ === 0 ? ghost : members[0]);
  };
  await t.throwsAsync(r.pg.dispatch('noproc', 'x', { strategy: once() }), {
    instanceOf: NoProcessError,
  });
  const reply = await r.pg.dispatch<Reply>('noproc', 'x', { strategy: once(), retries: 1 });
  t.is(reply.pid, good!);
});

// Calls that never ran: another member takes them, for free ----------------------------------

/**
 * 20 dispatches (retries: 0) to a gate member with `concurrency: 1` on one node and an
 * echo on another, windows of 10: 10 go to each. Resolves once the gate runs one and the
 * other 9 wait in its mailbox; `end` then ends the gate, and the outcomes are checked:
 * only the running call fails, with `failure`, and every other dispatch is answered by
 * the echo, each with its own answer, counted as one call.
 */
async function mailboxAtEnd(
  t: ExecutionContext,
  group: string,
  end: (w: DispatchNode, gate: Pid) => Promise<void>,
  failure: (e: unknown, gate: Pid, node: number) => void,
): Promise<void> {
  const r = await rig(t, 2);
  const [w1, w2] = r.workers as [DispatchNode, DispatchNode];
  const [gate] = await w1.spawn('gate', 1, group, 1);
  const [echo] = await w2.spawn('echo', 1, group);
  await r.pg.waitForMembers(group, { count: 2 });
  const ds = Array.from({ length: 20 }, (_, i) =>
    track(r.pg.dispatch<Reply>(group, i, { maxInFlight: 10, retries: 0 })),
  );
  await r.probe.arrived(1, gate!);
  await w1.ping(); // the other 9 are in the gate's mailbox by now
  await end(w1, gate!);
  await Promise.allSettled(ds.map((d) => d.promise));

  const failed = ds.filter((d) => d.state === 'rejected');
  t.is(failed.length, 1, 'only the call the gate was running fails');
  failure(failed[0]!.error, gate!, w1.id);
  const answered = ds.filter((d) => d.state === 'fulfilled').map((d) => d.value!);
  t.true(
    answered.length === 19 && answered.every((a) => a.pid === echo),
    'every other dispatch was answered by the member left',
  );
  const failedAt = ds.indexOf(failed[0]!);
  t.deepEqual(
    answered.map((a) => a.msg),
    [...Array(20).keys()].filter((i) => i !== failedAt),
    'each with its own answer',
  );
  t.is(r.probe.count(gate!), 1, 'one message reached the gate’s handler');
  // The 9 that never ran count as no call: 10 calls on each member, one failure, no retry.
  t.like(r.pg.dispatchStats(group), { calls: 20, failures: 1, retries: 0, queued: 0 });
}

test('calls still in the mailbox of a member that exits never ran: they go to another member without a retry; only the running one fails', (t) =>
  mailboxAtEnd(
    t,
    'mailbox',
    async (w, gate) => {
      t.true(await w.cmd<boolean>({ cmd: 'exit', pid: gate, reason: 'killed' }));
    },
    (e, gate) => {
      t.true(e instanceof ProcessExitError, String(e));
      t.is((e as ProcessExitError).pid, gate);
    },
  ));

test('calls still in the mailbox of a member whose node closes never ran: they go to another member; only the running one fails', (t) =>
  mailboxAtEnd(
    t,
    'closing',
    async (w) => {
      t.is(await w.cmd({ cmd: 'close' }), 'closing');
    },
    (e, _gate, node) => {
      t.true(e instanceof NodeDownError, String(e));
      t.is((e as NodeDownError).node, node);
    },
  ));

test('a call that reaches a member after it exited, while the index here still lists it, never ran: another member takes it without a retry', async (t) => {
  // The coordinator on this thread, blocked below: the index here cannot drop the member.
  const r = await rig(t, 2, { coordinator: 'main' });
  const [w1, w2] = r.workers as [DispatchNode, DispatchNode];
  const [gone] = await w1.spawn('echo', 1, 'late');
  const [live] = await w2.spawn('echo', 1, 'late');
  await r.pg.waitForMembers('late', { count: 2 });

  const signal = newSignal();
  const exited = w1.cmd<boolean>({ cmd: 'exit', pid: gone!, signal });
  await flushed();
  t.true(waitSignal(signal), 'the member exited on its node');
  t.deepEqual(
    r.pg.getMembers('late').sort(),
    [gone!, live!].sort(),
    'the index here still lists it',
  );
  // Round-robin: every other dispatch picks the member that exited.
  const ds = Array.from({ length: 10 }, (_, i) =>
    track(r.pg.dispatch<Reply>('late', i, { strategy: 'round-robin', retries: 0 })),
  );
  t.true(await exited);
  await Promise.allSettled(ds.map((d) => d.promise));

  t.deepEqual(
    ds.map((d) => d.state),
    Array(10).fill('fulfilled'),
    String(ds.find((d) => d.state === 'rejected')?.error),
  );
  t.deepEqual(tally(ds.map((d) => d.value!.pid)), new Map([[live!, 10]]));
  t.deepEqual(
    ds.map((d) => d.value!.msg),
    [...Array(10).keys()],
  );
  t.like(r.pg.dispatchStats('late'), { calls: 10, failures: 0, retries: 0 });
});

// Failures that are not retried -----------------------------------------------------------

test('a handler that throws is not retried, even with retries: its error surfaces with name, code and message', async (t) => {
  const r = await rig(t, 2);
  const [w1, w2] = r.workers as [DispatchNode, DispatchNode];
  const [thrower] = await w1.spawn('thrower', 1, 'biz');
  const [good] = await w2.spawn('echo', 1, 'biz');
  await r.pg.waitForMembers('biz', { count: 2 });
  const offers: Pid[][] = [];
  const err = await t.throwsAsync(
    r.pg.dispatch('biz', { order: 7 }, { strategy: prefer(thrower!, offers), retries: 3 }),
  );
  t.is(err?.name, 'BusinessError');
  t.is((err as Error & { code?: unknown }).code, 'E_BUSINESS');
  t.is(err?.message, 'refused {"order":7}');
  t.is(offers.length, 1, 'no second pick');
  await w2.ping();
  t.deepEqual(await w2.received(good!), [], 'no other member got it');
  t.deepEqual(await w1.received(thrower!), [{ order: 7 }]);
  t.like(r.pg.dispatchStats('biz'), { calls: 1, failures: 1, retries: 0 });
});

test('timeout → CallTimeoutError, not retried even with retries', async (t) => {
  const r = await rig(t, 2);
  const [w1, w2] = r.workers as [DispatchNode, DispatchNode];
  const [hang] = await w1.spawn('hang', 1, 'slow');
  const [good] = await w2.spawn('echo', 1, 'slow');
  await r.pg.waitForMembers('slow', { count: 2 });
  const offers: Pid[][] = [];
  const err = await t.throwsAsync(
    r.pg.dispatch('slow', 'job', { strategy: prefer(hang!, offers), retries: 2, timeout: 100 }),
    { instanceOf: CallTimeoutError },
  );
  t.is((err as CallTimeoutError).code, 'ERR_PG_TIMEOUT');
  t.is(offers.length, 1);
  t.is(r.probe.count(hang), 1);
  await w2.ping();
  t.deepEqual(await w2.received(good!), []);
  t.like(r.pg.dispatchStats('slow'), { calls: 1, failures: 1, retries: 0 });
  // A member that answers in time is not affected by the option.
  const reply = await r.pg.dispatch<Reply>('slow', 'quick', {
    strategy: prefer(good!, []),
    timeout: 10_000,
  });
  t.is(reply.pid, good!);
});

test('signal aborted mid-call → rejects with the reason, not retried; the late answer is dropped', async (t) => {
  const r = await rig(t, 2);
  const [w1, w2] = r.workers as [DispatchNode, DispatchNode];
  const [gate] = await w1.spawn('gate', 1, 'ab');
  const [good] = await w2.spawn('echo', 1, 'ab');
  await r.pg.waitForMembers('ab', { count: 2 });
  const ac = new AbortController();
  const reason = new Error('no longer needed');
  const offers: Pid[][] = [];
  const d = track(
    r.pg.dispatch('ab', 'job', { strategy: prefer(gate!, offers), retries: 2, signal: ac.signal }),
  );
  await r.probe.arrived(1, gate);
  t.is(d.state, 'pending');
  ac.abort(reason);
  await t.throwsAsync(d.promise, { is: reason });
  t.is(offers.length, 1);
  // The member finishes later: its answer goes nowhere, and nothing breaks.
  t.is(await w1.open(gate, 1), 1);
  await w1.ping();
  await w2.ping();
  t.deepEqual(await w2.received(good!), []);
  t.like(r.pg.dispatchStats('ab'), { calls: 1, failures: 1, retries: 0 });
  const again = await r.pg.dispatch<Reply>('ab', 'again', { strategy: prefer(good!, []) });
  t.is(again.pid, good!);
});

// Attempts that sent nothing -------------------------------------------------------------

for (const coordinator of ['main', 'thread'] as const) {
  test(`a member this thread knows is gone, though the index still lists it, is passed over without spending a retry (coordinator: '${coordinator}')`, async (t) => {
    const cluster = await start(t, { coordinator });
    const node = cluster.node;
    const [gone, live] = spawnLocal(node, 2) as [Pid, Pid];
    await node.pg.join('passover', [gone, live]);
    // A read opens this job's view of the index: the dispatches below read the same
    // version, which lists `gone` whatever the coordinator publishes meanwhile.
    t.is(node.pg.count('passover'), 2);
    node.exit(gone);
    const ds = [
      ...Array.from({ length: 4 }, () =>
        node.pg.dispatch('passover', 'x', { strategy: 'round-robin' }),
      ),
      ...Array.from({ length: 4 }, () => node.pg.dispatch('passover', 'x')),
    ];
    t.deepEqual(await Promise.all(ds), Array(8).fill('pong'), 'every one answered by `live`');
    t.like(node.pg.dispatchStats('passover'), { calls: 8, failures: 0, retries: 0 });
    // Once the coordinator has dropped `gone`, the same with the last member: nothing left
    // to pass to, and the dispatch fails as one to an empty group would.
    await barrier(cluster, node.id);
    t.is(node.pg.count('passover'), 1);
    node.exit(live);
    await t.throwsAsync(node.pg.dispatch('passover', 'x'), { instanceOf: NoMembersError });
  });
}
