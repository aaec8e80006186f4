/**
 * Named errors. Each carries a stable `code` (like Node's own `ERR_*` codes) so that
 * callers can branch on it after the error crossed a thread, where `instanceof` no
 * longer holds, and a message that says what was wrong and what to do.
 */

/** Renders any value for an error message without throwing (symbols, cycles, huge strings). */
export function describe(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return value.length > 64 ? `a string of ${value.length} characters` : JSON.stringify(value);
    case 'number':
      return Object.is(value, -0) ? '-0' : String(value);
    case 'bigint':
      return `${value}n`;
    case 'symbol':
      return value.toString();
    case 'function':
      return `a function${value.name ? ` (${value.name})` : ''}`;
    case 'undefined':
      return 'undefined';
    case 'boolean':
      return String(value);
    default:
      if (value === null) return 'null';
      if (Array.isArray(value)) return `an array of length ${value.length}`;
      return `an object (${Object.prototype.toString.call(value).slice(8, -1)})`;
  }
}

/**
 * Checks an optional numeric option the way Node does: a value of the wrong type is a
 * TypeError, a number out of range (NaN included) a RangeError, and both name it.
 */
export function checkNumber(
  name: string,
  value: unknown,
  min: number,
  { integer = false, exclusive = false }: { integer?: boolean; exclusive?: boolean } = {},
): void {
  if (value === undefined) return;
  if (typeof value !== 'number')
    throw new TypeError(`${name} must be a number, got ${describe(value)}`);
  if (
    Number.isNaN(value) ||
    value < min ||
    (exclusive && value === min) ||
    (integer && !Number.isInteger(value))
  ) {
    const what = integer ? 'an integer' : 'a number';
    throw new RangeError(
      `${name} must be ${what} ${exclusive ? 'above' : 'of at least'} ${min}, got ${describe(value)}`,
    );
  }
}

/** A group key that is not a string, a finite number, or an array of those. */
export class InvalidGroupError extends TypeError {
  override readonly name = 'InvalidGroupError';
  readonly code = 'ERR_PG_INVALID_GROUP';
}

/** A value that is not a pid where a pid was expected. */
export class InvalidPidError extends TypeError {
  override readonly name = 'InvalidPidError';
  readonly code = 'ERR_PG_INVALID_PID';
}

/** A pid that belongs to another node, given to an operation that only takes local pids. */
export class NotLocalError extends Error {
  override readonly name = 'NotLocalError';
  readonly code = 'ERR_PG_NOT_LOCAL';
  constructor(
    message: string,
    /** The offending pid. */
    readonly pid: number,
  ) {
    super(message);
  }
}

/** The shared index has no room left below its `maxBytes`. */
export class IndexFullError extends RangeError {
  override readonly name = 'IndexFullError';
  readonly code = 'ERR_PG_INDEX_FULL';
}

/** Every reader record of a shared index is taken. */
export class TooManyReadersError extends RangeError {
  override readonly name = 'TooManyReadersError';
  readonly code = 'ERR_PG_TOO_MANY_READERS';
}

/** A buffer that is not a procgroups index (or one of another layout version). */
export class IndexLayoutError extends TypeError {
  override readonly name = 'IndexLayoutError';
  readonly code = 'ERR_PG_INDEX_LAYOUT';
}

/**
 * An operation that needs a running scope (join, leave, monitor, dispatch) on one that
 * is not running, or that stopped while the operation waited. Reads of a stopped scope
 * do not throw: they return nothing.
 */
export class NoScopeError extends Error {
  override readonly name = 'NoScopeError';
  readonly code = 'ERR_PG_NO_SCOPE';
}

/** A call or monitor aimed at a pid that is not (or no longer) alive. */
export class NoProcessError extends Error {
  override readonly name = 'NoProcessError';
  readonly code = 'ERR_PG_NOPROC';
  constructor(
    message: string,
    /** The pid that is not alive. */
    readonly pid: number,
  ) {
    super(message);
  }
}

/** The target of a call exited before answering. `reason` is its exit reason. */
export class ProcessExitError extends Error {
  override readonly name = 'ProcessExitError';
  readonly code = 'ERR_PG_EXIT';
  constructor(
    message: string,
    /** The process that exited. */
    readonly pid: number,
    /** Its exit reason: `'normal'`, an Error, or what was given to `exit`. */
    readonly reason: unknown,
  ) {
    super(message);
  }
}

/** The node of the target went away (its thread exited, crashed, or its link closed). */
export class NodeDownError extends Error {
  override readonly name = 'NodeDownError';
  readonly code = 'ERR_PG_NODE_DOWN';
  constructor(
    message: string,
    /** The node that went down. */
    readonly node: number,
  ) {
    super(message);
  }
}

/**
 * A call got no answer within its `timeout`; or a dispatch's `timeout` ran out while it
 * waited for a member or in its group's queue.
 */
export class CallTimeoutError extends Error {
  override readonly name = 'CallTimeoutError';
  readonly code = 'ERR_PG_TIMEOUT';
}

/** A message that `postMessage` cannot clone (a function, a symbol, a non-transferred port…). */
export class MessageCloneError extends TypeError {
  override readonly name = 'MessageCloneError';
  readonly code = 'ERR_PG_CLONE';
}

/** The node or cluster was stopped (or not connected yet). */
export class NotConnectedError extends Error {
  override readonly name = 'NotConnectedError';
  readonly code = 'ERR_PG_NOT_CONNECTED';
}

/**
 * A group had no member to work with: a dispatch to an empty group (at once, or after
 * its `waitForMembers` ms), `waitForMembers` that timed out, a group that emptied while
 * dispatches waited in its queue, or a dispatch whose `retries` tried every member.
 */
export class NoMembersError extends Error {
  override readonly name = 'NoMembersError';
  readonly code = 'ERR_PG_NO_MEMBERS';
}

/** Every member of the group is saturated and the group's wait queue is full. */
export class QueueFullError extends Error {
  override readonly name = 'QueueFullError';
  readonly code = 'ERR_PG_QUEUE_FULL';
}

/** A consumer fell too far behind its monitor; the monitor was removed. */
export class MonitorOverflowError extends Error {
  override readonly name = 'MonitorOverflowError';
  readonly code = 'ERR_PG_MONITOR_OVERFLOW';
}

/**
 * A message for a process in another OS process (over a transport such as NATS) that
 * cannot go: it moves transferables (a transfer list cannot cross a process), or it is
 * larger than the broker accepts in one message.
 */
export class RemoteMessageError extends TypeError {
  override readonly name = 'RemoteMessageError';
  readonly code = 'ERR_PG_REMOTE_MESSAGE';
}

/** An optional integration whose package is not installed (`procgroups/nats` without its client). */
export class MissingPackageError extends Error {
  override readonly name = 'MissingPackageError';
  readonly code = 'ERR_PG_MISSING_PACKAGE';
  constructor(
    message: string,
    /** The npm package to install. */
    readonly packageName: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A transport could not be opened (the broker unreachable at start, say). */
export class TransportError extends Error {
  override readonly name = 'TransportError';
  readonly code = 'ERR_PG_TRANSPORT';
}

/**
 * A service was asked for a method it does not offer: a JavaScript caller, or two
 * processes built from different versions of the service's interface. `offered` lists
 * the methods the service has, so that the message says what to call instead.
 */
export class UnknownMethodError extends TypeError {
  override readonly name = 'UnknownMethodError';
  readonly code = 'ERR_PG_UNKNOWN_METHOD';
  constructor(
    message: string,
    /** The method that was asked for. */
    readonly method: string,
    /** The methods the service offers, sorted. */
    readonly offered: string[],
  ) {
    super(message);
  }
}

/**
 * A message that is not a service call reached a serving process (a plain `send` or
 * `dispatch` to a service's group), or a service definition that cannot be served (no
 * methods, or a method under a name its proxy keeps for itself).
 */
export class ServiceCallError extends TypeError {
  override readonly name = 'ServiceCallError';
  readonly code = 'ERR_PG_SERVICE_CALL';
}

/**
 * The coordinator thread of `startCluster({ coordinator: 'thread' })` cannot do what was
 * asked: a `transport` it cannot make for itself (no `recipe`, or options that are not
 * plain data), or the thread died or stopped answering.
 */
export class CoordinatorThreadError extends Error {
  override readonly name = 'CoordinatorThreadError';
  readonly code = 'ERR_PG_COORDINATOR_THREAD';
}
