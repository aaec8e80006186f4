/**
 * BAD-INPUT MATRIX: every public method with wrong types, NaN, -0, huge numbers,
 * symbols, functions, cyclic arrays, very long strings, empty arrays, remote pids,
 * exited pids, pids of dead nodes, and stopped scopes.
 *
 * What DESIGN.md asks ("Bad input gets a clear error, and nothing is lost"): each bad
 * call rejects (async methods) or throws (synchronous ones) with a named error class —
 * InvalidGroupError, InvalidPidError, NotLocalError, NoScopeError, NoProcessError,
 * NodeDownError, MessageCloneError, or TypeError/RangeError for options — whose message
 * names the bad value or the parameter; and the state is unchanged afterwards (every
 * index, every node's own memberships, the nodes, the scopes, the processes and the
 * pending calls of this node are compared before and after each case).
 *
 * Each test runs its whole table and reports every case that does not behave, so one
 * run shows the full picture. No environment variable changes this file.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify, types } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import {
  type Cluster,
  InvalidGroupError,
  InvalidPidError,
  MessageCloneError,
  makePid,
  NodeDownError,
  NoMembersError,
  NoProcessError,
  NoScopeError,
  NotConnectedError,
  NotLocalError,
  type Pid,
  startCluster,
} from '../src/index.js';
import { AGENT, type Agent, barrierAll, spawnAgent } from './support/cluster.js';
import { localViewOf, sorted, writerView } from './support/views.js';
import { fixture } from './support/workers.js';

type ErrorClass = abstract new (...args: never[]) => Error;

interface Env {
  cluster: Cluster;
  /** Worker node w. */
  w: Agent;
  /** Live local processes (p0[0] is in 'g' twice and in ['t', 1]; p0[1] in 'g'). */
  p0: Pid[];
  /** A local process that exited. */
  exited: Pid;
  /** Live processes of w (in 'g'), and one of w that exited. */
  pw: Pid[];
  wExited: Pid;
  /** A pid of a node that went down. */
  dead: Pid;
  /** A pid of a node that never existed. */
  never: Pid;
}

/** A scope that ran and was stopped. */
const STOPPED = 'stopped';

async function setup(t: ExecutionContext): Promise<Env> {
  const cluster = await startCluster({ scopes: ['extra', STOPPED] });
  t.teardown(() => cluster.stop());
  const node = cluster.node;
  const w = await spawnAgent(cluster);
  const gone = await spawnAgent(cluster);
  const [dead] = await gone.sideCmd<Pid[]>({ cmd: 'spawn', n: 1 });
  await gone.terminate();
  const p0 = [node.spawn((m) => m), node.spawn((m) => m)];
  const exited = node.spawn((m) => m);
  node.exit(exited);
  const pw = await w.sideCmd<Pid[]>({ cmd: 'spawn', n: 2 });
  const [wExited] = await w.sideCmd<Pid[]>({ cmd: 'spawn', n: 1 });
  await w.sideCmd({ cmd: 'exit', pids: [wExited!] });
  for (const s of ['pg', 'extra']) {
    const scope = s === 'pg' ? node.pg : node.scope(s);
    await scope.join('g', [p0[0]!, p0[0]!, p0[1]!]);
    await scope.join(['t', 1], p0[0]!);
    await w.sideCmd({ cmd: 'join', scope: s, group: 'g', pids: pw });
  }
  await cluster.stopScope(STOPPED);
  await barrierAll(cluster);
  return {
    cluster,
    w,
    p0,
    exited,
    pw,
    wExited: wExited!,
    dead: dead!,
    never: makePid(99_999, 1),
  };
}

/** Everything a rejected call must leave as it was. */
async function snapshot(env: Env): Promise<string> {
  await barrierAll(env.cluster);
  const node = env.cluster.node;
  const stats = node.stats();
  return JSON.stringify({
    pg: writerView(env.cluster, 'pg'),
    extra: writerView(env.cluster, 'extra'),
    local0: [localViewOf(node.pg), localViewOf(node.scope('extra'))],
    localW: await env.w.sideCmd({ cmd: 'localViews', scopes: ['pg', 'extra'] }),
    nodes: env.cluster.nodes(),
    scopes: env.cluster.scopes(),
    processes: stats.processes,
    pendingCalls: stats.pendingCalls,
  });
}

/** What a case must do. */
type Expect =
  /** Throw synchronously (synchronous methods). */
  | { throws: ErrorClass; names: RegExp }
  /** Return a rejected promise (asynchronous methods), without throwing. */
  | { rejects: ErrorClass; names: RegExp }
  /** Succeed (throw nothing) with a value that passes `ok`. */
  | { ok: (value: unknown) => boolean; what: string; changes?: boolean };

interface Case {
  name: string;
  run: () => unknown;
  expect: Expect;
}

/**
 * Runs every case: how it ended (threw, rejected, returned), against what it must do,
 * and the state before and after. Fails the test once, listing every case that did not
 * behave.
 */
async function matrix(t: ExecutionContext, env: Env, cases: Case[]): Promise<void> {
  const problems: string[] = [];
  for (const c of cases) {
    const before = await snapshot(env);
    let how: 'threw' | 'rejected' | 'returned';
    let value: unknown;
    try {
      const r = c.run();
      if (r instanceof Promise) {
        try {
          value = await r;
          how = 'returned';
        } catch (e) {
          value = e;
          how = 'rejected';
        }
      } else {
        value = r;
        how = 'returned';
      }
    } catch (e) {
      value = e;
      how = 'threw';
    }
    const e = value as Error;
    const shown =
      how === 'returned'
        ? `returned ${safeString(value)}`
        : `${how} ${e?.constructor?.name ?? typeof e} (${e?.name}): ${String(e?.message).slice(0, 160)}`;
    const x = c.expect;
    if ('ok' in x) {
      if (how !== 'returned' || !x.ok(value))
        problems.push(`${c.name}: expected ${x.what}; ${shown}`);
    } else {
      const wantHow = 'throws' in x ? 'threw' : 'rejected';
      const Want = 'throws' in x ? x.throws : x.rejects;
      if (how !== wantHow || !(e instanceof Want) || e.name !== Want.name) {
        problems.push(
          `${c.name}: expected it to ${wantHow === 'threw' ? 'throw' : 'reject with'} ${Want.name}; ${shown}`,
        );
      } else if (!x.names.test(e.message)) {
        problems.push(`${c.name}: ${Want.name} message does not name ${x.names}: ${e.message}`);
      }
    }
    if (!('ok' in x && x.changes === true)) {
      const after = await snapshot(env);
      if (after !== before)
        problems.push(`${c.name}: the state changed\n    before ${before}\n    after  ${after}`);
    }
  }
  t.log(`${cases.length} cases, ${problems.length} not as DESIGN.md asks`);
  for (const p of problems) t.log(`✗ ${p}`);
  t.deepEqual(problems, [], `${problems.length} of ${cases.length} cases:\n${problems.join('\n')}`);
}

function safeString(v: unknown): string {
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.slice(0, 120);
  } catch {
    return String(v);
  }
}

const execFileAsync = promisify(execFile);

// Bad values ----------------------------------------------------------------------------

const cyclic: unknown[] = [];
cyclic.push(cyclic);
const LONG = 'x'.repeat(5_000);

/** Group values that are not groups, with what the error message must name. */
const BAD_GROUPS: [string, unknown, RegExp][] = [
  ['NaN', Number.NaN, /NaN/],
  ['Infinity', Number.POSITIVE_INFINITY, /Infinity/],
  ['-Infinity', Number.NEGATIVE_INFINITY, /-Infinity/],
  ['a symbol', Symbol('grp'), /Symbol\(grp\)/],
  ['a function', function groupFn() {}, /function.*groupFn/],
  ['an object', { a: 1 }, /object/],
  ['null', null, /null/],
  ['undefined', undefined, /undefined/],
  ['a boolean', true, /true/],
  ['a bigint', 10n, /10n/],
  ['a Date', new Date(0), /Date/],
  ['a cyclic array', cyclic, /element 0 is an array/],
  ['a nested tuple', [['inner']], /element 0 is an array/],
  ['a tuple with NaN', ['ok', Number.NaN], /element 1 is NaN/],
  ['a tuple with a symbol', ['ok', Symbol('s')], /element 1 is Symbol\(s\)/],
  ['a string of 5,000 units', LONG, /too long/],
  ['a tuple of 5,000 atoms', new Array(5_000).fill('a'), /too long/],
];

/** Values that are not pids, with what the error message must name. */
const BAD_PIDS: [string, unknown, RegExp][] = [
  ['NaN', Number.NaN, /NaN/],
  ['-0', -0, /-0/],
  ['0', 0, /got 0/],
  ['-1', -1, /-1/],
  ['1.5', 1.5, /1\.5/],
  ['Infinity', Number.POSITIVE_INFINITY, /Infinity/],
  ['2^53 + 2', 2 ** 53 + 2, /9007199254740994/],
  ['serial 0 (2^32)', 2 ** 32, /4294967296/],
  ['a numeric string', '4294967297', /"4294967297"/],
  ['null', null, /null/],
  ['undefined', undefined, /undefined/],
  ['an object', { pid: 1 }, /object/],
  ['a symbol', Symbol('pid'), /Symbol\(pid\)/],
  ['a function', () => 1, /function/],
  ['a bigint', 4294967297n, /4294967297n/],
  ['a list with NaN', [Number.NaN], /pids\[0\].*NaN/],
  ['a cyclic list', cyclic, /pids\[0\].*array/],
];

const isUndefined = (v: unknown) => v === undefined;
const isEmpty = (v: unknown) => Array.isArray(v) && v.length === 0;

// Tests -------------------------------------------------------------------------------------

test('pg.join and pg.leave: bad groups, bad pids, remote, exited and dead pids, stopped scopes', async (t) => {
  const env = await setup(t);
  const { pg } = env.cluster.node;
  const stopped = env.cluster.node.scope(STOPPED);
  const never = env.cluster.node.scope('never-started');
  const p = env.p0[0]!;
  const cases: Case[] = [];
  for (const [what, g, names] of BAD_GROUPS) {
    cases.push({
      name: `join(${what}, pid)`,
      run: () => pg.join(g as never, p),
      expect: { rejects: InvalidGroupError, names },
    });
    cases.push({
      name: `leave(${what}, pid)`,
      run: () => pg.leave(g as never, p),
      expect: { rejects: InvalidGroupError, names },
    });
  }
  for (const [what, bad, names] of BAD_PIDS) {
    cases.push({
      name: `join('g', ${what})`,
      run: () => pg.join('g', bad as Pid),
      expect: { rejects: InvalidPidError, names },
    });
    cases.push({
      name: `leave('g', ${what})`,
      run: () => pg.leave('g', bad as Pid),
      expect: { rejects: InvalidPidError, names },
    });
    cases.push({
      name: `join('g', [pid, ${what}]): nothing joined`,
      run: () => pg.join('g', [env.p0[1]!, bad as Pid]),
      expect: { rejects: InvalidPidError, names: /pids\[1\]/ },
    });
  }
  const formatted = (pid: Pid) => new RegExp(`<${Math.floor(pid / 2 ** 32)}\\.${pid % 2 ** 32}>`);
  for (const [what, remote] of [
    ['a pid of a live worker', env.pw[0]!],
    ['an exited pid of a worker', env.wExited],
    ['a pid of a dead node', env.dead],
    ['a pid of a node that never existed', env.never],
  ] as [string, Pid][]) {
    cases.push({
      name: `join('g', ${what})`,
      run: () => pg.join('g', remote),
      expect: { rejects: NotLocalError, names: formatted(remote) },
    });
    cases.push({
      name: `leave('g', ${what})`,
      run: () => pg.leave('g', remote),
      expect: { rejects: NotLocalError, names: formatted(remote) },
    });
    cases.push({
      name: `join('g', [local, ${what}]): the local one is not joined either`,
      run: () => pg.join('g', [env.p0[1]!, remote]),
      expect: { rejects: NotLocalError, names: formatted(remote) },
    });
  }
  cases.push(
    {
      name: "join('g', exited local pid): pg's no-op",
      run: () => pg.join('g', env.exited),
      expect: { ok: isUndefined, what: 'undefined' },
    },
    {
      name: "leave('g', exited local pid)",
      run: () => pg.leave('g', env.exited),
      expect: { ok: (v) => v === 'not_joined', what: "'not_joined'" },
    },
    {
      name: "join('g', a local pid never spawned, such as 42): NoProcessError naming it",
      run: () => pg.join('g', makePid(0, 123_456)),
      expect: { rejects: NoProcessError, names: formatted(makePid(0, 123_456)) },
    },
    {
      name: "join('g', [])",
      run: () => pg.join('g', []),
      expect: { ok: isUndefined, what: 'undefined' },
    },
    {
      name: "leave('g', [])",
      run: () => pg.leave('g', []),
      expect: { ok: (v) => v === 'not_joined', what: "'not_joined'" },
    },
    {
      name: "leave('nobody', pid)",
      run: () => pg.leave('nobody', p),
      expect: { ok: (v) => v === 'not_joined', what: "'not_joined'" },
    },
    {
      name: 'join on a stopped scope',
      run: () => stopped.join('g', p),
      expect: { rejects: NoScopeError, names: /'stopped'/ },
    },
    {
      name: 'leave on a stopped scope',
      run: () => stopped.leave('g', p),
      expect: { rejects: NoScopeError, names: /'stopped'/ },
    },
    {
      name: 'join on a scope never started',
      run: () => never.join('g', p),
      expect: { rejects: NoScopeError, names: /'never-started'/ },
    },
    {
      name: 'join(NaN) on a stopped scope',
      run: () => stopped.join(Number.NaN, p),
      expect: { rejects: InvalidGroupError, names: /NaN/ },
    },
    {
      name: 'join(g, NaN) on a stopped scope',
      run: () => stopped.join('g', Number.NaN as Pid),
      expect: { rejects: InvalidPidError, names: /NaN/ },
    },
  );
  await matrix(t, env, cases);
  // Valid edge keys: -0 is 0, the longest string, huge and tiny numbers, the empty string.
  for (const [g, same] of [
    [-0, 0],
    ['y'.repeat(4094), 'y'.repeat(4094)],
    [1e308, 1e308],
    [Number.MIN_VALUE, 5e-324],
    ['', ''],
    [[], []],
  ] as const) {
    await pg.join(g, p);
    t.deepEqual(
      pg.getMembers(same),
      [p],
      `join(${String(g).slice(0, 20)}) then getMembers(${String(same).slice(0, 20)})`,
    );
    t.is(await pg.leave(same, p), 'ok');
  }
});

test('errors from another thread keep their class, fields and native-error slot', async (t) => {
  const env = await setup(t);
  const node = env.cluster.node;
  // Worker w tries to join a pid of node 0: NotLocalError, made on w, rebuilt here.
  const e1 = await t.throwsAsync(
    env.w.sideCmd({ cmd: 'join', scope: 'pg', group: 'g', pids: env.p0[0]! }),
  );
  t.true(e1 instanceof NotLocalError, `${e1?.name}`);
  t.true(types.isNativeError(e1));
  t.is(e1?.name, 'NotLocalError');
  t.is((e1 as NotLocalError).code, 'ERR_PG_NOT_LOCAL');
  t.is((e1 as NotLocalError).pid, env.p0[0]!);
  t.regex(e1?.message ?? '', /<0\.\d+>/);
  const e2 = await t.throwsAsync(
    env.w.sideCmd({ cmd: 'join', scope: STOPPED, group: 'g', pids: env.pw[0]! }),
  );
  t.true(e2 instanceof NoScopeError && types.isNativeError(e2), `${e2?.name}`);
  // A call to a process of w that exited: NoProcessError from w.
  const e3 = await t.throwsAsync(node.call(env.wExited, 'hello'));
  t.true(e3 instanceof NoProcessError && types.isNativeError(e3), `${e3?.name}`);
  t.is((e3 as NoProcessError).pid, env.wExited);
  t.is(await snapshot(env), await snapshot(env));
});

test('synchronous reads: bad groups throw, on running and on stopped scopes alike', async (t) => {
  const env = await setup(t);
  const { pg } = env.cluster.node;
  const stopped = env.cluster.node.scope(STOPPED);
  const cases: Case[] = [];
  for (const [label, scope] of [
    ['', pg],
    ['stopped ', stopped],
  ] as const) {
    for (const [what, g, names] of BAD_GROUPS) {
      for (const [method, run] of [
        ['getMembers', () => scope.getMembers(g as never)],
        ['getLocalMembers', () => scope.getLocalMembers(g as never)],
        ['count', () => scope.count(g as never)],
        ['pick', () => scope.pick(g as never)],
        ['memberAt', () => scope.memberAt(g as never, 0)],
        ['forEachMember', () => scope.forEachMember(g as never, () => {})],
        ['broadcast', () => scope.broadcast(g as never, 'm')],
      ] as [string, () => unknown][]) {
        cases.push({
          name: `${label}${method}(${what})`,
          run,
          expect: { throws: InvalidGroupError, names },
        });
      }
    }
  }
  cases.push(
    {
      name: 'stopped getMembers(g)',
      run: () => stopped.getMembers('g'),
      expect: { ok: isEmpty, what: '[]' },
    },
    {
      name: 'stopped whichGroups()',
      run: () => stopped.whichGroups(),
      expect: { ok: isEmpty, what: '[]' },
    },
    {
      name: 'stopped count(g)',
      run: () => stopped.count('g'),
      expect: { ok: (v) => v === 0, what: '0' },
    },
    {
      name: "getMembers('nobody')",
      run: () => pg.getMembers('nobody'),
      expect: { ok: isEmpty, what: '[]' },
    },
    {
      name: 'getMembers(-0) is getMembers(0)',
      run: () => pg.getMembers(-0),
      expect: { ok: isEmpty, what: '[]' },
    },
    {
      name: "pick('g', 'bogus strategy')",
      run: () => pg.pick('g', 'bogus' as never),
      expect: { throws: TypeError, names: /bogus/ },
    },
    {
      name: "pick('g', 42 as strategy)",
      run: () => pg.pick('g', 42 as never),
      expect: { throws: TypeError, names: /42/ },
    },
    {
      name: "pick('g', 'hash') without a key",
      run: () => pg.pick('g', 'hash'),
      expect: { throws: TypeError, names: /key/ },
    },
    {
      name: "pick('nobody', 'hash') without a key",
      run: () => pg.pick('nobody', 'hash'),
      expect: { throws: TypeError, names: /key/ },
    },
    {
      name: 'a scope named ""',
      run: () => env.cluster.node.scope(''),
      expect: { throws: TypeError, names: /""/ },
    },
    {
      name: 'a scope named with 257 characters',
      run: () => env.cluster.node.scope('s'.repeat(257)),
      expect: { throws: TypeError, names: /257/ },
    },
    {
      name: 'a scope named 5',
      run: () => env.cluster.node.scope(5 as never),
      expect: { throws: TypeError, names: /5/ },
    },
    {
      name: 'a scope named by a symbol',
      run: () => env.cluster.node.scope(Symbol('s') as never),
      expect: { throws: TypeError, names: /Symbol\(s\)/ },
    },
  );
  await matrix(t, env, cases);
  // Reads the rejected calls must not have disturbed.
  t.deepEqual(sorted(pg.getMembers('g')), sorted([env.p0[0]!, env.p0[0]!, env.p0[1]!, ...env.pw]));
  t.is(pg.count(['t', 1]), 1);
});

test('dispatch, broadcast and multiCall: bad groups, bad options, unclonable messages, stopped scopes', async (t) => {
  const env = await setup(t);
  const node = env.cluster.node;
  const { pg } = node;
  const stopped = node.scope(STOPPED);
  const got: unknown[] = [];
  const recorders = [node.spawn((m) => got.push(m)), node.spawn((m) => got.push(m))];
  await pg.join('recorders', recorders);
  const unclonable = { f() {} };
  const cases: Case[] = [];
  for (const [what, g, names] of BAD_GROUPS.slice(0, 8)) {
    cases.push({
      name: `dispatch(${what})`,
      run: () => pg.dispatch(g as never, 'm'),
      expect: { rejects: InvalidGroupError, names },
    });
    cases.push({
      name: `multiCall(${what})`,
      run: () => pg.multiCall(g as never, 'm'),
      expect: { rejects: InvalidGroupError, names },
    });
    cases.push({
      name: `stopped multiCall(${what})`,
      run: () => stopped.multiCall(g as never, 'm'),
      expect: { rejects: InvalidGroupError, names },
    });
    cases.push({
      name: `stopped dispatch(${what})`,
      run: () => stopped.dispatch(g as never, 'm'),
      expect: { rejects: InvalidGroupError, names },
    });
  }
  for (const [opt, value] of [
    ['maxInFlight', 0],
    ['maxInFlight', Number.NaN],
    ['retries', -1],
    ['retries', 1.5],
    ['retries', Number.NaN],
    // maxQueue 0 is valid: never wait, fail at once with QueueFullError when saturated.
    ['maxQueue', -1],
    ['maxQueue', 1.5],
    ['maxQueue', Number.NaN],
    ['waitForMembers', -5],
    ['waitForMembers', Number.NaN],
    ['timeout', Number.NaN],
    ['timeout', -1],
    ['timeout', 'soon'],
    ['strategy', 'bogus'],
    ['key', {}],
  ] as [string, unknown][]) {
    const Want = typeof value === 'string' || typeof value === 'object' ? TypeError : RangeError;
    cases.push({
      name: `dispatch('g', m, { ${opt}: ${safeString(value)} })`,
      run: () =>
        pg.dispatch('g', 'm', {
          [opt]: value,
          strategy: opt === 'strategy' ? value : 'hash',
          key: opt === 'key' ? value : 'k',
        } as never),
      expect: { rejects: Want, names: new RegExp(opt) },
    });
  }
  cases.push(
    {
      name: "dispatch('nobody')",
      run: () => pg.dispatch('nobody', 'm'),
      expect: { rejects: NoMembersError, names: /nobody/ },
    },
    {
      name: 'dispatch on a stopped scope',
      run: () => stopped.dispatch('g', 'm'),
      expect: { rejects: NoScopeError, names: /'stopped'/ },
    },
    {
      name: 'dispatch of an unclonable message (to a worker member)',
      run: () => pg.dispatch('g', unclonable, { strategy: (m) => m.find((p) => p === env.pw[0]) }),
      expect: { rejects: MessageCloneError, names: /cannot be sent/ },
    },
    {
      name: 'dispatch of an unclonable message (to a local member)',
      run: () => pg.dispatch('recorders', unclonable),
      expect: { rejects: MessageCloneError, names: /cannot be sent/ },
    },
    {
      name: 'broadcast of an unclonable message',
      run: () => pg.broadcast('recorders', unclonable),
      expect: { throws: MessageCloneError, names: /cannot be sent/ },
    },
    {
      name: 'broadcast of a symbol',
      run: () => pg.broadcast('g', Symbol('m')),
      expect: { throws: MessageCloneError, names: /cannot be sent/ },
    },
    {
      name: "broadcast('nobody')",
      run: () => pg.broadcast('nobody', 'm'),
      expect: { ok: (v) => v === 0, what: '0' },
    },
    {
      name: 'broadcast on a stopped scope',
      run: () => stopped.broadcast('g', 'm'),
      expect: { ok: (v) => v === 0, what: '0' },
    },
    {
      name: 'multiCall of an unclonable message: a MessageCloneError per member',
      run: () => pg.multiCall('g', unclonable),
      expect: {
        ok: (v) => {
          const r = v as { replies: unknown[]; failures: [Pid, Error][] };
          return (
            r.replies.length === 0 &&
            r.failures.length === 5 &&
            r.failures.every(([, e]) => e instanceof MessageCloneError)
          );
        },
        what: '5 MessageCloneError failures',
      },
    },
    {
      name: 'multiCall on a stopped scope',
      run: () => stopped.multiCall('g', 'm'),
      expect: { ok: (v) => (v as { replies: [] }).replies.length === 0, what: 'no replies' },
    },
  );
  await matrix(t, env, cases);
  t.deepEqual(got, [], 'no recorder got anything from the failed sends');
});

test('monitors: bad groups, bad options, owners that are remote, bad or exited, stopped scopes', async (t) => {
  const env = await setup(t);
  const node = env.cluster.node;
  const { pg } = node;
  const stopped = node.scope(STOPPED);
  const cases: Case[] = [];
  for (const [what, g, names] of BAD_GROUPS) {
    cases.push({
      name: `monitor(${what})`,
      run: () => pg.monitor(g as never),
      expect: { rejects: InvalidGroupError, names },
    });
  }
  for (const [what, v] of [
    ['0', 0],
    ['-1', -1],
    ['1.5', 1.5],
    ['NaN', Number.NaN],
    ['"10"', '10'],
  ] as [string, unknown][]) {
    cases.push({
      name: `monitorScope({ maxBuffer: ${what} })`,
      run: () => pg.monitorScope({ maxBuffer: v as number }),
      expect: { rejects: RangeError, names: /maxBuffer/ },
    });
  }
  cases.push(
    {
      name: 'monitorScope({ owner: remote pid })',
      run: () => pg.monitorScope({ owner: env.pw[0]! }),
      expect: { rejects: NotLocalError, names: /<\d+\.\d+>/ },
    },
    {
      name: 'monitorScope({ owner: NaN })',
      run: () => pg.monitorScope({ owner: Number.NaN as Pid }),
      expect: { rejects: InvalidPidError, names: /NaN/ },
    },
    {
      name: 'monitorScope({ owner: exited pid })',
      run: () => pg.monitorScope({ owner: env.exited }),
      expect: { rejects: NoProcessError, names: /<0\.\d+>/ },
    },
    {
      name: 'monitorScope({ onEvent: 5 })',
      run: () => pg.monitorScope({ onEvent: 5 as never }),
      expect: { rejects: TypeError, names: /onEvent/ },
    },
    {
      name: 'monitor on a stopped scope',
      run: () => stopped.monitor('g'),
      expect: { rejects: NoScopeError, names: /'stopped'/ },
    },
    {
      name: 'monitorScope on a stopped scope',
      run: () => stopped.monitorScope(),
      expect: { rejects: NoScopeError, names: /'stopped'/ },
    },
    {
      name: 'monitor(NaN) on a stopped scope',
      run: () => stopped.monitor(Number.NaN),
      expect: { rejects: InvalidGroupError, names: /NaN/ },
    },
    {
      name: "demonitor('x'): unknown refs are a no-op",
      run: () => pg.demonitor('x' as never),
      expect: { ok: isUndefined, what: 'undefined' },
    },
    {
      name: 'demonitor(undefined)',
      run: () => pg.demonitor(undefined as never),
      expect: { ok: isUndefined, what: 'undefined' },
    },
    {
      name: 'demonitor(123456)',
      run: () => pg.demonitor(123_456),
      expect: { ok: isUndefined, what: 'undefined' },
    },
  );
  await matrix(t, env, cases);
  // A monitor taken before all that still works.
  const seen: string[] = [];
  const m = await pg.monitor('g', { onEvent: (e) => seen.push(e.kind) });
  t.is(m.members.length, 5);
  await pg.join('g', env.p0[1]!);
  await pg.leave('g', env.p0[1]!);
  await barrierAll(env.cluster);
  t.deepEqual(seen, ['join', 'leave']);
});

test('node: spawn, send, call, exit, isAlive and monitor with bad pids, options and messages', async (t) => {
  const env = await setup(t);
  const node = env.cluster.node;
  const p = env.p0[1]!;
  const unclonable = () => 'a function';
  let deep: unknown = 'x';
  for (let i = 0; i < 20_000; i++) deep = [deep];
  const cases: Case[] = [];
  for (const [what, bad, names] of BAD_PIDS.slice(0, 15)) {
    cases.push(
      {
        name: `send(${what})`,
        run: () => node.send(bad as Pid, 'm'),
        expect: { throws: InvalidPidError, names },
      },
      {
        name: `call(${what})`,
        run: () => node.call(bad as Pid, 'm'),
        expect: { rejects: InvalidPidError, names },
      },
      {
        name: `exit(${what})`,
        run: () => node.exit(bad as Pid),
        expect: { throws: InvalidPidError, names },
      },
      {
        name: `isAlive(${what})`,
        run: () => node.isAlive(bad as Pid),
        expect: { throws: InvalidPidError, names },
      },
      {
        name: `monitor(${what})`,
        run: () => node.monitor(bad as Pid),
        expect: { throws: InvalidPidError, names },
      },
    );
  }
  for (const [what, h, Want, names] of [
    ['5', 5, TypeError, /5/],
    ['a string', 'handler', TypeError, /"handler"/],
    ['null', null, TypeError, /null/],
    ['an object', {}, TypeError, /object/],
  ] as [string, unknown, ErrorClass, RegExp][]) {
    cases.push({
      name: `spawn(${what})`,
      run: () => node.spawn(h as never),
      expect: { throws: Want, names },
    });
  }
  for (const c of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '2']) {
    cases.push({
      name: `spawn(fn, { concurrency: ${safeString(c)} })`,
      run: () => node.spawn(() => 1, { concurrency: c as number }),
      expect: { throws: RangeError, names: /concurrency/ },
    });
  }
  cases.push(
    {
      name: 'spawn(fn, null)',
      run: () => node.spawn(() => 1, null as never),
      expect: { throws: TypeError, names: /options|null/ },
    },
    {
      name: 'send(local, a function)',
      run: () => node.send(p, unclonable),
      expect: { throws: MessageCloneError, names: /cannot be sent/ },
    },
    {
      name: 'send(remote, a function)',
      run: () => node.send(env.pw[0]!, unclonable),
      expect: { throws: MessageCloneError, names: /cannot be sent/ },
    },
    {
      name: 'send(remote, a symbol)',
      run: () => node.send(env.pw[0]!, Symbol('m')),
      expect: { throws: MessageCloneError, names: /cannot be sent/ },
    },
    {
      name: 'send(remote, 20,000 nested arrays)',
      run: () => node.send(env.pw[0]!, deep),
      expect: { throws: MessageCloneError, names: /cannot be sent/ },
    },
    {
      name: 'send(exited local)',
      run: () => node.send(env.exited, 'm'),
      expect: { ok: (v) => v === false, what: 'false' },
    },
    {
      name: 'send(pid of a dead node)',
      run: () => node.send(env.dead, 'm'),
      expect: { ok: (v) => v === false, what: 'false' },
    },
    {
      name: 'send(remote, m, transfer: "x")',
      run: () => node.send(env.pw[0]!, 'm', 'x' as never),
      expect: { throws: TypeError, names: /transfer/ },
    },
    {
      name: 'call(local, a function)',
      run: () => node.call(p, unclonable),
      expect: { rejects: MessageCloneError, names: /cannot be sent/ },
    },
    {
      name: 'call(remote, a function)',
      run: () => node.call(env.pw[0]!, unclonable),
      expect: { rejects: MessageCloneError, names: /cannot be sent/ },
    },
    {
      name: 'call(local, 20,000 nested arrays)',
      run: () => node.call(p, deep),
      expect: { rejects: MessageCloneError, names: /cannot be sent/ },
    },
    {
      name: 'call(exited local)',
      run: () => node.call(env.exited, 'm'),
      expect: { rejects: NoProcessError, names: /<0\.\d+>/ },
    },
    {
      name: 'call(exited remote)',
      run: () => node.call(env.wExited, 'm'),
      expect: { rejects: NoProcessError, names: /<\d+\.\d+>/ },
    },
    {
      name: 'call(pid of a dead node)',
      run: () => node.call(env.dead, 'm'),
      expect: { rejects: NodeDownError, names: /node \d+/ },
    },
    {
      name: 'call(pid of a node that never existed)',
      run: () => node.call(env.never, 'm'),
      expect: { rejects: NodeDownError, names: /99999/ },
    },
    {
      name: 'call(local, m, { timeout: NaN })',
      run: () => node.call(p, 'm', { timeout: Number.NaN }),
      expect: { rejects: RangeError, names: /timeout/ },
    },
    {
      name: 'call(local, m, { timeout: -1 })',
      run: () => node.call(p, 'm', { timeout: -1 }),
      expect: { rejects: RangeError, names: /timeout/ },
    },
    {
      name: "call(local, m, { timeout: 'soon' })",
      run: () => node.call(p, 'm', { timeout: 'soon' as never }),
      expect: { rejects: TypeError, names: /timeout/ },
    },
    {
      name: "call(local, m, { transfer: 'x' })",
      run: () => node.call(p, 'm', { transfer: 'x' as never }),
      expect: { rejects: TypeError, names: /transfer/ },
    },
    {
      name: 'exit(remote pid)',
      run: () => node.exit(env.pw[0]!),
      expect: { throws: NotLocalError, names: /<\d+\.\d+>/ },
    },
    {
      name: 'exit(exited local)',
      run: () => node.exit(env.exited),
      expect: { ok: (v) => v === false, what: 'false' },
    },
    {
      name: 'isAlive(exited local)',
      run: () => node.isAlive(env.exited),
      expect: { ok: (v) => v === false, what: 'false' },
    },
    {
      name: 'isAlive(pid of a dead node)',
      run: () => node.isAlive(env.dead),
      expect: { ok: (v) => v === false, what: 'false' },
    },
    {
      name: 'monitor(exited local).down',
      run: () => node.monitor(env.exited).down,
      expect: { ok: (v) => v === 'noproc', what: "'noproc'" },
    },
    {
      name: 'monitor(exited remote).down',
      run: () => node.monitor(env.wExited).down,
      expect: { ok: (v) => v === 'noproc', what: "'noproc'" },
    },
    {
      name: 'monitor(pid of a dead node).down',
      run: () => node.monitor(env.dead).down,
      expect: { ok: (v) => v === 'nodedown', what: "'nodedown'" },
    },
    {
      name: 'demonitor(garbage)',
      run: () => node.demonitor('x' as never),
      expect: { ok: isUndefined, what: 'undefined' },
    },
  );
  await matrix(t, env, cases);
});

test('call with a `signal` that is not an AbortSignal: a TypeError, nothing left pending, no crash later', async (t) => {
  // In a child process: what this checks for is an exception nobody can catch.
  const script = fileURLToPath(fixture('reliability-signal-child'));
  const { stdout } = await execFileAsync(process.execPath, [script], { timeout: 60_000 });
  const r = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
    outcomes: { local: string; remote: string };
    pendingBefore: number;
    pendingAfter: number;
    stopped: string;
    uncaught: string[];
  };
  t.log(JSON.stringify(r));
  t.regex(r.outcomes.local, /^rejected TypeError: .*signal/, 'local call');
  t.regex(r.outcomes.remote, /^rejected TypeError: .*signal/, 'remote call');
  t.is(r.pendingAfter, r.pendingBefore, 'a call that failed to start is not left pending');
  t.deepEqual(
    r.uncaught,
    [],
    'uncaught exceptions when the target node went down and the cluster stopped',
  );
  t.is(r.stopped, 'ok', 'cluster.stop()');
});

test('cluster: spawn, startScope and stopScope with bad arguments', async (t) => {
  const env = await setup(t);
  const { cluster } = env;
  const good = AGENT;
  const cases: Case[] = [];
  for (const [what, url, Want, names] of [
    ['42', 42, TypeError, /42/],
    ['null', null, TypeError, /null/],
    ['an object', {}, TypeError, /object|Object/],
    ['a missing file', fixture('does-not-exist'), Error, /does-not-exist/],
  ] as [string, unknown, ErrorClass, RegExp][]) {
    cases.push({
      name: `spawn(${what})`,
      run: () => cluster.spawn(url as URL),
      expect: { rejects: Want, names },
    });
  }
  for (const v of [Number.NaN, -1, 'soon']) {
    cases.push({
      name: `spawn(url, { connectTimeout: ${safeString(v)} })`,
      run: () => cluster.spawn(good, { connectTimeout: v as number }),
      expect: { rejects: typeof v === 'string' ? TypeError : RangeError, names: /connectTimeout/ },
    });
  }
  for (const [what, name, names] of [
    ['""', '', /""/],
    ['257 characters', 's'.repeat(257), /257/],
    ['5', 5, /5/],
    ['null', null, /null/],
    ['a symbol', Symbol('scope'), /Symbol\(scope\)/],
  ] as [string, unknown, RegExp][]) {
    cases.push({
      name: `startScope(${what})`,
      run: () => cluster.startScope(name as string),
      expect: { rejects: TypeError, names },
    });
    cases.push({
      name: `stopScope(${what})`,
      run: () => cluster.stopScope(name as string),
      expect: { rejects: TypeError, names },
    });
  }
  cases.push(
    {
      name: "startScope('pg'): already running",
      run: () => cluster.startScope('pg'),
      expect: { ok: (v) => v === false, what: 'false' },
    },
    {
      name: "stopScope('never-started')",
      run: () => cluster.stopScope('never-started'),
      expect: { ok: (v) => v === false, what: 'false' },
    },
    {
      name: "startScope('tiny', { maxBytes: 5 })",
      run: () => cluster.startScope('tiny', { maxBytes: 5 }),
      expect: { rejects: RangeError, names: /maxBytes/ },
    },
    {
      name: "startScope('tiny', { maxReaders: 0 })",
      run: () => cluster.startScope('tiny', { maxReaders: 0 }),
      expect: { rejects: RangeError, names: /maxReaders/ },
    },
  );
  await matrix(t, env, cases);
  // The cluster still takes a node and a scope.
  const w = await cluster.spawn(good);
  t.true(cluster.nodes().includes(w.id));
  t.true(await cluster.startScope('later'));
  await cluster.stop();
  const after = await Promise.allSettled([cluster.spawn(good), cluster.startScope('x')]);
  for (const r of after) {
    t.is(r.status, 'rejected');
    if (r.status === 'rejected') t.true(r.reason instanceof NotConnectedError, String(r.reason));
  }
});
