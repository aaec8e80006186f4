/**
 * RESOURCES: `cluster.stop()` leaves nothing that keeps the process alive; memory stays
 * flat over a million call cycles and a million join/leave cycles; a worker that runs
 * out of heap under its `resourceLimits` is handled as a node going down.
 *
 * The first two run in child processes (dist/test/fixtures/reliability-*-child.js): a
 * leaked handle shows as a child that does not exit, and memory is measured after full
 * GCs (`--expose-gc`) on every thread.
 *
 * Environment: `PROCGROUPS_LONG=1` runs 5 million cycles of each kind instead of 1
 * million.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import { encodeGroup, NodeDownError, nodeOf, type Pid, startCluster } from '../src/index.js';
import { barrierAll, spawnAgent } from './support/cluster.js';
import { LONG } from './support/reliability.js';
import { sorted, writerView } from './support/views.js';
import { outcome } from './support/wait.js';
import { fixture } from './support/workers.js';

const execFileAsync = promisify(execFile);
const CYCLES = LONG ? 5_000_000 : 1_000_000;
const WARM = 100_000;
const MB = 1 << 20;

interface Child {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Runs `node [flags] <fixture> [args]`; never rejects (a timeout shows as `signal`). */
async function child(
  name: string,
  args: string[],
  flags: string[],
  timeout: number,
): Promise<Child> {
  const script = fileURLToPath(fixture(`reliability-${name}`));
  try {
    const r = await execFileAsync(process.execPath, [...flags, script, ...args], {
      timeout,
      maxBuffer: 16 * MB,
    });
    return { code: 0, signal: null, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; signal?: string; stdout?: string; stderr?: string };
    return {
      code: typeof err.code === 'number' ? err.code : null,
      signal: err.signal ?? null,
      stdout: err.stdout ?? '',
      stderr: err.stderr ?? '',
    };
  }
}

test('after cluster.stop() the process exits on its own: no handle is left', async (t) => {
  // Generous: the child does its work in well under a second on this machine.
  const r = await child('stop-child', [], [], 60_000);
  t.log(r.stdout.trim().split('\n').at(-1));
  t.is(r.signal, null, `the child did not exit on its own and was killed; stderr:\n${r.stderr}`);
  t.is(r.code, 0, `stderr:\n${r.stderr}`);
  t.regex(r.stdout, /stopped; active: \[\]/);
});

for (const kind of ['calls', 'joins'] as const) {
  test(`memory stays flat over ${CYCLES.toLocaleString('en')} ${kind === 'calls' ? 'call' : 'join/leave'} cycles`, async (t) => {
    t.timeout(LONG ? 1_800_000 : 170_000);
    const r = await child(
      'memory-child',
      [kind, String(CYCLES), String(WARM)],
      ['--expose-gc'],
      LONG ? 1_700_000 : 160_000,
    );
    t.is(r.signal, null, `killed; stderr:\n${r.stderr}`);
    t.is(r.code, 0, `stderr:\n${r.stderr}`);
    const line = r.stdout.trim().split('\n').at(-1)!;
    const m = JSON.parse(line) as {
      before: Record<string, number>;
      after: Record<string, number>;
      runMs: number;
    };
    const { before: b, after: a } = m;
    t.log(
      `${CYCLES} ${kind} cycles in ${Math.round(m.runMs)} ms; after warm-up → after:` +
        ` main heap ${(b.mainHeap! / MB).toFixed(1)} → ${(a.mainHeap! / MB).toFixed(1)} MB,` +
        ` worker heap ${(b.workerHeap! / MB).toFixed(1)} → ${(a.workerHeap! / MB).toFixed(1)} MB,` +
        ` index used ${b.usedBytes} → ${a.usedBytes} B (committed ${a.committedBytes} B, retired ${a.retiredBytes} B)`,
    );
    // Growth bounds after the warm-up: under 2× and under a few MB.
    for (const [what, limit] of [
      ['mainHeap', 16 * MB],
      ['workerHeap', 16 * MB],
      ['usedBytes', 4 * MB],
    ] as const) {
      const grew = a[what]! - b[what]!;
      t.true(a[what]! < 2 * b[what]!, `${what} more than doubled: ${b[what]} → ${a[what]}`);
      t.true(grew < limit, `${what} grew by ${grew} bytes (limit ${limit})`);
    }
    t.is(a.pendingCalls, 0);
    t.is(a.groups, 0);
    t.is(a.members, 0);
  });
}

test('a worker that runs out of heap is a node that went down; the cluster goes on', async (t) => {
  const cluster = await startCluster();
  t.teardown(() => cluster.stop());
  const node = cluster.node;
  const healthy = await spawnAgent(cluster);
  const doomed = await spawnAgent(cluster, {
    resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 4 },
  });
  const hp = await healthy.sideCmd<Pid[]>({ cmd: 'spawn', n: 2 });
  const dp = await doomed.sideCmd<Pid[]>({ cmd: 'spawn', n: 3 });
  await healthy.sideCmd({ cmd: 'join', scope: 'pg', group: 'shared', pids: hp });
  await doomed.sideCmd({ cmd: 'join', scope: 'pg', group: 'shared', pids: dp });
  await doomed.sideCmd({ cmd: 'join', scope: 'pg', group: 'only-doomed', pids: dp });
  const events: string[] = [];
  await node.pg.monitorScope({
    onEvent: (e) => events.push(`${e.kind} ${encodeGroup(e.group)} ${e.pids.length}`),
  });
  const down = new Promise<number>((resolve) => node.on('nodedown', resolve));
  const exit = new Promise<number>((resolve) => doomed.worker.once('exit', resolve));
  // A call in flight to it when it dies, and the call that makes it die.
  const pending = outcome(node.call(dp[0]!, 'never answered?'));
  const oom = outcome(doomed.sideCmd({ cmd: 'oom' }));
  const code = await exit;
  t.is(await down, doomed.id);
  t.log(`the worker exited with code ${code}`);
  for (const [what, r] of [
    ['the call that ran it out of heap', await oom],
    ['a call in flight', await pending],
    ['a call after', await outcome(node.call(dp[1]!, 'hello?'))],
  ] as const) {
    t.false(r.ok, what);
    if (!r.ok) t.true(r.error instanceof NodeDownError, `${what}: ${String(r.error)}`);
  }
  await barrierAll(cluster);
  const view = writerView(cluster, 'pg');
  t.false(
    view.some(([, pids]) => pids.some((p) => nodeOf(p) === doomed.id)),
    `members of the dead node remain: ${JSON.stringify(view)}`,
  );
  t.deepEqual(view, [[encodeGroup('shared'), sorted(hp)]]);
  t.deepEqual(events.sort(), [
    `leave ${encodeGroup('only-doomed')} 3`,
    `leave ${encodeGroup('shared')} 3`,
  ]);
  t.deepEqual(cluster.nodes().sort(), [0, healthy.id]);
  // The cluster goes on: calls, joins, a new node.
  t.is(await node.call(hp[0]!, 'still there'), 'still there');
  await healthy.sideCmd({ cmd: 'join', scope: 'pg', group: 'after', pids: hp[1]! });
  const again = await spawnAgent(cluster);
  const [ap] = await again.sideCmd<Pid[]>({ cmd: 'spawn', n: 1 });
  await again.sideCmd({ cmd: 'join', scope: 'pg', group: 'after', pids: ap! });
  node.pg.refresh();
  t.is(node.pg.count('after'), 2);
  t.is(cluster.stats().nodes, 3);
});
