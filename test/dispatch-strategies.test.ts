/**
 * Pick strategies of group dispatch (src/dispatch.ts), with members on worker nodes and
 * on node 0: how each one spreads picks, what `pick` does with an empty group or a bad
 * one, and function strategies.
 *
 * Statistical checks use thousands of picks and bounds many standard deviations wide;
 * the deterministic strategies (round-robin, local-first, hash) are checked exactly.
 */
import test, { type ExecutionContext } from 'ava';
import {
  InvalidGroupError,
  NoMembersError,
  NoScopeError,
  nodeOf,
  type PickFunction,
  type Pid,
} from '../src/index.js';
import { type DispatchNode, type Rig, rig, tally } from './support/dispatch.js';
import type { Reply } from './support/processes.js';
import { sorted } from './support/views.js';
import { handled } from './support/wait.js';

/** A window deep enough that no member is saturated: the strategy alone picks. */
const DEEP = 100_000;

/** Members of one group: `local` on node 0, `remote[i]` on worker i. */
interface Layout {
  local: Pid[];
  remote: Pid[][];
  all: Pid[];
}

/** Starts `local` echo members on node 0 and `perWorker[i]` on worker i, all joined to `group`. */
async function populate(
  r: Rig,
  group: string,
  local: number,
  perWorker: number[],
  kind: 'echo' | 'gate' = 'echo',
): Promise<Layout> {
  const l = local > 0 ? await r.spawnLocal(kind, local, group) : [];
  const remote: Pid[][] = [];
  for (let i = 0; i < perWorker.length; i++) {
    const w = r.workers[i]!;
    remote.push(perWorker[i]! > 0 ? await w.spawn(kind, perWorker[i], group) : []);
  }
  const all = [...l, ...remote.flat()];
  await r.pg.waitForMembers(group, { count: all.length });
  return { local: l, remote, all };
}

/** Asserts that every pid of `members` was picked within ±`tolerance` of its fair share of `picks`. */
function assertFair(
  t: ExecutionContext,
  picks: (Pid | undefined)[],
  members: readonly Pid[],
  tolerance: number,
): void {
  const counts = tally(picks);
  const fair = picks.length / members.length;
  t.is(counts.get(undefined), undefined, 'no pick came back undefined');
  t.deepEqual(sorted(counts.keys() as Iterable<Pid>), sorted(members), 'only members are picked');
  for (const pid of members) {
    const n = counts.get(pid) ?? 0;
    t.true(
      Math.abs(n - fair) <= tolerance * fair,
      `${pid} was picked ${n} times, fair share ${fair} ±${tolerance * 100}%`,
    );
  }
}

test('random: picks spread uniformly over members on node 0 and on workers', async (t) => {
  const r = await rig(t, 3);
  const { all } = await populate(r, 'rand', 2, [2, 2, 2]);
  const picks: (Pid | undefined)[] = [];
  for (let i = 0; i < 8000; i++) picks.push(r.pg.pick('rand', 'random'));
  // 1,000 expected per member, standard deviation about 30: ±20% is over six of them.
  assertFair(t, picks, all, 0.2);
  // The default strategy is random too.
  const defaults: (Pid | undefined)[] = [];
  for (let i = 0; i < 8000; i++) defaults.push(r.pg.pick('rand'));
  assertFair(t, defaults, all, 0.2);
});

test('random: dispatches reach every member, spread uniformly', async (t) => {
  const r = await rig(t, 2);
  const { all } = await populate(r, 'rand-d', 2, [2, 2]);
  // A fixed deep window: this is about the strategy's choice, not about where a
  // dispatch goes when members are saturated (that is backpressure's, tested apart).
  const replies = await Promise.all(
    Array.from({ length: 1200 }, (_, i) =>
      r.pg.dispatch<Reply>('rand-d', i, { strategy: 'random', maxInFlight: DEEP }),
    ),
  );
  t.deepEqual(
    replies.map((x) => x.msg),
    Array.from({ length: 1200 }, (_, i) => i),
    'each dispatch got the answer to its own message',
  );
  // 200 expected per member, standard deviation about 13: ±35% is over five of them.
  assertFair(
    t,
    replies.map((x) => x.pid),
    all,
    0.35,
  );
});

test('round-robin: exactly even over a multiple of the member count, in member order', async (t) => {
  const r = await rig(t, 2);
  const { all } = await populate(r, 'rr', 2, [3, 2]);
  const members = r.pg.getMembers('rr');
  t.deepEqual(sorted(members), sorted(all));
  const picks: (Pid | undefined)[] = [];
  for (let i = 0; i < members.length * 125; i++) picks.push(r.pg.pick('rr', 'round-robin'));
  const counts = tally(picks);
  for (const pid of members) t.is(counts.get(pid), 125, `${pid} picked exactly 125 times`);
  // In turn: every window of `members.length` consecutive picks holds each member once.
  for (let i = 0; i + members.length <= picks.length; i += members.length)
    t.deepEqual(sorted(picks.slice(i, i + members.length) as Pid[]), sorted(members));
  // Dispatch goes round too.
  const replies: Reply[] = [];
  for (let i = 0; i < members.length * 20; i++)
    replies.push(await r.pg.dispatch<Reply>('rr', i, { strategy: 'round-robin' }));
  const dcounts = tally(replies.map((x) => x.pid));
  for (const pid of members) t.is(dcounts.get(pid), 20, `${pid} got exactly 20 dispatches`);
});

test('round-robin: each thread keeps its own position', async (t) => {
  const r = await rig(t, 2);
  await populate(r, 'rr2', 2, [3, 3]);
  const w = r.workers[0]!;
  await w.cmd({ cmd: 'members', group: 'rr2' }); // the worker reads the group once
  const members = r.pg.getMembers('rr2');
  const n = members.length;
  const at = (p: Pid | undefined) => members.indexOf(p as Pid);

  const first = [0, 1, 2].map(() => r.pg.pick('rr2', 'round-robin'));
  for (let i = 1; i < first.length; i++)
    t.is(at(first[i]), (at(first[i - 1]) + 1) % n, 'node 0 picks in turn');
  // The worker picks 5 times (not a multiple of 8): a shared position would move node 0's.
  const theirs = await w.cmd<(Pid | undefined)[]>({
    cmd: 'picks',
    group: 'rr2',
    strategy: 'round-robin',
    n: 5,
  });
  for (let i = 1; i < theirs.length; i++)
    t.is(at(theirs[i]), (at(theirs[i - 1]) + 1) % n, 'the worker picks in turn');
  t.is(new Set(theirs).size, 5);
  const next = r.pg.pick('rr2', 'round-robin');
  t.is(at(next), (at(first[2]) + 1) % n, "node 0 goes on from its own last pick, not the worker's");
  // And the worker from its own.
  const theirNext = await w.cmd<(Pid | undefined)[]>({
    cmd: 'picks',
    group: 'rr2',
    strategy: 'round-robin',
    n: 1,
  });
  t.is(at(theirNext[0]), (at(theirs[4]) + 1) % n);
  // A second worker's round is even on its own.
  const other = await r.workers[1]!.cmd<(Pid | undefined)[]>({
    cmd: 'picks',
    group: 'rr2',
    strategy: 'round-robin',
    n: n * 10,
  });
  const counts = tally(other);
  for (const pid of members) t.is(counts.get(pid), 10);
});

test('local-first: only members of the calling node while it has any, round-robin among them', async (t) => {
  const r = await rig(t, 2);
  const { local, remote, all } = await populate(r, 'lf', 2, [2, 3]);
  const picks: (Pid | undefined)[] = [];
  for (let i = 0; i < 1000; i++) picks.push(r.pg.pick('lf', 'local-first'));
  const counts = tally(picks);
  t.deepEqual(sorted(counts.keys() as Iterable<Pid>), sorted(local), 'only local members');
  for (const pid of local) t.is(counts.get(pid), 500);
  const replies = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      r.pg.dispatch<Reply>('lf', i, { strategy: 'local-first', maxInFlight: DEEP }),
    ),
  );
  t.true(
    replies.every((x) => x.node === 0),
    'dispatches went to node 0',
  );

  // From a worker's point of view: its own members.
  const w1 = await r.workers[1]!.cmd<(Pid | undefined)[]>({
    cmd: 'picks',
    group: 'lf',
    strategy: 'local-first',
    n: 300,
  });
  const c1 = tally(w1);
  t.deepEqual(sorted(c1.keys() as Iterable<Pid>), sorted(remote[1]!));
  for (const pid of remote[1]!) t.is(c1.get(pid), 100);
  const reply = await r.workers[0]!.cmd<Reply>({
    cmd: 'dispatch',
    group: 'lf',
    msg: 'from worker 1',
    options: { strategy: 'local-first' },
  });
  t.is(reply.node, r.workers[0]!.id);

  // No local member left: every member, evenly.
  t.is(await r.pg.leave('lf', local), 'ok');
  const rest = all.filter((p) => !local.includes(p));
  t.deepEqual(sorted(r.pg.getMembers('lf')), sorted(rest));
  const after: (Pid | undefined)[] = [];
  for (let i = 0; i < rest.length * 50; i++) after.push(r.pg.pick('lf', 'local-first'));
  const c2 = tally(after);
  for (const pid of rest) t.is(c2.get(pid), 50, `${pid} picked exactly 50 times`);
  t.is(c2.size, rest.length);

  // A local member again: only it.
  const [again] = local;
  await r.pg.join('lf', again!);
  for (let i = 0; i < 50; i++) t.is(r.pg.pick('lf', 'local-first'), again);
});

test('local-first: a worker with no member of the group picks among all of them', async (t) => {
  const r = await rig(t, 3);
  const { all } = await populate(r, 'lf2', 1, [2, 2, 0]);
  const picks = await r.workers[2]!.cmd<(Pid | undefined)[]>({
    cmd: 'picks',
    group: 'lf2',
    strategy: 'local-first',
    n: all.length * 40,
  });
  const counts = tally(picks);
  t.is(counts.size, all.length);
  for (const pid of all) t.is(counts.get(pid), 40);
});

test("least-loaded: a busy member's published load is read from other threads, and it gets fewer dispatches", async (t) => {
  const r = await rig(t, 3);
  const [w1, w2] = r.workers as [DispatchNode, DispatchNode, DispatchNode];
  // The busy member handles one message at a time, so its load is 1 running + 4 waiting.
  const [busy] = await w1.spawn('gate', 1, 'll', 1);
  const idle = [
    ...(await w1.spawn('echo', 1, 'll')),
    ...(await w2.spawn('echo', 1, 'll')),
    ...(await r.spawnLocal('echo', 1, 'll')),
  ];
  await r.pg.waitForMembers('ll', { count: 4 });
  t.is(r.node.loadOf(busy!), 0, 'an idle member reads as load 0');

  // Five calls, not dispatches: only the load its node publishes makes it look busy.
  const held = Array.from({ length: 5 }, (_, i) => handled(r.node.call<Reply>(busy!, `held ${i}`)));
  await r.probe.arrived(1, busy);
  await w1.ping(); // the five calls were delivered before this answer
  t.is(await w1.cmd({ cmd: 'load', pid: busy! }), 5, "the owner's count");
  t.is(r.node.loadOf(busy!), 5, 'node 0 reads the load published by node 1');
  t.is(await w2.cmd({ cmd: 'loadOf', pid: busy! }), 5, 'node 2 reads it too');
  for (const p of idle) t.is(r.node.loadOf(p), 0);

  // One at a time: the busy member is never the least loaded.
  const seq: Pid[] = [];
  for (let i = 0; i < 200; i++)
    seq.push((await r.pg.dispatch<Reply>('ll', i, { strategy: 'least-loaded' })).pid);
  const cs = tally(seq);
  t.is(cs.get(busy!), undefined, 'no dispatch went to the busy member');
  for (const p of idle) t.true((cs.get(p) ?? 0) > 0, `idle member ${p} got some`);
  t.is(r.pg.pick('ll', 'least-loaded') === busy, false);

  // Many at once: this thread's calls in flight count too, and the busy member still gets fewer.
  // (Those that go to the busy member wait behind its gate until the end.)
  const burst = Array.from({ length: 40 }, (_, i) =>
    handled(
      r.pg.dispatch<Reply>('ll', `burst ${i}`, { strategy: 'least-loaded', maxInFlight: DEEP }),
    ),
  );
  await r.openAll();
  await Promise.all(held);
  const cb = tally((await Promise.all(burst)).map((x) => x.pid));
  for (const p of idle)
    t.true(
      (cb.get(busy!) ?? 0) < (cb.get(p) ?? 0),
      `busy member got ${cb.get(busy!) ?? 0}, idle ${p} got ${cb.get(p) ?? 0}`,
    );
  await w1.ping();
  t.is(r.node.loadOf(busy!), 0, 'its load is back to 0 once it is done');
});

test('hash: a key always goes to the same member, from any thread, and keys spread over members', async (t) => {
  const r = await rig(t, 2);
  const { all } = await populate(r, 'h', 2, [3, 3]);
  const keys = Array.from({ length: 3000 }, (_, i) => (i % 3 === 0 ? i : `user:${i}`));
  const owners = keys.map((k) => r.pg.pick('h', 'hash', k));
  t.deepEqual(
    keys.map((k) => r.pg.pick('h', 'hash', k)),
    owners,
    'the same key, the same member',
  );
  const theirs = await r.workers[1]!.cmd<(Pid | undefined)[]>({
    cmd: 'hashPicks',
    group: 'h',
    keys,
  });
  t.deepEqual(theirs, owners, 'another thread routes every key the same way');
  // 375 keys expected per member, standard deviation about 18: ±30% is over six of them.
  assertFair(t, owners, all, 0.3);
  // Dispatch goes to the owner.
  for (const k of keys.slice(0, 60)) {
    const reply = await r.pg.dispatch<Reply>('h', k, { strategy: 'hash', key: k });
    t.is(reply.pid as Pid | undefined, owners[keys.indexOf(k)]);
  }
});

test('hash: when a member leaves only its keys move, and when one joins only keys moving to it move', async (t) => {
  const r = await rig(t, 2);
  const [w1, w2] = r.workers as [DispatchNode, DispatchNode];
  const { all } = await populate(r, 'h2', 2, [3, 3]);
  const keys = Array.from({ length: 1000 }, (_, i) => `session-${i}`);
  const route = () => {
    r.pg.refresh();
    return keys.map((k) => r.pg.pick('h2', 'hash', k)!);
  };
  const before = route();

  // A member on worker 1 leaves.
  const leaver = r.pg.getMembers('h2').find((p) => nodeOf(p) === w1.id)!;
  t.is(await w1.leave('h2', [leaver]), 'ok');
  t.false(r.pg.getMembers('h2').includes(leaver));
  const afterLeave = route();
  const owned = before.filter((p) => p === leaver).length;
  t.true(owned > 0, 'the leaver owned some keys');
  let moved = 0;
  const movedTo = new Set<Pid>();
  keys.forEach((_, i) => {
    if (before[i] === leaver) {
      t.not(afterLeave[i], leaver);
      movedTo.add(afterLeave[i]!);
      moved++;
    } else if (afterLeave[i] !== before[i]) {
      t.fail(`key ${keys[i]} moved from ${before[i]} to ${afterLeave[i]} though its owner stayed`);
    }
  });
  t.is(moved, owned, 'exactly the keys of the leaver moved');
  t.true(
    movedTo.size >= (all.length - 1) / 2,
    `the leaver's keys spread over ${movedTo.size} members`,
  );

  // A new member joins on worker 2.
  const [joiner] = await w2.spawn('echo', 1, 'h2');
  await r.pg.waitForMembers('h2', { count: all.length });
  const afterJoin = route();
  let gained = 0;
  keys.forEach((_, i) => {
    if (afterJoin[i] === joiner) gained++;
    else if (afterJoin[i] !== afterLeave[i])
      t.fail(`key ${keys[i]} moved from ${afterLeave[i]} to ${afterJoin[i]}, not to the newcomer`);
  });
  // 125 expected, standard deviation about 10.
  t.true(gained >= 60 && gained <= 190, `the newcomer took ${gained} of 1,000 keys`);
});

test("hash: a key is required, and a function strategy gets the key and the caller's node", async (t) => {
  const r = await rig(t, 1);
  await populate(r, 'hk', 1, [2]);
  t.throws(() => r.pg.pick('hk', 'hash'), { instanceOf: TypeError, message: /key/ });
  await t.throwsAsync(r.pg.dispatch('hk', 'x', { strategy: 'hash' }), {
    instanceOf: TypeError,
    message: /key/,
  });
  const seen: unknown[] = [];
  const fn: PickFunction = (members, ctx) => {
    seen.push(ctx.key, ctx.node === r.node);
    return members[0];
  };
  await r.pg.dispatch('hk', 'x', { strategy: fn, key: 'k-1' });
  t.deepEqual(seen, ['k-1', true]);
});

test('function strategy: gets the members and its choice is used', async (t) => {
  const r = await rig(t, 2);
  const { all } = await populate(r, 'fn', 1, [2, 2]);
  const offered: Pid[][] = [];
  let choice = 0;
  const fn: PickFunction = (members) => {
    offered.push([...members]);
    return members[choice % members.length];
  };
  for (choice = 0; choice < 10; choice++) {
    const reply = await r.pg.dispatch<Reply>('fn', choice, { strategy: fn });
    const list = offered.at(-1)!;
    t.deepEqual(sorted(list), sorted(all), 'it is offered every member');
    t.is(reply.pid, list[choice % list.length]!, 'the member it chose answered');
  }
  // pick uses it the same way.
  const last = (members: readonly Pid[]) => members[members.length - 1];
  t.is(r.pg.pick('fn', last), r.pg.getMembers('fn').at(-1));
  // An empty group: it is not asked, and dispatch rejects with NoMembersError.
  let asked = 0;
  const counting: PickFunction = (members) => {
    asked++;
    return members[0];
  };
  t.is(r.pg.pick('fn-empty', counting), undefined);
  await t.throwsAsync(r.pg.dispatch('fn-empty', 'x', { strategy: counting }), {
    instanceOf: NoMembersError,
  });
  t.is(asked, 0);
  // A strategy that throws: its error, and nothing is sent.
  const boom = new Error('strategy failed');
  await t.throwsAsync(
    r.pg.dispatch('fn', 'x', {
      strategy: () => {
        throw boom;
      },
    }),
    { is: boom },
  );
});

test('function strategy returning undefined: the dispatch is queued, and asked again when another dispatch of the group completes', async (t) => {
  const r = await rig(t, 1);
  const { all } = await populate(r, 'fnq', 1, [2]);
  let allow = false;
  let calls = 0;
  const fn: PickFunction = (members) => {
    calls++;
    return allow ? members[members.length - 1] : undefined;
  };
  const queued = handled(r.pg.dispatch<Reply>('fnq', 'waits', { strategy: fn }));
  t.is(calls, 1);
  t.is(r.pg.dispatchStats('fnq').queued, 1, 'it waits in the queue of the group');
  t.is(r.pg.pick('fnq', fn), undefined, 'pick just answers undefined');
  allow = true;
  const other = await r.pg.dispatch<Reply>('fnq', 'other', { strategy: 'random' });
  t.true(all.includes(other.pid));
  const reply = await queued;
  t.is(reply.msg, 'waits');
  t.is(reply.pid, r.pg.getMembers('fnq').at(-1)!);
  t.is(r.pg.dispatchStats('fnq').queued, 0);
  t.is(calls, 3, 'asked when dispatched, by pick, and when woken');
});

test('pick is synchronous and answers undefined for an empty or unknown group, with every strategy', async (t) => {
  const r = await rig(t, 1);
  await populate(r, 'present', 1, [1]);
  const strategies = ['random', 'round-robin', 'local-first', 'least-loaded'] as const;
  for (const s of strategies) {
    const p = r.pg.pick('present', s);
    t.is(typeof p, 'number', `${s} answers a pid, not a promise`);
    t.is(r.pg.pick('never-joined', s), undefined, s);
    t.is(r.pg.pick(['never', 'joined'], s), undefined, s);
  }
  t.is(r.pg.pick('never-joined', 'hash', 'k'), undefined);
  t.is(typeof r.pg.pick('present', 'hash', 'k'), 'number');
  // A group that had members and has none any more.
  const [p] = await r.spawnLocal('echo', 1, 'was');
  t.is(r.pg.pick('was'), p);
  await r.pg.leave('was', p!);
  for (const s of strategies) t.is(r.pg.pick('was', s), undefined, s);
});

test('pick with a bad group throws InvalidGroupError, with every strategy', async (t) => {
  const r = await rig(t);
  await r.spawnLocal('echo', 1, 'ok');
  const bad: unknown[] = [
    { a: 1 },
    Number.NaN,
    Number.POSITIVE_INFINITY,
    null,
    undefined,
    true,
    ['ok', {}],
    [['nested']],
  ];
  const strategies = ['random', 'round-robin', 'local-first', 'least-loaded'] as const;
  for (const g of bad) {
    for (const s of strategies)
      t.throws(
        () => r.pg.pick(g as string, s),
        { instanceOf: InvalidGroupError },
        `${String(g)} / ${s}`,
      );
    t.throws(() => r.pg.pick(g as string, 'hash', 'k'), { instanceOf: InvalidGroupError });
    t.throws(() => r.pg.pick(g as string, (m) => m[0]), { instanceOf: InvalidGroupError });
    await t.throwsAsync(r.pg.dispatch(g as string, 'x'), { instanceOf: InvalidGroupError });
  }
});

test('pick with a bad group throws InvalidGroupError on a scope that is not running too (as getMembers does)', async (t) => {
  const r = await rig(t);
  const stopped = r.node.scope('not-started');
  t.deepEqual(stopped.getMembers('g'), []);
  t.is(stopped.pick('g'), undefined);
  t.throws(() => stopped.getMembers({ a: 1 } as never), { instanceOf: InvalidGroupError });
  t.throws(() => stopped.pick({ a: 1 } as never), { instanceOf: InvalidGroupError });
  t.throws(() => stopped.pick(Number.NaN, 'round-robin'), { instanceOf: InvalidGroupError });
});

test('dispatch on a scope that is not running rejects with NoScopeError naming the scope, as join does', async (t) => {
  const r = await rig(t);
  const scope = r.node.scope('not-started');
  const err = await t.throwsAsync(scope.dispatch('g', 'x'), { instanceOf: NoScopeError });
  t.regex(err?.message ?? '', /not-started/);
  await t.throwsAsync(scope.join('g', r.node.self()), { instanceOf: NoScopeError });
  // A bad group is still reported as such.
  await t.throwsAsync(scope.dispatch({ a: 1 } as never, 'x'), { instanceOf: InvalidGroupError });
});

test('an unknown strategy name is bad input: pick throws a TypeError naming it', async (t) => {
  const r = await rig(t);
  await r.spawnLocal('echo', 2, 'u');
  t.throws(() => r.pg.pick('u', 'fastest' as never), {
    instanceOf: TypeError,
    message: /fastest/,
  });
  await t.throwsAsync(r.pg.dispatch('u', 'x', { strategy: 'fastest' as never }), {
    instanceOf: TypeError,
    message: /fastest/,
  });
});
