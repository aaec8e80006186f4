/**
 * Abort callbacks (core/abort.ts): one listener per signal, callbacks in the order they
 * were added, a callback dropped by another before its turn not run, and a signal
 * already aborted still heard.
 */
import { getEventListeners } from 'node:events';
import test from 'ava';
import { offAbort, onAbort } from '../src/core/abort.js';

test('callbacks run once, in order, behind one listener that goes with the abort', (t) => {
  const ac = new AbortController();
  const ran: number[] = [];
  for (let i = 0; i < 50; i++) onAbort(ac.signal, () => ran.push(i));
  t.is(getEventListeners(ac.signal, 'abort').length, 1);
  ac.abort();
  t.deepEqual(
    ran,
    Array.from({ length: 50 }, (_, i) => i),
  );
  t.is(getEventListeners(ac.signal, 'abort').length, 0);
});

test('offAbort drops one callback; the listener goes with the last; a callback can drop a later one', (t) => {
  const ac = new AbortController();
  const ran: string[] = [];
  const a = () => ran.push('a');
  const c = () => ran.push('c');
  const b = () => {
    ran.push('b');
    offAbort(ac.signal, c);
  };
  onAbort(ac.signal, a);
  offAbort(ac.signal, a);
  t.is(getEventListeners(ac.signal, 'abort').length, 0, 'no callback left, no listener');
  onAbort(ac.signal, a);
  onAbort(ac.signal, b);
  onAbort(ac.signal, c);
  ac.abort();
  t.deepEqual(ran, ['a', 'b']);
  offAbort(ac.signal, a); // after the abort: nothing to do
});

test('a signal aborted already: the callback runs in a microtask, unless dropped first', async (t) => {
  const ran: string[] = [];
  const signal = AbortSignal.abort();
  const kept = () => ran.push('kept');
  const dropped = () => ran.push('dropped');
  onAbort(signal, kept);
  onAbort(signal, dropped);
  offAbort(signal, dropped);
  t.deepEqual(ran, [], 'not synchronously');
  await Promise.resolve();
  t.deepEqual(ran, ['kept']);
});
