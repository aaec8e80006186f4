/**
 * Typed services (issue 18): `node.serve<T>(group, impl)` in worker threads, and
 * `scope.service<T>(group)` calling them from the main thread: answers, errors that
 * keep their class, per-service and per-call options, calls to every member.
 */
import test from 'ava';
import {
  CallTimeoutError,
  type Cluster,
  MessageCloneError,
  nodeOf,
  type Pid,
  ProcessExitError,
  ServiceCallError,
  transfer,
  UnknownMethodError,
} from '../src/index.js';
import type { Images } from './fixtures/service-api.js';
import { rejects, start } from './support/cluster.js';
import { settle } from './support/wait.js';
import { fixture } from './support/workers.js';

const WORKER = fixture('service-worker');

/** Spawns one serving worker per entry; resolves once each has joined (serve resolved). */
async function servers(
  cluster: Cluster,
  group: string,
  n: number,
  extra: Record<string, unknown> = {},
): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < n; i++)
    ids.push((await cluster.spawn(WORKER, { workerData: { group, ...extra } })).id);
  return ids;
}

test('a typed call reaches a member and answers; a synchronous method answers a promise', async (t) => {
  const cluster = await start(t);
  const [id] = await servers(cluster, 'images', 1);
  const pg = cluster.node.pg;
  // serve resolved inside the worker before its module ended: the member is visible now.
  t.is(pg.count('images'), 1);
  const images = pg.service<Images>('images', { strategy: 'least-loaded', timeout: 10_000 });
  const r = await images.resize(new Uint8Array(10), 800);
  t.deepEqual(r, { width: 400, bytes: 10, by: id! });
  const stats = images.stats();
  t.true(stats instanceof Promise);
  t.deepEqual(await stats, { calls: 1, bumped: 0, by: id! });
  // A resolved method is an own property: later reads never reach the proxy's trap.
  t.is(images.resize, images.resize);
  t.true(Object.hasOwn(images, 'resize'));
  // A method taken off the proxy keeps working.
  const { size } = images;
  t.is(await size(new Uint8Array(3)), 3);
  // The proxy is not a thenable: awaiting it (or returning it from an async function) calls nothing.
  t.is(await Promise.resolve(images), images);
  t.is(images.group, 'images');
  // It converts to a string (in a message, a log line) without calling anything.
  t.regex(String(images), /^\[service .*images.*\]$/);
  t.regex(`${images.all} ${images.tell}`, /images.*\.all.*images.*\.tell/);
});

test('errors: a thrown error keeps its class, code, message and stack; unknown methods, non-calls and uncloneable values get named errors; the process keeps serving', async (t) => {
  const cluster = await start(t);
  await servers(cluster, 'images', 1);
  const pg = cluster.node.pg;
  const images = pg.service<Images>('images');

  const e = await rejects<Error & { code: string }>(t, images.fail('over quota'), {
    name: 'QuotaError',
    message: 'over quota',
    code: 'E_QUOTA',
  });
  t.regex(e.stack ?? '', /service-api\.[jt]s/, 'the stack is the one thrown in the worker');

  const unknown = await rejects<UnknownMethodError>(
    t,
    (images as unknown as Record<string, () => Promise<unknown>>).crop!(),
    { instanceOf: UnknownMethodError, code: 'ERR_PG_UNKNOWN_METHOD' },
  );
  t.is(unknown.method, 'crop');
  t.true(unknown.offered.includes('resize') && unknown.offered.includes('stats'));
  t.regex(unknown.message, /no method "crop"; it offers bad, bump, fail, flaky, hang/);

  await rejects(t, pg.dispatch('images', { op: 'resize' }), {
    instanceOf: ServiceCallError,
    code: 'ERR_PG_SERVICE_CALL',
    message: /not a service call/,
  });

  // An answer that cannot be cloned, and an argument that cannot (nothing is sent).
  await rejects(t, images.bad(), {
    instanceOf: MessageCloneError,
    code: 'ERR_PG_CLONE',
    message: /^the answer cannot be sent to another thread: .*Return plain data/,
  });
  await rejects(t, images.size((() => 1) as unknown as Uint8Array), {
    instanceOf: MessageCloneError,
  });

  // Still serving.
  t.is(await images.size(new Uint8Array(4)), 4);
});

test('options per service and per call: hash key from the arguments, timeout, signal, retries, transfer', async (t) => {
  const cluster = await start(t);
  const ids = await servers(cluster, 'images', 2);
  const [flakyId] = await servers(cluster, 'images', 1, { flaky: true });
  const pg = cluster.node.pg;

  // Sticky: the key is taken from the arguments; one user always lands on one node.
  const sticky = pg.service<Images>('images', {
    strategy: 'hash',
    key: (method, args) => (method === 'owner' ? String(args[0]) : method),
  });
  for (const user of ['ada', 'grace', 'alan']) {
    const owners = new Set<number>();
    for (let i = 0; i < 5; i++) owners.add(await sticky.owner(user));
    t.is(owners.size, 1, `${user} stays on one node`);
  }
  // A fixed key per call.
  const fixed = await sticky.with({ key: 'k1' }).owner('x');
  t.is(await sticky.with({ key: 'k1' }).owner('y'), fixed);

  const images = pg.service<Images>('images');
  await rejects(t, images.with({ timeout: 20 }).hang(), { instanceOf: CallTimeoutError });
  const controller = new AbortController();
  const hanging = images.with({ signal: controller.signal }).hang();
  controller.abort(new Error('no longer needed'));
  await rejects(t, hanging, { message: 'no longer needed' });
  // Release what the two calls left hanging, on every member.
  const released = await images.all.release();
  t.is(
    released.replies.reduce((n, [, r]) => n + r, 0),
    2,
  );

  // Retries: the strategy picks the flaky member first; it dies under the call, and the
  // call is made again on another member.
  // (The function strategies below read the index: wait until it shows the members meant.)
  const nodes = () =>
    pg
      .getMembers('images')
      .map(nodeOf)
      .sort((a, b) => a - b);
  t.true(
    (
      await settle(
        nodes,
        [...ids, flakyId!].sort((a, b) => a - b),
      )
    ).ok,
  );
  const flakyFirst = (members: readonly Pid[]) =>
    members.find((p) => nodeOf(p) === flakyId) ?? members[0];
  await rejects(t, images.with({ strategy: flakyFirst }).flaky(), {
    instanceOf: ProcessExitError,
  });
  const [flakyTwo] = await servers(cluster, 'images', 1, { flaky: true });
  t.true(
    (
      await settle(
        nodes,
        [...ids, flakyTwo!].sort((a, b) => a - b),
      )
    ).ok,
  );
  const answer = await images
    .with({ strategy: (m) => m.find((p) => nodeOf(p) === flakyTwo) ?? m[0], retries: 1 })
    .flaky();
  t.true(ids.includes(answer), 'answered by a member that did not die');
  // The dead member leaves the index a little later (its exit travels to the coordinator):
  // until then a dispatch without retries may still pick it and get NoProcessError.
  t.true(
    (
      await settle(
        nodes,
        [...ids].sort((a, b) => a - b),
      )
    ).ok,
  );

  // Transfer: a marked argument's buffer moves (it is detached here afterwards).
  const img = new Uint8Array(1024);
  t.is(await images.size(transfer(img, [img.buffer])), 1024);
  t.is(img.byteLength, 0);
  const other = new Uint8Array(16);
  t.is(await images.with({ transfer: [other.buffer] }).size(other), 16);
  t.is(other.byteLength, 0);
  // Without a mark, the argument is copied.
  const kept = new Uint8Array(8);
  t.is(await images.size(kept), 8);
  t.is(kept.byteLength, 8);
});

test('a method that returns transfer(value, [buffers]) moves them to the caller: they arrive, and the server holds them no more', async (t) => {
  const cluster = await start(t);
  await servers(cluster, 'images', 1);
  const images = cluster.node.pg.service<Images>('images');
  const out = await images.thumbnail(1024);
  t.true(out instanceof Uint8Array);
  t.is(out.byteLength, 1024);
  t.true(out.every((b) => b === 7));
  t.is(await images.lastThumbnail(), 0, "the server's buffer was moved, not copied");
  // The mark is taken with the answer: the next answer is plain again.
  t.is(await images.size(new Uint8Array(3)), 3);
});

test('all and tell: call or tell every member, typed', async (t) => {
  const cluster = await start(t);
  const ids = await servers(cluster, 'images', 2);
  const images = cluster.node.pg.service<Images>('images');
  t.is(images.tell.bump(5), 2);
  const { replies, failures } = await images.all.stats();
  t.deepEqual(failures, []);
  t.deepEqual(replies.map(([, s]) => s.by).sort(), [...ids].sort());
  // Each member handled the tell before the call that followed it on the same channel.
  t.true(replies.every(([, s]) => s.bumped === 5));
  const failed = await images.all.fail('all of them');
  t.is(failed.failures.length, 2);
  t.true(failed.failures.every(([, e]) => e.name === 'QuotaError'));
});

test('serve on the main thread: resolves once joined; stop leaves and ends the process; bad definitions are refused', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const served = await node.serve<{ twice(n: number): number }>('local', {
    twice: (n) => n * 2,
  });
  t.deepEqual(node.pg.getMembers('local'), [served.pid]);
  t.is(await node.pg.service<{ twice(n: number): number }>('local').twice(21), 42);

  // A class instance: inherited methods are served, `this` is the instance.
  class Counter {
    n = 0;
    add(k: number): number {
      this.n += k;
      return this.n;
    }
  }
  await node.serve<Counter>('counter', new Counter());
  const counter = node.pg.service<Counter>('counter');
  await counter.add(2);
  t.is(await counter.add(3), 5);

  await served.stop();
  t.deepEqual(node.pg.getMembers('local'), []);
  t.false(node.isAlive(served.pid));

  await t.throwsAsync(node.serve('x', { all: () => 1 }), {
    instanceOf: ServiceCallError,
    message: /all cannot be service methods/,
  });
  await t.throwsAsync(node.serve('x', {}), { instanceOf: ServiceCallError });
  t.throws(() => node.pg.service('x', { strategy: 'hash' }), { message: /needs a `key`/ });
  t.throws(() => node.pg.service('x', { key: {} as never }), { instanceOf: TypeError });
});
