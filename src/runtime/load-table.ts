/**
 * Each node's process loads in shared memory, for the `'least-loaded'` pick strategy:
 * any thread reads how many messages a process has waiting or in progress without
 * asking its node.
 *
 * One SharedArrayBuffer per node, written only by that node: an open-addressing table
 * of (serial, load) pairs, probed linearly from `serial & mask`. Loads are hints. A
 * reader on another thread may see a load a moment old; that is all a racy read of an
 * aligned Int32 can do under the ECMAScript memory model (it cannot tear), and a
 * stale hint only makes a pick slightly less even. A process that finds no free entry
 * (more than `capacity` live processes on a node) simply reads as load 0.
 *
 * The words after the entries are not the owner's: the coordinator sets the first to 1
 * (`markDown`) when it drops the node. Every node holds every other node's table, so
 * `node.nodes()` sees a node gone the moment the coordinator does, without a message
 * (see coordinator/down-notices.ts for who is sent one).
 */

const PROBES = 8;
const ENTRIES = 4096;
/** Words after the entries: [0] is 1 once the node is down. */
const TAIL = 2;

export class LoadTable {
  readonly buffer: SharedArrayBuffer;
  readonly #i32: Int32Array;
  readonly #mask: number;
  /** Word of the down flag; -1 in a buffer too small to have one. */
  readonly #downAt: number;

  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer((ENTRIES * 2 + TAIL) * 4)) {
    this.buffer = buffer;
    this.#i32 = new Int32Array(buffer);
    const entries = Math.max(0, this.#i32.length - TAIL) >> 1;
    this.#mask = entries > 0 && (entries & (entries - 1)) === 0 ? entries - 1 : 0;
    this.#downAt = this.#i32.length >= TAIL ? this.#i32.length - TAIL : -1;
  }

  /** Coordinator side: the node this table belongs to is gone. */
  static markDown(buffer: SharedArrayBuffer): void {
    const i32 = new Int32Array(buffer);
    if (i32.length >= TAIL) Atomics.store(i32, i32.length - TAIL, 1);
  }

  /** Any thread: the coordinator has dropped this table's node. */
  get down(): boolean {
    return this.#downAt >= 0 && Atomics.load(this.#i32, this.#downAt) === 1;
  }

  /** Owner side: claims an entry for `serial`; returns its word offset, or -1 if the table is full. */
  claim(serial: number): number {
    const s = serial | 0;
    for (let k = 0; k < PROBES; k++) {
      const at = ((s + k) & this.#mask) << 1;
      if (this.#i32[at] === 0) {
        this.#i32[at + 1] = 0;
        this.#i32[at] = s;
        return at;
      }
    }
    return -1;
  }

  /** Owner side: sets the load at an entry from `claim`. */
  set(at: number, load: number): void {
    this.#i32[at + 1] = load;
  }

  /** Owner side: frees an entry. */
  release(at: number): void {
    this.#i32[at] = 0;
    this.#i32[at + 1] = 0;
  }

  /** Any thread: the load of process `serial`, 0 when unknown. */
  load(serial: number): number {
    const s = serial | 0;
    for (let k = 0; k < PROBES; k++) {
      const at = ((s + k) & this.#mask) << 1;
      const v = this.#i32[at];
      if (v === s) return this.#i32[at + 1]!;
    }
    return 0;
  }
}
