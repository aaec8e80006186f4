/**
 * The serving side of a service: `node.serve(group, impl)` spawns a process whose
 * handler turns each call `[method, ...args]` into `impl[method](...args)`, and joins
 * it to the group.
 *
 * The methods are read from `impl` once, when it is served (its own and inherited
 * functions, so a class instance works), into a table: a call is one `Map.get` and
 * one function call, never a property walk, and a method added to `impl` later is not
 * served (what a caller can reach is fixed by what was served).
 *
 * Failures are answers, not crashes: a method that throws fails that call with its own
 * error (rebuilt on the caller's side with its class, message and stack, see
 * core/wire-error.ts), and so do an unknown method and a message that is not a call;
 * the process keeps serving.
 */
import { ServiceCallError, UnknownMethodError, describe } from '../core/errors.js';
import { type Group, checkGroup } from '../core/group.js';
import type { Pid } from '../core/pid.js';
import type { Handler, SpawnOptions } from '../runtime/process.js';
import { RESERVED } from './names.js';
import type { ServeOptions, Served } from './types.js';

/** What `serve` needs of its node (`Node` has it). */
export interface ServeHost {
  spawn(handler: Handler, options?: SpawnOptions): Pid;
  exit(pid: Pid, reason?: unknown): boolean;
  isAlive(pid: Pid): boolean;
  scope(name: string): {
    join(group: Group, pid: Pid): Promise<void>;
    leave(group: Group, pid: Pid): Promise<'ok' | 'not_joined'>;
  };
}

type Method = (...args: unknown[]) => unknown;

/** The methods of `impl`, own and inherited (not `Object.prototype`'s), by name. */
export function methodTable(impl: object): Map<string, Method> {
  const table = new Map<string, Method>();
  for (
    let o: object | null = impl;
    o !== null && o !== Object.prototype;
    o = Object.getPrototypeOf(o) as object | null
  ) {
    for (const name of Object.getOwnPropertyNames(o)) {
      if (name === 'constructor' || table.has(name)) continue;
      // Read through the descriptor: a getter is not a method, and is not run here.
      const value = Object.getOwnPropertyDescriptor(o, name)?.value as unknown;
      if (typeof value === 'function') table.set(name, value as Method);
    }
  }
  return table;
}

/** The handler of a serving process over `impl`'s method table. */
export function serviceHandler(group: Group, impl: object, table: Map<string, Method>): Handler {
  const offered = [...table.keys()].sort();
  const unknown = (method: string) =>
    new UnknownMethodError(
      `service ${describe(group)} has no method ${describe(method)}; it offers ${offered.join(', ')} ` +
        '(is the caller built from another version of its interface?)',
      method,
      offered,
    );
  return (msg: unknown) => {
    if (!Array.isArray(msg) || typeof msg[0] !== 'string') {
      throw new ServiceCallError(
        `service ${describe(group)} got ${describe(msg)}, which is not a service call; ` +
          'call it through scope.service(group), which sends [method, ...args]',
      );
    }
    const fn = table.get(msg[0]);
    if (fn === undefined) throw unknown(msg[0]);
    // The common arities without copying the arguments out of the message.
    switch (msg.length) {
      case 1:
        return fn.call(impl);
      case 2:
        return fn.call(impl, msg[1]);
      case 3:
        return fn.call(impl, msg[1], msg[2]);
      default:
        return fn.apply(impl, msg.slice(1));
    }
  };
}

/** `node.serve(group, impl, options)`: see `Node.serve`. */
export async function serve(
  host: ServeHost,
  group: Group,
  impl: object,
  options: ServeOptions = {},
): Promise<Served> {
  checkGroup(group);
  if (typeof impl !== 'object' || impl === null)
    throw new TypeError(`serve: impl must be an object with methods, got ${describe(impl)}`);
  if (typeof options !== 'object' || options === null)
    throw new TypeError(`serve options must be an object, got ${describe(options)}`);
  const table = methodTable(impl);
  if (table.size === 0)
    throw new ServiceCallError(`serve: the object served as ${describe(group)} has no methods`);
  const taken = [...table.keys()].filter((name) => RESERVED.has(name));
  if (taken.length > 0)
    throw new ServiceCallError(
      `serve: ${taken.join(', ')} cannot be service methods: the service proxy keeps ${[...RESERVED].join(', ')} for itself`,
    );
  const scope = host.scope(options.scope ?? 'pg');
  const spawnOptions: SpawnOptions = {};
  if (options.concurrency !== undefined) spawnOptions.concurrency = options.concurrency;
  const pid = host.spawn(serviceHandler(group, impl, table), spawnOptions);
  try {
    await scope.join(group, pid);
  } catch (error) {
    host.exit(pid);
    throw error;
  }
  return {
    pid,
    group,
    stop: async () => {
      if (!host.isAlive(pid)) return;
      // Leave first, so that callers stop routing to it, then end it.
      await scope.leave(group, pid).catch(() => 'not_joined');
      host.exit(pid);
    },
  };
}
