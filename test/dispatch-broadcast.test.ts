/**
 * `broadcast` (send to every member, return how many) and `multiCall` (call every
 * member, collect replies and failures), with members on worker nodes and on node 0,
 * while membership changes, and when members die mid-call.
 *
 * What a member received is read on its node after a round trip to it (`ping`): links
 * keep order, so everything node 0 sent before has been delivered by then.
 */
import test from 'ava';
import {
  CallTimeoutError,
  InvalidGroupError,
  MessageCloneError,
  NodeDownError,
  nodeOf,
  type Pid,
  ProcessExitError,
} from '../src/index.js';
import { type DispatchNode, type Rig, rig, track } from './support/dispatch.js';
import type { Reply } from './support/processes.js';
import { sorted } from './support/views.js';
import { handled, turns } from './support/wait.js';

/** Every message each member of `pids` received, read on its node. */
async function receivedBy(r: Rig, pids: Iterable<Pid>): Promise<Map<Pid, unknown[]>> {
  const out = new Map<Pid, unknown[]>();
  const byNode = new Map<number, Pid[]>();
  for (const p of pids) {
    const n = nodeOf(p);
    byNode.set(n, [...(byNode.get(n) ?? []), p]);
  }
  for (const [n, list] of byNode) {
    if (n === 0) {
      for (const p of list) out.set(p, r.local.received(p));
      continue;
    }
    const w = r.workers.find((x) => x.id === n)!;
    await w.ping();
    const all = new Map(await w.cmd<[Pid, unknown[]][]>({ cmd: 'receivedAll' }));
    for (const p of list) out.set(p, all.get(p) ?? []);
  }
  return out;
}

// broadcast ----------------------------------------------------------------------------

test('broadcast returns the member count, and every member receives the message exactly once', async (t) => {
  const r = await rig(t, 2);
  const [w1, w2] = r.workers as [DispatchNode, DispatchNode];
  const members = [
    ...(await r.spawnLocal('echo', 2, 'b')),
    ...(await w1.spawn('echo', 3, 'b')),
    ...(await w2.spawn('echo', 3, 'b')),
  ];
  const outsiders = [...(await r.spawnLocal('echo', 1)), ...(await w1.spawn('echo', 1))];
  await r.pg.waitForMembers('b', { count: 8 });
  t.is(r.pg.broadcast('b', { hello: 1 }), 8);
  const got = await receivedBy(r, [...members, ...outsiders]);
  for (const p of members) t.deepEqual(got.get(p), [{ hello: 1 }], `member ${p}`);
  for (const p of outsiders) t.deepEqual(got.get(p), [], `non-member ${p}`);

  // A second one, from a worker's point of view the same: each gets it once more.
  t.is(r.pg.broadcast('b', 'again'), 8);
  const again = await receivedBy(r, members);
  for (const p of members) t.deepEqual(again.get(p), [{ hello: 1 }, 'again']);

  // Empty and unknown groups: 0. A bad group: InvalidGroupError.
  t.is(r.pg.broadcast('nobody', 'x'), 0);
  t.is(r.pg.broadcast(['no', 'body'], 'x'), 0);
  t.throws(() => r.pg.broadcast({ bad: true } as never, 'x'), { instanceOf: InvalidGroupError });
  t.throws(() => r.pg.broadcast(Number.NaN, 'x'), { instanceOf: InvalidGroupError });
});

test('broadcast of a message that cannot be cloned throws MessageCloneError and sends nothing', async (t) => {
  const r = await rig(t, 1);
  const w1 = r.workers[0]!;
  const local = await r.spawnLocal('echo', 2, 'bc-local');
  const remote = await w1.spawn('echo', 2, 'bc-remote');
  await r.spawnLocal('echo', 1, 'bc-mixed');
  await w1.spawn('echo', 1, 'bc-mixed');
  await r.pg.waitForMembers('bc-remote', { count: 2 });
  await r.pg.waitForMembers('bc-mixed', { count: 2 });
  const bad: [string, unknown][] = [
    ['a function', { run: () => 1 }],
    ['a symbol', Symbol('s')],
    ['a nested function', { deep: [{ f: () => 2 }] }],
  ];
  for (const group of ['bc-local', 'bc-remote', 'bc-mixed']) {
    for (const [what, msg] of bad) {
      const e = t.throws(() => r.pg.broadcast(group, msg), {
        instanceOf: MessageCloneError,
      });
      t.is(e?.name, 'MessageCloneError', `${group}: ${what}`);
      t.is((e as MessageCloneError | undefined)?.code, 'ERR_PG_CLONE');
    }
  }
  const got = await receivedBy(r, [...local, ...remote, ...r.pg.getMembers('bc-mixed')]);
  for (const [p, msgs] of got) t.deepEqual(msgs, [], `${p} received nothing`);
  // Rich but cloneable messages go through.
  const rich = { map: new Map([[1, 'one']]), date: new Date(0), buf: new Uint8Array([1, 2]) };
  t.is(r.pg.broadcast('bc-remote', rich), 2);
  const after = await receivedBy(r, remote);
  for (const p of remote) t.deepEqual(after.get(p), [rich]);
});

test('broadcast while members join and leave from workers: each count is exactly the members that got that broadcast', async (t) => {
  const r = await rig(t, 3);
  const [w1, w2, w3] = r.workers as [DispatchNode, DispatchNode, DispatchNode];
  const fixed = await r.spawnLocal('echo', 2, 'churn');
  const pools = [await w1.spawn('echo', 6), await w2.spawn('echo', 6), await w3.spawn('echo', 6)];
  const churn = Promise.all(
    r.workers.map((w, i) =>
      w.cmd<Pid[]>({
        cmd: 'toggleChurn',
        group: 'churn',
        pids: pools[i]!,
        steps: 300,
        seed: 1000 + i,
      }),
    ),
  );
  const churning = track(churn);
  const counts: number[] = [];
  while (churning.state === 'pending') {
    counts.push(r.pg.broadcast('churn', { seq: counts.length }));
    await turns(1); // let the coordinator (this thread) apply joins and leaves
  }
  const finals = (await churn).flat();
  t.true(counts.length > 50, `${counts.length} broadcasts during the churn`);
  t.true(new Set(counts).size > 3, 'the member count changed under the broadcasts');
  for (const c of counts) t.true(c >= 2 && c <= 20, `count ${c} within [2, 20]`);

  // What each process received, by sequence number.
  const got = await receivedBy(r, [...fixed, ...pools.flat()]);
  const perSeq = new Array<number>(counts.length).fill(0);
  for (const [p, msgs] of got) {
    const seqs = msgs.map((m) => (m as { seq: number }).seq);
    t.is(new Set(seqs).size, seqs.length, `${p} got no broadcast twice`);
    for (const s of seqs) perSeq[s]!++;
  }
  for (const p of fixed) t.is(got.get(p)!.length, counts.length, 'a steady member got every one');
  const wrong = counts.flatMap((c, s) =>
    perSeq[s] === c ? [] : [`#${s}: counted ${c}, received ${perSeq[s]}`],
  );
  t.deepEqual(wrong, [], 'every broadcast reached exactly as many members as it counted');

  // Afterwards, a broadcast reaches exactly the members left.
  r.pg.refresh();
  t.deepEqual(sorted(r.pg.getMembers('churn')), sorted([...fixed, ...finals]));
  t.is(r.pg.broadcast('churn', 'last'), fixed.length + finals.length);
  const last = await receivedBy(r, [...fixed, ...pools.flat()]);
  for (const [p, msgs] of last) {
    const member = fixed.includes(p) || finals.includes(p);
    t.is(msgs.at(-1) === 'last', member, `${p}: ${member ? 'member' : 'not a member'}`);
  }
});

test('broadcast while members are spawned, exit and a whole node goes away: never over-counts, never crashes', async (t) => {
  const r = await rig(t, 3);
  const [w1, w2, w3] = r.workers as [DispatchNode, DispatchNode, DispatchNode];
  const fixed = await r.spawnLocal('echo', 1, 'life');
  const doomed = await w3.spawn('echo', 4, 'life');
  await r.pg.waitForMembers('life', { count: 5 });
  const churn = Promise.all([
    w1.cmd<Pid[]>({ cmd: 'lifeChurn', group: 'life', steps: 200, seed: 11 }),
    w2.cmd<Pid[]>({ cmd: 'lifeChurn', group: 'life', steps: 200, seed: 12 }),
  ]);
  const churning = track(churn);
  const counts: number[] = [];
  let killed: Promise<void> | undefined;
  while (churning.state === 'pending') {
    counts.push(r.pg.broadcast('life', { seq: counts.length }));
    if (counts.length === 20) killed = w3.terminate();
    await turns(1);
  }
  await killed;
  const finals = (await churn).flat();
  t.true(counts.length > 20);

  // Received per sequence number, over the processes still alive on the surviving nodes.
  const alive = new Set([...fixed, ...finals]);
  const survivors = [...(await receivedBy(r, fixed))];
  for (const w of [w1, w2]) {
    await w.ping();
    survivors.push(...(await w.cmd<[Pid, unknown[]][]>({ cmd: 'receivedAll' })));
  }
  const perSeq = new Array<number>(counts.length).fill(0);
  for (const [, msgs] of survivors)
    for (const m of msgs)
      if (typeof m === 'object' && m !== null) perSeq[(m as { seq: number }).seq]!++;
  const over = counts.flatMap((c, s) =>
    perSeq[s]! <= c ? [] : [`#${s}: counted ${c}, received ${perSeq[s]}`],
  );
  t.deepEqual(over, [], 'no broadcast reached more members than it counted');
  for (const p of fixed) t.is(r.local.received(p).length, counts.length);

  // Once it is over, the count is exactly the members left, and each gets it.
  r.pg.refresh();
  t.false(
    r.pg.getMembers('life').some((p) => doomed.includes(p)),
    'the dead node took its members',
  );
  t.deepEqual(sorted(r.pg.getMembers('life')), sorted(alive));
  t.is(r.pg.broadcast('life', 'last'), alive.size);
  const last = await receivedBy(r, alive);
  for (const p of alive) t.is(last.get(p)!.at(-1), 'last');
});

// multiCall ----------------------------------------------------------------------------

test('multiCall: a reply from every member', async (t) => {
  const r = await rig(t, 2);
  const [w1, w2] = r.workers as [DispatchNode, DispatchNode];
  const members = [
    ...(await r.spawnLocal('echo', 1, 'mc')),
    ...(await w1.spawn('echo', 2, 'mc')),
    ...(await w2.spawn('echo', 2, 'mc')),
  ];
  await r.pg.waitForMembers('mc', { count: 5 });
  const { replies, failures } = await r.pg.multiCall<Reply>('mc', { q: 'status' });
  t.deepEqual(failures, []);
  t.deepEqual(sorted(replies.map(([p]) => p)), sorted(members));
  for (const [p, reply] of replies) {
    t.is(reply.pid, p, 'the reply is paired with the member that gave it');
    t.deepEqual(reply.msg, { q: 'status' });
  }
  const got = await receivedBy(r, members);
  for (const p of members) t.deepEqual(got.get(p), [{ q: 'status' }], 'each member called once');
  t.deepEqual(await r.pg.multiCall('nobody', 'x'), { replies: [], failures: [] });
  await t.throwsAsync(r.pg.multiCall({ bad: 1 } as never, 'x'), { instanceOf: InvalidGroupError });
});

test('multiCall: a member whose node is terminated mid-call is in failures with NodeDownError, the others in replies', async (t) => {
  const r = await rig(t, 2);
  const [w1, w2] = r.workers as [DispatchNode, DispatchNode];
  const good = [...(await r.spawnLocal('echo', 1, 'mcd')), ...(await w1.spawn('echo', 2, 'mcd'))];
  const [doomed] = await w2.spawn('hang', 1, 'mcd');
  await r.pg.waitForMembers('mcd', { count: 4 });
  const call = handled(r.pg.multiCall<Reply>('mcd', 'work'));
  await r.probe.arrived(1, doomed);
  await w2.terminate();
  const { replies, failures } = await call;
  t.deepEqual(sorted(replies.map(([p]) => p)), sorted(good));
  t.is(failures.length, 1);
  const [p, e] = failures[0]!;
  t.is(p, doomed!);
  t.true(e instanceof NodeDownError, String(e));
  t.is((e as NodeDownError).code, 'ERR_PG_NODE_DOWN');
});

test('multiCall: a member that exits mid-call is in failures with ProcessExitError', async (t) => {
  const r = await rig(t, 1);
  const w1 = r.workers[0]!;
  const good = [...(await r.spawnLocal('echo', 1, 'mce')), ...(await w1.spawn('echo', 1, 'mce'))];
  const [mortal] = await w1.spawn('mortal', 1, 'mce');
  const [localMortal] = await r.spawnLocal('mortal', 1, 'mce');
  await r.pg.waitForMembers('mce', { count: 4 });
  const { replies, failures } = await r.pg.multiCall<Reply>('mce', 'work');
  t.deepEqual(sorted(replies.map(([p]) => p)), sorted(good));
  t.deepEqual(sorted(failures.map(([p]) => p)), sorted([mortal!, localMortal!]));
  for (const [p, e] of failures) {
    t.true(e instanceof ProcessExitError, String(e));
    t.is((e as ProcessExitError).pid, p);
    t.is((e as ProcessExitError).reason, 'killed');
  }
});

test('multiCall: a member that throws is in failures with its own error', async (t) => {
  const r = await rig(t, 1);
  const w1 = r.workers[0]!;
  const good = await w1.spawn('echo', 2, 'mct');
  const [thrower] = await w1.spawn('thrower', 1, 'mct');
  const [localThrower] = await r.spawnLocal('thrower', 1, 'mct');
  await r.pg.waitForMembers('mct', { count: 4 });
  const { replies, failures } = await r.pg.multiCall<Reply>('mct', 7);
  t.deepEqual(sorted(replies.map(([p]) => p)), sorted(good));
  t.deepEqual(sorted(failures.map(([p]) => p)), sorted([thrower!, localThrower!]));
  for (const [, e] of failures) {
    t.is(e.name, 'BusinessError');
    t.is((e as Error & { code?: unknown }).code, 'E_BUSINESS');
    t.is(e.message, 'refused 7');
  }
});

test('multiCall: the timeout applies to each call: a member that does not answer times out, the others reply', async (t) => {
  const r = await rig(t, 2);
  const [w1, w2] = r.workers as [DispatchNode, DispatchNode];
  const good = [...(await r.spawnLocal('echo', 1, 'mcx')), ...(await w1.spawn('echo', 1, 'mcx'))];
  const hangs = [...(await w1.spawn('hang', 1, 'mcx')), ...(await w2.spawn('hang', 1, 'mcx'))];
  await r.pg.waitForMembers('mcx', { count: 4 });
  // The members that hang never answer, whatever the timeout; the others get ample time even
  // on a loaded machine.
  const { replies, failures } = await r.pg.multiCall<Reply>('mcx', 'ping', { timeout: 2_000 });
  t.deepEqual(sorted(replies.map(([p]) => p)), sorted(good));
  t.deepEqual(sorted(failures.map(([p]) => p)), sorted(hangs));
  for (const [, e] of failures) {
    t.true(e instanceof CallTimeoutError, String(e));
    t.is((e as CallTimeoutError).code, 'ERR_PG_TIMEOUT');
  }
});

test('multiCall: a message that cannot be cloned fails each call with MessageCloneError', async (t) => {
  const r = await rig(t, 1);
  const members = [
    ...(await r.spawnLocal('echo', 1, 'mcc')),
    ...(await r.workers[0]!.spawn('echo', 1, 'mcc')),
  ];
  await r.pg.waitForMembers('mcc', { count: 2 });
  const { replies, failures } = await r.pg.multiCall('mcc', { f: () => 1 });
  t.deepEqual(replies, []);
  t.deepEqual(sorted(failures.map(([p]) => p)), sorted(members));
  for (const [, e] of failures) t.true(e instanceof MessageCloneError, String(e));
  const got = await receivedBy(r, members);
  for (const p of members) t.deepEqual(got.get(p), []);
});
