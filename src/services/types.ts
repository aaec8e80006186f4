/**
 * The types of typed services: what a caller sees of an interface `T` (`Remote<T>`),
 * the options of a service and of one call, and what `serve` returns. Types only: the
 * proxy (client.ts) and the serving process (server.ts) share them without sharing code.
 */
import type { Group } from '../core/group.js';
import type { Pid } from '../core/pid.js';
import type { DispatchOptions, MultiCallResult } from '../dispatch/options.js';
import type { Transferable } from '../runtime/pending-calls.js';

/** The names of the methods of `T` (its function-valued keys that are strings). */
export type MethodNames<T> = {
  // `any[]`: with `never[]` or `unknown[]` some methods would not match.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  [K in keyof T]-?: T[K] extends (...args: any[]) => unknown ? K : never;
}[keyof T] &
  string;

/** The arguments of method `K` of `T`. */
export type MethodArgs<T, K extends MethodNames<T>> = T[K] extends (...args: infer A) => unknown
  ? A
  : never;

/** What method `K` of `T` answers, once awaited (a synchronous method's value, or what its promise resolves to). */
export type MethodResult<T, K extends MethodNames<T>> = T[K] extends (...args: never[]) => infer R
  ? Awaited<R>
  : never;

/**
 * A service as a caller sees it: every method of `T` with the same arguments, and its
 * result as a promise (a synchronous method's too, since the answer crosses threads).
 * Properties that are not methods are left out: a service is called, not read.
 * An overloaded method keeps its last signature; a generic one loses its type parameters.
 */
export type Remote<T> = {
  readonly [K in MethodNames<T>]: (...args: MethodArgs<T, K>) => Promise<MethodResult<T, K>>;
};

/** `service.all`: each method called on every member, answers and failures collected. */
export type RemoteAll<T> = {
  readonly [K in MethodNames<T>]: (
    ...args: MethodArgs<T, K>
  ) => Promise<MultiCallResult<MethodResult<T, K>>>;
};

/** `service.tell`: each method sent to every member, no answer; returns how many members it was sent to. */
export type RemoteTell<T> = {
  readonly [K in MethodNames<T>]: (...args: MethodArgs<T, K>) => number;
};

/**
 * The routing key of a call, for the `'hash'` strategy (sticky routing): a fixed key,
 * or a function of the method and its arguments, such as `(method, [user]) => user`.
 */
export type ServiceKey<T> =
  string | number | ((method: MethodNames<T>, args: readonly unknown[]) => string | number);

/**
 * Options of `scope.service()`: those of `dispatch` (strategy, timeout, signal,
 * retries, waitForMembers, maxInFlight, maxQueue), with a `key` that may be a function
 * of the call. `transfer` is per call: mark values with `transfer(value, list)`, or
 * give a list to `service.with({ transfer })`.
 */
export interface ServiceOptions<T> extends Omit<DispatchOptions, 'key' | 'transfer'> {
  /** The routing key of the `'hash'` strategy: a string, a number, or a function of the call. */
  key?: ServiceKey<T>;
}

/** Options of one call, through `service.with(options)`: any service option, and `transfer`. */
export interface ServiceCallOptions<T> extends ServiceOptions<T> {
  /** ArrayBuffers and MessagePorts to move instead of copy (added to those marked with `transfer()`). */
  transfer?: readonly Transferable[];
}

/**
 * The typed proxy of `scope.service<T>(group)`: `await api.method(...args)` calls a
 * member of the group picked by the service's strategy.
 *
 * `with`, `all`, `tell`, `group` and `then` are the proxy's own: a service cannot
 * offer methods under those names (`serve` refuses them).
 */
export type Service<T> = Remote<T> & {
  /** The group whose members serve the calls. */
  readonly group: Group;
  /**
   * The same service with some options changed, for the calls made through it:
   * `api.with({ timeout: 100, signal }).resize(img, 800)`.
   */
  with(options: ServiceCallOptions<T>): Service<T>;
  /** Calls a method on every member: `await api.all.stats()` → `{ replies, failures }`. */
  readonly all: RemoteAll<T>;
  /** Sends a method call to every member without waiting: `api.tell.reload(config)` → members reached. */
  readonly tell: RemoteTell<T>;
};

/** Options of `node.serve()`. */
export interface ServeOptions {
  /** Calls the serving process handles at the same time. Default 1: one at a time, in order. */
  concurrency?: number;
  /** The scope whose group the process joins. Default `'pg'`. */
  scope?: string;
}

/** A service being served: its process, and how to stop it. */
export interface Served {
  /** The serving process. */
  readonly pid: Pid;
  /** The group it joined. */
  readonly group: Group;
  /**
   * Leaves the group (no new call is routed to it once callers see the leave), then ends
   * the process: calls still waiting or running fail with `ProcessExitError`.
   */
  stop(): Promise<void>;
}
