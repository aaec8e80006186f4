/** Async measuring helpers: pipelined throughput and sequential latency of promise-returning operations. */
import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks';
import type { MessagePort } from 'node:worker_threads';

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

/**
 * The raw baseline of `pipelined`: `inflight` messages on `port`, whose other end echoes
 * them; every reply sends the next message, with nothing else on the path. Returns
 * round trips per second.
 */
export function portPipelined(port: MessagePort, inflight: number, ms: number): Promise<number> {
  return new Promise((resolve) => {
    let done = 0;
    let active = inflight;
    const start = performance.now();
    const onMessage = () => {
      done++;
      if (performance.now() - start < ms) port.postMessage(null);
      else if (--active === 0) {
        port.off('message', onMessage);
        resolve((done / (performance.now() - start)) * 1000);
      }
    };
    port.on('message', onMessage);
    for (let i = 0; i < inflight; i++) port.postMessage(null);
  });
}

/** Answers every message on `port` with the message itself (the far end of `portPipelined`). */
export function serveEcho(port: MessagePort): void {
  port.on('message', (x: unknown) => port.postMessage(x));
}

/** Latency percentiles in microseconds. */
export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  /** The median; kept under this name for callers that only need it. */
  median: number;
}

/** Percentiles (µs) of a histogram recorded in nanoseconds. */
export function percentiles(h: RecordableHistogram): Percentiles {
  const us = (ns: number) => ns / 1000;
  return {
    p50: us(h.percentile(50)),
    p90: us(h.percentile(90)),
    p99: us(h.percentile(99)),
    p999: us(h.percentile(99.9)),
    max: us(h.max),
    median: us(h.percentile(50)),
  };
}

/**
 * Node-downs as a reader sees them (bench busy-main, on its readers): each one's time
 * since the ending worker stamped `ended`, into a histogram and kept whole, so that the
 * main thread can pool the downs of every trial.
 */
export class DownTimes {
  readonly #h = createHistogram();
  readonly #samples: number[] = [];

  /** Records one down, from the stamp (`process.hrtime.bigint()`) to now. */
  record(ended: bigint): void {
    const ns = Math.max(1, Number(process.hrtime.bigint() - ended));
    this.#h.record(ns);
    this.#samples.push(ns / 1000);
  }

  /** The `downs` answer: percentiles and every sample, in µs. */
  report(): { type: 'downs'; percentiles: Percentiles; samples: number[] } {
    return { type: 'downs', percentiles: percentiles(this.#h), samples: this.#samples };
  }
}

/** Runs `issue` one at a time for `ms` milliseconds; returns round-trip percentiles in microseconds. */
export async function sequential(issue: () => Promise<unknown>, ms: number): Promise<Percentiles> {
  for (let i = 0; i < 200; i++) await issue();
  const h = createHistogram();
  const start = performance.now();
  while (performance.now() - start < ms) {
    const t = process.hrtime.bigint();
    await issue();
    h.record(Math.max(1, Number(process.hrtime.bigint() - t)));
  }
  return percentiles(h);
}
