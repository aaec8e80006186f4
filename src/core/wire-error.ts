/**
 * Errors across threads. Structured clone keeps only the built-in error types and drops
 * custom names, codes and fields, so a handler's error travels as a plain record and is
 * rebuilt on the caller's side with its name, message, stack, code and cause intact.
 * Errors of this library, and the built-in ones, come back as instances of their classes.
 */
import * as errors from './errors.js';

export interface WireError {
  name: string;
  message: string;
  stack?: string;
  code?: unknown;
  cause?: WireError;
  /** An `AggregateError`'s errors. */
  errors?: WireError[];
  /** Own enumerable fields of the error that structured-clone (pid, reason…). */
  fields?: Record<string, unknown>;
}

type ErrorClass = new (...args: never[]) => Error;

/**
 * The classes an error is rebuilt as, by name: this library's, and the built-in ones
 * (which structured clone would keep, but then without their code and fields). Any
 * other class comes back as an `Error` with its name: the caller's thread may not
 * have it.
 */
const known = new Map<string, ErrorClass>(
  [TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError, AggregateError].map(
    (c): [string, ErrorClass] => [c.name, c],
  ),
);
for (const v of Object.values(errors) as unknown[]) {
  if (typeof v === 'function' && v.prototype instanceof Error) known.set(v.name, v as ErrorClass);
}

export function toWire(e: unknown, depth = 0): WireError {
  if (!(e instanceof Error)) {
    return {
      name: 'Error',
      message: typeof e === 'string' ? e : `non-error thrown: ${errors.describe(e)}`,
    };
  }
  const out: WireError = { name: e.name, message: e.message };
  if (e.stack !== undefined) out.stack = e.stack;
  const code = (e as { code?: unknown }).code;
  if (code !== undefined) out.code = code;
  if (e.cause !== undefined && depth < 4) out.cause = toWire(e.cause, depth + 1);
  if (e instanceof AggregateError && Array.isArray(e.errors) && depth < 4)
    out.errors = e.errors.map((x: unknown) => toWire(x, depth + 1));
  const fields: Record<string, unknown> = {};
  let any = false;
  for (const k of Object.keys(e)) {
    if (k === 'name' || k === 'message' || k === 'stack' || k === 'code' || k === 'cause') continue;
    fields[k] = fieldToWire((e as unknown as Record<string, unknown>)[k], depth);
    any = true;
  }
  if (any) out.fields = fields;
  return out;
}

/** Marks a field that is itself an error (such as a `ProcessExitError`'s `reason`). */
const ERROR_FIELD = '@procgroups/error';

/**
 * A field as it can cross: errors as wire errors (so that their names survive),
 * cloneable values as they are, anything else as a description.
 */
function fieldToWire(v: unknown, depth: number): unknown {
  if (v instanceof Error && depth < 4) return { [ERROR_FIELD]: toWire(v, depth + 1) };
  try {
    structuredClone(v);
    return v;
  } catch {
    return errors.describe(v);
  }
}

function fieldFromWire(v: unknown): unknown {
  if (typeof v === 'object' && v !== null && ERROR_FIELD in v) {
    return fromWire((v as Record<string, WireError>)[ERROR_FIELD]!);
  }
  return v;
}

export function fromWire(w: WireError): Error {
  const Ctor = known.get(w.name);
  // A real Error (with its internal error slot, so util.types.isNativeError holds),
  // given the class's prototype when the class is one of ours.
  const e = new Error(w.message);
  if (Ctor !== undefined) Object.setPrototypeOf(e, Ctor.prototype);
  Object.defineProperty(e, 'message', { value: w.message, writable: true, configurable: true });
  // Always set: Object.create skips the constructor, and with it the class fields `name` and `code`.
  Object.defineProperty(e, 'name', { value: w.name, writable: true, configurable: true });
  if (w.stack !== undefined)
    Object.defineProperty(e, 'stack', { value: w.stack, writable: true, configurable: true });
  if (w.code !== undefined)
    Object.defineProperty(e, 'code', {
      value: w.code,
      writable: true,
      configurable: true,
      enumerable: true,
    });
  if (w.cause !== undefined)
    Object.defineProperty(e, 'cause', {
      value: fromWire(w.cause),
      writable: true,
      configurable: true,
    });
  if (Array.isArray(w.errors))
    Object.defineProperty(e, 'errors', {
      value: w.errors.map(fromWire),
      writable: true,
      configurable: true,
    });
  if (w.fields !== undefined) {
    for (const [k, v] of Object.entries(w.fields))
      (e as unknown as Record<string, unknown>)[k] = fieldFromWire(v);
  }
  return e;
}
