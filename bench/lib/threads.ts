/** Small helpers for benchmark threads: start a worker, wait for one of its messages. */
import { Worker } from 'node:worker_threads';

export interface Msg {
  type: string;
  [k: string]: unknown;
}

/** Resolves with the next message of `type` from `worker`; rejects if the worker fails first. */
export function next<T extends { type: string }>(worker: Worker, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: Msg) => {
      if (m?.type !== type) return;
      cleanup();
      resolve(m as T);
    };
    const onError = (e: Error) => {
      cleanup();
      reject(e);
    };
    const onExit = (code: number) => {
      cleanup();
      reject(new Error(`benchmark worker exited with code ${code} while waiting for '${type}'`));
    };
    const cleanup = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}

/** Starts a worker from a compiled file next to the benchmarks and waits for its 'ready'. */
export async function start<T extends { type: string }>(
  url: URL,
  workerData: unknown,
): Promise<[Worker, T]> {
  const worker = new Worker(url, { workerData });
  const ready = await next<T>(worker, 'ready');
  return [worker, ready];
}
