/**
 * Abort callbacks: one `'abort'` listener per signal on this thread, however many calls,
 * dispatches and waits hold it.
 *
 * Why: one `AbortSignal` passed to a whole batch (to cancel it at once) is the common
 * way to use one, and Node warns of a leak (`MaxListenersExceededWarning`) past ten
 * listeners on a signal: a batch of 200 dispatches printed it. Here the callbacks of a
 * signal sit in one set behind one listener, which goes when the last callback does.
 * They run in the order they were added, as listeners would.
 */

interface Hooks {
  readonly callbacks: Set<() => void>;
  readonly listener: () => void;
}

const bySignal = new WeakMap<AbortSignal, Hooks>();
/** Callbacks of signals aborted before they were added, until their microtask runs. */
const late = new Set<() => void>();

/** Calls `fn` once when `signal` aborts (in a microtask if it has already), unless `offAbort` comes first. */
export function onAbort(signal: AbortSignal, fn: () => void): void {
  if (signal.aborted) {
    // Its event has gone: no listener would hear it.
    queueMicrotask(() => {
      if (late.delete(fn)) fn();
    });
    late.add(fn);
    return;
  }
  let hooks = bySignal.get(signal);
  if (hooks === undefined) {
    const callbacks = new Set<() => void>();
    const listener = (): void => {
      // A callback may drop later ones (a call that settles another): they are found
      // here until the loop ends, and a deleted entry is not visited.
      for (const callback of callbacks) {
        callbacks.delete(callback);
        callback();
      }
      bySignal.delete(signal);
    };
    hooks = { callbacks, listener };
    bySignal.set(signal, hooks);
    signal.addEventListener('abort', listener, { once: true });
  }
  hooks.callbacks.add(fn);
}

/** Drops `fn` from `signal`'s callbacks; the listener goes with the last of them. */
export function offAbort(signal: AbortSignal, fn: () => void): void {
  if (late.delete(fn)) return;
  const hooks = bySignal.get(signal);
  if (hooks === undefined || !hooks.callbacks.delete(fn)) return;
  if (hooks.callbacks.size === 0) {
    bySignal.delete(signal);
    signal.removeEventListener('abort', hooks.listener);
  }
}
