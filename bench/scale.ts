/**
 * Cost as the cluster grows: 2, 8, 32 and 64 worker nodes (2 and 8 in --quick), each
 * count in a fresh cluster, the counts in a rotated order per trial.
 *
 * - start-up: `startCluster()` and spawning the N workers, all at once, until every one
 *   is a node; against N bare worker threads until each answered a first message. Once
 *   from the compiled tree (dist/src), as every other figure here loads the library, and
 *   once through `import 'procgroups'`, the package's bundle (dist/pkg), as users load it;
 * - memory per node: what the process's RSS grew by over that start-up, ÷ N, both ways;
 *   against the same for the bare workers;
 * - join visibility: a join on one worker until a reader on another sees it;
 * - broadcast: `pg.broadcast` from the coordinator's thread to one member per node,
 *   until the last has it; against a raw `postMessage` to a port on each worker;
 * - node down: a node holding 10,000 memberships ends, until a reader on another node
 *   sees them gone.
 *
 * Only start-up, memory and broadcast have a baseline; none has a target (the issue
 * gives none): they are reported, with how each grows from the fewest nodes to the most,
 * and drawn against node count.
 */
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import * as pkg from 'procgroups';
import { type Cluster, startCluster } from '../src/index.js';
import { joinVisibleMicros, nodeDownMs } from './lib/cluster-timing.js';
import { gc } from './lib/gc.js';
import { rotate, spread } from './lib/measure.js';
import type { BenchOptions, Curve, Figure } from './lib/report.js';
import { paired, result, single } from './lib/report.js';
import { taskUrl } from './lib/systems.js';
import { next } from './lib/threads.js';
import type { StampMember } from './workers/pg-worker.js';

const nodeUrl = new URL('./workers/pg-worker.js', import.meta.url);
const bareUrl = new URL('./workers/bare-worker.js', import.meta.url);
const packageUrl = new URL('./workers/package-node.js', import.meta.url);
const task = taskUrl('pool-task');
/** Broadcast rounds not counted: the first sets up the direct channels to every node. */
const WARM = 3;

const METRICS = ['startup', 'memory', 'visible', 'broadcast', 'down'] as const;
type Metric = (typeof METRICS)[number];
type Samples = Record<
  Metric | 'packageStartup' | 'packageMemory' | 'bareStartup' | 'bareMemory' | 'rawBroadcast',
  number[]
>;

/** The process's resident memory after a full collection of this thread's heap. */
function rss(): number {
  gc();
  return process.memoryUsage().rss;
}

/**
 * `rss()` once it holds still: threads that ended a moment ago (the cluster or the bare
 * workers of the count measured before) give their memory back over some milliseconds,
 * and a start-up measured meanwhile would come out small or even negative.
 */
async function settledRss(): Promise<number> {
  let last = rss();
  for (let i = 0; i < 40; i++) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    const now = rss();
    if (Math.abs(now - last) < 2 ** 19) return now;
    last = now;
  }
  return last;
}

interface Started {
  ms: number;
  bytesPerNode: number;
}

/** A cluster and `n` worker nodes started at once, timed until every one is a node. */
async function startNodes(n: number): Promise<[Cluster, Worker[], Started]> {
  const before = await settledRss();
  const start = performance.now();
  const cluster = await startCluster();
  const spawned = await Promise.all(
    Array.from({ length: n }, async () => {
      const w = await cluster.spawn(nodeUrl, { ready: 'connected' });
      return [w.worker, next(w.worker, 'ready')] as const;
    }),
  );
  const ms = performance.now() - start;
  // Memory once every node is up and idle (its script has run to its 'ready').
  await Promise.all(spawned.map(([, ready]) => ready));
  const bytesPerNode = (rss() - before) / n;
  return [cluster, spawned.map(([w]) => w), { ms, bytesPerNode }];
}

/**
 * The same start-up through the package's bundle: its cluster on this thread, and
 * workers that import it by name. (This thread loaded both builds at its start; the
 * memory counted is what the workers add.)
 */
async function startPackage(n: number): Promise<Started> {
  const before = await settledRss();
  const start = performance.now();
  const cluster = await pkg.startCluster();
  try {
    const spawned = await Promise.all(
      Array.from({ length: n }, async () => {
        const w = await cluster.spawn(packageUrl, { ready: 'connected' });
        return next(w.worker, 'ready');
      }),
    );
    const ms = performance.now() - start;
    await Promise.all(spawned);
    return { ms, bytesPerNode: (rss() - before) / n };
  } finally {
    await cluster.stop();
  }
}

/** `n` bare worker threads started at once, timed until each answered a first message. */
async function startBare(n: number): Promise<Started> {
  const before = await settledRss();
  const start = performance.now();
  const workers = Array.from({ length: n }, () => new Worker(bareUrl, { workerData: { task } }));
  await Promise.all(
    workers.map((w) => {
      const answered = once(w, 'message');
      w.postMessage(null);
      return answered;
    }),
  );
  const ms = performance.now() - start;
  const bytesPerNode = (rss() - before) / n;
  await Promise.all(workers.map((w) => w.terminate()));
  return { ms, bytesPerNode };
}

/**
 * Median µs, over `rounds`, from `send()` to the last of the `n` receivers stamping its
 * copy (each stamps `stamps[slot]` and counts in `count[0]`).
 */
async function fanOut(
  send: () => void,
  stamps: BigInt64Array,
  count: Int32Array,
  n: number,
  rounds: number,
): Promise<number> {
  const micros: number[] = [];
  for (let r = 0; r < WARM + rounds; r++) {
    Atomics.store(count, 0, 0);
    const start = process.hrtime.bigint();
    send();
    const deadline = performance.now() + 10_000;
    while (Atomics.load(count, 0) < n) {
      if (performance.now() > deadline)
        throw new Error(`${Atomics.load(count, 0)} of ${n} receivers got the broadcast`);
      await new Promise((resolve) => setImmediate(resolve));
    }
    let last = start;
    for (const s of stamps) if (s > last) last = s;
    if (r >= WARM) micros.push(Number(last - start) / 1000);
  }
  return spread(micros).median;
}

/** One member in group `all` on each node, and a raw port to each; resolves with the raw ports. */
async function receivers(
  cluster: Cluster,
  nodes: Worker[],
  stamps: BigInt64Array,
  count: Int32Array,
): Promise<MessagePort[]> {
  const ports = await Promise.all(
    nodes.map(async (w, slot) => {
      const raw = new MessageChannel();
      for (const port of [undefined, raw.port2]) {
        const member = next(w, 'member');
        const m: StampMember = { cmd: 'stamp-member', stamps, count, slot };
        if (port === undefined) w.postMessage(m);
        else w.postMessage({ ...m, port }, [port]);
        await member;
      }
      return raw.port1;
    }),
  );
  const pg = cluster.node.pg;
  while (pg.count('all') < nodes.length) {
    pg.refresh();
    await new Promise((resolve) => setImmediate(resolve));
  }
  return ports;
}

/** Every figure of one node count, from a fresh cluster. */
async function measure(
  n: number,
  bareFirst: boolean,
  samples: number,
  rounds: number,
  s: Samples,
): Promise<void> {
  if (bareFirst) pushBare(s, await startBare(n));
  const viaPackage = await startPackage(n);
  s.packageStartup.push(viaPackage.ms);
  s.packageMemory.push(viaPackage.bytesPerNode);
  const [cluster, nodes, started] = await startNodes(n);
  try {
    s.startup.push(started.ms);
    s.memory.push(started.bytesPerNode);
    s.visible.push(await joinVisibleMicros(nodes[0]!, nodes[1]!, samples));
    const stamps = new BigInt64Array(new SharedArrayBuffer(8 * n));
    const count = new Int32Array(new SharedArrayBuffer(4));
    const ports = await receivers(cluster, nodes, stamps, count);
    const pg = cluster.node.pg;
    const broadcast = () => {
      if (pg.broadcast('all', null) !== n) throw new Error('broadcast missed members');
    };
    const raw = () => ports.forEach((p) => p.postMessage(null));
    for (const which of bareFirst ? ['raw', 'pg'] : ['pg', 'raw']) {
      const median = await fanOut(which === 'pg' ? broadcast : raw, stamps, count, n, rounds);
      (which === 'pg' ? s.broadcast : s.rawBroadcast).push(median);
    }
    for (const p of ports) p.close();
    s.down.push(await nodeDownMs(cluster, nodes[n - 1]!, nodes[0]!));
  } finally {
    await cluster.stop();
  }
  if (!bareFirst) pushBare(s, await startBare(n));
}

function pushBare(s: Samples, bare: Started): void {
  s.bareStartup.push(bare.ms);
  s.bareMemory.push(bare.bytesPerNode);
}

export async function scale(opts: BenchOptions) {
  const trials = opts.quick ? 2 : 3;
  const counts = opts.quick ? [2, 8] : [2, 8, 32, 64];
  const samples = opts.quick ? 30 : 100;
  const rounds = opts.quick ? 10 : 30;
  const by = new Map<number, Samples>(
    counts.map((n) => [
      n,
      {
        startup: [],
        memory: [],
        visible: [],
        broadcast: [],
        down: [],
        packageStartup: [],
        packageMemory: [],
        bareStartup: [],
        bareMemory: [],
        rawBroadcast: [],
      },
    ]),
  );
  let step = 0;
  for (let t = 0; t < trials; t++) {
    for (const n of rotate(counts, t)) {
      await measure(n, t % 2 === 1, samples, rounds, by.get(n)!);
      opts.progress(++step, trials * counts.length, `${n} nodes`);
    }
  }
  return result(
    'scale',
    'Cost as the cluster grows: start-up, memory, visibility, broadcast, node down',
    opts.quick,
    trials,
    figures(counts, by),
    [],
    [growth(counts, by)],
  );
}

/** How each metric is shown. */
const SHOWN: Record<Metric, { label: (n: number) => string; unit: string; base?: string }> = {
  startup: {
    label: (n) => `start-up of ${n} worker nodes, from the compiled tree (dist/src)`,
    unit: 'ms',
    base: 'bareStartup',
  },
  memory: {
    label: (n) => `memory per node, ${n} nodes, from the compiled tree (dist/src)`,
    unit: 'B',
    base: 'bareMemory',
  },
  visible: { label: (n) => `join seen on another node, ${n} nodes, median`, unit: 'µs' },
  broadcast: {
    label: (n) => `broadcast to ${n} members (1 per node), median`,
    unit: 'µs',
    base: 'rawBroadcast',
  },
  down: { label: (n) => `node down (10,000 memberships) seen, ${n} nodes`, unit: 'ms' },
};

const BASE_LABEL: Record<string, (n: number) => string> = {
  bareStartup: (n) => `${n} bare worker threads`,
  bareMemory: () => 'bare worker thread',
  rawBroadcast: () => 'raw postMessage to each worker',
};

const median = (xs: number[]) => spread(xs).median;

function figures(counts: number[], by: Map<number, Samples>): Figure[] {
  const first = counts[0]!;
  const most = counts[counts.length - 1]!;
  // Through the package, beside the compiled tree's start-up and memory figures.
  const viaPackage = (metric: 'startup' | 'memory') =>
    counts.map((n) => {
      const s = by.get(n)!;
      const [own, base] =
        metric === 'startup'
          ? (['packageStartup', 'bareStartup'] as const)
          : (['packageMemory', 'bareMemory'] as const);
      const f = {
        id: `scale-${metric}-package-${n}`,
        label: `${metric === 'startup' ? `start-up of ${n} worker nodes` : `memory per node, ${n} nodes`}, through import 'procgroups' (the bundle)`,
        unit: SHOWN[metric].unit,
        note: 'reported',
      };
      return paired(f, s[own], BASE_LABEL[base]!(n), s[base]);
    });
  const perMetric = METRICS.flatMap((metric) =>
    counts.map((n) => {
      const s = by.get(n)!;
      const shown = SHOWN[metric];
      const f = { id: `scale-${metric}-${n}`, label: shown.label(n), unit: shown.unit };
      // On the largest count: how the figure grew from the smallest, as a power of the
      // node count (1 is linear; memory is per node, so 0 is linear there).
      const grew = median(s[metric]) / median(by.get(first)![metric]);
      const note =
        n === most && n !== first
          ? `×${grew.toFixed(2)} the ${first}-node figure for ×${n / first} the nodes (exponent ${(Math.log(grew) / Math.log(n / first)).toFixed(2)})`
          : 'reported';
      const base = shown.base as keyof Samples | undefined;
      return base === undefined
        ? single({ ...f, note }, s[metric])
        : paired({ ...f, note }, s[metric], BASE_LABEL[base]!(n), s[base]);
    }),
  );
  // Each after the last figure of its metric.
  const end = (prefix: string) => perMetric.findLastIndex((f) => f.id.startsWith(prefix)) + 1;
  const a = end('scale-startup-');
  const b = end('scale-memory-');
  return [
    ...perMetric.slice(0, a),
    ...viaPackage('startup'),
    ...perMetric.slice(a, b),
    ...viaPackage('memory'),
    ...perMetric.slice(b),
  ];
}

/** Each metric against node count, relative to its value at the fewest nodes, and linear growth. */
function growth(counts: number[], by: Map<number, Samples>): Curve {
  const first = counts[0]!;
  const at = (metric: Metric, n: number) =>
    median(by.get(n)![metric]) / median(by.get(first)![metric]);
  return {
    id: 'scale-growth',
    label: `Cost against node count, relative to ${first} nodes`,
    x: { title: 'worker nodes', unit: '', log: true },
    y: { title: `relative to ${first} nodes`, unit: '×', log: true },
    lines: [
      ...METRICS.map((metric) => ({
        name: metric === 'memory' ? 'memory per node' : metric,
        points: counts.map((n): [number, number] => [n, at(metric, n)]),
      })),
      { name: 'linear', points: counts.map((n): [number, number] => [n, n / first]) },
    ],
  };
}
