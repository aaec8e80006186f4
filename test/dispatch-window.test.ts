/**
 * The adaptive window (dispatch/window.ts), driven with synthetic clock readings: a pure
 * class, so its rule is checked here step by step, deterministically, apart from the
 * timing of any real thread.
 */
import test from 'ava';
import type { Pid } from '../src/core/pid.js';
import { type Slot, Windows } from '../src/dispatch/window.js';

const MAX = 1024;
const pid = (2 ** 32 + 7) as Pid;

/**
 * One burst of `n` calls to a member that answers them in batches of `batch` (one job,
 * one clock reading per batch), a batch every `roundMs`; each batch frees slots that the
 * next calls take, as the dispatch queue would. Returns the window after the burst.
 */
function burst(w: Windows, n: number, batch: number, roundMs: number, start: number): number {
  const held: Slot[] = [];
  let sent = 0;
  let now = start;
  const fill = () => {
    while (sent < n && w.hasRoom(pid, undefined)) {
      held.push(w.take(pid));
      sent++;
    }
  };
  fill();
  while (held.length > 0) {
    now += roundMs;
    for (const slot of held.splice(0, batch)) w.release(slot, now);
    fill();
  }
  return windowOf(w);
}

/** Six bursts of no-op calls, 50 ms apart: a member whose window is at the cap. Returns the time after. */
function warmed(w: Windows): number {
  let now = 0;
  for (let i = 0; i < 6; i++) {
    burst(w, 1000, MAX, 0.2, now);
    now += 50;
  }
  return now;
}

/** The window of `pid` now: how many calls it takes before `hasRoom` says no. */
function windowOf(w: Windows): number {
  const held: Slot[] = [];
  while (w.hasRoom(pid, undefined) && held.length <= MAX) held.push(w.take(pid));
  const size = held.length;
  // Give them back without a clock reading that could count as a period (an idle member).
  for (const slot of held) slot.inFlight--;
  return size;
}

test('no-op calls in short bursts answered in batches: the window grows to the cap, though each burst is shorter than a period', (t) => {
  const w = new Windows(MAX);
  const sizes: number[] = [];
  let now = 0;
  // 1,000 calls per burst, each batch answered 0.2 ms after it left: a burst of 1,000 at
  // the initial window takes many rounds, but once the window is large it is over in one
  // or two, far less than the 4 ms period.
  for (let i = 0; i < 10; i++) {
    sizes.push(burst(w, 1000, MAX, 0.2, now));
    now += 50; // idle between bursts: not the member's time
  }
  t.is(sizes.at(-1), MAX, `window after each burst: ${sizes.join(', ')}`);
  t.true(
    sizes.findIndex((s) => s === MAX) <= 3,
    `reached the cap within a few bursts: ${sizes.join(', ')}`,
  );
});

test('1 ms jobs: the window settles near 4 ms of work, a handful of calls', (t) => {
  const w = new Windows(MAX);
  let now = 0;
  // A member that completes one call per millisecond, one answer per batch.
  for (let i = 0; i < 5; i++) {
    burst(w, 200, 1, 1, now);
    now += 500;
  }
  const size = windowOf(w);
  t.true(size >= 4 && size <= 6, `window ${size}`);
});

test('a stall before the first answer (a busy caller) does not shrink the window', (t) => {
  const w = new Windows(MAX);
  let now = warmed(w);
  const before = windowOf(w);
  // The next burst's first answer comes 30 ms late (the caller was blocked), then the
  // rest at the usual pace.
  const held: Slot[] = [];
  for (let i = 0; i < 600; i++) held.push(w.take(pid));
  now += 30;
  for (const slot of held) w.release(slot, now);
  t.is(windowOf(w), before);
});

test('a window shrinks at most by half per period', (t) => {
  const w = new Windows(MAX);
  let now = warmed(w);
  t.is(windowOf(w), MAX);
  // The member turns slow: one answer per 10 ms. Each 10 ms is a period, whose rate
  // alone would give a window of 2; the window comes down by at most half at each.
  const held: Slot[] = [];
  for (let i = 0; i < 16; i++) held.push(w.take(pid));
  const sizes: number[] = [];
  for (const slot of held) {
    now += 10;
    w.release(slot, now);
    sizes.push(windowOf(w) + held.length - 1 - sizes.length); // room + still in flight
  }
  for (let i = 1; i < sizes.length; i++) {
    t.true(sizes[i]! <= sizes[i - 1]!, `never grows: ${sizes.join(', ')}`);
    t.true(sizes[i]! >= sizes[i - 1]! >> 1, `at most halves per period: ${sizes.join(', ')}`);
  }
  t.true(sizes.at(-1)! <= 32, `and gets there: ${sizes.join(', ')}`);
});
