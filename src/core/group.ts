/**
 * Group keys and their canonical encoding.
 *
 * A group is a string, a finite number, or a flat array of those (a tuple). Each has
 * exactly one encoding, a string that is hashed into the shared index and compared
 * unit by unit there:
 *
 * - `'s' + string`
 * - `'n' + String(number)` (`-0` is `0`; `String` gives the shortest round-trip form)
 * - `'t'` followed, per element, by its type letter, its length, `':'` and its text:
 *   `['shard', 3]` is `'ts5:shardn1:3'`.
 *
 * So `['shard', 3]`, `'shard,3'` and `['shard', '3']` are three different groups.
 */
import { describe, InvalidGroupError } from './errors.js';

/** One element of a tuple group. */
export type GroupAtom = string | number;
/** A group key: a string, a finite number, or a tuple of those. */
export type Group = GroupAtom | readonly GroupAtom[];

declare const keyBrand: unique symbol;
/** The canonical encoding of a group (see the module comment). */
export type GroupKey = string & { readonly [keyBrand]: true };

/** Longest encoded key, in UTF-16 code units. */
export const MAX_KEY_UNITS = 4096;

function tooLong(units: number): InvalidGroupError {
  return new InvalidGroupError(
    `group key is too long: ${units} UTF-16 units once encoded, the limit is ${MAX_KEY_UNITS}`,
  );
}

function numberText(n: number): string {
  return n === 0 ? '0' : String(n);
}

/** The canonical key of a group. Throws an `InvalidGroupError` naming the bad value. */
export function encodeGroup(group: unknown): GroupKey {
  if (typeof group === 'string') {
    if (group.length >= MAX_KEY_UNITS) throw tooLong(group.length + 1);
    return `s${group}` as GroupKey;
  }
  if (typeof group === 'number') {
    if (!Number.isFinite(group)) {
      throw new InvalidGroupError(`a number group must be finite, got ${describe(group)}`);
    }
    return `n${numberText(group)}` as GroupKey;
  }
  if (Array.isArray(group)) return encodeTuple(group);
  throw new InvalidGroupError(
    `a group must be a string, a finite number, or an array of those; got ${describe(group)}`,
  );
}

function encodeTuple(tuple: readonly unknown[]): GroupKey {
  if (tuple.length >= MAX_KEY_UNITS) throw tooLong(tuple.length);
  let key = 't';
  for (let i = 0; i < tuple.length; i++) {
    const atom = tuple[i];
    let text: string;
    let tag: string;
    if (typeof atom === 'string') {
      text = atom;
      tag = 's';
    } else if (typeof atom === 'number' && Number.isFinite(atom)) {
      text = numberText(atom);
      tag = 'n';
    } else {
      throw new InvalidGroupError(
        `a tuple group may hold only strings and finite numbers; element ${i} is ${describe(atom)}`,
      );
    }
    key += `${tag}${text.length}:${text}`;
    if (key.length > MAX_KEY_UNITS) throw tooLong(key.length);
  }
  return key as GroupKey;
}

/** The group a canonical key stands for. Throws an `InvalidGroupError` if `key` is not canonical. */
export function decodeGroup(key: string): Group {
  const tag = key.charCodeAt(0);
  if (tag === 115 /* s */) return key.slice(1);
  if (tag === 110 /* n */) return parseNumber(key, 1, key.length);
  if (tag !== 116 /* t */) throw notCanonical(key);
  const out: GroupAtom[] = [];
  let at = 1;
  while (at < key.length) {
    const kind = key.charCodeAt(at);
    const colon = key.indexOf(':', at + 1);
    const lengthText = key.slice(at + 1, colon);
    if ((kind !== 115 && kind !== 110) || colon < 0 || !/^(0|[1-9]\d*)$/.test(lengthText)) {
      throw notCanonical(key);
    }
    const start = colon + 1;
    const end = start + Number(lengthText);
    if (end > key.length) throw notCanonical(key);
    out.push(kind === 115 ? key.slice(start, end) : parseNumber(key, start, end));
    at = end;
  }
  return out;
}

function parseNumber(key: string, start: number, end: number): number {
  const text = key.slice(start, end);
  const n = Number(text);
  if (text.length === 0 || !Number.isFinite(n) || numberText(n) !== text) throw notCanonical(key);
  return n;
}

function notCanonical(key: string): InvalidGroupError {
  return new InvalidGroupError(`not a canonical group key: ${describe(key)}`);
}

/** True when `value` is a string that `encodeGroup` could have produced. */
export function isGroupKey(value: unknown): value is GroupKey {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_KEY_UNITS) return false;
  try {
    return encodeGroup(decodeGroup(value)) === value;
  } catch {
    return false;
  }
}

/**
 * 32-bit FNV-1a over the key's UTF-16 code units, seeded per index, never 0.
 * Writer and readers must agree on it bit for bit.
 */
export function hashKey(key: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) | 0;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 15;
  return h === 0 ? 1 : h;
}

/** Checks a group without reading anything, for callers that must reject bad input early. */
export function checkGroup(group: unknown): asserts group is Group {
  if (typeof group === 'string' && group.length < MAX_KEY_UNITS) return;
  if (typeof group === 'number' && Number.isFinite(group)) return;
  if (Array.isArray(group) || typeof group === 'string') {
    encodeGroup(group);
    return;
  }
  throw new InvalidGroupError(
    `a group must be a string, a finite number, or an array of those; got ${describe(group)}`,
  );
}
