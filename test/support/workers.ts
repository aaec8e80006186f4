/**
 * Worker-thread plumbing shared by the tests: find or start a fixture, wait for one of
 * its messages. Every wait is on an event, never on a timer; a worker that fails or
 * exits early turns the wait into a rejection, so a test fails instead of hanging.
 */
import { Worker } from 'node:worker_threads';
import type { ExecutionContext } from 'ava';

/** A message from a fixture: every fixture tags its messages with a `type`. */
export interface Tagged {
  type: string;
}

/** `test/fixtures/<name>.ts`, compiled (`dist/test/fixtures/<name>.js`). */
export function fixture(name: string): URL {
  return new URL(`../fixtures/${name}.js`, import.meta.url);
}

/** Starts the fixture `name` and makes sure it is terminated when the test ends, whatever happens. */
export function startWorker(t: ExecutionContext, name: string, workerData: unknown): Worker {
  const worker = new Worker(fixture(name), { workerData });
  t.teardown(async () => {
    await worker.terminate();
  });
  return worker;
}

/**
 * The next message of type `type` from `worker`. Rejects if the worker throws, fails
 * to start, or exits before sending it. Messages of other types are ignored.
 */
export function nextMessage<T extends Tagged>(worker: Worker, type: T['type']): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const cleanup = (): void => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    const onMessage = (msg: unknown): void => {
      if (typeof msg === 'object' && msg !== null && (msg as Tagged).type === type) {
        cleanup();
        resolve(msg as T);
      }
    };
    const onError = (err: unknown): void => {
      cleanup();
      reject(err instanceof Error ? err : new Error(String(err)));
    };
    const onExit = (code: number): void => {
      cleanup();
      reject(new Error(`worker exited with code ${code} before sending a '${type}' message`));
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}

/** Posts `request` and resolves with the worker's next message of type `replyType`. */
export function ask<T extends Tagged>(
  worker: Worker,
  request: unknown,
  replyType: T['type'],
): Promise<T> {
  const reply = nextMessage<T>(worker, replyType);
  worker.postMessage(request);
  return reply;
}
