/**
 * `scope.waitForMembers(group)`: resolves once a group has enough members, by watching
 * it with a monitor (a snapshot, then join and leave events) rather than by polling.
 * Every way out — enough members, the timeout, an abort, the scope stopping — goes
 * through one place, which removes the timer, the abort listener and the monitor.
 */
import { offAbort, onAbort } from '../core/abort.js';
import { checkNumber, describe, NoMembersError, NoScopeError } from '../core/errors.js';
import type { Group } from '../core/group.js';
import type { Pid } from '../core/pid.js';
import { after } from '../core/timer.js';
import type { GroupMonitor, MonitorOptions } from './monitor-stream.js';

/** Options of `waitForMembers`. */
export interface WaitForMembersOptions {
  /** Members to wait for. Default 1. */
  count?: number;
  /** Milliseconds before it rejects with `NoMembersError`. Default: no limit. */
  timeout?: number;
  /** Rejects with `signal.reason` when aborted. */
  signal?: AbortSignal;
}

/** What the wait needs of a scope. */
export interface Watchable {
  readonly name: string;
  count(group: Group): number;
  getMembers(group: Group): Pid[];
  refresh(): void;
  monitor(group: Group, options: MonitorOptions): Promise<GroupMonitor>;
  demonitor(ref: number): Promise<void>;
}

export async function waitForMembers(
  scope: Watchable,
  group: Group,
  options: WaitForMembersOptions,
): Promise<Pid[]> {
  const want = options.count ?? 1;
  if (!Number.isInteger(want) || want < 1)
    throw new RangeError(`count must be a positive integer, got ${describe(want)}`);
  const { timeout, signal } = options;
  checkNumber('timeout (ms)', timeout, 0);
  if (scope.count(group) >= want) return scope.getMembers(group);
  if (signal?.aborted) throw signal.reason;
  let have = 0;
  let settled = false;
  let abort: (() => void) | undefined;
  let resolveWait!: () => void;
  let rejectWait!: (error: unknown) => void;
  const waiting = new Promise<void>((resolve, reject) => {
    resolveWait = resolve;
    rejectWait = reject;
  });
  const finish = (error?: unknown) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    if (abort !== undefined) offAbort(signal!, abort);
    if (error === undefined) resolveWait();
    else rejectWait(error);
  };
  const timer = after(timeout, () =>
    finish(
      new NoMembersError(
        `group ${describe(group)} of scope '${scope.name}' did not reach ${want} member(s) within ${timeout} ms`,
      ),
    ),
  );
  const sub = scope.monitor(group, {
    onEvent: (e) => {
      have += e.kind === 'join' ? e.pids.length : -e.pids.length;
      if (have >= want) finish();
    },
    // The monitor ended before the group was big enough: the scope stopped, or this
    // node left the cluster. Nothing will ever change the count again.
    onEnd: () =>
      finish(
        new NoScopeError(
          `scope '${scope.name}' stopped (or this node left the cluster) while waiting for ${want} member(s) of group ${describe(group)}`,
        ),
      ),
  });
  if (signal !== undefined) {
    abort = () => finish(signal.reason);
    onAbort(signal, abort);
  }
  sub.then(
    (m) => {
      have += m.members.length;
      if (have >= want) finish();
    },
    (error: unknown) => finish(error),
  );
  try {
    await waiting;
  } finally {
    // Whenever the subscription lands, it is ended: nothing waits on it any more.
    sub.then(
      (m) => void scope.demonitor(m.ref),
      () => {},
    );
  }
  scope.refresh();
  return scope.getMembers(group);
}
