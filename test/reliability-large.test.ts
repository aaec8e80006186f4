/**
 * LARGE INPUTS: a group of 1,000,000 members (10 worker nodes × 100,000 processes,
 * joined with list joins of 10,000), 100,000 groups, and a join of 100,000 pids in one
 * call. Two reader threads read while these writes land and check on every read what
 * must hold (see `Watch` in test/fixtures/reliability-reader.ts): the count equals the
 * member list and its forEach, a list join shows whole or not at all, no pid is listed
 * twice, every member is a pid of a writer node, the count never goes down while only
 * joins happen, and a process that leaves 100,000 groups at once leaves them in one
 * version.
 *
 * Environment: `PROCGROUPS_LONG=1` runs 20 nodes × 100,000 (2,000,000 members),
 * 500,000 groups and a join of 1,000,000 pids in one call.
 */
import test, { type ExecutionContext } from 'ava';
import { type Cluster, makePid, nodeOf, type Pid, startCluster } from '../src/index.js';
import type { ReaderCommand, ReaderReport, Watch } from './fixtures/reliability-reader.js';
import { type Agent, barrierAll, spawnAgents } from './support/cluster.js';
import { LONG } from './support/reliability.js';
import { sorted } from './support/views.js';
import { poll } from './support/wait.js';
import { fixture } from './support/workers.js';
import { coordinatorOf } from '../src/coordinator/cluster.js';

const NODES = LONG ? 20 : 10;
const PER_NODE = 100_000;
const CHUNK = 10_000;
const GROUPS = LONG ? 500_000 : 100_000;
const ONE_CALL = LONG ? 1_000_000 : 100_000;
const READERS = 2;

async function setup(
  t: ExecutionContext,
  scope: string,
  writers: number,
): Promise<{
  cluster: Cluster;
  writers: Agent[];
  readers: Pid[];
  toReaders(c: ReaderCommand): Promise<unknown[]>;
}> {
  const cluster = await startCluster({ scopes: [scope], index: { maxBytes: 2 ** 32 - 65536 } });
  t.teardown(() => cluster.stop());
  const readers: Pid[] = [];
  for (let i = 0; i < READERS; i++) {
    const r = await cluster.spawn(fixture('reliability-reader'), { workerData: { universe: [] } });
    readers.push(makePid(r.id, 1));
  }
  const toReaders = (c: ReaderCommand) => Promise.all(readers.map((r) => cluster.node.call(r, c)));
  const ws = await spawnAgents(cluster, writers);
  await toReaders({ cmd: 'allow', ids: ws.map((w) => w.id) });
  return { cluster, writers: ws, readers, toReaders };
}

function report(t: ExecutionContext, what: string, reports: ReaderReport[]): void {
  for (const [i, r] of reports.entries()) {
    const seen =
      r.seen.length > 12
        ? `${r.seen.length} distinct values, ${r.seen.slice(0, 6).join(', ')} … ${r.seen.slice(-3).join(', ')}`
        : r.seen.join(', ');
    t.log(
      `${what}, reader ${i + 1}: ${r.checks} checks in ${r.rounds} rounds, ${r.violations} violations; counts seen: ${seen}`,
    );
    t.is(r.violations, 0, `${what}, reader ${i + 1}:\n${r.samples.join('\n')}`);
  }
}

/** Polls `count(group)` on the main thread until it is `n`. */
async function countReaches(
  cluster: Cluster,
  scope: string,
  group: string,
  n: number,
): Promise<number> {
  const s = cluster.node.scope(scope);
  const r = await poll(
    () => {
      s.refresh();
      return s.count(group);
    },
    (c) => c === n,
  );
  return r.value;
}

test.serial(
  `a group of ${(NODES * PER_NODE).toLocaleString('en')} members, joined ${CHUNK.toLocaleString('en')} at a time, read while it fills and empties`,
  async (t) => {
    t.timeout(LONG ? 1_800_000 : 170_000);
    const total = NODES * PER_NODE;
    const { cluster, writers, toReaders } = await setup(t, 'big', NODES);
    let at = performance.now();
    const pids = await Promise.all(
      writers.map((w) => w.sideCmd<Pid[]>({ cmd: 'spawn', n: PER_NODE })),
    );
    t.log(
      `spawned ${total} processes on ${NODES} nodes in ${Math.round(performance.now() - at)} ms`,
    );
    const watch: Watch = { scope: 'big', group: 'huge', multiple: CHUNK, monotone: true };
    await toReaders({ cmd: 'watch', watches: [watch] });
    at = performance.now();
    await Promise.all(
      writers.map((w, i) =>
        w.sideCmd({
          cmd: 'joinChunks',
          scope: 'big',
          group: 'huge',
          pids: pids[i]!,
          chunk: CHUNK,
          window: 2,
        }),
      ),
    );
    t.log(
      `joined ${total} members (${total / CHUNK} list joins) in ${Math.round(performance.now() - at)} ms`,
    );
    t.is(await countReaches(cluster, 'big', 'huge', total), total);
    const writer = coordinatorOf(cluster).scope('big')!.writer;
    t.log(`index: ${JSON.stringify(writer.stats())}`);
    const members = cluster.node.scope('big').getMembers('huge');
    t.is(members.length, total);
    t.deepEqual(sorted(members), sorted(pids.flat()), 'exactly the pids joined');
    report(t, 'joins', (await toReaders({ cmd: 'stop' })) as ReaderReport[]);

    // Empty it: half the nodes leave in list leaves, the other half go down (100,000 at once).
    await toReaders({ cmd: 'watch', watches: [{ ...watch, monotone: false }] });
    at = performance.now();
    const half = Math.floor(NODES / 2);
    await Promise.all([
      ...writers.slice(0, half).map((w, i) =>
        w.sideCmd({
          cmd: 'leaveChunks',
          scope: 'big',
          group: 'huge',
          pids: pids[i]!,
          chunk: CHUNK,
          window: 2,
        }),
      ),
      ...writers.slice(half).map((w) => w.terminate()),
    ]);
    t.is(await countReaches(cluster, 'big', 'huge', 0), 0);
    t.log(
      `emptied in ${Math.round(performance.now() - at)} ms; index: ${JSON.stringify(writer.stats())}`,
    );
    report(t, 'leaves and node drops', (await toReaders({ cmd: 'stop' })) as ReaderReport[]);
    t.deepEqual(writer.keys(), []);
  },
);

test.serial(
  `${GROUPS.toLocaleString('en')} groups, then one exit that leaves them all in one version`,
  async (t) => {
    t.timeout(LONG ? 1_800_000 : 170_000);
    const { cluster, writers, toReaders } = await setup(t, 'many', 1);
    const w = writers[0]!;
    const [pid] = await w.sideCmd<Pid[]>({ cmd: 'spawn', n: 1 });
    await toReaders({ cmd: 'watch', watches: [{ scope: 'many', monotone: true, sampleOne: 200 }] });
    let at = performance.now();
    await w.sideCmd({
      cmd: 'joinMany',
      scope: 'many',
      prefix: 'grp',
      n: GROUPS,
      pid: pid!,
      window: 256,
    });
    t.log(`${GROUPS} joins, one group each, in ${Math.round(performance.now() - at)} ms`);
    const writer = coordinatorOf(cluster).scope('many')!.writer;
    t.is(writer.keys().length, GROUPS);
    t.log(`index: ${JSON.stringify(writer.stats())}`);
    const scope = cluster.node.scope('many');
    const listed = await poll(
      () => {
        scope.refresh();
        return scope.whichGroups().length;
      },
      (n) => n === GROUPS,
    );
    t.is(listed.value, GROUPS);
    scope.refresh();
    for (const i of [0, 1, GROUPS >> 1, GROUPS - 1])
      t.deepEqual(scope.getMembers(`grp:${i}`), [pid]);
    report(t, 'joins', (await toReaders({ cmd: 'stop' })) as ReaderReport[]);

    await toReaders({
      cmd: 'watch',
      watches: [{ scope: 'many', groupsMultiple: GROUPS, sampleOne: 200 }],
    });
    at = performance.now();
    await w.sideCmd({ cmd: 'exit', pids: [pid!] });
    await barrierAll(cluster);
    const gone = await poll(
      () => {
        scope.refresh();
        return scope.whichGroups().length;
      },
      (n) => n === 0,
    );
    t.is(gone.value, 0);
    t.log(
      `one exit left ${GROUPS} groups in ${Math.round(performance.now() - at)} ms; index: ${JSON.stringify(writer.stats())}`,
    );
    report(t, 'the exit', (await toReaders({ cmd: 'stop' })) as ReaderReport[]);
    t.is(writer.stats().groups, 0);
  },
);

test.serial(
  `a join of ${ONE_CALL.toLocaleString('en')} pids in one call shows whole or not at all`,
  async (t) => {
    t.timeout(LONG ? 1_800_000 : 170_000);
    const { cluster, writers, toReaders } = await setup(t, 'one', 1);
    const w = writers[0]!;
    const pids = await w.sideCmd<Pid[]>({ cmd: 'spawn', n: ONE_CALL });
    const events: [string, number][] = [];
    await cluster.node
      .scope('one')
      .monitor('all', { onEvent: (e) => events.push([e.kind, e.pids.length]) });
    await toReaders({
      cmd: 'watch',
      watches: [{ scope: 'one', group: 'all', multiple: ONE_CALL }],
    });
    let at = performance.now();
    await w.sideCmd({ cmd: 'join', scope: 'one', group: 'all', pids });
    t.log(`one join of ${ONE_CALL} pids in ${Math.round(performance.now() - at)} ms`);
    t.is(await countReaches(cluster, 'one', 'all', ONE_CALL), ONE_CALL);
    t.true(
      cluster.node
        .scope('one')
        .getMembers('all')
        .every((p) => nodeOf(p) === w.id),
    );
    at = performance.now();
    t.is(await w.sideCmd({ cmd: 'leave', scope: 'one', group: 'all', pids }), 'ok');
    t.log(`one leave of ${ONE_CALL} pids in ${Math.round(performance.now() - at)} ms`);
    t.is(await countReaches(cluster, 'one', 'all', 0), 0);
    await barrierAll(cluster);
    t.deepEqual(events, [
      ['join', ONE_CALL],
      ['leave', ONE_CALL],
    ]);
    const reports = (await toReaders({ cmd: 'stop' })) as ReaderReport[];
    report(t, 'one join and one leave', reports);
    t.deepEqual(coordinatorOf(cluster).scope('one')!.writer.keys(), []);
  },
);
