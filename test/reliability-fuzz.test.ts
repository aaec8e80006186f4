/**
 * PROTOCOL FUZZING with fast-check: garbage and malformed messages, well-formed messages
 * with forged pids, and messages from a node cut off from the scope, fed to the
 * coordinator as if a node sent them (`coordinatorOf(cluster).inject`), posted for real on
 * a worker's control port (both directions, through structured clone), and posted as
 * frames on a peer link. After every run: the right counter went up by exactly the
 * number of bad messages, the index is unchanged (keys and members of every scope), no
 * monitor saw an event, and a real join/leave round trip still works.
 *
 * Environment:
 * - `PROCGROUPS_SEED=<integer>` replays a run (fast-check's seed; it is logged, and
 *   fast-check prints it with the counterexample on failure);
 * - `PROCGROUPS_LONG=1` runs 20,000 cases per property instead of 1,000.
 */
import { MessageChannel } from 'node:worker_threads';
import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import {
  type Cluster,
  encodeGroup,
  type Group,
  makePid,
  type Pid,
  startCluster,
} from '../src/index.js';
import { parseToCoordinator, parseToNode } from '../src/protocol/messages.js';
import { FRAME_LENGTH } from '../src/protocol/frames.js';
import { type Agent, barrierAll, spawnAgent } from './support/cluster.js';
import { Commands, SIDE_SERIAL } from './support/commands.js';
import { LONG, seedFromEnv } from './support/reliability.js';
import { type View, viewDiff, writerView } from './support/views.js';
import { coordinatorOf } from '../src/coordinator/cluster.js';

const SEED = seedFromEnv(0xf022);
const RUNS = LONG ? 20_000 : 1_000;
/** Most messages in one batch (src/batch-port.ts). */
const MAX_BATCH = 1 << 20;
const SCOPES = ['pg', 'fuzz'];

interface Fixture {
  cluster: Cluster;
  a: Agent;
  b: Agent;
  /** Live processes of a, of b, and of node 0. */
  pa: Pid[];
  pb: Pid[];
  p0: Pid[];
  /** Monitor events seen on the main thread since the setup. */
  events: () => number;
}

/**
 * A cluster with two workers and memberships in two scopes: worker `a` is attached to
 * every scope, worker `b` is cut off from 'pg'.
 */
async function setup(t: ExecutionContext): Promise<Fixture> {
  const cluster = await startCluster({ scopes: ['fuzz'] });
  t.teardown(() => cluster.stop());
  const a = await spawnAgent(cluster);
  const b = await spawnAgent(cluster);
  const pa = await a.sideCmd<Pid[]>({ cmd: 'spawn', n: 3 });
  const pb = await b.sideCmd<Pid[]>({ cmd: 'spawn', n: 2 });
  const local = new Commands(cluster.node);
  const p0 = local.run({ cmd: 'spawn', n: 2 }) as Pid[];
  for (const s of SCOPES) {
    await a.sideCmd({ cmd: 'join', scope: s, group: 'g', pids: [pa[0]!, pa[0]!, pa[1]!] });
    await a.sideCmd({ cmd: 'join', scope: s, group: ['t', 1], pids: pa[2]! });
    await b.sideCmd({ cmd: 'join', scope: s, group: 'g', pids: pb });
    await cluster.node.scope(s).join('g', p0);
    await cluster.node.scope(s).join(7, p0[1]!);
  }
  await cluster.partition(b.id, 'pg');
  let events = 0;
  for (const s of SCOPES) await cluster.node.scope(s).monitorScope({ onEvent: () => events++ });
  await barrierAll(cluster);
  return { cluster, a, b, pa, pb, p0, events: () => events };
}

function snapshot(cluster: Cluster): Record<string, View> {
  return Object.fromEntries(SCOPES.map((s) => [s, writerView(cluster, s)]));
}

/** A join and a leave through the coordinator, from a worker and from node 0. */
async function roundTrip(f: Fixture): Promise<void> {
  await f.a.sideCmd({ cmd: 'join', scope: 'pg', group: 'round-trip', pids: f.pa[1]! });
  if (coordinatorOf(f.cluster).scope('pg')!.writer.members(encodeGroup('round-trip')).length !== 1)
    throw new Error('a join acknowledged by the coordinator is not in the index');
  const r = await f.a.sideCmd({ cmd: 'leave', scope: 'pg', group: 'round-trip', pids: f.pa[1]! });
  if (r !== 'ok') throw new Error(`leave after join answered ${String(r)}`);
  await f.cluster.node.pg.join('round-trip', f.p0[0]!);
  if ((await f.cluster.node.pg.leave('round-trip', f.p0[0]!)) !== 'ok')
    throw new Error('leave of node 0 failed');
}

/** Checks after each run; returns a failure message or undefined. */
async function after(
  f: Fixture,
  before: Record<string, View>,
  events: number,
  label: string,
): Promise<string | undefined> {
  await barrierAll(f.cluster);
  const now = snapshot(f.cluster);
  for (const s of SCOPES) {
    const d = viewDiff(now[s]!, before[s]!);
    if (d.length > 0) return `${label}: index of '${s}' changed:\n${d.join('\n')}`;
  }
  if (f.events() !== events) return `${label}: monitors saw ${f.events() - events} events`;
  await roundTrip(f);
  await coordinatorOf(f.cluster).barrier(0);
  if (f.events() !== events + 4) return `${label}: the round trip did not show on the monitor`;
  return undefined;
}

function fcParams<T>(): fc.Parameters<T> {
  return { seed: SEED, numRuns: RUNS, endOnFailure: true };
}

// Generators -------------------------------------------------------------------------------

/** Numbers that are not pids: NaN, -0, ±Infinity, negatives, fractions, 0, serial 0, unsafe. */
const notPid = fc.oneof(
  fc.constantFrom(
    Number.NaN,
    -0,
    0,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    -1,
    0.5,
    2 ** 32,
    3 * 2 ** 32,
    2 ** 53,
    Number.MAX_SAFE_INTEGER + 2,
    Number.MAX_VALUE,
    Number.MIN_VALUE,
  ),
  fc.double().filter((x) => !Number.isSafeInteger(x) || x <= 0),
  fc.integer({ min: -(2 ** 31), max: 0 }),
  fc.string({ maxLength: 8 }),
  fc.constant(null),
  fc.constant(undefined),
  fc.constant([]),
  fc.constant({}),
  fc.bigInt(),
);

/** Strings that `encodeGroup` never produces. */
const notKey = fc.oneof(
  fc.constantFrom(
    '',
    'x',
    'n',
    'n01',
    'n-0',
    'nNaN',
    'nInfinity',
    'n1e21',
    'n0.10',
    'n+1',
    't5:ab',
    'ts3:ab',
    'ts2:abs',
    'tx1:a',
    'ts01:a',
    `s${'k'.repeat(4096)}`,
    `s${'k'.repeat(70_000)}`,
    'S',
    'T',
  ),
  fc.string({ maxLength: 12 }).filter((s) => !/^[snt]/.test(s)),
  fc.string({ maxLength: 12 }).map((s) => `n${s}`),
);

/** Values that are not a group key at all. */
const notKeyValue = fc.oneof(
  notKey,
  fc.integer(),
  fc.constant(null),
  fc.constant(undefined),
  fc.array(fc.string({ maxLength: 3 }), { maxLength: 3 }),
  fc.constant(['sg']),
);

/** `[[[…'sg'…]]]`, `depth` levels. */
function nest(depth: number): unknown {
  let v: unknown = 'sg';
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

/**
 * Deeply nested arrays, up to 5,000 levels (injected: no clone), or 1,000 (posted: V8's
 * deserializer runs out of stack somewhere above 2,000 levels; see the test of that).
 */
const deepArb = (max: number) => fc.integer({ min: 1, max }).map(nest);
const deep = deepArb(5_000);

/** Arrays far longer than anything real, of garbage. */
const hugeArb = (inner: fc.Arbitrary<unknown>) =>
  fc
    .tuple(fc.integer({ min: 1_000, max: 200_000 }), fc.oneof(notPid, inner, fc.constant('x')))
    .map(([n, v]) => new Array(n).fill(v));
const huge = hugeArb(deep);

const scopeName = fc.oneof(
  fc.constantFrom('pg', 'fuzz'),
  fc.constantFrom('', 'x'.repeat(257), 'x'.repeat(100_000)),
  fc.integer(),
  fc.constant(null),
);

/** Valid messages of every kind that changes memberships, for node `id` (pids `own`). */
function templates(own: Pid[]): fc.Arbitrary<Record<string, unknown>> {
  const key = fc.constantFrom(encodeGroup('g'), encodeGroup(['t', 1]), encodeGroup(7));
  const pids = fc.array(fc.constantFrom(...own), { minLength: 1, maxLength: 3 });
  const ref = fc.integer({ min: 1, max: 1_000_000 });
  const scope = fc.constantFrom('pg', 'fuzz');
  return fc.oneof(
    fc.record({ t: fc.constantFrom('join', 'leave'), scope, ref, key, pids }),
    fc.record({ t: fc.constant('exit'), scope, pid: fc.constantFrom(...own), keys: fc.array(key) }),
    fc.record({ t: fc.constant('sync'), scope, groups: fc.array(fc.tuple(key, pids)) }),
    fc.record({ t: fc.constant('monitor'), scope, ref, key }),
    fc.record({ t: fc.constant('demonitor'), scope, ref, monitor: ref }),
    fc.record({ t: fc.constant('done'), ref }),
  );
}

/** A valid message with one field replaced by a bad value, or removed. */
function mutated(own: Pid[], maxDepth = 5_000): fc.Arbitrary<unknown> {
  const d = deepArb(maxDepth);
  const bad = fc.oneof(notPid, notKeyValue, d, hugeArb(d), scopeName, fc.constant(undefined));
  return fc
    .tuple(templates(own), fc.nat(), bad, fc.boolean(), fc.nat())
    .map(([m, which, value, remove, inner]) => {
      const fields = Object.keys(m).filter((k) => k !== 't');
      const out: Record<string, unknown> = { ...m };
      const field = fields[which % fields.length]!;
      const current = out[field];
      if (remove) delete out[field];
      else if (Array.isArray(current) && current.length > 0 && inner % 2 === 0) {
        // Spoil one element of a list (a pid, a key, a [key, pids] pair).
        const list = [...current];
        list[inner % list.length] = value;
        out[field] = list;
      } else out[field] = value;
      return out;
    });
}

/** Anything: fast-check's arbitrary values (objects, arrays, Maps, typed arrays…). */
const anything = fc.anything({
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withTypedArray: true,
  withSparseArray: true,
  withNullPrototype: true,
  withObjectString: true,
  maxDepth: 4,
});

/** Values `postMessage` can clone (for the real ports). */
const cloneable = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.record({ t: fc.string({ maxLength: 8 }) }, { requiredKeys: [] }),
);

/** How many of `raw` the coordinator counts as malformed, or -1 if some of it is valid. */
function badToCoordinator(raw: unknown): number {
  if (!Array.isArray(raw)) return parseToCoordinator(raw) === undefined ? 1 : -1;
  if (raw.length > MAX_BATCH) return 1;
  for (const m of raw) if (parseToCoordinator(m) !== undefined) return -1;
  return raw.length;
}

function badToNode(raw: unknown): number {
  if (!Array.isArray(raw)) return parseToNode(raw) === undefined ? 1 : -1;
  if (raw.length > MAX_BATCH) return 1;
  for (const m of raw) if (parseToNode(m) !== undefined) return -1;
  return raw.length;
}

/** A message, or a batch of them. */
function maybeBatch(m: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 3, arbitrary: m },
    { weight: 1, arbitrary: fc.array(m, { minLength: 1, maxLength: 6 }) },
  );
}

// Properties -------------------------------------------------------------------------------

test.serial(
  'injected garbage is counted as malformed and dropped; the index stays as it was',
  async (t) => {
    t.timeout(LONG ? 1_800_000 : 120_000);
    t.log(`seed ${SEED}, ${RUNS} runs`);
    const f = await setup(t);
    const kinds = { anything: 0, mutated: 0, deep: 0, huge: 0 };
    const messages = maybeBatch(
      fc.oneof(
        anything.map((v) => ['anything', v] as const),
        mutated([...f.pa, makePid(f.b.id, 2)]).map((v) => ['mutated', v] as const),
        deep.map(
          (v) => ['deep', { t: 'join', scope: 'pg', ref: 1, key: v, pids: [f.pa[0]] }] as const,
        ),
        huge.map((v) => ['huge', { t: 'join', scope: 'pg', ref: 1, key: 'sg', pids: v }] as const),
      ),
    );
    let malformed = 0;
    await fc.assert(
      fc.asyncProperty(messages, fc.boolean(), async (gen, fromA) => {
        const list = (Array.isArray(gen) && Array.isArray(gen[0]) ? gen : [gen]) as [
          keyof typeof kinds,
          unknown,
        ][];
        const raw =
          Array.isArray(gen) && Array.isArray(gen[0]) ? list.map(([, v]) => v) : list[0]![1];
        const expected = badToCoordinator(raw);
        fc.pre(expected > 0);
        for (const [k] of list) kinds[k]++;
        const before = snapshot(f.cluster);
        const stats = f.cluster.stats();
        const events = f.events();
        coordinatorOf(f.cluster).inject(fromA ? f.a.id : 0, raw);
        const now = f.cluster.stats();
        if (now.malformed - stats.malformed !== expected) return false;
        if (now.forged !== stats.forged || now.ignored !== stats.ignored) return false;
        malformed += expected;
        const problem = await after(f, before, events, 'garbage');
        if (problem !== undefined) throw new Error(problem);
        return true;
      }),
      fcParams(),
    );
    t.log(`malformed messages dropped: ${malformed}; by kind: ${JSON.stringify(kinds)}`);
    t.log(`coordinator: ${JSON.stringify(f.cluster.stats())}`);
    t.true(malformed >= RUNS);
  },
);

test.serial(
  'well-formed messages naming pids of other nodes are counted as forged and dropped',
  async (t) => {
    t.timeout(LONG ? 1_800_000 : 120_000);
    const f = await setup(t);
    // Pids of node 0, of worker b, of nodes that never existed, and of a, mixed.
    const foreign = fc.oneof(
      fc.constantFrom(...f.p0, ...f.pb),
      fc
        .tuple(fc.integer({ min: 0, max: 0x1f_ffff }), fc.integer({ min: 1, max: 0xffff_ffff }))
        .filter(([n]) => n !== f.a.id)
        .map(([n, s]) => makePid(n, s)),
    );
    const key = fc.constantFrom(encodeGroup('g'), encodeGroup(['t', 1]), encodeGroup('new'));
    const pids = fc
      .tuple(
        fc.array(fc.constantFrom(...f.pa), { maxLength: 2 }),
        fc.array(foreign, { minLength: 1, maxLength: 3 }),
        fc.nat(),
      )
      .map(([own, other, at]) => {
        const out = [...own];
        out.splice(at % (out.length + 1), 0, ...other);
        return out;
      });
    const scope = fc.constantFrom('pg', 'fuzz');
    const forged = fc.oneof(
      fc.record({
        t: fc.constantFrom('join', 'leave'),
        scope,
        ref: fc.nat({ max: 1e6 }),
        key,
        pids,
      }),
      fc.record({
        t: fc.constant('exit'),
        scope,
        pid: foreign,
        keys: fc.array(key, { maxLength: 3 }),
      }),
      fc.record({
        t: fc.constant('sync'),
        scope,
        groups: fc
          .tuple(fc.array(fc.tuple(key, fc.array(fc.constantFrom(...f.pa)))), key, pids, fc.nat())
          .map(([ok, k, p, at]) => {
            const out = [...ok];
            out.splice(at % (out.length + 1), 0, [k, p]);
            return out;
          }),
      }),
    );
    let count = 0;
    await fc.assert(
      fc.asyncProperty(forged, async (m) => {
        if (parseToCoordinator(m) === undefined)
          throw new Error(`not well-formed: ${JSON.stringify(m)}`);
        const before = snapshot(f.cluster);
        const stats = f.cluster.stats();
        const events = f.events();
        coordinatorOf(f.cluster).inject(f.a.id, m);
        const now = f.cluster.stats();
        if (now.forged - stats.forged !== 1 || now.malformed !== stats.malformed) return false;
        count++;
        const problem = await after(f, before, events, `forged ${m.t}`);
        if (problem !== undefined) throw new Error(problem);
        return true;
      }),
      fcParams(),
    );
    t.log(`forged messages dropped: ${count}; coordinator: ${JSON.stringify(f.cluster.stats())}`);
    t.is(count, RUNS);
  },
);

test.serial('well-formed writes from a node cut off from the scope are ignored', async (t) => {
  t.timeout(LONG ? 1_800_000 : 120_000);
  const f = await setup(t);
  const key = fc.constantFrom(encodeGroup('g'), encodeGroup(['t', 1]), encodeGroup('new'));
  const own = fc.array(fc.constantFrom(...f.pb), { minLength: 1, maxLength: 3 });
  const write = fc.oneof(
    fc.record({
      t: fc.constantFrom('join', 'leave'),
      scope: fc.constant('pg'),
      ref: fc.nat(),
      key,
      pids: own,
    }),
    fc.record({
      t: fc.constant('exit'),
      scope: fc.constant('pg'),
      pid: fc.constantFrom(...f.pb),
      keys: fc.array(key, { minLength: 1 }),
    }),
  );
  let count = 0;
  await fc.assert(
    fc.asyncProperty(write, async (m) => {
      const before = snapshot(f.cluster);
      const stats = f.cluster.stats();
      const events = f.events();
      coordinatorOf(f.cluster).inject(f.b.id, m);
      const now = f.cluster.stats();
      if (now.ignored - stats.ignored !== 1 || now.malformed !== stats.malformed) return false;
      count++;
      const problem = await after(f, before, events, `cut ${m.t}`);
      if (problem !== undefined) throw new Error(problem);
      return true;
    }),
    fcParams(),
  );
  t.log(
    `writes from a cut node ignored: ${count}; coordinator: ${JSON.stringify(f.cluster.stats())}`,
  );
  t.is(count, RUNS);
});

test.serial(
  'garbage posted on a worker’s real control port reaches the coordinator, counted and dropped',
  async (t) => {
    t.timeout(LONG ? 1_800_000 : 120_000);
    const f = await setup(t);
    const messages = maybeBatch(
      fc.oneof(
        cloneable,
        mutated(f.pa, 1_000).filter((m) => isCloneable(m)),
      ),
    );
    let total = 0;
    await fc.assert(
      fc.asyncProperty(messages, async (raw) => {
        const expected = badToCoordinator(raw);
        fc.pre(expected > 0);
        const before = snapshot(f.cluster);
        const stats = f.cluster.stats();
        const events = f.events();
        await f.a.sideCmd({ cmd: 'raw', messages: [raw] });
        await barrierAll(f.cluster); // the worker's raw post came before its `done`
        const now = f.cluster.stats();
        if (now.malformed - stats.malformed !== expected)
          throw new Error(
            `malformed +${now.malformed - stats.malformed}, expected +${expected}: ${describeValue(raw)}`,
          );
        total += expected;
        const problem = await after(f, before, events, 'raw control');
        if (problem !== undefined) throw new Error(problem);
        return true;
      }),
      { ...fcParams(), numRuns: Math.ceil(RUNS / 2) },
    );
    t.log(`malformed messages over the real port: ${total}`);
    t.true(total > 0);
  },
);

test.serial(
  'garbage the coordinator’s side posts to a worker is counted by the node and dropped',
  async (t) => {
    t.timeout(LONG ? 1_800_000 : 120_000);
    const f = await setup(t);
    const port = coordinatorOf(f.cluster).port(f.a.id);
    t.truthy(port, 'the coordinator holds worker a’s control port');
    const toNode = fc.oneof(
      cloneable,
      fc.record({
        t: fc.constantFrom(
          'welcome',
          'nodeup',
          'nodedown',
          'linked',
          'scopeup',
          'scopedown',
          'discover',
          'ack',
          'monitored',
          'event',
          'ping',
          'partition',
        ),
        id: fc.oneof(notPid, fc.constant(-1)),
        ref: fc.oneof(notPid, fc.constant(-1)),
        scope: fc.oneof(fc.constant(''), fc.constant('x'.repeat(300)), fc.integer()),
      }),
    );
    let total = 0;
    const stats = () => f.a.sideCmd<{ malformed: number }>({ cmd: 'stats' });
    await fc.assert(
      fc.asyncProperty(maybeBatch(toNode), async (raw) => {
        const expected = badToNode(raw);
        fc.pre(expected > 0);
        const before = snapshot(f.cluster);
        const events = f.events();
        const m0 = (await stats()).malformed;
        port!.postMessage(raw);
        await coordinatorOf(f.cluster).barrier(f.a.id);
        const m1 = (await stats()).malformed;
        if (m1 - m0 !== expected) return false;
        total += expected;
        const problem = await after(f, before, events, 'to node');
        if (problem !== undefined) throw new Error(problem);
        return true;
      }),
      { ...fcParams(), numRuns: Math.ceil(RUNS / 2) },
    );
    t.log(`malformed messages dropped by the worker: ${total}`);
    t.true(total > 0);
  },
);

test.serial('malformed frames on a peer link are counted by the node and dropped', async (t) => {
  t.timeout(LONG ? 1_800_000 : 120_000);
  const f = await setup(t);
  // Hand worker a a second link "from node 0" (the coordinator's `linked`), and keep its
  // other end: frames posted on it reach a's link code as frames from a peer.
  const { port1, port2 } = new MessageChannel();
  coordinatorOf(f.cluster)
    .port(f.a.id)!
    .postMessage({ t: 'linked', peer: 0, port: port2 }, [port2]);
  await coordinatorOf(f.cluster).barrier(f.a.id);
  // Not a call id (ids are safe integers above 0), not a serial (1 to 2^32 − 1).
  const badId = fc
    .oneof(notPid, fc.constant(0), fc.constant(-5))
    .filter((x) => !(typeof x === 'number' && Number.isSafeInteger(x) && x > 0));
  const badSerial = fc.oneof(badId, fc.constant(2 ** 32), fc.constant(1.5));
  const frame = fc.oneof(
    fc.oneof(
      fc.string(),
      fc.integer(),
      fc.constant(null),
      fc.dictionary(fc.string(), fc.integer()),
    ),
    fc.tuple(
      fc.oneof(
        fc.integer({ min: 7, max: 1000 }),
        fc.integer({ min: -1000, max: -1 }),
        fc.string(),
        fc.constant(null),
      ),
    ),
    fc
      .array(fc.constant(0), { maxLength: 7 })
      .filter((a) => a.length !== 4)
      .map((a) => [0, ...a.slice(1)]),
    fc.tuple(fc.constant(0), badSerial, fc.constant(1), fc.constant('payload')),
    fc.tuple(fc.constant(1), badId, fc.constant(2), fc.constant(1), fc.constant('payload')),
    fc.tuple(fc.constant(1), fc.constant(1), badSerial, fc.constant(1), fc.constant('payload')),
    fc.tuple(fc.constantFrom(2, 3, 6), badId, fc.constant('x')),
    fc.tuple(fc.constantFrom(4, 5), badId, fc.constant(1)),
    fc.tuple(fc.constantFrom(4, 5), fc.constant(1), badSerial),
    fc.tuple(fc.integer({ min: 0, max: 6 })), // too short for any kind
  );
  // A real call over the same link: its answer comes after a handled every frame before it.
  // (A batch is one flat array of frames end to end; the answer's batch is read the same way.)
  let nextId = 1;
  const linkStats = (): Promise<number> => {
    const id = nextId++;
    return new Promise((resolve) => {
      const on = (raw: unknown) => {
        const f = raw as unknown[];
        for (let at = 0; at < f.length; at += FRAME_LENGTH[f[at] as number]!) {
          if (f[at] === 2 && f[at + 1] === id) {
            port1.off('message', on);
            resolve((f[at + 2] as { malformed: number }).malformed);
          }
        }
      };
      port1.on('message', on);
      port1.postMessage([1, id, SIDE_SERIAL, 0, { cmd: 'stats' }]);
    });
  };
  let total = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(frame, { minLength: 1, maxLength: 5 }),
      fc.boolean(),
      async (frames, batch) => {
        fc.pre(frames.every((x) => isCloneable(x)));
        const m0 = await linkStats();
        // Each alone: every one is counted. In one batch behind a well-formed frame (a
        // SEND to no process, dropped as Erlang drops it): that frame is handled, and the
        // first malformed one ends the batch, counted once.
        if (batch)
          port1.postMessage([
            0,
            999_999,
            0,
            'before',
            ...(Array.isArray(frames[0]) ? frames[0] : [frames[0]]),
          ]);
        else for (const x of frames) port1.postMessage(Array.isArray(x) ? x : [x]);
        const m1 = await linkStats();
        const expected = batch ? 1 : frames.length;
        if (m1 - m0 !== expected) return false;
        total += expected;
        return true;
      },
    ),
    { ...fcParams(), numRuns: Math.ceil(RUNS / 2) },
  );
  port1.close();
  await coordinatorOf(f.cluster).barrier(f.a.id);
  // Its other link to node 0 still carries calls, and the cluster works.
  t.is(
    await f.a.sideCmd({ cmd: 'count', scope: 'pg', group: 'g' }),
    coordinatorOf(f.cluster).scope('pg')!.writer.members(encodeGroup('g')).length,
  );
  await roundTrip(f);
  t.log(`malformed frames dropped: ${total}`);
  t.true(total > 0);
});

test.serial(
  'a message too deep to deserialize on the coordinator’s side is counted as malformed',
  async (t) => {
    const f = await setup(t);
    const before = snapshot(f.cluster);
    const m0 = f.cluster.stats().malformed;
    // Serializing 3,000 levels works on the worker; deserializing them on the coordinator's
    // port overflows V8's stack there, and the port emits 'messageerror' instead of 'message'.
    const sent = await f.a.sideCmd({
      cmd: 'raw',
      messages: [{ t: 'join', scope: 'pg', ref: 1, key: nest(3_000), pids: [f.pa[0]] }],
    });
    t.is(sent, 1);
    await barrierAll(f.cluster);
    t.is(f.cluster.stats().malformed - m0, 1, 'the message that could not be read is counted');
    t.is(await after(f, before, f.events(), 'undeserializable'), undefined);
  },
);

test.serial(
  'a key longer than 4,096 units, a deep tuple and a huge pid list in well-formed shapes are refused',
  async (t) => {
    const f = await setup(t);
    const before = snapshot(f.cluster);
    const m0 = f.cluster.stats().malformed;
    const long = `s${'x'.repeat(4096)}`;
    let nested: unknown = encodeGroup('g');
    for (let i = 0; i < 100_000; i++) nested = [nested];
    const cases: unknown[] = [
      { t: 'join', scope: 'pg', ref: 1, key: long, pids: [f.pa[0]] },
      { t: 'join', scope: 'pg', ref: 1, key: nested, pids: [f.pa[0]] },
      { t: 'sync', scope: 'pg', groups: [[long, [f.pa[0]]]] },
      { t: 'exit', scope: 'pg', pid: f.pa[0], keys: [encodeGroup('g'), long] },
      { t: 'monitor', scope: 'pg', ref: 1, key: long },
      {
        t: 'join',
        scope: 'pg',
        ref: 1,
        key: encodeGroup('g'),
        pids: new Array((1 << 22) + 1).fill(f.pa[0]),
      },
      { t: 'join', scope: 'p'.repeat(257), ref: 1, key: encodeGroup('g'), pids: [f.pa[0]] },
      new Array(MAX_BATCH + 1).fill({
        t: 'join',
        scope: 'pg',
        ref: 1,
        key: encodeGroup('g'),
        pids: [f.pa[0]],
      }),
    ];
    for (const c of cases) t.notThrows(() => coordinatorOf(f.cluster).inject(f.a.id, c));
    t.is(f.cluster.stats().malformed - m0, cases.length);
    t.is(await after(f, before, f.events(), 'oversized'), undefined);
    // The longest key that is allowed works end to end.
    const longest: Group = 'y'.repeat(4094);
    await f.a.sideCmd({ cmd: 'join', scope: 'pg', group: longest, pids: f.pa[0]! });
    t.deepEqual(coordinatorOf(f.cluster).scope('pg')!.writer.members(encodeGroup(longest)), [
      f.pa[0],
    ]);
  },
);

/** A short description of a generated value (fast-check cannot print 5,000 levels of arrays). */
function describeValue(v: unknown): string {
  try {
    const text = JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x));
    return text === undefined ? String(v) : text.length > 300 ? `${text.slice(0, 300)}…` : text;
  } catch (e) {
    return `(${(e as Error).message})`;
  }
}

function isCloneable(v: unknown): boolean {
  try {
    structuredClone(v);
    return true;
  } catch {
    return false;
  }
}
