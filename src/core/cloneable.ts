/**
 * A cheap, conservative test that a value will survive structured clone.
 *
 * Channels batch small frames into one `postMessage` per microtask (protocol/channel.ts), which
 * would move a clone failure away from the `send` that caused it. So a frame is
 * batched only when its payload is surely cloneable: primitives, and plain arrays and
 * objects, typed arrays and dates made of those, up to a small size. Anything else is
 * posted on its own, right away, where a failure throws at the sender.
 */
import { types } from 'node:util';

/** Values examined before giving up and sending the payload on its own. */
const BUDGET = 256;

export function surelyCloneable(value: unknown): boolean {
  return walk(value, BUDGET) >= 0;
}

/**
 * An upper bound of the bytes `value` takes serialized, when it is surely cloneable and
 * cheap to measure (the same walk as `surelyCloneable`); -1 otherwise. Channels to other
 * processes use it to serialize a small payload with the rest of its batch, and to check
 * a larger one alone, at the sender, against the broker's limit.
 */
export function boundedSize(value: unknown): number {
  bytes = 0;
  return walk(value, BUDGET) < 0 ? -1 : bytes;
}

/** What the last walk counted, for `boundedSize` (a module variable: no allocation per walk). */
let bytes = 0;

/** Returns the budget left, or -1 when the value is not surely cloneable (or too big to tell cheaply). */
function walk(v: unknown, budget: number): number {
  if (--budget < 0) return -1;
  bytes += 16;
  switch (typeof v) {
    case 'string':
      bytes += v.length * 3;
      return budget;
    case 'number':
    case 'boolean':
    case 'undefined':
    case 'bigint':
      return budget;
    case 'object':
      break;
    default:
      return -1;
  }
  if (v === null) return budget;
  if (Array.isArray(v)) {
    if (v.length > budget || types.isProxy(v)) return -1;
    for (let i = 0; i < v.length && budget >= 0; i++) budget = walk(v[i], budget);
    return budget;
  }
  if (ArrayBuffer.isView(v)) {
    // Empty: maybe a view of a buffer moved away, which fails to clone. Sent on its own,
    // it fails at the sender.
    if (v.byteLength === 0) return -1;
    bytes += v.byteLength;
    return budget;
  }
  if (types.isDate(v)) return budget;
  const proto = Object.getPrototypeOf(v);
  if ((proto !== Object.prototype && proto !== null) || types.isProxy(v)) return -1;
  for (const key in v) {
    if (!Object.hasOwn(v, key)) continue;
    const d = Object.getOwnPropertyDescriptor(v, key);
    if (d === undefined || d.get !== undefined) return -1;
    bytes += key.length * 3 + 8;
    budget = walk(d.value, budget);
    if (budget < 0) return -1;
  }
  return budget;
}
