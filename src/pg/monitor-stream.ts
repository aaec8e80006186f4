/**
 * Monitor event streams: what `monitorScope()` and `monitor(group)` hand out.
 *
 * Events arrive from the coordinator over the node's control port, in the order the
 * coordinator applied the changes, right after the snapshot they continue. The stream
 * buffers them until they are consumed (`for await`), or hands each to a callback.
 * The coordinator never waits for a consumer; a consumer that falls `maxBuffer` events
 * behind gets `MonitorOverflowError` from the iterator after the events it did buffer,
 * and the monitor is removed, so memory stays bounded and nothing is silently dropped.
 */
import { describe, MonitorOverflowError } from '../core/errors.js';
import type { Group } from '../core/group.js';
import type { Pid } from '../core/pid.js';

/** A change of membership seen by a monitor. */
export interface MembershipEvent {
  /** Whether the pids joined or left. */
  kind: 'join' | 'leave';
  /** The group they joined or left. */
  group: Group;
  /** Exactly the pids that joined or left, duplicates included (a pid joined twice and removed leaves twice). */
  pids: Pid[];
}

export class EventStream implements AsyncIterable<MembershipEvent> {
  readonly #max: number;
  readonly #onOverflow: () => void;
  #buffer: MembershipEvent[] = [];
  #head = 0;
  #waiter: ((r: IteratorResult<MembershipEvent>) => void) | undefined;
  #failWaiter: ((e: unknown) => void) | undefined;
  #ended = false;
  #error: unknown;
  #listener: ((e: MembershipEvent) => void) | undefined;
  readonly #onEnded: ((error?: unknown) => void) | undefined;

  /**
   * `onEnd` is called when the stream ends on the consumer's side: it overflowed, or the
   * consumer left its `for await` loop (the monitor is then removed). `onEnded` is the
   * user's `MonitorOptions.onEnd`: called once however the stream ends.
   */
  constructor(
    maxBuffer: number,
    onEnd: () => void,
    listener?: (e: MembershipEvent) => void,
    onEnded?: (error?: unknown) => void,
  ) {
    this.#max = maxBuffer;
    this.#onOverflow = onEnd;
    this.#listener = listener;
    this.#onEnded = onEnded;
  }

  /** Events waiting to be consumed. */
  get buffered(): number {
    return this.#buffer.length - this.#head;
  }

  push(event: MembershipEvent): void {
    if (this.#ended) return;
    if (this.#listener !== undefined) {
      try {
        this.#listener(event);
      } catch (error) {
        // A consumer's bug must not cost the node the rest of what arrived with this
        // event (acknowledgements, other monitors' events): report it and go on.
        process.emitWarning(
          `a monitor's onEvent callback threw: ${String(error)}`,
          'ProcgroupsWarning',
        );
      }
      return;
    }
    if (this.#waiter !== undefined) {
      const w = this.#waiter;
      this.#waiter = this.#failWaiter = undefined;
      w({ value: event, done: false });
      return;
    }
    if (this.buffered >= this.#max) {
      this.end(
        new MonitorOverflowError(
          `a monitor consumer fell ${this.#max} events behind; the monitor was removed`,
        ),
      );
      this.#onOverflow();
      return;
    }
    this.#buffer.push(event);
  }

  /** Ends the stream, after the buffered events, with `error` if given. */
  end(error?: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = error;
    if (this.#onEnded !== undefined) {
      try {
        this.#onEnded(error);
      } catch (e) {
        process.emitWarning(`a monitor's onEnd callback threw: ${String(e)}`, 'ProcgroupsWarning');
      }
    }
    if (this.#waiter !== undefined) {
      const w = this.#waiter;
      const f = this.#failWaiter!;
      this.#waiter = this.#failWaiter = undefined;
      if (error !== undefined) f(error);
      else w({ value: undefined, done: true });
    }
  }

  #next(): Promise<IteratorResult<MembershipEvent>> {
    if (this.#head < this.#buffer.length) {
      const value = this.#buffer[this.#head++]!;
      if (this.#head === this.#buffer.length) {
        this.#buffer = [];
        this.#head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.#ended) {
      if (this.#error !== undefined) {
        const e = this.#error;
        this.#error = undefined;
        return Promise.reject(e);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => {
      this.#waiter = resolve;
      this.#failWaiter = reject;
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<MembershipEvent> {
    return {
      next: () => this.#next(),
      return: () => {
        // The consumer left its loop: it wants no more events, so the monitor goes.
        this.#buffer = [];
        this.#head = 0;
        if (!this.#ended) {
          this.end();
          this.#onOverflow();
        }
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/** Options of `monitorScope()` and `monitor()`. */
export interface MonitorOptions {
  /** The monitor is removed when this local process exits. */
  owner?: Pid;
  /** Most events buffered for a consumer that falls behind. Default 65,536. */
  maxBuffer?: number;
  /** Receive events through this callback instead of the async iterator. */
  onEvent?: (event: MembershipEvent) => void;
  /**
   * Called once when the monitor ends: after `demonitor`, when its owner exits, when
   * the scope stops or this node leaves the cluster (no argument), or when a consumer
   * fell `maxBuffer` events behind (`MonitorOverflowError`). The callback form's way to
   * learn what the iterator learns from the end of its loop. If `monitor()` rejects
   * after its request went out (the scope stopped or refused it), `onEnd` is called
   * too.
   */
  onEnd?: (error?: unknown) => void;
}

/** A scope subscription: the membership at subscription time, then every change. */
export interface ScopeMonitor {
  /** Identifies the monitor for `demonitor`. */
  readonly ref: number;
  /** Every group and its members when the monitor started. */
  readonly groups: Map<Group, Pid[]>;
  /** Every change after the snapshot, in order (`for await`). */
  readonly events: AsyncIterable<MembershipEvent>;
}

/** A group subscription. */
export interface GroupMonitor {
  /** Identifies the monitor for `demonitor`. */
  readonly ref: number;
  /** The group's members when the monitor started. */
  readonly members: Pid[];
  /** Every change of the group after the snapshot, in order (`for await`). */
  readonly events: AsyncIterable<MembershipEvent>;
}

const DEFAULT_MAX_BUFFER = 1 << 16;

/** Checks the callbacks and buffer of monitor options; returns the buffer size. */
export function checkMonitorOptions(options: MonitorOptions): number {
  if (options.onEvent !== undefined && typeof options.onEvent !== 'function') {
    throw new TypeError(`onEvent must be a function, got ${describe(options.onEvent)}`);
  }
  if (options.onEnd !== undefined && typeof options.onEnd !== 'function') {
    throw new TypeError(`onEnd must be a function, got ${describe(options.onEnd)}`);
  }
  const max = options.maxBuffer ?? DEFAULT_MAX_BUFFER;
  if (!Number.isInteger(max) || max < 1)
    throw new RangeError(`maxBuffer must be a positive integer, got ${describe(max)}`);
  return max;
}
