/**
 * The systems the task benchmarks compare, each running the same task module on worker
 * threads: procgroups (`pg.dispatch` to a group of worker nodes), piscina, tinypool, and
 * bare worker_threads behind a hand-written minimal queue; and the ways they are driven
 * (a burst submitted at once, its completion times, batches one after the other).
 */
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { Tinypool } from 'tinypool';
import { type Cluster, type DispatchOptions, type Pid, startCluster } from '../../src/index.js';
import { next } from './threads.js';

export interface System {
  name: string;
  run(input: unknown): Promise<unknown>;
  close(): Promise<void>;
}

/** A compiled task module of bench/workers (a default export: input → result). */
export const taskUrl = (name: 'pool-task' | 'sha-task'): string =>
  new URL(`../workers/${name}.js`, import.meta.url).href;

const nodeUrl = new URL('../workers/dispatch-worker.js', import.meta.url);
const bareUrl = new URL('../workers/bare-worker.js', import.meta.url);

export interface Procgroups extends System {
  cluster: Cluster;
  /** The group's members, one per worker node. */
  members: Pid[];
}

/**
 * A cluster of `threads` worker nodes, each with one process running `task` in group
 * `work`; `run` dispatches to the group with `options(input)` (undefined: the defaults).
 */
export async function procgroups(
  task: string,
  options: (input: unknown) => DispatchOptions | undefined = () => undefined,
  threads = 2,
): Promise<Procgroups> {
  const cluster = await startCluster();
  for (let i = 0; i < threads; i++) {
    const w = await cluster.spawn(nodeUrl, { workerData: { task }, ready: 'connected' });
    await next(w.worker, 'ready');
  }
  const pg = cluster.node.pg;
  while (pg.count('work') < threads) {
    pg.refresh();
    await new Promise((r) => setImmediate(r));
  }
  return {
    name: 'procgroups',
    cluster,
    members: pg.getMembers('work'),
    run: (input) => pg.dispatch('work', input, options(input)),
    close: () => cluster.stop(),
  };
}

/**
 * `node.call` from node 0 to the members of `pg`, in turn: the same members and path as
 * its dispatch, without the pick and the windows. Closing it leaves `pg` running.
 */
export function calls(pg: Procgroups): System {
  const node = pg.cluster.node;
  let turn = 0;
  return {
    name: 'node.call',
    run: (input) => node.call(pg.members[turn++ % pg.members.length]!, input),
    close: async () => {},
  };
}

/** What piscina and tinypool share: options and the two methods used here. */
interface PoolOptions {
  filename: string;
  minThreads: number;
  maxThreads: number;
  concurrentTasksPerWorker?: number;
}
interface Pool {
  run(input: unknown): Promise<unknown>;
  destroy(): Promise<void>;
}

/** A pool on 2 threads: its defaults, or `concurrentTasksPerWorker` tuned. */
function pool(
  kind: string,
  make: (o: PoolOptions) => Pool,
  task: string,
  concurrentTasksPerWorker?: number,
): System {
  const p = make({
    filename: task,
    minThreads: 2,
    maxThreads: 2,
    ...(concurrentTasksPerWorker ? { concurrentTasksPerWorker } : {}),
  });
  return {
    name: concurrentTasksPerWorker ? `${kind} ×${concurrentTasksPerWorker}` : `${kind} (default)`,
    run: (input) => p.run(input),
    close: () => p.destroy(),
  };
}

export const piscina = (task: string, concurrentTasksPerWorker?: number): System =>
  pool('piscina', (o) => new Piscina(o), task, concurrentTasksPerWorker);

export const tinypool = (task: string, concurrentTasksPerWorker?: number): System =>
  pool('tinypool', (o) => new Tinypool(o), task, concurrentTasksPerWorker);

interface Pending {
  resolve: (result: unknown) => void;
  reject: (error: unknown) => void;
}

interface Thread {
  worker: Worker;
  /** Tasks posted to it, oldest first: it answers in order. */
  posted: Pending[];
}

/**
 * Bare worker_threads, one `postMessage` per task, behind the least a pool needs: each
 * thread takes at most `depth` tasks at once (the one with the fewest gets the next),
 * the rest wait in one FIFO queue.
 */
export function bare(task: string, depth: number, name: string, threads = 2): System {
  const queue: [unknown, Pending][] = [];
  let head = 0;
  const post = (t: Thread, input: unknown, p: Pending) => {
    t.posted.push(p);
    t.worker.postMessage(input);
  };
  const pool: Thread[] = Array.from({ length: threads }, () => {
    const t: Thread = { worker: new Worker(bareUrl, { workerData: { task } }), posted: [] };
    t.worker.on('message', (result: unknown) => {
      t.posted.shift()!.resolve(result);
      if (head < queue.length) {
        const [input, p] = queue[head]!;
        queue[head++] = undefined!;
        if (head === queue.length) queue.length = head = 0;
        post(t, input, p);
      }
    });
    t.worker.on('error', (e) => {
      for (const p of t.posted.splice(0)) p.reject(e);
    });
    return t;
  });
  return {
    name,
    run: (input) =>
      new Promise((resolve, reject) => {
        let best = pool[0]!;
        for (const t of pool) if (t.posted.length < best.posted.length) best = t;
        if (best.posted.length < depth) post(best, input, { resolve, reject });
        else queue.push([input, { resolve, reject }]);
      }),
    close: async () => {
      await Promise.all(pool.map((t) => t.worker.terminate()));
    },
  };
}

/** Submits `n` runs of `input` at once; resolves with the milliseconds until the last finished. */
export async function burst(sys: System, n: number, input: unknown): Promise<number> {
  const start = performance.now();
  const all: Promise<unknown>[] = new Array(n);
  for (let i = 0; i < n; i++) all[i] = sys.run(input);
  await Promise.all(all);
  return performance.now() - start;
}

/** Submits `n` runs of `input` at once; resolves with when each finished (ms since the submit), sorted. */
export async function completions(sys: System, n: number, input: unknown): Promise<number[]> {
  const times: number[] = [];
  const start = performance.now();
  const all: Promise<unknown>[] = new Array(n);
  const done = () => void times.push(performance.now() - start);
  for (let i = 0; i < n; i++) all[i] = sys.run(input).then(done);
  await Promise.all(all);
  return times.sort((a, b) => a - b);
}

/**
 * Runs `total` tasks as batches of `depth` submitted at once, each batch once the one
 * before finished; returns tasks per second.
 */
export async function batches(
  sys: System,
  total: number,
  depth: number,
  input: unknown,
): Promise<number> {
  let ms = 0;
  for (let done = 0; done < total; done += depth)
    ms += await burst(sys, Math.min(depth, total - done), input);
  return (total / ms) * 1000;
}
