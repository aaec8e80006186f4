/**
 * Failures of calls and sends: handler errors, dead and unknown pids, processes that
 * exit with calls in flight, races of a call with an exit, payloads that cannot be
 * cloned, timeouts and aborts.
 */
import { types } from 'node:util';
import test from 'ava';
import {
  CallTimeoutError,
  MessageCloneError,
  makePid,
  NodeDownError,
  NoProcessError,
  type Pid,
  ProcessExitError,
} from '../src/index.js';
import { rejects, spawnAgent, start } from './support/cluster.js';
import { moved, ValidationError } from './support/processes.js';
import { handled, outcome } from './support/wait.js';

test('a handler that throws rejects the call with that error, and the process lives on (local)', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  let thrown: Error | undefined;
  const pid = node.spawn(async (m: string) => {
    if (m === 'ok') return 'fine';
    if (m === 'async') {
      await new Promise((r) => setImmediate(r));
      throw new ValidationError('later');
    }
    thrown = new ValidationError(`bad input: ${m}`);
    throw thrown;
  });
  const error = await t.throwsAsync(node.call(pid, 'x'));
  t.is(error, thrown as Error);
  t.is(error.name, 'ValidationError');
  t.is((error as ValidationError).code, 'E_VALIDATION');
  await t.throwsAsync(node.call(pid, 'async'), { name: 'ValidationError', message: 'later' });
  t.is(await node.call(pid, 'ok'), 'fine');
  t.true(node.isAlive(pid));
});

test('a handler that throws rejects the call with its name, message, stack and code across threads, and the process lives on', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const a = await spawnAgent(cluster);
  const pid = await a.spawn('thrower');
  for (let i = 0; i < 3; i++) {
    const error = await t.throwsAsync(node.call(pid, i));
    t.is(error.name, 'ValidationError');
    t.is(error.message, `bad input: ${i}`);
    t.is((error as Error & { code?: unknown }).code, 'E_VALIDATION');
    t.regex(error.stack ?? '', new RegExp(`ValidationError: bad input: ${i}`));
    t.regex(error.stack ?? '', /support\/processes/);
    t.is(await node.call(pid, 'ok'), 'fine');
  }
  await t.throwsAsync(node.call(pid, 'async'), {
    name: 'ValidationError',
    message: 'bad input, later',
  });
  t.is(await node.call(pid, 'ok'), 'fine');
  // Through two hops: B calls the thrower on A, the error comes back to node 0.
  const b = await spawnAgent(cluster);
  const viaB = await t.throwsAsync(b.cmd({ cmd: 'call', pid, msg: 'hop' }));
  t.is(viaB.name, 'ValidationError');
  t.is(viaB.message, 'bad input: hop');
  t.is((viaB as Error & { code?: unknown }).code, 'E_VALIDATION');
});

test("built-in error classes come back as themselves from another thread, with code, cause and an AggregateError's errors", async (t) => {
  const cluster = await start(t);
  const a = await spawnAgent(cluster);
  const pid = await a.spawn('thrower');
  const range = await t.throwsAsync(cluster.node.call(pid, 'builtin'), {
    instanceOf: RangeError,
    message: 'out of range',
  });
  t.is((range as Error & { code?: unknown }).code, 'E_RANGE');
  t.true(range.cause instanceof TypeError);
  t.is((range.cause as Error).message, 'why');
  t.true(types.isNativeError(range));
  const many = await t.throwsAsync(cluster.node.call(pid, 'aggregate'), {
    instanceOf: AggregateError,
    message: 'many',
  });
  const { errors } = many as AggregateError;
  t.is(errors.length, 2);
  t.true(errors[0] instanceof TypeError);
  t.is((errors[1] as Error).name, 'ValidationError', "a class of the user's own: by name");
  t.is((errors[1] as Error & { code?: unknown }).code, 'E_VALIDATION');
});

test('a handler that fails on a send emits processError and the process lives on', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const errors: [Pid, unknown][] = [];
  node.on('processError', (pid, error) => errors.push([pid, error]));
  const pid = node.spawn((m: string) => {
    if (m === 'ok') return 'fine';
    throw new ValidationError(`on send: ${m}`);
  });
  node.send(pid, 'boom');
  t.is(await node.call(pid, 'ok'), 'fine');
  t.is(errors.length, 1);
  t.is(errors[0]?.[0], pid);
  t.is((errors[0]?.[1] as Error | undefined)?.message, 'on send: boom');

  const a = await spawnAgent(cluster);
  const remote = await a.spawn('thrower');
  node.send(remote, 'remote boom');
  t.is(await node.call(remote, 'ok'), 'fine');
  t.deepEqual(await a.cmd({ cmd: 'processErrors' }), [`${remote}: bad input: remote boom`]);
});

test('a call to a dead local pid or an unused local serial rejects with NoProcessError', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const pid = node.spawn(() => 'x');
  node.exit(pid);
  const e1 = await t.throwsAsync(node.call(pid, 'hi'), { instanceOf: NoProcessError });
  t.is((e1 as NoProcessError).pid, pid);
  t.is(e1.code, 'ERR_PG_NOPROC');
  await t.throwsAsync(node.call(makePid(0, 4_000_000), 'hi'), { instanceOf: NoProcessError });
  t.false(node.send(pid, 'hi'));
});

test('a call to an unused serial on a live node rejects with NoProcessError', async (t) => {
  const cluster = await start(t);
  const a = await spawnAgent(cluster);
  const missing = makePid(a.id, 777_777);
  const error = await rejects<NoProcessError>(t, cluster.node.call(missing, 'hi'), {
    instanceOf: NoProcessError,
    name: 'NoProcessError',
    code: 'ERR_PG_NOPROC',
  });
  t.is(error.pid, missing);
  // A dead process of a live node, too.
  const echo = await a.spawn('echo');
  await a.cmd({ cmd: 'exit', pid: echo });
  await rejects(t, cluster.node.call(echo, 'hi'), { instanceOf: NoProcessError });
  // From a worker: the error crosses two threads and keeps its name.
  const b = await spawnAgent(cluster);
  await rejects(t, b.cmd({ cmd: 'call', pid: missing, msg: 'hi' }), {
    instanceOf: NoProcessError,
    name: 'NoProcessError',
  });
});

test('a call to a pid of a node that never existed rejects with NodeDownError', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const error = await t.throwsAsync(node.call(makePid(4242, 1), 'hi'), {
    instanceOf: NodeDownError,
  });
  t.is((error as NodeDownError).node, 4242);
  t.is(error.code, 'ERR_PG_NODE_DOWN');
  // Again (a second try after the first failed), and from a worker.
  await t.throwsAsync(node.call(makePid(4242, 7), 'hi'), { instanceOf: NodeDownError });
  const a = await spawnAgent(cluster);
  await rejects(t, a.cmd({ cmd: 'call', pid: makePid(5151, 1), msg: 'hi' }), {
    instanceOf: NodeDownError,
    name: 'NodeDownError',
  });
  // The cluster still works.
  const echo = await a.spawn('echo');
  t.is(await node.call(echo, 'still'), 'still');
});

test('calls in flight to a local process that exits reject with ProcessExitError carrying the reason', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const pid = node.spawn(() => new Promise(() => {}));
  const calls = [1, 2, 3].map((i) => handled(node.call(pid, i)));
  const reason = { why: 'maintenance' };
  node.exit(pid, reason);
  for (const c of calls) {
    const error = await t.throwsAsync(c, { instanceOf: ProcessExitError });
    t.deepEqual((error as ProcessExitError).reason, reason);
    t.is((error as ProcessExitError).pid, pid);
  }
});

test('calls in flight to a remote process that exits reject with ProcessExitError carrying the reason', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const a = await spawnAgent(cluster);
  const pid = await a.spawn('hang');
  // The first call runs (and hangs), the others wait in the mailbox.
  const calls = [1, 2, 3].map((i) => handled(node.call(pid, i)));
  t.true(await a.cmd({ cmd: 'exit', pid, reason: { why: 'maintenance', n: 7 } }));
  for (const c of calls) {
    const error = await rejects<ProcessExitError>(t, c, {
      instanceOf: ProcessExitError,
      name: 'ProcessExitError',
      code: 'ERR_PG_EXIT',
    });
    t.deepEqual(error.reason, { why: 'maintenance', n: 7 });
    t.is(error.pid, pid);
  }
  // With the default reason.
  const pid2 = await a.spawn('hang');
  const c2 = handled(node.call(pid2, 'x'));
  await a.cmd({ cmd: 'exit', pid: pid2 });
  const e2 = await rejects<ProcessExitError>(t, c2, { instanceOf: ProcessExitError });
  t.is(e2.reason, 'normal');
});

test('a call in flight to a remote process that exits with an Error reason gets that Error (name and message)', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const a = await spawnAgent(cluster);
  const pid = await a.spawn('hang');
  const call = node.call(pid, 'x');
  await a.cmd({ cmd: 'exit', pid, errorReason: { name: 'FatalError', message: 'disk on fire' } });
  const error = await rejects<ProcessExitError>(t, call, { instanceOf: ProcessExitError });
  const reason = error.reason as Error;
  t.true(reason instanceof Error);
  t.is(reason.message, 'disk on fire');
  // The monitor path keeps the name (see cluster-process); so must the call path.
  t.is(reason.name, 'FatalError');
});

test('a call racing a remote process exit always settles, with the answer or a named error', async (t) => {
  t.timeout(25_000);
  const cluster = await start(t);
  const node = cluster.node;
  const a = await spawnAgent(cluster);
  const b = await spawnAgent(cluster);
  const outcomes = new Map<string, number>();
  const tally = (key: string) => outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  const check = (label: string, r: Awaited<ReturnType<typeof outcome>>, i: number) => {
    if (r.ok) {
      t.is(r.value, i);
      tally(`${label}:answered`);
      return;
    }
    const e = r.error as Error;
    t.true(e instanceof NoProcessError || e instanceof ProcessExitError, `unexpected ${String(e)}`);
    if (e instanceof ProcessExitError) t.is(e.reason, 'race');
    tally(`${label}:${e.name}`);
  };
  const n = 150;
  for (let round = 0; round < 3; round++) {
    // A exits its own processes a few per turn while node 0's calls arrive.
    for (const kind of ['echo', 'slowEcho'] as const) {
      const pids = await a.cmd<Pid[]>({ cmd: 'spawn', kind, n });
      // A exits them from the last; node 0 calls them from the first, a few per turn: the
      // early calls find live processes, the late ones dead ones, the middle ones race.
      const exiting = a.cmd({ cmd: 'exitSpread', pids: [...pids].reverse(), reason: 'race' });
      const calls: ReturnType<typeof outcome>[] = [];
      for (let i = 0; i < n; i++) {
        calls.push(outcome(node.call(pids[i]!, i)));
        if (i % 3 === 2) await new Promise((r) => setImmediate(r));
      }
      await exiting;
      for (const [i, r] of (await Promise.all(calls)).entries()) check(kind, r, i);
    }
    // B tells A's processes to exit while node 0 calls them: two senders, one target.
    const pids = await a.cmd<Pid[]>({ cmd: 'spawn', kind: 'mortal', n, concurrency: 4 });
    const calls = pids.map((pid, i) => outcome(node.call(pid, i)));
    const dying = b.cmd({ cmd: 'sendEach', pids, msg: 'die' });
    const more = pids.map((pid, i) => outcome(node.call(pid, i)));
    await dying;
    for (const [i, r] of (await Promise.all([...calls, ...more])).entries())
      check('mortal', r, i % n);
  }
  t.log(Object.fromEntries(outcomes));
  t.is(node.stats().pendingCalls, 0);
});

test('a call racing a local process exit always settles, with the answer or a named error', async (t) => {
  t.timeout(25_000);
  const cluster = await start(t);
  const node = cluster.node;
  const exitLater: ((f: () => void) => void)[] = [
    (f) => f(),
    (f) => queueMicrotask(f),
    (f) => setImmediate(f),
    (f) => setTimeout(f, 0),
  ];
  const results = await Promise.all(
    Array.from({ length: 400 }, async (_, i) => {
      const pid = node.spawn(async (m: number) => {
        for (let k = 0; k < i % 3; k++) await new Promise((r) => setImmediate(r));
        return m;
      });
      const call = node.call(pid, i);
      exitLater[i % exitLater.length]!(() => node.exit(pid, 'race'));
      return { r: await outcome(call), i };
    }),
  );
  for (const { r, i } of results) {
    if (r.ok) t.is(r.value, i);
    else t.true(r.error instanceof ProcessExitError, `unexpected ${String(r.error)}`);
  }
});

test('an uncloneable payload makes send throw MessageCloneError and call reject with it; the link still works', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const a = await spawnAgent(cluster);
  const rec = await a.spawn('recorder');
  const local = node.spawn((m: unknown) => m);
  const bad: unknown[] = [() => 1, Symbol('s'), { nested: { f() {} } }, [1, 2, Symbol.iterator]];
  for (const target of [rec, local]) {
    for (const payload of bad) {
      t.throws(() => node.send(target, payload), { instanceOf: MessageCloneError });
      let promise: Promise<unknown> | undefined;
      t.notThrows(() => {
        promise = node.call(target, payload);
      });
      const e = await t.throwsAsync(promise!, { instanceOf: MessageCloneError });
      t.is(e.code, 'ERR_PG_CLONE');
    }
  }
  // Nothing of the failed messages arrived; what follows does, in order.
  t.true(node.send(rec, 'after-1'));
  t.is(await node.call(rec, 'after-2'), 'recorded');
  t.deepEqual(await a.cmd({ cmd: 'received', pid: rec, count: 2 }), ['after-1', 'after-2']);
  t.is(await node.call(local, 'fine'), 'fine');
  t.is(node.stats().pendingCalls, 0);
});

test('an answer that cannot be cloned rejects the call with MessageCloneError (local and remote)', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const local = node.spawn(() => () => 'no');
  await t.throwsAsync(node.call(local, 'x'), { instanceOf: MessageCloneError });
  const a = await spawnAgent(cluster);
  const remote = await a.spawn('badReply');
  await rejects(t, node.call(remote, 'x'), {
    instanceOf: MessageCloneError,
    name: 'MessageCloneError',
  });
  // Both live on.
  await rejects(t, node.call(remote, 'again'), { instanceOf: MessageCloneError });
  t.true(node.isAlive(local));
});

test('a buffer moved away already fails at its sender with MessageCloneError, local and remote, and the calls batched with it are answered', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const a = await spawnAgent(cluster);
  const rec = await a.spawn('recorder');
  const local = node.spawn((m: unknown) => (typeof m === 'string' ? 'recorded' : m));
  for (const target of [rec, local]) {
    // A view of a detached buffer, as a payload, between two good calls of one job.
    const before = node.call(target, 'before');
    t.throws(() => node.send(target, moved()), { instanceOf: MessageCloneError });
    const bad = node.call(target, moved());
    const after = node.call(target, 'after');
    await rejects(t, bad, { instanceOf: MessageCloneError, message: /detached/ });
    t.is(await before, 'recorded');
    t.is(await after, 'recorded');
    // A detached buffer in the transfer list: Node's postMessage would drop the message
    // without a word, and the call would wait for ever.
    const u = new Uint8Array(8);
    const answer = target === rec ? 'recorded' : new Uint8Array(8);
    t.deepEqual(await node.call(target, u, { transfer: [u.buffer] }), answer);
    await rejects(t, node.call(target, u, { transfer: [u.buffer] }), {
      instanceOf: MessageCloneError,
      message: /transferred already/,
    });
    // A buffer moved away after its call was made, before the batch left: that call
    // fails, the rest of the batch goes.
    const v = new Uint8Array(8);
    const late = node.call(target, v);
    const next = node.call(target, 'next');
    structuredClone(v.buffer, { transfer: [v.buffer] });
    if (target === rec) await rejects(t, late, { instanceOf: MessageCloneError });
    else t.deepEqual(await late, new Uint8Array(8), 'a local call copies at once');
    t.is(await next, 'recorded');
  }
  // Something that cannot move, in a transfer list: a named error, not Node's TypeError.
  for (const target of [rec, local]) {
    const bad = [{}, new SharedArrayBuffer(8)] as never[];
    for (const entry of bad) {
      t.throws(() => node.send(target, 'x', [entry]), {
        instanceOf: MessageCloneError,
        message: /transfer list holds something that cannot be moved/,
      });
      await rejects(t, node.call(target, 'x', { transfer: [entry] }), {
        instanceOf: MessageCloneError,
      });
    }
  }
  // An answer that is a view of a detached buffer fails its call; the member lives on.
  const bad = await a.spawn('badReply');
  await rejects(t, node.call(bad, 'moved'), { instanceOf: MessageCloneError });
  await rejects(t, node.call(bad, 'moved'), { instanceOf: MessageCloneError });
  t.deepEqual(await a.cmd({ cmd: 'received', pid: rec, count: 4 }), [
    'before',
    'after',
    new Uint8Array(8),
    'next',
  ]);
  t.is(node.stats().pendingCalls, 0);
});

test('timeout rejects with CallTimeoutError (local and remote)', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const local = node.spawn(() => new Promise(() => {}));
  const a = await spawnAgent(cluster);
  const remote = await a.spawn('hang');
  for (const pid of [local, remote]) {
    const e = await t.throwsAsync(node.call(pid, 'x', { timeout: 50 }), {
      instanceOf: CallTimeoutError,
    });
    t.is(e.code, 'ERR_PG_TIMEOUT');
  }
  // From a worker, too.
  await rejects(t, a.cmd({ cmd: 'call', pid: local, msg: 'x', timeout: 50 }), {
    instanceOf: CallTimeoutError,
    name: 'CallTimeoutError',
  });
  t.is(node.stats().pendingCalls, 0);
});

test('an aborted signal rejects the call with its reason; an already-aborted signal rejects at once and sends nothing', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const local = node.spawn(() => new Promise(() => {}));
  const a = await spawnAgent(cluster);
  const remote = await a.spawn('hang');
  for (const pid of [local, remote]) {
    const controller = new AbortController();
    const call = node.call(pid, 'x', { signal: controller.signal });
    const reason = new Error('stop it');
    controller.abort(reason);
    t.is(await t.throwsAsync(call), reason);

    const c2 = new AbortController();
    const call2 = node.call(pid, 'y', { signal: c2.signal });
    c2.abort();
    // Node's default abort reason, a DOMException.
    await rejects(t, call2, { name: 'AbortError' });
  }
  t.is(node.stats().pendingCalls, 0);

  const rec = await a.spawn('recorder');
  const already = node.call(rec, 'never sent', { signal: AbortSignal.abort('too late') });
  t.is(
    await already.then(
      () => 'resolved',
      (e: unknown) => e,
    ),
    'too late',
  );
  const localRec: unknown[] = [];
  const lr = node.spawn((m: unknown) => {
    localRec.push(m);
  });
  await rejects(t, node.call(lr, 'never sent', { signal: AbortSignal.abort() }), {
    name: 'AbortError',
  });
  t.is(await node.call(rec, 'marker'), 'recorded');
  t.deepEqual(await a.cmd({ cmd: 'received', pid: rec, count: 1 }), ['marker']);
  await node.call(lr, 'marker');
  t.deepEqual(localRec, ['marker']);
});

test('errors of this library rebuilt from another thread are genuine Error objects', async (t) => {
  const cluster = await start(t);
  const a = await spawnAgent(cluster);
  const error = await rejects(t, cluster.node.call(makePid(a.id, 777_777), 'hi'), {
    instanceOf: NoProcessError,
  });
  // A user-defined error class crossing threads is rebuilt as a real Error…
  const custom = await rejects(t, cluster.node.call(await a.spawn('thrower'), 'x'), {
    name: 'ValidationError',
  });
  t.true(types.isNativeError(custom));
  // …and so must be the library's own errors: ava's t.throwsAsync, util.types.isNativeError
  // and structured clone all tell an Object.create(Class.prototype) apart from an error.
  t.true(types.isNativeError(error), 'NoProcessError from another thread is not a native error');
  t.is((structuredClone(error) as Error).message, error.message);
});
