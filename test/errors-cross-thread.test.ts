/**
 * Every error class the library exports crosses threads as itself: thrown on a worker,
 * it arrives on the main thread as an instance of the same class, with its name, code
 * and message (and a worker sees the main thread's errors the same way). The list of
 * classes is read from the library's exports, so a new error class is covered as soon as
 * it is exported.
 */
import test from 'ava';
import * as library from '../src/index.js';
import { spawnAgent, start } from './support/cluster.js';

type ErrorClass = new (...args: unknown[]) => Error & { code?: unknown };

const classes = (Object.entries(library) as [string, unknown][]).filter(
  (e): e is [string, ErrorClass] =>
    typeof e[1] === 'function' && (e[1] as { prototype?: unknown }).prototype instanceof Error,
);

test('the library exports its error classes, each with a code', (t) => {
  t.true(classes.length >= 16, `found ${classes.map(([n]) => n).join(', ')}`);
  for (const [name, Class] of classes) {
    const e = new Class('x', 1, 'r');
    t.is(e.name, name);
    t.regex(String(e.code), /^ERR_PG_/, `${name} has a code`);
  }
  t.true(classes.some(([n]) => n === 'QueueFullError'));
  t.true(classes.some(([n]) => n === 'MonitorOverflowError'));
});

test('each error class thrown on a worker keeps its class, name, code and message on the main thread', async (t) => {
  const cluster = await start(t);
  const agent = await spawnAgent(cluster);
  const thrower = await agent.spawn('throwNamed');
  for (const [name, Class] of classes) {
    const e = await t.throwsAsync(cluster.node.call(thrower, name));
    t.true(e instanceof Class, `${name} arrived as ${e?.constructor.name}`);
    t.is(e?.name, name);
    t.is((e as { code?: unknown }).code, new Class('x').code);
    t.is(e?.message, `a ${name} made on node ${agent.id}`);
  }
});

test('each error class thrown on the main thread keeps its class on a worker', async (t) => {
  const cluster = await start(t);
  const agent = await spawnAgent(cluster);
  const local = cluster.node.spawn((m: string) => {
    const Class = classes.find(([n]) => n === m)![1];
    throw new Class(`a ${m} made on node 0`, 1, 'r');
  });
  for (const [name] of classes) {
    // The agent's `call` command rethrows what it got; it crosses back to the main
    // thread too, so check the name the worker saw in the message it reports.
    const seen = await agent.cmd({ cmd: 'callError', pid: local, msg: name });
    t.deepEqual(seen, { name, instance: true, message: `a ${name} made on node 0` });
  }
});
