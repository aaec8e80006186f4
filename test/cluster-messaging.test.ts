/**
 * Messaging between nodes: payloads between workers, FIFO per sender/receiver pair,
 * transferables, and a full mesh.
 */
import { MessageChannel } from 'node:worker_threads';
import test from 'ava';
import { type Pid, transfer } from '../src/index.js';
import { type Agent, spawnAgent, start } from './support/cluster.js';
import { filled, isFilled } from './support/commands.js';

test('worker A calls a process on worker B directly, with rich payloads', async (t) => {
  const cluster = await start(t);
  const a = await spawnAgent(cluster);
  const b = await spawnAgent(cluster);
  const echo = await b.spawn('echo');
  const payload = {
    text: 'héllo ✓',
    nested: [1, { x: 2, y: [null, true, -0.5] }],
    big: 'x'.repeat(100_000),
    date: new Date(0),
    map: new Map<string, number>([['a', 1]]),
    set: new Set([1, 2, 3]),
    bytes: new Uint8Array([1, 2, 3]),
    bigint: 12345678901234567890n,
  };
  t.deepEqual(await a.cmd({ cmd: 'call', pid: echo, msg: payload }), payload);
  const small = Array.from({ length: 50 }, (_, i) => ({ i, s: `m${i}` }));
  t.deepEqual(await a.cmd({ cmd: 'call', pid: echo, msg: small }), small);
  // And B calls A back.
  const echoA = await a.spawn('echo');
  t.deepEqual(await b.cmd({ cmd: 'call', pid: echoA, msg: { back: true } }), { back: true });
});

test('FIFO per sender/receiver pair: 1000 sends from A reach a process on B in order', async (t) => {
  const cluster = await start(t);
  const a = await spawnAgent(cluster);
  const b = await spawnAgent(cluster);
  const rec = await b.spawn('recorder');
  const n = 1000;
  t.is(await a.cmd({ cmd: 'sendSeq', pid: rec, n }), n);
  const got = await b.cmd<{ from: number; seq: number }[]>({ cmd: 'received', pid: rec, count: n });
  t.is(got.length, n);
  t.true(got.every((m) => m.from === a.id));
  t.deepEqual(
    got.map((m) => m.seq),
    Array.from({ length: n }, (_, i) => i),
  );
});

test('a transferred ArrayBuffer is detached at the sender and whole at the receiver (node 0 → worker)', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const a = await spawnAgent(cluster);
  const rec = await a.spawn('recorder');
  const size = 64 * 1024;

  const sent = filled(size);
  t.true(node.send(rec, { buf: sent }, [sent]));
  t.is(sent.byteLength, 0);

  const called = filled(size);
  t.is(await node.call(rec, { buf: called }, { transfer: [called] }), 'recorded');
  t.is(called.byteLength, 0);

  const got = await a.cmd<{ buf: ArrayBuffer }[]>({ cmd: 'received', pid: rec, count: 2 });
  t.is(got.length, 2);
  t.true(isFilled(got[0]?.buf, size));
  t.true(isFilled(got[1]?.buf, size));
});

test('a transferred ArrayBuffer is detached at the sender and whole at the receiver (worker → worker)', async (t) => {
  const cluster = await start(t);
  const a = await spawnAgent(cluster);
  const b = await spawnAgent(cluster);
  const rec = await b.spawn('recorder');
  const size = 32 * 1024;
  t.deepEqual(await a.cmd({ cmd: 'sendBuffer', pid: rec, size, via: 'send' }), {
    byteLengthAfter: 0,
  });
  t.deepEqual(await a.cmd({ cmd: 'sendBuffer', pid: rec, size, via: 'call' }), {
    byteLengthAfter: 0,
  });
  const got = await b.cmd<{ buf: ArrayBuffer }[]>({ cmd: 'received', pid: rec, count: 2 });
  t.true(isFilled(got[0]?.buf, size));
  t.true(isFilled(got[1]?.buf, size));
});

test('a transferred ArrayBuffer to a local process is detached at the sender', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const got: unknown[] = [];
  const pid = node.spawn((m: { buf: ArrayBuffer }) => {
    got.push(m.buf);
    return m.buf.byteLength;
  });
  const buf = filled(1024);
  t.is(await node.call(pid, { buf }, { transfer: [buf] }), 1024);
  t.is(buf.byteLength, 0);
  t.true(isFilled(got[0], 1024));
});

test('a handler that returns transfer(value, [buffers]) moves them to its caller, on the same thread and from another', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const kept: ArrayBuffer[] = [];
  const pid = node.spawn((n: number) => {
    const buf = filled(n);
    kept.push(buf);
    return transfer({ buf }, [buf]);
  });
  const local = await node.call<{ buf: ArrayBuffer }>(pid, 1024);
  t.true(isFilled(local.buf, 1024));
  t.is(kept[0]!.byteLength, 0, 'moved out of the handler, not copied');
  // From a worker: the answer crosses a channel with its buffer moved.
  const a = await spawnAgent(cluster);
  const remote = (await a.cmd({ cmd: 'call', pid, msg: 2048 })) as { buf: ArrayBuffer };
  t.true(isFilled(remote.buf, 2048));
  t.is(kept[1]!.byteLength, 0);
});

test('a transferred MessagePort works at the receiver', async (t) => {
  const cluster = await start(t);
  const a = await spawnAgent(cluster);
  const user = await a.spawn('portUser');
  const { port1, port2 } = new MessageChannel();
  t.teardown(() => port1.close());
  t.is(await cluster.node.call(user, { port: port2 }, { transfer: [port2] }), 'attached');
  const answers: number[] = [];
  const done = new Promise<void>((resolve) => {
    port1.on('message', (v: number) => {
      answers.push(v);
      if (answers.length === 3) resolve();
    });
  });
  port1.postMessage(41);
  port1.postMessage(1);
  port1.postMessage(-1);
  await done;
  t.deepEqual(answers, [42, 2, 0]);

  // And with send.
  const user2 = await a.spawn('portUser');
  const ch = new MessageChannel();
  t.teardown(() => ch.port1.close());
  t.true(cluster.node.send(user2, { port: ch.port2 }, [ch.port2]));
  const answer = new Promise((resolve) => ch.port1.once('message', resolve));
  ch.port1.postMessage(99);
  t.is(await answer, 100);
});

test('full mesh: 5 worker nodes and node 0 all send numbered messages to each other, in order per sender', async (t) => {
  t.timeout(25_000);
  const cluster = await start(t);
  const node = cluster.node;
  const agents: Agent[] = await Promise.all(Array.from({ length: 5 }, () => spawnAgent(cluster)));
  const recorders = new Map<number, Pid>();
  for (const a of agents) recorders.set(a.id, await a.spawn('recorder'));
  // Node 0 takes part too, with a local recorder.
  const local: { from: number; seq: number }[] = [];
  const localRec = node.spawn((m: { from: number; seq: number }) => {
    local.push(m);
  });
  recorders.set(0, localRec);
  const n = 200;
  const others = (id: number) => [...recorders].filter(([k]) => k !== id).map(([, p]) => p);

  await Promise.all([
    ...agents.map((a) => a.cmd({ cmd: 'mesh', targets: others(a.id), n })),
    (async () => {
      for (let i = 0; i < n; i++) for (const p of others(0)) node.send(p, { from: 0, seq: i });
    })(),
  ]);

  const senders = [0, ...agents.map((a) => a.id)];
  const expected = Array.from({ length: n }, (_, i) => i);
  const check = (receiver: number, got: { from: number; seq: number }[]) => {
    t.is(got.length, n * (senders.length - 1), `receiver ${receiver}`);
    for (const s of senders) {
      if (s === receiver) continue;
      t.deepEqual(
        got.filter((m) => m.from === s).map((m) => m.seq),
        expected,
        `from ${s} to ${receiver}`,
      );
    }
  };
  for (const a of agents) {
    const got = await a.cmd<{ from: number; seq: number }[]>({
      cmd: 'received',
      pid: recorders.get(a.id)!,
      count: n * (senders.length - 1),
    });
    check(a.id, got);
  }
  // Node 0's recorder: wait for every message with a call after them from each sender.
  await Promise.all(
    agents.map((a) => a.cmd({ cmd: 'call', pid: localRec, msg: { from: -1, seq: -1 } })),
  );
  check(
    0,
    local.filter((m) => m.from !== -1),
  );
});

test('20,000 calls in flight, answered out of order, beside one that never ends: each gets its own answer, and calls after them too', async (t) => {
  // The calls in flight sit in runtime/call-table.ts: this deep burst grows it, answers
  // in any order clear its slots, and the call that never ends is pushed aside by a later
  // call that wants its slot.
  const cluster = await start(t);
  const a = await spawnAgent(cluster);
  const b = await spawnAgent(cluster);
  const slow = await a.spawn('slowEcho', 1 << 20);
  const quick = await b.spawn('echo');
  const hang = await b.spawn('hang');
  const node = cluster.node;
  const never = node.call(hang, 'forever');
  let settled = false;
  never.then(
    () => (settled = true),
    () => (settled = true),
  );
  const n = 20_000;
  const answers = await Promise.all(
    Array.from({ length: n }, (_, i) => node.call(i % 3 === 0 ? quick : slow, { i })),
  );
  t.true(answers.every((x, i) => (x as { i: number }).i === i));
  // Shallow bursts after the deep one, to both processes: more calls than the grown
  // table has slots, so that one of them wants the slot of the call that never ends.
  for (let round = 0; round < 40; round++) {
    const more = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => node.call(i % 2 ? quick : slow, round * 1000 + i)),
    );
    t.deepEqual(
      more,
      Array.from({ length: 1000 }, (_, i) => round * 1000 + i),
    );
  }
  t.false(settled);
  // The call set aside is still found: it fails when its node goes.
  await b.terminate();
  await t.throwsAsync(never, { name: 'NodeDownError' });
});
