/**
 * `transfer(value, list)`: marks a value so that the buffers in `list` are moved to the
 * other thread instead of copied (comlink's idiom): an argument of a service call (the
 * proxy takes the mark off when it sends the call), or the value a handler or a service
 * method returns (its process takes it off when it answers). The mark is kept beside
 * the value, in a WeakMap, so the value itself is passed unchanged and keeps its type.
 *
 * The common call has no marked value: `marked` counts marks not yet taken, so values
 * are looked up only while some exist.
 */
import type { MessagePort } from 'node:worker_threads';

/** What a message can move instead of copying. */
export type Transferable = ArrayBuffer | MessagePort;

const marks = new WeakMap<object, readonly Transferable[]>();
let marked = 0;

/**
 * Returns `value`, marked so that the buffers in `list` move with it to the other thread
 * (they are unusable on this thread afterwards): as an argument of a service call,
 * `await api.resize(transfer(img, [img.buffer]), 800)`, or as what a handler or a service
 * method returns, `return transfer(out, [out.buffer])`. To a process of another OS
 * process (peering), the value is copied, and the buffers stay.
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

/** The buffers marked on `value` itself (taking the mark off), or undefined. */
export function takeTransfer(value: unknown): Transferable[] | undefined {
  if (marked === 0 || typeof value !== 'object' || value === null) return undefined;
  const list = marks.get(value);
  if (list === undefined) return undefined;
  marks.delete(value);
  marked--;
  return [...list];
}

/** True when some value may carry a mark (used to keep the common call on its fast path). */
export function anyMarked(): boolean {
  return marked > 0;
}
