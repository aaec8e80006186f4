/**
 * comlink over procgroups (`import { pidEndpoint, processEndpoint } from 'procgroups/comlink'`):
 * code written for comlink runs over procgroups' direct channels unchanged.
 *
 * - `Comlink.wrap(pidEndpoint(node, pid))` talks to a process anywhere in the cluster;
 * - `Comlink.expose(obj, processEndpoint(node))` serves `obj` from a new process, which
 *   can join groups like any other, and answers any number of wrapping callers.
 *
 * This module does not import comlink: it only implements comlink's `Endpoint` shape
 * (`postMessage`, `addEventListener`, `removeEventListener`), so comlink stays an
 * optional peer dependency that only its users install, and the core has no runtime
 * dependency at all.
 *
 * When the wrapped process ends (it exits, its node goes down, or it never existed), the
 * requests still waiting, and any made afterwards, are answered the way comlink answers a
 * method that threw: the call rejects with an error named `NoProcessError`,
 * `ProcessExitError` or `NodeDownError`, where comlink over a closed port waits for ever.
 * The endpoint watches the process with a monitor from its first request.
 *
 * How the answers find their caller: comlink's `expose` answers on the endpoint it
 * listens on, with the id of the request and nothing about who asked. Each wrapping
 * endpoint has a process of its own for its answers, whose pid travels with every
 * request; the exposing endpoint remembers it by request id (comlink's ids are unique
 * random strings) until the answer goes out.
 */
import { formatPid, nodeOf, type Pid } from '../core/pid.js';
import type { Transferable } from '../core/transfer.js';
import type { ExitReason, ProcessMonitor } from '../runtime/process-monitors.js';
import type { Handler } from '../runtime/process.js';

/** Marks the messages of this adapter, so that a process tells them from others. */
const TAG = '@procgroups/comlink';

/** What the adapter needs of its node (`Node` has it). */
export interface EndpointHost {
  spawn(handler: Handler): Pid;
  send(pid: Pid, message: unknown, transfer?: readonly Transferable[]): boolean;
  exit(pid: Pid): boolean;
  monitor(pid: Pid): ProcessMonitor;
  demonitor(monitor: ProcessMonitor): void;
}

/** The event comlink's listeners get: the message in `data`, as a `MessageEvent` has it. */
export interface EndpointEvent {
  readonly data: unknown;
}

/** A listener as the DOM takes one: a function, or an object with `handleEvent`. */
export type EndpointListener =
  ((event: EndpointEvent) => void) | { handleEvent(event: EndpointEvent): void };

/** comlink's `Endpoint`, implemented over a procgroups process. */
export interface ProcessEndpointBase {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  addEventListener(type: string, listener: EndpointListener): void;
  removeEventListener(type: string, listener: EndpointListener): void;
  /** Ends this endpoint's own process; messages sent to it afterwards are dropped. */
  close(): void;
}

/** An endpoint served by a process of its own: `pid` is what callers wrap, or what joins a group. */
export interface ProcessEndpoint extends ProcessEndpointBase {
  readonly pid: Pid;
}

/** The listeners of one endpoint, and how an event reaches them. */
class Listeners {
  readonly #set = new Set<EndpointListener>();

  add(type: string, listener: EndpointListener): void {
    if (type === 'message') this.#set.add(listener);
  }

  remove(type: string, listener: EndpointListener): void {
    if (type === 'message') this.#set.delete(listener);
  }

  emit(data: unknown): void {
    const event: EndpointEvent = { data };
    for (const l of this.#set) {
      if (typeof l === 'function') l(event);
      else l.handleEvent(event);
    }
  }
}

/** A message of this adapter: `[TAG, replyTo, data]` (`replyTo` is 0 for an answer). */
function isTagged(m: unknown): m is [typeof TAG, Pid, unknown] {
  return Array.isArray(m) && m.length === 3 && m[0] === TAG;
}

function idOf(data: unknown): unknown {
  return typeof data === 'object' && data !== null ? (data as { id?: unknown }).id : undefined;
}

/**
 * comlink's answer to request `id` when the wrapped process is gone: the shape comlink's
 * own `expose` posts for a method that threw (its "throw" transfer handler), so that
 * `Comlink.wrap` rejects the call with an error of that name and message.
 */
function goneAnswer(id: unknown, pid: Pid, reason: ExitReason): unknown {
  const [name, why] =
    reason === 'noproc'
      ? ['NoProcessError', 'it exited or never existed']
      : reason === 'nodedown'
        ? ['NodeDownError', `its node ${nodeOf(pid)} is down`]
        : ['ProcessExitError', `it exited (${String(reason)})`];
  const message = `no answer from ${formatPid(pid)} through comlink: ${why}`;
  return {
    id,
    type: 'HANDLER',
    name: 'throw',
    value: { isError: true, value: { name, message, stack: `${name}: ${message}` } },
  };
}

/**
 * An endpoint that talks to process `pid` (which `Comlink.expose`d an object through
 * `processEndpoint`): `const api = Comlink.wrap<Api>(pidEndpoint(node, pid))`.
 * Its answers come to a process it spawns on first use; `close()` ends it.
 */
export function pidEndpoint(node: EndpointHost, pid: Pid): ProcessEndpointBase {
  const listeners = new Listeners();
  let self: Pid | undefined;
  let closed = false;
  /** Ids of the requests not answered yet; and why the process is gone, once it is. */
  const waiting = new Set<unknown>();
  let gone: { reason: ExitReason } | undefined;
  let watch: ProcessMonitor | undefined;
  const own = (): Pid =>
    (self ??= node.spawn((m: unknown) => {
      if (!isTagged(m)) return;
      waiting.delete(idOf(m[2]));
      listeners.emit(m[2]);
    }));
  const fail = (id: unknown) => {
    waiting.delete(id);
    listeners.emit(goneAnswer(id, pid, gone!.reason));
  };
  const watchTarget = () => {
    watch = node.monitor(pid);
    void watch.down.then((reason) => {
      if (closed) return;
      gone = { reason };
      for (const id of [...waiting]) fail(id);
    });
  };
  return {
    postMessage(message, transfer) {
      if (closed) return;
      const id = idOf(message);
      if (id !== undefined) {
        if (gone !== undefined) {
          // As an answer would: after this call returns, never inside it.
          queueMicrotask(() => fail(id));
          return;
        }
        waiting.add(id);
      }
      if (watch === undefined) watchTarget();
      node.send(pid, [TAG, own(), message], transfer);
    },
    addEventListener(type, listener) {
      if (!closed) own();
      listeners.add(type, listener);
    },
    removeEventListener: (type, listener) => listeners.remove(type, listener),
    close() {
      closed = true;
      waiting.clear();
      if (watch !== undefined) node.demonitor(watch);
      if (self !== undefined) node.exit(self);
    },
  };
}

/**
 * An endpoint served by a new process of this node, for `Comlink.expose(obj, endpoint)`:
 * any number of `pidEndpoint(node, endpoint.pid)` callers, on any node, reach `obj`.
 */
export function processEndpoint(node: EndpointHost): ProcessEndpoint {
  const listeners = new Listeners();
  /** Who asked, by request id, until the answer goes out. */
  const askers = new Map<unknown, Pid>();
  const pid = node.spawn((m: unknown) => {
    if (!isTagged(m)) return;
    const id = idOf(m[2]);
    if (id !== undefined) askers.set(id, m[1]);
    listeners.emit(m[2]);
  });
  return {
    pid,
    postMessage(message, transfer) {
      const id = idOf(message);
      const to = askers.get(id);
      if (to === undefined) return;
      askers.delete(id);
      node.send(to, [TAG, 0, message], transfer);
    },
    addEventListener: (type, listener) => listeners.add(type, listener),
    removeEventListener: (type, listener) => listeners.remove(type, listener),
    close() {
      askers.clear();
      node.exit(pid);
    },
  };
}
