/**
 * Who hears that a node of this process went down, and when.
 *
 * pg tells every node. Here a notice wakes the receiving node's thread, and on a
 * machine of few cores those wakes are the cost of a node going down: with 60 idle
 * nodes, one down woke 59 threads, some 6 to 9 ms of CPU in all, while the threads
 * that had work to do (the coordinator, the readers of the groups it left) waited for
 * a core. So only the nodes that act on the notice at once hear of it at once:
 * - the nodes linked with it (a channel was brokered between them): their calls to it
 *   fail, their monitors on its processes fire, what it sent them is delivered first;
 * - the nodes that watch (a `'nodedown'` listener on their `Node`).
 * Every other node only keeps a list of the nodes it has heard of, with their load
 * tables, and the coordinator marks a dropped node's table at once (load-table.ts), so
 * its `nodes()` and `isAlive()` need no notice, and it makes no channel to that node.
 * It hears later, in one batch: within LATE_MS, or before anything else the
 * coordinator sends it (so its control port keeps the order in which things happened),
 * or at once when it starts to watch (so that a listener added just before a node went
 * down, whose `watch` crossed the down on the way, still hears of it). A late notice
 * loses nothing: the index drops the node's members at once for every reader.
 */
import { after } from '../core/timer.js';
import type { ToNode } from '../protocol/messages.js';

/**
 * How long a node that neither watches nor was linked may go without its notices. Such
 * a node does nothing with them but drop what it kept of the nodes that went down, so
 * nothing waits on them; the bound only keeps the lists short. A second was too short:
 * while workers ended one after another, the flush woke every idle node once a second,
 * and the downs that met it were the slowest (traced in bench busy-main: the downs at
 * each second's flush took 11 to 25 ms, and with a minute the p99 of 300 downs went
 * from 6.4 to 4.0 ms).
 */
const LATE_MS = 60_000;

export class DownNotices {
  readonly #post: (node: number, message: ToNode) => void;
  /** Node → the nodes it has a channel with (both ways). */
  readonly #links = new Map<number, Set<number>>();
  readonly #watching = new Set<number>();
  /** Node → the downs it has not been told of yet, in order. */
  readonly #late = new Map<number, number[]>();
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(post: (node: number, message: ToNode) => void) {
    this.#post = post;
  }

  /** A channel was brokered between `a` and `b`. */
  linked(a: number, b: number): void {
    this.#linksOf(a).add(b);
    this.#linksOf(b).add(a);
  }

  /** `node` has a 'nodedown' listener: it hears of every down at once from now on, and of those it missed now. */
  watch(node: number): void {
    this.#watching.add(node);
    this.flush(node);
  }

  /** `down` went down: tells each of `nodes` (the ones still up) now, or later. */
  down(down: number, nodes: Iterable<number>): void {
    const links = this.#links.get(down);
    this.forget(down);
    for (const node of nodes) {
      if (this.#watching.has(node) || links?.has(node) === true) {
        this.flush(node);
        this.#post(node, { t: 'nodedown', id: down });
      } else {
        const late = this.#late.get(node);
        if (late === undefined) this.#late.set(node, [down]);
        else late.push(down);
        // Unref'd: notices for nodes that are up are no reason to keep a process alive.
        this.#timer ??= after(LATE_MS, this.#flushAll)?.unref();
      }
    }
  }

  /** Tells `node` the downs it has not heard of yet; call before anything else is sent to it. */
  flush(node: number): void {
    if (this.#late.size === 0) return; // the common case, on every message sent
    const late = this.#late.get(node);
    if (late === undefined) return;
    this.#late.delete(node);
    for (const id of late) this.#post(node, { t: 'nodedown', id });
  }

  /** `node` is gone (or the cluster stops): drops what was kept for it. */
  forget(node: number): void {
    this.#watching.delete(node);
    this.#late.delete(node);
    const links = this.#links.get(node);
    if (links === undefined) return;
    this.#links.delete(node);
    for (const other of links) this.#links.get(other)?.delete(node);
  }

  /** The cluster stops: no more notices. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#late.clear();
    this.#links.clear();
    this.#watching.clear();
  }

  readonly #flushAll = (): void => {
    this.#timer = undefined;
    for (const node of [...this.#late.keys()]) this.flush(node);
  };

  #linksOf(node: number): Set<number> {
    let links = this.#links.get(node);
    if (links === undefined) this.#links.set(node, (links = new Set()));
    return links;
  }
}
