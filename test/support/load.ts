/**
 * CPU load for the tests of races that only show on a busy machine: threads that spin
 * until the test ends. Two of them keep both cores of a CI machine busy, so that
 * messages on different ports are handled in every possible interleaving.
 */
import { Worker } from 'node:worker_threads';
import type { ExecutionContext } from 'ava';

/** Starts `threads` spinning worker threads, terminated when the test ends. */
export function cpuLoad(t: ExecutionContext, threads = 2): void {
  for (let i = 0; i < threads; i++) {
    const spinner = new Worker('for (;;);', { eval: true });
    spinner.unref();
    t.teardown(() => spinner.terminate());
  }
}
