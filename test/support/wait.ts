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

/** `n` turns of the event loop (each a `setImmediate`): lets pending I/O and timers of zero run. */
export function turns(n: number): Promise<void> {
  return new Promise((resolve) => {
    let left = n;
    const step = () => (--left <= 0 ? resolve() : setImmediate(step));
    setImmediate(step);
  });
}

/**
 * Waits for a condition on state that changes in callbacks (messages recorded, events
 * heard): whoever changes the state calls `notify()`, and each `until(check)` resolves
 * at the first notification after which `check()` holds.
 */
export class Condition {
  readonly #waiters = new Set<() => void>();

  /** Resolves when `check()` is true, re-checking at each `notify()`. */
  until(check: () => boolean): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve) => {
      const w = () => {
        if (!check()) return;
        this.#waiters.delete(w);
        resolve();
      };
      this.#waiters.add(w);
    });
  }

  notify(): void {
    for (const w of [...this.#waiters]) w();
  }
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

/**
 * Marks a promise as handled, so that a test that stops at a failed assertion before it
 * awaits it does not also report an unhandled rejection (when the cluster stops under
 * it). Awaiting it still throws.
 */
export function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}

/** The name of what was thrown: the error's name, or `thrown <value>` for a non-error. */
export function errorName(e: unknown): string {
  return e instanceof Error ? e.name : `thrown ${String(e)}`;
}
