/**
 * Waiting without sleeping. A test waits for an event, a round trip, or a synchronous
 * read that it polls one event-loop turn at a time (messages from other threads arrive
 * between turns); it never waits on a timer. Polls are bounded in turns, not in time,
 * and return what they last saw, so that a failure shows the difference.
 *
 * Fixtures import this module too, so it must not import ava at run time.
 */
import { isDeepStrictEqual } from 'node:util';

/** Event-loop turns a poll waits before it gives up. */
export const POLL_LIMIT = 2_000_000;

/** One turn of the event loop: pending microtasks, I/O and messages from other threads run. */
export function turn(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}

export interface PollResult<T> {
  /** True when the value was seen before the bound. */
  ok: boolean;
  /** What the last read returned. */
  value: T;
  /** Event-loop turns waited. */
  turns: number;
}

/** Reads `read()` until `done(value)`, one event-loop turn between reads, at most `limit` turns. */
export async function poll<T>(
  read: () => T,
  done: (value: T) => boolean,
  limit = POLL_LIMIT,
): Promise<PollResult<T>> {
  let value = read();
  let turns = 0;
  while (!done(value)) {
    if (turns >= limit) return { ok: false, value, turns };
    await turn();
    turns++;
    value = read();
  }
  return { ok: true, value, turns };
}

/** Polls `read()` until it deep-equals `expected` (pg_SUITE's `sync` followed by a read). */
export function settle<T>(read: () => T, expected: T, limit = POLL_LIMIT): Promise<PollResult<T>> {
  return poll(read, (value) => isDeepStrictEqual(value, expected), limit);
}

/** How a promise ended, as a value. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** The promise's outcome as a value: `{ ok, value }` or `{ ok: false, error }`. */
export async function outcome<T>(p: Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await p };
  } catch (error) {
    return { ok: false, error };
  }
}
