/**
 * `transfer(value, list)`: marks an argument of a service call so that the buffers in
 * `list` are moved to the serving thread instead of copied (comlink's idiom). The mark
 * is kept beside the value, in a WeakMap, so the value itself is passed unchanged and
 * keeps its type; the proxy takes the mark off when it sends the call.
 *
 * The common call has no marked argument: `marked` counts marks not yet taken, so the
 * proxy looks arguments up only while some exist.
 */
import type { Transferable } from '../runtime/pending-calls.js';

const marks = new WeakMap<object, readonly Transferable[]>();
let marked = 0;

/**
 * Returns `value`, marked so that a service call taking it as an argument moves the
 * buffers in `list` (they are unusable on this thread afterwards):
 * `await api.resize(transfer(img, [img.buffer]), 800)`.
 */
export function transfer<T>(value: T, list: readonly (Transferable | ArrayBufferLike)[]): T {
  if (!Array.isArray(list))
    throw new TypeError(
      'transfer(value, list): list must be an array of ArrayBuffers and MessagePorts',
    );
  if (typeof value !== 'object' || value === null)
    throw new TypeError(
      'transfer(value, list): value must be an object (the one the buffers belong to)',
    );
  if (!marks.has(value)) marked++;
  // `ArrayBufferLike` is taken for `typedArray.buffer` as TypeScript types it; a
  // SharedArrayBuffer in the list fails the call with MessageCloneError.
  marks.set(value, list as readonly Transferable[]);
  return value;
}

/**
 * The buffers marked on `args` (taking the marks off), followed by `extra`; undefined
 * when there are none. Cheap when nothing is marked: one comparison.
 */
export function takeTransfers(
  args: readonly unknown[],
  extra: readonly Transferable[] | undefined,
): Transferable[] | undefined {
  let out: Transferable[] | undefined;
  if (marked > 0) {
    for (const a of args) {
      if (typeof a !== 'object' || a === null) continue;
      const list = marks.get(a);
      if (list === undefined) continue;
      marks.delete(a);
      marked--;
      (out ??= []).push(...list);
    }
  }
  if (extra !== undefined && extra.length > 0) (out ??= []).push(...extra);
  return out;
}

/** True when some argument may carry a mark (used to keep the common call on its fast path). */
export function anyMarked(): boolean {
  return marked > 0;
}
