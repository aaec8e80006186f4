/**
 * The one rule for scope names, shared by the public API (which throws) and the
 * protocol parser (which drops): a non-empty string of at most 256 UTF-16 units.
 */
import { describe } from './errors.js';

/** Longest scope name. */
export const MAX_SCOPE_NAME = 256;

export function isScopeName(x: unknown): x is string {
  return typeof x === 'string' && x.length > 0 && x.length <= MAX_SCOPE_NAME;
}

/** Throws a `TypeError` that shows the bad name. */
export function checkScopeName(name: unknown): asserts name is string {
  if (!isScopeName(name)) {
    throw new TypeError(
      `a scope name is a non-empty string of at most ${MAX_SCOPE_NAME} characters, got ${describe(name)}`,
    );
  }
}
