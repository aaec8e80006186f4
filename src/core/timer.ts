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
