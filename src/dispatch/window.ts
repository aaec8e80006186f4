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
 * enough to hide the round trip, no more. Completions are counted over `TARGET_MS` of
 * the member's busy time; then the window becomes the calls completed per ms times
 * `TARGET_MS`, plus one. That is a latency target (Little's law: calls in flight =
 * rate × latency): while calls come back faster than `TARGET_MS`, the window grows
 * (no-op calls reach the cap, 1,024, within a few periods); when they queue longer at
 * the member, it shrinks (1 ms jobs settle at about 5: one running, the next ones
 * queued behind it), and the rest wait in this thread's queue for whichever member
 * frees up first, a member that joins included.
 *
 * What counts as busy time: from the first completion of a busy period (calls in flight)
 * to its last, summed over busy periods. Not from its first call: the time before the
 * first answer is one round trip plus whatever kept this thread busy (submitting the rest
 * of a burst, a collection), and says nothing of the member's rate; counting it collapsed
 * the window of no-op calls to 2 now and then. And summed, because bursts of no-op calls
 * are over in a millisecond or two: a period that had to fit in one of them was never
 * measured, and the window stayed where it was, a tenth of what the member takes. When a
 * member answers 4 windows' worth within less than that time, the window is updated at
 * once. A window shrinks at most by half per period: one bad period does not undo a
 * hundred good ones.
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
  /** Calls completed in the current period (the first of each busy period not counted). */
  done: number;
  /** Busy time of the current period, in ms, from the busy periods that ended. */
  busy: number;
  /** The first completion of the current busy period (`jobClock()`), or -1 before it. */
  since: number;
}

export class Windows {
  readonly #max: number;
  readonly #members = new Map<Pid, Slot>();
  /**
   * The slot `hasRoom` last found: a dispatch asks whether its member has room, then
   * takes a slot of it, and this spares the second lookup (pids are not small integers,
   * and a map lookup by one costs more than the rest of `take`).
   */
  #last: Slot | undefined;

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
    let m = this.#last;
    if (m === undefined || m.pid !== pid) {
      m = this.#members.get(pid);
      if (m === undefined) return true;
      this.#last = m;
    }
    return m.inFlight < (fixed ?? m.size);
  }

  /**
   * A call to `pid` starts; returns the slot it holds, to give back with `release` (one
   * map lookup per call, not one per step).
   */
  take(pid: Pid): Slot {
    const last = this.#last;
    let m = last !== undefined && last.pid === pid ? last : this.#members.get(pid);
    if (m === undefined) {
      m = { pid, inFlight: 0, size: INITIAL, done: 0, busy: 0, since: -1 };
      this.#members.set(pid, m);
    }
    m.inFlight++;
    return m;
  }

  /** A call that held `m` ended, either way, at `now` (`jobClock()`). */
  release(m: Slot, now: number): void {
    m.inFlight--;
    if (m.since < 0) m.since = now;
    else m.done++;
    const elapsed = m.busy + (now - m.since);
    if (elapsed >= TARGET_MS || m.done >= 4 * m.size) {
      // (A period of no time at all: everything came back in one batch. The cap, then.)
      const size = elapsed > 0 ? Math.ceil((m.done / elapsed) * TARGET_MS) + 1 : this.#max;
      m.size = Math.min(this.#max, Math.max(MIN, size, m.size >> 1));
      m.done = 0;
      m.busy = 0;
      m.since = now;
    }
    if (m.inFlight === 0) {
      // The busy period ends; idle time is not the member's.
      m.busy += now - m.since;
      m.since = -1;
      if (this.#members.size > REMEMBERED) {
        this.#members.delete(m.pid);
        if (this.#last === m) this.#last = undefined;
      }
    }
  }
}
