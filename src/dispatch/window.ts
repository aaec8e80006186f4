/**
 * How many calls from this thread each member may have in flight: its window.
 *
 * With a fixed deep window, CPU work is dealt out all at once: 1,000 jobs of 1 ms land
 * in two mailboxes at the first turn, the first result waits behind its whole batch, a
 * member that joins later finds nothing left to take, and work stranded in a member
 * that dies cannot be retried elsewhere until it is declared down. With a shallow one,
 * no-op calls pay a round trip each instead of riding in batches.
 *
 * So the window adapts, per member, to hold about `TARGET_MS` of that member's work:
 * enough to hide the round trip, no more. Completions are counted in periods of
 * `TARGET_MS`; at the end of one, the window becomes the calls completed per ms times
 * `TARGET_MS`, plus one. That is a latency target (Little's law: calls in flight =
 * rate × latency): while calls come back faster than `TARGET_MS`, the window grows
 * (no-op calls reach the cap, 1,024, within a few periods); when they queue longer at
 * the member, it shrinks (1 ms jobs settle at about 5: one running, the next ones
 * queued behind it), and the rest wait in this thread's queue for whichever member
 * frees up first, a member that joins included.
 *
 * A period starts at the first completion of a busy period, not at its first call: the
 * time before that first answer is one round trip plus whatever kept this thread busy
 * (submitting the rest of a burst, a collection), and says nothing of the member's
 * rate. Counting it collapsed the window of no-op calls to 2 now and then, and the
 * dispatches behind it queued. For the same reason a window shrinks at most by half
 * per period: one bad period does not undo a hundred good ones.
 *
 * An explicit `maxInFlight` in the dispatch options fixes the window instead.
 */
import type { Pid } from '../core/pid.js';

/** Work from this thread a member should hold, in milliseconds of its service time. */
const TARGET_MS = 4;
/** The window of a member never measured yet. */
const INITIAL = 4;
/** The smallest window: one call running, one waiting behind it to hide the round trip. */
const MIN = 2;
/** Slots remembered while idle; past this, an idle member's window is forgotten. */
const REMEMBERED = 4096;

/** One member's window: what a dispatch holds while its call is in flight. */
export interface Slot {
  readonly pid: Pid;
  inFlight: number;
  size: number;
  /** Calls completed since `since`. */
  done: number;
  /** When the period started (`jobClock()`), or -1 before the busy period's first completion. */
  since: number;
}

export class Windows {
  readonly #max: number;
  readonly #members = new Map<Pid, Slot>();

  /** `max`: the largest adaptive window. */
  constructor(max: number) {
    this.#max = max;
  }

  /** Calls from this thread in flight to `pid`. */
  inFlight(pid: Pid): number {
    return this.#members.get(pid)?.inFlight ?? 0;
  }

  /** True when `pid` can take one more call: under `fixed` when given, else under its window. */
  hasRoom(pid: Pid, fixed: number | undefined): boolean {
    const m = this.#members.get(pid);
    if (m === undefined) return true;
    return m.inFlight < (fixed ?? m.size);
  }

  /**
   * A call to `pid` starts; returns the slot it holds, to give back with `release` (one
   * map lookup per call, not one per step).
   */
  take(pid: Pid): Slot {
    let m = this.#members.get(pid);
    if (m === undefined) {
      m = { pid, inFlight: 0, size: INITIAL, done: 0, since: -1 };
      this.#members.set(pid, m);
    }
    // A busy period starts: idle time says nothing of the member's speed.
    if (m.inFlight++ === 0) m.since = -1;
    return m;
  }

  /** A call that held `m` ended, either way, at `now` (`jobClock()`). */
  release(m: Slot, now: number): void {
    m.inFlight--;
    if (m.since < 0) {
      m.since = now;
      m.done = 0;
    } else {
      m.done++;
      const elapsed = now - m.since;
      if (elapsed >= TARGET_MS) {
        const size = Math.ceil((m.done / elapsed) * TARGET_MS) + 1;
        m.size = Math.min(this.#max, Math.max(MIN, size, m.size >> 1));
        m.since = now;
        m.done = 0;
      }
    }
    if (m.inFlight === 0 && this.#members.size > REMEMBERED) this.#members.delete(m.pid);
  }
}
