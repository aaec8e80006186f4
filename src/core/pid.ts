/**
 * Pids: `node × 2^32 + serial`, a plain `number` that structured-clones for free,
 * compares with `===`, and is stored in shared memory as two 32-bit words.
 */
import { describe, InvalidPidError } from './errors.js';

declare const pidBrand: unique symbol;

/** An addressable process: `node id × 2^32 + serial`. Branded so that any number is not a pid. */
export type Pid = number & { readonly [pidBrand]: true };

/** 2^32: the node part of a pid is `Math.floor(pid / NODE_FACTOR)`. */
export const NODE_FACTOR = 0x1_0000_0000;
/** Largest node id that keeps every pid a safe integer. */
export const MAX_NODE_ID = 0x1f_ffff;
/** Serial numbers run from 1 to 2^32 − 1 on each node (0 is never a pid). */
export const MAX_SERIAL = 0xffff_ffff;

/** Builds a pid. Both parts must be in range; this is checked. */
export function makePid(node: number, serial: number): Pid {
  if (!Number.isInteger(node) || node < 0 || node > MAX_NODE_ID) {
    throw new RangeError(
      `node id must be an integer from 0 to ${MAX_NODE_ID}, got ${describe(node)}`,
    );
  }
  if (!Number.isInteger(serial) || serial < 1 || serial > MAX_SERIAL) {
    throw new RangeError(
      `pid serial must be an integer from 1 to ${MAX_SERIAL}, got ${describe(serial)}`,
    );
  }
  return (node * NODE_FACTOR + serial) as Pid;
}

/** True for a number that has the shape of a pid (it may belong to no live process). */
export function isPid(value: unknown): value is Pid {
  return (
    typeof value === 'number' &&
    Number.isSafeInteger(value) &&
    value > 0 &&
    value % NODE_FACTOR !== 0
  );
}

/** Returns `value` as a pid or throws an `InvalidPidError` naming it. */
export function toPid(value: unknown, what = 'pid'): Pid {
  if (!isPid(value)) {
    throw new InvalidPidError(
      `${what} must be a pid (a number made by node.spawn() or node.self()), got ${describe(value)}`,
    );
  }
  return value;
}

/** The node a pid belongs to. */
export function nodeOf(pid: Pid): number {
  return Math.floor(pid / NODE_FACTOR);
}

/** The pid's serial number on its node. */
export function serialOf(pid: Pid): number {
  return pid % NODE_FACTOR;
}

/** `<node.serial>`, in the spirit of Erlang's `<0.42.0>`. */
export function formatPid(pid: Pid): string {
  return `<${nodeOf(pid)}.${serialOf(pid)}>`;
}

/**
 * Validates a pid or a list of pids and returns them as a fresh array, so that the
 * caller's array can change afterwards without affecting what was validated.
 */
export function toPidList(pidOrPids: unknown): Pid[] {
  if (Array.isArray(pidOrPids)) {
    const out: Pid[] = new Array(pidOrPids.length);
    for (let i = 0; i < pidOrPids.length; i++) out[i] = toPid(pidOrPids[i], `pids[${i}]`);
    return out;
  }
  return [toPid(pidOrPids)];
}
