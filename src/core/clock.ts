/**
 * A clock read once per job of this thread: the first read in a job takes
 * `performance.now()`, and the reads after it, until the job's microtasks run out, get
 * the same value.
 *
 * Why: dispatch times every call (its window and its latency statistics need the start
 * and the end), and `performance.now()` costs about 45 ns, which was a tenth of a no-op
 * dispatch. Calls submitted in one job leave together anyway (channels send at the end
 * of the job), and replies that arrive in one batch are handled together, so one read
 * per job measures them as well as one read each. The price: a reading can be late by
 * at most the length of the job it is taken in.
 */
let cached = -1;
const expire = (): void => {
  cached = -1;
};

/** `performance.now()` as of this job's first read. */
export function jobClock(): number {
  if (cached < 0) {
    cached = performance.now();
    queueMicrotask(expire);
  }
  return cached;
}
