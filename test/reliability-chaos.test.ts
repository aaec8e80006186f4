/**
 * CHAOS: worker nodes join and leave (counted duplicates included), processes spawn and
 * exit, workers are terminated or die of an uncaught throw (and are replaced), a second
 * scope stops, starts and restarts, links to scopes are cut and restored — all chosen by
 * a seeded PRNG, with up to WINDOW commands in flight at once. Meanwhile two reader
 * threads and the main thread check invariants on every read (see `Checker` in
 * test/support/reliability.ts), and scope monitors on a worker and on the main thread
 * follow everything.
 *
 * Every 100 operations, and after the run, everything settles (every command answered,
 * a barrier to every node; after the run also every cut healed and the scope running):
 * each live node's own memberships must equal what its acknowledged operations imply
 * (acknowledged joins minus acknowledged leaves, exited processes out: no acknowledged
 * join lost, no failed one kept); the index of each running scope must equal the
 * multiset union of the own memberships of the live nodes attached to it; no member of
 * a dead node may remain. After the run, every monitor's snapshot plus its events must
 * equal the index, and every reader must converge on it.
 *
 * The tests after it make the races the chaos found happen on purpose, one at a time and
 * deterministically, and check that each ends in a consistent state (see the comment
 * above them).
 *
 * Environment:
 * - `PROCGROUPS_SEED=<integer>` replays a run (the seed is logged, and printed in every
 *   assertion message);
 * - `PROCGROUPS_LONG=1` runs 20,000 operations instead of 1,500.
 */
import test, { type ExecutionContext } from 'ava';
import {
  type Cluster,
  encodeGroup,
  type Group,
  makePid,
  nodeOf,
  type Pid,
  startCluster,
  type WorkerNode,
} from '../src/index.js';
import type { ReaderCommand, ReaderReport } from './fixtures/reliability-reader.js';
import { AGENT, type Agent, barrierAll, nodeEvent, spawnAgent } from './support/cluster.js';
import { type Command, Commands, type RebuildReport, SIDE_SERIAL } from './support/commands.js';
import { Rng } from './support/random.js';
import {
  Checker,
  flushed,
  LONG,
  newSignal,
  seedFromEnv,
  waitSignal,
} from './support/reliability.js';
import { Multiset, sorted, unionOf, type View, viewDiff, writerView } from './support/views.js';
import { errorName, type Outcome, outcome } from './support/wait.js';
import { fixture } from './support/workers.js';
import { coordinatorOf } from '../src/coordinator/cluster.js';

const SEED = seedFromEnv(0x5eed_c4a0);
const OPS = LONG ? 20_000 : 1_500;
/** Writer worker nodes kept up (each killed one is replaced). */
const WORKERS = 5;
const READERS = 2;
/** Commands in flight at once. */
const WINDOW = 24;
/** Operations between two checkpoints (everything settles, then the state is compared). */
const CHECKPOINT = 100;
const SCOPES = ['pg', 'chaos'] as const;
type ScopeName = (typeof SCOPES)[number];
/** Every group the chaos uses (-0 is used too, as an alias of 0). */
const UNIVERSE: Group[] = [
  'g0',
  'g1',
  'g2',
  'g3',
  '',
  0,
  1,
  2.5,
  -7,
  1e21,
  ['t', 1],
  ['t', '1'],
  't,1',
  ['shard', 3, 'x'],
  'ü-ñ',
];

interface WriterNode {
  readonly id: number;
  readonly handle: WorkerNode | undefined;
  /** Never killed: it hosts the worker-side monitor. */
  readonly immortal: boolean;
  alive: boolean;
  /** Live processes that the chaos may join, leave and exit. */
  pids: Pid[];
  /** Processes it ended (a join of one is a no-op). */
  exited: Pid[];
  /** What its acknowledged operations imply, per scope (exited pids are taken out at the end). */
  readonly model: Record<ScopeName, Multiset>;
}

class Counter {
  readonly counts: Record<string, number> = {};
  add(kind: string, n = 1): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + n;
  }
}

async function runChaos(t: ExecutionContext, cluster: Cluster): Promise<void> {
  const tag = `[seed ${SEED}]`;
  const rng = new Rng(SEED);
  const node0 = cluster.node;
  const local = new Commands(node0);
  const ops = new Counter();
  const faults = new Counter();
  const errors = new Counter();
  const dead = new Set<number>();
  const main = new Checker('main', UNIVERSE);
  main.allowed.add(0);
  for (const s of SCOPES) main.cut.set(s, new Set());
  node0.on('nodedown', (id) => main.dead.add(id));

  // Readers first: they see every writer come and go.
  const readers: Pid[] = [];
  for (let i = 0; i < READERS; i++) {
    const w = await cluster.spawn(fixture('reliability-reader'), {
      workerData: { universe: UNIVERSE },
    });
    readers.push(makePid(w.id, 1));
  }
  const toReader = <R>(r: Pid, c: ReaderCommand) => node0.call<R>(r, c);
  await Promise.all(readers.map((r) => toReader(r, { cmd: 'allow', ids: [0] })));

  const writers = new Map<number, WriterNode>();
  const newModel = (): Record<ScopeName, Multiset> => ({
    pg: new Multiset(),
    chaos: new Multiset(),
  });
  writers.set(0, {
    id: 0,
    handle: undefined,
    immortal: true,
    alive: true,
    pids: [],
    exited: [],
    model: newModel(),
  });

  /** Runs a command on a node: node 0 here, synchronously up to its first await. */
  const exec = (id: number, c: Command): Promise<unknown> => {
    if (id === 0) {
      try {
        return Promise.resolve(local.run(c));
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return node0.call(makePid(id, SIDE_SERIAL), c);
  };

  const addWorker = async (immortal: boolean): Promise<WriterNode> => {
    const handle = await cluster.spawn(AGENT);
    const id = handle.id;
    // Every reader learns that this node may have members before it is given any.
    main.allowed.add(id);
    await Promise.all(readers.map((r) => toReader(r, { cmd: 'allow', ids: [id] })));
    const w: WriterNode = {
      id,
      handle,
      immortal,
      alive: true,
      pids: (await exec(id, { cmd: 'spawn', n: 6 })) as Pid[],
      exited: [],
      model: newModel(),
    };
    writers.set(id, w);
    return w;
  };

  writers.get(0)!.pids = (await exec(0, { cmd: 'spawn', n: 6 })) as Pid[];
  const w0 = await addWorker(true);
  for (let i = 1; i < WORKERS; i++) await addWorker(false);

  // Monitors that follow the whole run.
  const workerMonitor = (await exec(w0.id, { cmd: 'rebuildStart', scope: 'pg' })) as number;
  const mainPgMonitor = await local.rebuildStart('pg');
  let mainChaosMonitor = await local.rebuildStart('chaos');
  let chaosRunning = true;

  for (const r of readers) await toReader(r, { cmd: 'chaos', scopes: [...SCOPES] });

  // Commands in flight (node 0's also apart: a scope stop waits for them).
  const inflight = new Set<Promise<unknown>>();
  const inflight0 = new Set<Promise<unknown>>();
  const track = (id: number, p: Promise<unknown>) => {
    const q = p.finally(() => {
      inflight.delete(q);
      inflight0.delete(q);
    });
    inflight.add(q);
    if (id === 0) inflight0.add(q);
  };

  const live = () => [...writers.values()].filter((w) => w.alive);
  const liveWorkers = () => live().filter((w) => w.id !== 0);
  const groupOf = (): Group => {
    const g = rng.pick(UNIVERSE);
    return g === 0 && rng.chance(0.5) ? -0 : g;
  };
  const scopeOf = (): ScopeName => (rng.chance(0.6) ? 'pg' : 'chaos');

  const checkMain = () => {
    main.check(node0.pg);
    if (chaosRunning) main.check(node0.scope('chaos'));
    else {
      main.checks++;
      const left = node0.scope('chaos').whichGroups();
      if (left.length > 0) main.fail(`stopped scope 'chaos' still lists ${left.length} groups`);
    }
  };

  const kill = async (w: WriterNode, how: 'terminate' | 'crash') => {
    if (how === 'terminate') await w.handle!.terminate();
    else {
      const down = nodeEvent(node0, 'nodedown', w.id);
      void exec(w.id, { cmd: 'crash' }).catch(() => {});
      await down;
    }
    w.alive = false;
    dead.add(w.id);
    for (const s of SCOPES) main.cut.get(s)!.delete(w.id);
    faults.add(how);
    await addWorker(false);
    faults.add('respawn');
  };

  const stopChaosScope = async (restart: boolean) => {
    // Node 0 forgets its memberships of a stopped scope: let its commands land first.
    await Promise.allSettled([...inflight0]);
    if (restart) {
      // Both in one job: nodes get the scope's down and up back to back.
      const stopped = cluster.stopScope('chaos');
      const started = cluster.startScope('chaos');
      await Promise.all([stopped, started]);
    } else {
      await cluster.stopScope('chaos');
    }
    writers.get(0)!.model.chaos.clear();
    main.cut.get('chaos')!.clear();
    chaosRunning = restart;
    if (restart) mainChaosMonitor = await local.rebuildStart('chaos');
  };

  const issueJoin = (w: WriterNode, s: ScopeName, g: Group, pids: Pid[], one: boolean) => {
    const key = encodeGroup(g);
    ops.add('join');
    track(
      w.id,
      exec(w.id, { cmd: 'join', scope: s, group: g, pids: one ? pids[0]! : pids }).then(
        () => {
          for (const p of pids) w.model[s].add(key, p);
        },
        (e) => errors.add(`join ${errorName(e)}`),
      ),
    );
  };
  const issueLeave = (w: WriterNode, s: ScopeName, g: Group, pid: Pid) => {
    const key = encodeGroup(g);
    ops.add('leave');
    track(
      w.id,
      exec(w.id, { cmd: 'leave', scope: s, group: g, pids: rng.chance(0.5) ? pid : [pid] }).then(
        (result) => {
          if (result === 'ok') w.model[s].add(key, pid, -1);
          else errors.add(`leave ${String(result)}`);
        },
        (e) => errors.add(`leave ${errorName(e)}`),
      ),
    );
  };

  /** Problems found by the checkpoints and the final check (each one a violation). */
  const final: string[] = [];
  const problem = (what: string, lines: string[]) => {
    if (lines.length > 0) final.push(`${what}:\n  ${lines.join('\n  ')}`);
  };

  /**
   * Settles every command, then, after a barrier to every node: each live node's own
   * memberships equal what its acknowledged operations imply; the index of each running
   * scope equals the union of the own memberships of the live nodes attached to it (a cut
   * node contributes nothing); no member of a dead node remains.
   */
  const verify = async (label: string): Promise<Record<ScopeName, View>> => {
    await Promise.allSettled([...inflight]);
    await barrierAll(cluster);
    await barrierAll(cluster);
    checkpoints++;
    const index: Record<ScopeName, View> = {
      pg: writerView(cluster, 'pg'),
      chaos: writerView(cluster, 'chaos'),
    };
    const locals = new Map<number, View[]>();
    for (const w of live())
      locals.set(w.id, (await exec(w.id, { cmd: 'localViews', scopes: [...SCOPES] })) as View[]);
    SCOPES.forEach((s, i) => {
      for (const w of live()) {
        const gone = new Set(w.exited);
        problem(
          `${label}: node ${w.id} '${s}': more acknowledged leaves than joins`,
          w.model[s].negative((p) => gone.has(p)),
        );
        problem(
          `${label}: node ${w.id} '${s}': its own memberships (actual) vs its acknowledged operations (expected)`,
          viewDiff(
            locals.get(w.id)![i]!,
            w.model[s].view((p) => gone.has(p)),
          ),
        );
      }
      if (s === 'chaos' && !chaosRunning) return;
      const attached = live().filter((w) => !main.cut.get(s)!.has(w.id));
      const union = unionOf(...attached.map((w) => locals.get(w.id)![i]!));
      problem(
        `${label}: index of '${s}' (actual) vs the union of the attached nodes' own memberships (expected)`,
        viewDiff(index[s], union),
      );
      const ghosts = index[s].flatMap(([k, pids]) =>
        pids.filter((p) => dead.has(nodeOf(p))).map((p) => `${k}: ${p}`),
      );
      problem(`${label}: index of '${s}' still holds members of dead nodes`, ghosts.slice(0, 12));
    });
    return index;
  };
  let checkpoints = 0;

  for (let op = 0; op < OPS; op++) {
    while (inflight.size >= WINDOW) await Promise.race(inflight);
    if (op > 0 && op % CHECKPOINT === 0) await verify(`checkpoint after ${op} operations`);
    const r = rng.below(100);
    const w = rng.pick(live().filter((x) => x.pids.length > 0));
    if (r < 36 || (r >= 93 && r < 96)) {
      // join: 1–3 pids, sometimes the same twice, sometimes one that exited
      const pids: Pid[] = [];
      for (let k = 1 + rng.below(3); k > 0; k--) {
        if (w.exited.length > 0 && rng.chance(0.08)) pids.push(rng.pick(w.exited));
        else pids.push(rng.pick(w.pids));
      }
      if (rng.chance(0.15)) pids.push(pids[0]!);
      issueJoin(w, scopeOf(), groupOf(), pids, pids.length === 1 && rng.chance(0.5));
    } else if (r < 58) {
      // leave: one pid, mostly one the model says is in
      const s = scopeOf();
      const held = w.model[s].entries();
      if (held.length > 0 && rng.chance(0.8)) {
        const [key, pid] = rng.pick(held);
        issueLeave(
          w,
          s,
          UNIVERSE.find((u) => encodeGroup(u) === key)!,
          pid,
        );
      } else {
        issueLeave(w, s, groupOf(), rng.pick(w.pids));
      }
    } else if (r < 64) {
      // a join and a leave of the same pid back to back (both in flight together)
      const s = scopeOf();
      const g = groupOf();
      const pid = rng.pick(w.pids);
      issueJoin(w, s, g, [pid], true);
      issueLeave(w, s, g, pid);
      ops.add('joinThenLeave');
    } else if (r < 68) {
      ops.add('spawnProcesses');
      track(
        w.id,
        exec(w.id, { cmd: 'spawn', n: 1 + rng.below(3) }).then(
          (pids) => {
            if (w.alive) w.pids.push(...(pids as Pid[]));
          },
          (e) => errors.add(`spawn ${errorName(e)}`),
        ),
      );
    } else if (r < 74) {
      if (w.pids.length < 3) continue;
      const i = rng.below(w.pids.length);
      const pid = w.pids[i]!;
      w.pids.splice(i, 1);
      w.exited.push(pid);
      ops.add('exitProcess');
      track(
        w.id,
        exec(w.id, { cmd: 'exit', pids: [pid] }).catch((e) => errors.add(`exit ${errorName(e)}`)),
      );
    } else if (r < 84) {
      // cut or restore a worker's link to a scope
      const x = rng.pick(liveWorkers());
      const s = scopeOf();
      if (s === 'chaos' && !chaosRunning) continue;
      const cut = main.cut.get(s)!;
      if (cut.has(x.id)) {
        cut.delete(x.id);
        await cluster.heal(x.id, s);
        faults.add('heal');
      } else {
        await cluster.partition(x.id, s);
        cut.add(x.id);
        faults.add('partition');
      }
    } else if (r < 89) {
      if (chaosRunning) {
        await stopChaosScope(false);
        faults.add('scopeStop');
      } else {
        await cluster.startScope('chaos');
        chaosRunning = true;
        mainChaosMonitor = await local.rebuildStart('chaos');
        faults.add('scopeStart');
      }
    } else if (r < 93) {
      if (!chaosRunning) continue;
      await stopChaosScope(true);
      faults.add('scopeRestart');
    } else {
      const victims = liveWorkers().filter((x) => !x.immortal);
      await kill(rng.pick(victims), r < 98 ? 'terminate' : 'crash');
    }
    checkMain();
  }

  // Quiet: every command answered, the scope running, every cut healed, a barrier to all.
  await Promise.allSettled([...inflight]);
  if (!chaosRunning) {
    await cluster.startScope('chaos');
    chaosRunning = true;
    mainChaosMonitor = await local.rebuildStart('chaos');
  }
  for (const s of SCOPES) {
    for (const id of [...main.cut.get(s)!]) {
      main.cut.get(s)!.delete(id);
      await cluster.heal(id, s);
      faults.add('heal');
    }
  }
  const index = await verify('after the run');
  checkMain();

  // Monitors: snapshot + events = the index.
  const monitors: [string, View, number, string[], ScopeName][] = [];
  const m0 = local.rebuild(mainPgMonitor)!;
  monitors.push(['main pg monitor', m0.state.view(), m0.anomalies, m0.samples, 'pg']);
  const m1 = local.rebuild(mainChaosMonitor)!;
  monitors.push(['main chaos monitor', m1.state.view(), m1.anomalies, m1.samples, 'chaos']);
  const wm = (await exec(w0.id, { cmd: 'rebuildView', id: workerMonitor })) as RebuildReport;
  monitors.push([`node ${w0.id} pg monitor`, wm.view, wm.anomalies, wm.samples, 'pg']);
  for (const [what, view, anomalies, samples, s] of monitors) {
    problem(`${what} vs the index`, viewDiff(view, index[s]));
    problem(`${what}: ${anomalies} anomalies`, samples);
  }

  // Readers: they converge on the index, then report their checks.
  for (const r of readers) {
    for (const s of SCOPES) {
      const seen = await toReader<{ ok: boolean; value: View }>(r, {
        cmd: 'waitView',
        scope: s,
        expected: index[s],
        limit: 100_000,
      });
      if (!seen.ok)
        problem(`reader ${nodeOf(r)} '${s}' vs the index`, viewDiff(seen.value, index[s]));
    }
  }
  const reports: ReaderReport[] = [];
  for (const r of readers) reports.push(await toReader<ReaderReport>(r, { cmd: 'stop' }));

  const mainReport = main.report();
  const checks = mainReport.checks + reports.reduce((a, x) => a + x.checks, 0);
  const violations = mainReport.violations + reports.reduce((a, x) => a + x.violations, 0);
  t.log(`seed ${SEED}, ${OPS} operations: ${JSON.stringify(ops.counts)}`);
  t.log(`faults injected: ${JSON.stringify(faults.counts)}`);
  t.log(`command outcomes other than success: ${JSON.stringify(errors.counts)}`);
  t.log(
    `invariant checks: ${checks} (main ${mainReport.checks} in ${mainReport.rounds} rounds; ` +
      `readers ${reports.map((x) => `${x.checks} in ${x.rounds} rounds`).join(', ')})`,
  );
  t.log(
    `monitor events: main pg ${m0.events}, main chaos (last) ${m1.events}, node ${w0.id} pg ${wm.events}`,
  );
  t.log(
    `final index: pg ${index.pg.length} groups / ${index.pg.reduce((a, [, p]) => a + p.length, 0)} members, ` +
      `chaos ${index.chaos.length} groups / ${index.chaos.reduce((a, [, p]) => a + p.length, 0)} members; ` +
      `coordinator ${JSON.stringify(cluster.stats())}`,
  );
  t.log(
    `violations: ${violations} on reads; ${final.length} at the ${checkpoints} checkpoints ` +
      `(every ${CHECKPOINT} operations and after the run)`,
  );
  const samples = [...mainReport.samples, ...reports.flatMap((x) => x.samples)];
  if (samples.length > 0) t.log(`violations on reads (samples):\n${samples.join('\n')}`);
  if (final.length > 0) t.log(`violations at checkpoints:\n${final.slice(0, 12).join('\n')}`);
  t.is(violations, 0, `${tag} invariant violations on reads:\n${samples.join('\n')}`);
  t.deepEqual(final, [], `${tag} state at checkpoints:\n${final.join('\n')}`);
  t.true(
    faults.counts.terminate! > 0 && faults.counts.crash! > 0 && faults.counts.partition! > 0,
    tag,
  );
}

test('chaos: seeded joins, leaves, exits, kills, scope restarts and link cuts keep every invariant', async (t) => {
  t.timeout(LONG ? 3_600_000 : 170_000);
  t.log(`seed ${SEED} (replay with PROCGROUPS_SEED=${SEED})`);
  const cluster = await startCluster({ scopes: ['chaos'] });
  t.teardown(() => cluster.stop());
  await runChaos(t, cluster);
});

// The races the chaos found, one at a time ----------------------------------------------
//
// Each test makes one race of the chaos happen on purpose: the worker raises a signal once
// its request has left for the coordinator, and the main thread (the coordinator) blocks
// until then, so that what it does next (a cut, a scope restart) happens before it
// handles that request.

async function probeNode(cluster: Cluster): Promise<Agent> {
  const probe = await spawnAgent(cluster);
  await probe.sideCmd({ cmd: 'stats' }); // the link to it exists: nothing below needs the coordinator to set one up
  return probe;
}

/**
 * A cluster running `scopes` besides 'pg', stopped when the test ends, and a probe node
 * `w` with one process `p`, joined to 'g' in `joinedIn` when given.
 */
async function race(
  t: ExecutionContext,
  scopes: string[],
  joinedIn?: string,
): Promise<{ cluster: Cluster; w: Agent; p: Pid }> {
  const cluster = await startCluster({ scopes });
  t.teardown(() => cluster.stop());
  const w = await probeNode(cluster);
  const [p] = await w.sideCmd<Pid[]>({ cmd: 'spawn', n: 1 });
  if (joinedIn !== undefined)
    await w.sideCmd({ cmd: 'join', scope: joinedIn, group: 'g', pids: p! });
  return { cluster, w, p: p! };
}

/**
 * Has `w` send the writes of `p` to 'g' in `scope`, in a row, and blocks this thread
 * until the worker has posted them all: the coordinator (this thread) has not handled
 * any of them yet. Their outcomes, in order.
 */
async function posted(
  t: ExecutionContext,
  w: Agent,
  p: Pid,
  scope: string,
  writes: ('join' | 'leave')[],
): Promise<Promise<Outcome<unknown>>[]> {
  const signal = newSignal();
  const outcomes = writes.map((cmd, i) =>
    outcome(
      w.sideCmd(
        i === writes.length - 1
          ? { cmd, scope, group: 'g', pids: p, signal }
          : { cmd, scope, group: 'g', pids: p },
      ),
    ),
  );
  await flushed();
  t.true(waitSignal(signal), `the worker posted its ${writes.join(' and ')}`);
  return outcomes;
}

async function localOf(p: Agent, scope: string): Promise<View> {
  return ((await p.sideCmd({ cmd: 'localViews', scopes: [scope] })) as View[])[0]!;
}

test.serial(
  'a join and a leave in flight when the link is cut: the node keeps exactly what succeeded, and so does the index after the heal',
  async (t) => {
    const { cluster, w, p } = await race(t, []);
    const [join, leave] = await posted(t, w, p, 'pg', ['join', 'leave']);
    const cut = cluster.partition(w.id, 'pg');
    const [j, l] = [await join!, await leave!];
    await cut;
    t.log(
      `join: ${j.ok ? 'ok' : errorName(j.error)}, leave: ${l.ok ? l.value : errorName(l.error)}`,
    );
    const joins = j.ok ? 1 : 0;
    const leaves = l.ok && l.value === 'ok' ? 1 : 0;
    // Whatever failed, what the node holds must be what succeeded: joins − leaves.
    const expected: View = joins - leaves > 0 ? [['sg', [p]]] : [];
    t.deepEqual(await localOf(w, 'pg'), expected, 'memberships while cut');
    await cluster.heal(w.id, 'pg');
    await barrierAll(cluster);
    t.deepEqual(writerView(cluster, 'pg'), expected, 'index after the heal');
  },
);

test.serial(
  'a join in flight when the scope restarts: the index and the node list the pid exactly when the join succeeded',
  async (t) => {
    const { cluster, w, p } = await race(t, ['chaos']);
    const [join] = await posted(t, w, p, 'chaos', ['join']);
    const restarted = Promise.all([cluster.stopScope('chaos'), cluster.startScope('chaos')]);
    const j = await join!;
    await restarted;
    await barrierAll(cluster);
    await barrierAll(cluster);
    t.log(`join: ${j.ok ? 'ok' : errorName(j.error)}`);
    const local = await localOf(w, 'chaos');
    const index = writerView(cluster, 'chaos');
    t.deepEqual(index, local, 'index vs the node’s own memberships');
    t.deepEqual(index, j.ok ? [['sg', [p]]] : [], 'index vs the join’s outcome');
  },
);

test.serial(
  'a leave in flight when the scope restarts: the index and the node agree, and keep the pid exactly when the leave failed',
  async (t) => {
    const { cluster, w, p } = await race(t, ['chaos'], 'chaos');
    const [leave] = await posted(t, w, p, 'chaos', ['leave']);
    const restarted = Promise.all([cluster.stopScope('chaos'), cluster.startScope('chaos')]);
    const l = await leave!;
    await restarted;
    await barrierAll(cluster);
    await barrierAll(cluster);
    t.log(`leave: ${l.ok ? l.value : errorName(l.error)}`);
    const local = await localOf(w, 'chaos');
    const index = writerView(cluster, 'chaos');
    t.deepEqual(index, local, 'index vs the node’s own memberships');
    t.deepEqual(local, l.ok ? [] : [['sg', [p]]], 'the node’s memberships vs the leave’s outcome');
  },
);

test.serial(
  'a leave in flight when the scope stops: once the scope is back, the node and the index keep the pid exactly when the leave failed',
  async (t) => {
    const { cluster, w, p } = await race(t, ['chaos'], 'chaos');
    const [leave] = await posted(t, w, p, 'chaos', ['leave']);
    const stopped = cluster.stopScope('chaos');
    const l = await leave!;
    await stopped;
    t.log(`leave: ${l.ok ? l.value : errorName(l.error)}`);
    await cluster.startScope('chaos');
    await barrierAll(cluster);
    await barrierAll(cluster);
    // A worker keeps its memberships across a scope restart and syncs them back; a leave
    // that failed must not have taken this one away.
    const expected: View = l.ok ? [] : [['sg', [p]]];
    t.deepEqual(
      await localOf(w, 'chaos'),
      expected,
      'the node’s memberships vs the leave’s outcome',
    );
    t.deepEqual(writerView(cluster, 'chaos'), expected, 'the index vs the leave’s outcome');
  },
);

test.serial(
  'a sync in flight when the link is cut does not put the cut node’s members back in the index',
  async (t) => {
    const { cluster, w, p } = await race(t, [], 'pg');
    // The node syncs when asked to (pg's discover), as it does on every scope start and heal.
    coordinatorOf(cluster).discover(w.id, 'pg');
    await cluster.partition(w.id, 'pg');
    await barrierAll(cluster);
    t.deepEqual(writerView(cluster, 'pg'), [], 'a cut node has no members in the scope');
    // While cut, the node's exits stay local: a member listed now would never be removed.
    await w.sideCmd({ cmd: 'exit', pids: [p] });
    await barrierAll(cluster);
    t.deepEqual(writerView(cluster, 'pg'), [], 'the index lists a process that exited');
  },
);

test.serial(
  'on a cut node, count, forEachMember, pick, memberAt and whichGroups agree with getMembers',
  async (t) => {
    const { cluster, p: remote } = await race(t, [], 'pg');
    const node = cluster.node;
    await cluster.partition(0, 'pg');
    const own = node.spawn(() => 'own');
    await node.pg.join('g', own);
    await node.pg.join('mine', own);
    const members = node.pg.getMembers('g');
    t.deepEqual(
      sorted(members),
      sorted([remote, own]),
      'getMembers: the index plus its own members',
    );
    t.is(node.pg.count('g'), members.length, 'count');
    t.is(
      node.pg.forEachMember('g', () => {}),
      members.length,
      'forEachMember',
    );
    const picks = new Set<Pid | undefined>();
    for (let i = 0; i < 64; i++) picks.add(node.pg.memberAt('g', i));
    t.deepEqual(sorted([...picks] as Pid[]), sorted(members), 'memberAt over every index');
    t.deepEqual(node.pg.getMembers('mine'), [own], 'a group only this node has');
    t.true(
      node.pg.whichGroups().some((g) => g === 'mine'),
      `whichGroups lists it: ${JSON.stringify(node.pg.whichGroups())}`,
    );
    t.is(node.pg.pick('mine'), own, 'pick from it');
  },
);
