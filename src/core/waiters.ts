/**
 * Promises that wait for something to run out: the calls in flight, the requests to
 * the coordinator, a process's mailbox. The owner knows when that is: it passes the
 * answer to `until`, and calls `release` once it has run out.
 */
export class Waiters {
  #waiting: (() => void)[] = [];

  /** Someone waits (so that the owner can skip its own check when nobody does). */
  get any(): boolean {
    return this.#waiting.length > 0;
  }

  /** Resolves at once if `done`, otherwise at the next `release`. */
  until(done: boolean): Promise<void> {
    if (done) return Promise.resolve();
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** Resolves every wait so far. */
  release(): void {
    if (this.#waiting.length === 0) return;
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const resolve of waiting) resolve();
  }
}
