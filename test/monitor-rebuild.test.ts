/**
 * No gap and no double count between a monitor's snapshot and its events, under load.
 *
 * Several worker nodes and this thread join and leave random groups (counted
 * duplicates, process exits) at the same time; one worker is terminated midway (and,
 * in the second test, one is cut off and healed). Meanwhile monitors are started at
 * different moments, on this thread and on a worker, for the whole scope and for single
 * groups, by iterator and by callback. Once everything is quiet, each monitor's
 * snapshot plus every event it got, rebuilt as a multiset per group, must equal what the
 * shared index holds.
 *
 * The moments are chosen by events, never by time: "after the first monitor has seen N
 * events". The operations come from a fixed seed, printed on failure (`t.log`).
 */
import test, { type ExecutionContext } from 'ava';
import { type Group, nodeOf, type Pid } from '../src/index.js';
import { flush, spawnAgents, start } from './support/cluster.js';
import {
  type CollectorState,
  type MonitorSpec,
  runWorkload,
  type Started,
  type Watch,
  watch,
  type WorkloadPlan,
  type WorkloadReport,
} from './support/monitor.js';
import { localViewOf, Rebuild, unionOf, type View, viewFrom, viewOf } from './support/views.js';
import { errorName } from './support/wait.js';

interface Labelled {
  label: string;
  /** Events the first monitor had seen when this one was asked for. */
  at: number;
  group: Group | undefined;
  w: Watch;
}

/** Monitors the worker starts from inside its workload, before these chain-0 operations. */
const WORKER_MONITORS: [number, MonitorSpec][] = [
  [0, { name: 'w-scope@0' }],
  [30, { name: 'w-scope@30' }],
  [30, { name: 'w-g1@30', group: 'g1' }],
  [70, { name: 'w-scope@70 (callback)', callback: true }],
  [70, { name: 'w-tuple@70', group: ['t', 1] }],
  [100, { name: 'w-7@100', group: 7 }],
  [150, { name: 'w-scope@150' }],
];

interface Scenario {
  seed: number;
  /** Cut the watching worker off after the first monitor saw this many of its events, heal after as many more. */
  partitionAt?: number;
}

async function rebuildScenario(t: ExecutionContext, { seed, partitionAt }: Scenario) {
  const msg = (what: string) => `${what} (seed ${seed})`;
  const cluster = await start(t);
  const node = cluster.node;
  const pg = node.pg;
  const workers = await spawnAgents(cluster, 4);
  const watcher = workers[0]!;
  const doomed = workers[3]!;
  const plan = (i: number): WorkloadPlan => ({
    seed: (seed + i * 0x1_0000) >>> 0,
    ops: 200,
    chains: 3,
    processes: 6,
  });

  // Some memberships before anything is watched, so that the first snapshots are not empty.
  for (const w of workers) {
    const pids = await w.sideCmd<Pid[]>({ cmd: 'spawn', n: 2 });
    await w.sideCmd({ cmd: 'join', group: 'g0', pids: [...pids, pids[0]!] });
    await w.sideCmd({ cmd: 'join', group: ['t', 1], pids });
  }

  const watches: Labelled[] = [];
  const add = async (label: string, group?: Group, callback = false) => {
    const at = watches[0]?.w.c.events.length ?? 0;
    watches.push({ label, at, group, w: await watch(pg, group, { callback }) });
  };
  await add('scope@start');
  await add('g0@start', 'g0');
  const first = watches[0]!.w.c;
  // The doomed worker holds monitors too: they die with it.
  await doomed.sideCmd({ cmd: 'watch', name: 'scope' });
  await doomed.sideCmd({ cmd: 'watch', name: 'g0', group: 'g0' });

  const runs = workers.map((w, i) =>
    w.sideCmd<WorkloadReport>({
      cmd: 'workload',
      plan: plan(i + 1),
      monitorAt: w === watcher ? WORKER_MONITORS : [],
    }),
  );
  const mainRun = runWorkload(node, pg, plan(0));
  const liveRuns = [runs[0]!, runs[1]!, runs[2]!, mainRun];
  const quiet = Promise.allSettled(liveRuns);
  const doomedOutcome = runs[3]!.then(
    () => 'finished before it was terminated',
    (e: unknown) => `ended by ${errorName(e)}`,
  );

  const seen = (n: number) => first.until((events) => events.length >= n, quiet);
  const fromNode = (id: number, n: number) =>
    first.until(
      (events) => events.filter((e) => e.pids.some((p) => nodeOf(p) === id)).length >= n,
      quiet,
    );

  // Snapshots at different moments of the stream.
  await seen(60);
  await add('scope@60');
  await seen(150);
  await Promise.all([add('g1@150', 'g1'), add('scope@150 (callback)', undefined, true)]);

  let partition: Promise<void> = Promise.resolve();
  if (partitionAt !== undefined) {
    partition = (async () => {
      await fromNode(watcher.id, partitionAt);
      await cluster.partition(watcher.id);
      await add('scope@partitioned');
      await add('g2@partitioned', 'g2');
      const count = first.events.length;
      await seen(count + partitionAt);
      await cluster.heal(watcher.id);
      await add('scope@healed');
    })();
  }

  // The doomed worker goes away midway, while a monitor is being started.
  await fromNode(doomed.id, 40);
  await Promise.all([doomed.terminate(), add('scope@terminate'), add('t1@terminate', ['t', 1])]);
  t.false(cluster.nodes().includes(doomed.id));

  await seen(500);
  await Promise.all([add('scope@500'), add('7@500', 7), add('t,1@500 (callback)', 't,1', true)]);
  await seen(1500);
  await Promise.all([add('scope@1500'), add('g3@1500', 'g3')]);

  await partition;
  const settled = await quiet;
  for (const [i, s] of settled.entries()) {
    t.is(
      s.status,
      'fulfilled',
      msg(`workload ${i}: ${s.status === 'rejected' ? String(s.reason) : ''}`),
    );
  }
  const reports = settled.map((s) => (s.status === 'fulfilled' ? s.value : undefined));
  const total = (k: 'joins' | 'leaves' | 'exits') => reports.reduce((n, r) => n + (r?.[k] ?? 0), 0);
  t.log(
    `seed ${seed}: ${first.events.length} events; live nodes made ${total('joins')} joins, ` +
      `${total('leaves')} leaves, ${total('exits')} exits; doomed worker ${await doomedOutcome}; ` +
      `monitors started after ${watches.map((x) => `${x.label}: ${x.at}`).join(', ')} events`,
  );

  // Quiet: every write applied, every event delivered to every live monitor.
  await flush(cluster);
  const index = viewOf(pg);
  t.true(index.length > 0);
  t.deepEqual(pg.whichGroups().length, index.length);

  // The index is what the live nodes hold, nothing of the doomed one.
  const live = workers.filter((w) => w !== doomed);
  const locals = await Promise.all(live.map((w) => w.sideCmd<View>({ cmd: 'localView' })));
  t.deepEqual(
    unionOf(localViewOf(pg), ...locals),
    index,
    msg('index = union of the local memberships'),
  );
  t.false(
    index.some(([, pids]) => pids.some((p) => nodeOf(p) === doomed.id)),
    msg('a pid of the terminated node is still in the index'),
  );
  // Every thread reads the same index.
  t.deepEqual(await watcher.sideCmd<View>({ cmd: 'view' }), index);

  const expectedFor = (group: Group | undefined): View =>
    group === undefined ? index : viewFrom([[group, pg.getMembers(group)]]);

  // Monitors on this thread.
  t.true(watches.length >= 10);
  for (const { label, group, w } of watches) {
    const rebuilt = new Rebuild(w.snapshot).applyAll(w.c.events);
    t.is(
      rebuilt.anomalies,
      0,
      msg(`${label}: leaves of pids it did not hold: ${rebuilt.samples.join('; ')}`),
    );
    t.deepEqual(rebuilt.view(), expectedFor(group), msg(`${label}: snapshot + events ≠ index`));
    t.false(w.c.ended, msg(`${label}: its stream ended`));
  }

  // Monitors on the worker, started from inside its workload.
  const names = await watcher.sideCmd<string[]>({ cmd: 'watchNames' });
  t.deepEqual(names.sort(), WORKER_MONITORS.map(([, s]) => s.name).sort());
  for (const [, spec] of WORKER_MONITORS) {
    const snap = await watcher.sideCmd<Started>({ cmd: 'watchSnapshot', name: spec.name });
    const state = await watcher.sideCmd<CollectorState>({ cmd: 'watchEvents', name: spec.name });
    const rebuilt = new Rebuild(snap.snapshot).applyAll(state.events);
    t.is(
      rebuilt.anomalies,
      0,
      msg(`worker ${spec.name}: leaves of pids it did not hold: ${rebuilt.samples.join('; ')}`),
    );
    t.deepEqual(
      rebuilt.view(),
      expectedFor(spec.group),
      msg(`worker ${spec.name}: snapshot + events ≠ index`),
    );
    t.false(state.ended, msg(`worker ${spec.name}: its stream ended`));
  }

  // Two monitors started at different moments agree on everything after the later one.
  const [early, late] = [watches[0]!.w, watches.find((x) => x.label === 'scope@500')!.w];
  const tail = early.c.events.slice(early.c.events.length - late.c.events.length);
  t.deepEqual(
    tail,
    late.c.events,
    msg('scope@start and scope@500 disagree on their common events'),
  );
}

test('rebuild: snapshot + events equal the index, monitors started mid-stream on two threads, a node terminated midway', async (t) => {
  await rebuildScenario(t, { seed: 0x5eed_0001 });
});

test('rebuild: the same with the watching worker cut off and healed mid-stream (sync differences as events)', async (t) => {
  await rebuildScenario(t, { seed: 0x5eed_0002, partitionAt: 30 });
});

test('rebuild: snapshot + events equal the index for two more seeds, one with a cut and a heal', async (t) => {
  // One after the other: each scenario starts its own cluster.
  for (const scenario of [{ seed: 0x5eed_0003 }, { seed: 0x5eed_0004, partitionAt: 80 }]) {
    await rebuildScenario(t, scenario);
  }
});
