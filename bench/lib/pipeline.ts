/** Async measuring helpers: pipelined throughput and sequential latency of promise-returning operations. */
import { createHistogram, performance } from 'node:perf_hooks';

/**
 * Keeps `inflight` operations outstanding for `ms` milliseconds, starting a new one as
 * each finishes; returns completions per second.
 */
export function pipelined(
  issue: () => Promise<unknown>,
  inflight: number,
  ms: number,
): Promise<number> {
  return new Promise((resolve, reject) => {
    let done = 0;
    let active = 0;
    let failed = false;
    const start = performance.now();
    const onDone = () => {
      done++;
      active--;
      if (performance.now() - start < ms) launch();
      else if (active === 0) resolve((done / (performance.now() - start)) * 1000);
    };
    const onError = (e: unknown) => {
      if (!failed) {
        failed = true;
        reject(e);
      }
    };
    const launch = () => {
      active++;
      issue().then(onDone, onError);
    };
    for (let i = 0; i < inflight; i++) launch();
  });
}

/** Runs `issue` one at a time for `ms` milliseconds; returns the median round trip in microseconds (and p99). */
export async function sequential(
  issue: () => Promise<unknown>,
  ms: number,
): Promise<{ median: number; p99: number }> {
  for (let i = 0; i < 200; i++) await issue();
  const h = createHistogram();
  const start = performance.now();
  while (performance.now() - start < ms) {
    const t = process.hrtime.bigint();
    await issue();
    h.record(Math.max(1, Number(process.hrtime.bigint() - t)));
  }
  return { median: h.percentile(50) / 1000, p99: h.percentile(99) / 1000 };
}
