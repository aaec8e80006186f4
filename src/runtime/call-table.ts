/**
 * Calls in flight by a consecutive key, in a table that allocates nothing per call: a
 * thread's calls waiting for their answers (pending-calls.ts, by call id), and a
 * process's calls being handled (process.ts, by a count of its own).
 *
 * Why not a `Map` (or a `Set`): keys are consecutive, and calls mostly end in about the
 * order they started. A `Map` of the calls in flight reallocates its hash table as it
 * grows through every burst and again as the burst drains, about ten tables for each
 * burst of 1,000. On Node 20, after one burst of 20,000 calls, later no-op calls ran
 * 35-45% slower for the rest of the process; most of every scavenge's survivors were
 * promoted, and the promoted garbage was mostly hash tables, closures, contexts and call
 * records (`--trace-gc-object-stats`). With this table the slowdown is gone
 * (bench/after-burst.ts). The likely mechanism: tables promoted during the deep burst
 * still point at calls after they are replaced, and a scavenge keeps alive whatever an
 * old object points at.
 *
 * Here a call sits in slot `id & mask` of two arrays that are reused, with its id beside
 * it; a slot is cleared when its call ends, so the table never holds on to an ended call.
 * While the calls in flight fit, a slot is only ever wanted by one of them. When a new
 * call's slot is still held (a deeper burst, or one call that has been waiting while
 * `capacity` others came and went), the table doubles if it is at least half full;
 * otherwise the waiting call moves to a `Map` on the side, so that one slow call does
 * not make the table grow without bound.
 */

/** Slots to start with, by default: a 1,000-deep burst fits without growing. */
const INITIAL = 1024;

export class CallTable<V> {
  // Plain arrays, not a Float64Array for the ids: a process holds a small table of its
  // own, and a typed array's buffer would cost more than the table.
  #ids: number[];
  #values: (V | undefined)[];
  #mask: number;
  #size = 0;
  /** Calls pushed out of their slot by a later one; made on the first. */
  #aside: Map<number, V> | undefined;

  /** `capacity`: a power of two. */
  constructor(capacity = INITIAL) {
    this.#ids = new Array<number>(capacity).fill(0);
    this.#values = new Array<V | undefined>(capacity).fill(undefined);
    this.#mask = capacity - 1;
  }

  get size(): number {
    return this.#size + (this.#aside?.size ?? 0);
  }

  /** @internal Slots, and calls set aside: for the tests of the table's bound. */
  get shape(): { slots: number; aside: number } {
    return { slots: this.#values.length, aside: this.#aside?.size ?? 0 };
  }

  /** Adds call `id` (a positive safe integer, never one still in the table). */
  set(id: number, value: V): void {
    const slot = id & this.#mask;
    const held = this.#values[slot];
    if (held !== undefined) {
      if (this.#size * 2 >= this.#values.length) {
        this.#grow();
        this.set(id, value);
        return;
      }
      (this.#aside ??= new Map()).set(this.#ids[slot]!, held);
      this.#size--;
    }
    this.#ids[slot] = id;
    this.#values[slot] = value;
    this.#size++;
  }

  /** Removes call `id`; returns it, or undefined if it was not in the table. */
  take(id: number): V | undefined {
    const slot = id & this.#mask;
    if (this.#ids[slot] === id) {
      const v = this.#values[slot];
      if (v !== undefined) {
        this.#values[slot] = undefined;
        this.#size--;
        return v;
      }
    }
    const aside = this.#aside;
    if (aside === undefined || aside.size === 0) return undefined;
    const v = aside.get(id);
    if (v !== undefined) aside.delete(id);
    return v;
  }

  /** Every call in the table, oldest first. */
  entries(): [number, V][] {
    const out: [number, V][] = this.#aside === undefined ? [] : [...this.#aside];
    const values = this.#values;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v !== undefined) out.push([this.#ids[i]!, v]);
    }
    return out.sort((a, b) => a[0] - b[0]);
  }

  /** Twice the slots; a call whose new slot is taken goes aside. */
  #grow(): void {
    const ids = this.#ids;
    const values = this.#values;
    const capacity = values.length * 2;
    this.#ids = new Array<number>(capacity).fill(0);
    this.#values = new Array<V | undefined>(capacity).fill(undefined);
    this.#mask = capacity - 1;
    this.#size = 0;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v !== undefined) this.set(ids[i]!, v);
    }
  }
}
