/**
 * Timeouts. Node's `setTimeout` turns a delay above 2^31 − 1 ms (about 24.8 days), or
 * `Infinity`, into 1 ms, so a "no practical limit" timeout would fire at once. Here such
 * a delay means "never": no timer is set.
 */
const MAX_DELAY = 2 ** 31 - 1;

/** Calls `fn` after `ms` milliseconds; no timer (undefined) when `ms` is undefined or too large to matter. */
export function after(
  ms: number | undefined,
  fn: () => void,
): ReturnType<typeof setTimeout> | undefined {
  if (ms === undefined || ms > MAX_DELAY) return undefined;
  return setTimeout(fn, ms);
}

const settled = Promise.resolve();

/**
 * Runs `fn` in a microtask: the same queue and order as `queueMicrotask`, for less.
 * Node's `queueMicrotask` wraps each callback in an AsyncResource (an async id, the
 * hooks' init, before, after and destroy): about 130 ns a call once optimized, and some
 * microseconds in code that has not warmed up, where a reaction to a settled promise
 * costs about 50 ns. The library queues a few per job on every thread (the end of a
 * channel's or a port's batch, of a handler job, of a read section, of the job's clock),
 * so a thread woken for one message pays them all in cold code.
 *
 * For the library's own callbacks, which do not throw (one that did would surface as an
 * unhandled rejection, not an uncaught exception); user callbacks keep `queueMicrotask`.
 */
export function microtask(fn: () => void): void {
  void settled.then(fn);
}
