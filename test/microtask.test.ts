/**
 * `microtask` (core/timer.ts) stands in for `queueMicrotask` on the library's hot paths
 * (the end of a batch, of a handler job, of a read section): it must keep its order
 * among every other microtask, run before the next turn of the event loop, and keep the
 * async context of the code that queued it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import test from 'ava';
import { microtask } from '../src/core/timer.js';

test('runs in the order queued, among queueMicrotask callbacks and promise reactions', async (t) => {
  const order: string[] = [];
  queueMicrotask(() => order.push('a'));
  microtask(() => order.push('b'));
  void Promise.resolve().then(() => order.push('c'));
  microtask(() => {
    order.push('d');
    // Queued from a microtask: after everything queued before it.
    microtask(() => order.push('f'));
  });
  queueMicrotask(() => order.push('e'));
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(order, ['a', 'b', 'c', 'd', 'e', 'f']);
});

test('runs before the next turn of the event loop, after the synchronous code', async (t) => {
  const order: string[] = [];
  setImmediate(() => order.push('immediate'));
  setTimeout(() => order.push('timeout'), 0);
  microtask(() => order.push('microtask'));
  order.push('sync');
  await new Promise((resolve) => setTimeout(resolve, 5));
  t.deepEqual(order.slice(0, 2), ['sync', 'microtask']);
});

test('keeps the async context of the code that queued it', async (t) => {
  const als = new AsyncLocalStorage<string>();
  const seen = await new Promise<string | undefined>((resolve) =>
    als.run('queued here', () => microtask(() => resolve(als.getStore()))),
  );
  t.is(seen, 'queued here');
});
