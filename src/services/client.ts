/**
 * The caller's side of a service: `scope.service<T>(group)` builds a typed proxy whose
 * methods dispatch `[method, ...args]` to a member of the group.
 *
 * Why the proxy is not a `Proxy`: a `Proxy`'s trap runs on every property read, which
 * would put it on the hot path of every call. Here the proxy is an ordinary object
 * whose *prototype* is the `Proxy`. The first read of `api.resize` misses the object,
 * reaches the trap, which builds the method once and defines it on the object; every
 * later read is an ordinary own-property read. A method is a closure over its options,
 * so `const resize = api.resize` works as well.
 */
import { describe } from '../core/errors.js';
import { checkGroup, type Group } from '../core/group.js';
import {
  checkDispatchOptions,
  checkedOptions,
  type DispatchOptions,
  type MultiCallResult,
} from '../dispatch/options.js';
import type { CallOptions, Transferable } from '../runtime/pending-calls.js';
import { isRemoteName } from './names.js';
import { anyMarked, takeTransfers } from '../core/transfer.js';
import type { Service, ServiceCallOptions, ServiceKey, ServiceOptions } from './types.js';

/** What a service proxy needs of its scope (`Scope` has it; the proxy never sees more). */
export interface ServiceScope {
  dispatch<R>(group: Group, message: unknown, options?: DispatchOptions): Promise<R>;
  multiCall<R>(group: Group, message: unknown, options?: CallOptions): Promise<MultiCallResult<R>>;
  broadcast(group: Group, message: unknown): number;
}

type KeyFunction = (method: string, args: readonly unknown[]) => string | number;
type RemoteFunction = (...args: unknown[]) => unknown;

/** Where a proxy's calls go, and with which options: fixed when the proxy is made. */
interface Route {
  readonly scope: ServiceScope;
  readonly group: Group;
  /** The options as given (kept for `with`). */
  readonly given: ServiceCallOptions<unknown>;
  /** What each dispatch gets, when no key function or transfer list applies. */
  readonly base: DispatchOptions;
  readonly keyOf: KeyFunction | undefined;
  readonly transfer: readonly Transferable[] | undefined;
  /** The options of `all` (multiCall takes call options only). */
  readonly callOptions: CallOptions;
}

function makeRoute(scope: ServiceScope, group: Group, given: ServiceCallOptions<unknown>): Route {
  checkGroup(group);
  if (typeof given !== 'object' || given === null)
    throw new TypeError('service options must be an object');
  const { key, transfer, ...rest } = given as ServiceCallOptions<unknown> & {
    key?: ServiceKey<unknown>;
  };
  if (key !== undefined && !['string', 'number', 'function'].includes(typeof key))
    throw new TypeError(
      `key must be a string, a number or a function (method, args) => key, got ${describe(key)}`,
    );
  const keyOf = typeof key === 'function' ? (key as KeyFunction) : undefined;
  // Checked now, so that a bad option fails where the service is made, not at each call
  // (a key function stands for the key it will return); frozen, so that no dispatch
  // checks them again.
  let base: DispatchOptions;
  if (keyOf === undefined)
    base = checkedOptions(
      typeof key === 'string' || typeof key === 'number' ? { ...rest, key } : rest,
    );
  else {
    checkDispatchOptions({ ...rest, key: 'k' });
    base = rest; // each call adds its key (optionsFor), and that copy is checked
  }
  if (transfer !== undefined) checkDispatchOptions({ transfer });
  const callOptions: CallOptions = {};
  if (rest.timeout !== undefined) callOptions.timeout = rest.timeout;
  if (rest.signal !== undefined) callOptions.signal = rest.signal;
  return { scope, group, given, base, keyOf, transfer, callOptions };
}

/** The options of one call when a key function, a transfer list or a marked argument applies. */
function optionsFor(route: Route, method: string, args: unknown[]): DispatchOptions {
  const transfer = takeTransfers(args, route.transfer);
  if (route.keyOf === undefined && transfer === undefined) return route.base;
  const o: DispatchOptions = { ...route.base };
  if (route.keyOf !== undefined) o.key = route.keyOf(method, args);
  if (transfer !== undefined) o.transfer = transfer;
  return o;
}

/**
 * Method `name` of a service: dispatches `[name, ...args]`. The plain case (no key
 * function, no transfer list, no marked argument anywhere) is one array and one
 * `dispatch`, which is what keeps a typed call as cheap as a hand-written one.
 */
function callMethod(route: Route, name: string): RemoteFunction {
  const { scope, group, base } = route;
  const plain = route.keyOf === undefined && route.transfer === undefined;
  return (...args: unknown[]) => {
    if (plain && !anyMarked()) return scope.dispatch(group, [name, ...args], base);
    try {
      return scope.dispatch(group, [name, ...args], optionsFor(route, name, args));
    } catch (error) {
      // A key function that threw: the call fails as a promise, like every other failure.
      return Promise.reject(error);
    }
  };
}

function allMethod(route: Route, name: string): RemoteFunction {
  const { scope, group, callOptions } = route;
  return (...args: unknown[]) => scope.multiCall(group, [name, ...args], callOptions);
}

function tellMethod(route: Route, name: string): RemoteFunction {
  const { scope, group } = route;
  return (...args: unknown[]) => scope.broadcast(group, [name, ...args]);
}

/**
 * An object whose methods are made on first read by `make` and kept as its own
 * properties (see the comment at the top of this file).
 */
function lazyMethods(
  make: (name: string) => RemoteFunction,
  label: string,
): Record<string, unknown> {
  const trap = new Proxy(Object.create(null) as object, {
    get(_target, prop, receiver: object) {
      if (!isRemoteName(prop)) return undefined;
      const fn = make(prop);
      Object.defineProperty(receiver, prop, { value: fn, enumerable: true });
      return fn;
    },
  });
  const api = Object.create(trap) as Record<string, unknown>;
  // No Object.prototype above it: without its own, `${api}` would throw.
  Object.defineProperty(api, 'toString', { value: () => label });
  return api;
}

function build<T>(route: Route): Service<T> {
  const label = `[service ${describe(route.group)}]`;
  const api = lazyMethods((name) => callMethod(route, name), label);
  let all: Record<string, unknown> | undefined;
  let tell: Record<string, unknown> | undefined;
  Object.defineProperties(api, {
    group: { value: route.group },
    with: {
      value: (options: ServiceCallOptions<T>) =>
        build<T>(
          makeRoute(route.scope, route.group, {
            ...route.given,
            ...(options as ServiceCallOptions<unknown>),
          }),
        ),
    },
    all: {
      get: () => (all ??= lazyMethods((name) => allMethod(route, name), `${label}.all`)),
    },
    tell: {
      get: () => (tell ??= lazyMethods((name) => tellMethod(route, name), `${label}.tell`)),
    },
  });
  return api as unknown as Service<T>;
}

/** `scope.service<T>(group, options)`: see `Scope.service`. */
export function createService<T>(
  scope: ServiceScope,
  group: Group,
  options: ServiceOptions<T> = {},
): Service<T> {
  return build<T>(makeRoute(scope, group, options as ServiceCallOptions<unknown>));
}
