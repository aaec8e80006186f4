/**
 * comlink over procgroups (procgroups/comlink): a pid wrapped as a comlink Endpoint
 * reaches an object that a process of another node exposed with `Comlink.expose`, and
 * comlink's own features (errors, callbacks through `Comlink.proxy`) work unchanged.
 */
import test from 'ava';
import * as Comlink from 'comlink/dist/esm/comlink.mjs';
import { pidEndpoint, processEndpoint } from '../src/services/comlink.js';
import { start } from './support/cluster.js';
import { fixture } from './support/workers.js';

interface Remote {
  add(a: number, b: number): number;
  where(): number;
  fail(): never;
}

test('Comlink.wrap over a pid reaches Comlink.expose in a process of another node', async (t) => {
  const cluster = await start(t);
  const w = await cluster.spawn(fixture('service-worker'), {
    workerData: { group: 'images', comlink: true },
  });
  const node = cluster.node;
  const pid = node.pg.pick('comlink');
  t.truthy(pid);
  const endpoint = pidEndpoint(node, pid!);
  const api = Comlink.wrap<Remote>(endpoint);
  t.is(await api.add(2, 3), 5);
  t.is(await api.where(), w.id);
  const [a, b] = await Promise.all([api.add(1, 1), api.add(20, 22)]);
  t.deepEqual([a, b], [2, 42]);
  await t.throwsAsync(api.fail(), { message: 'comlink says no' });
  endpoint.close();
});

test('Comlink.expose on this node, two wrapping callers, a callback through Comlink.proxy', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const exposed = processEndpoint(node);
  Comlink.expose(
    {
      twice: (n: number) => n * 2,
      each: async (xs: number[], cb: (x: number) => Promise<void>) => {
        for (const x of xs) await cb(x);
        return xs.length;
      },
    },
    exposed,
  );
  type Api = { twice(n: number): number; each(xs: number[], cb: (x: number) => void): number };
  const one = Comlink.wrap<Api>(pidEndpoint(node, exposed.pid));
  const two = Comlink.wrap<Api>(pidEndpoint(node, exposed.pid));
  t.deepEqual(await Promise.all([one.twice(1), two.twice(2), one.twice(3)]), [2, 4, 6]);
  const seen: number[] = [];
  t.is(
    await one.each(
      [1, 2, 3],
      Comlink.proxy((x: number) => void seen.push(x)),
    ),
    3,
  );
  t.deepEqual(seen, [1, 2, 3]);
  exposed.close();
  t.false(node.isAlive(exposed.pid));
});

test('a wrapped process that is gone fails the calls waiting on it and every later one, by name, where a closed port would hang', async (t) => {
  const cluster = await start(t);
  const node = cluster.node;
  const exposed = processEndpoint(node);
  let started!: () => void;
  const hanging = new Promise<void>((resolve) => (started = resolve));
  Comlink.expose(
    {
      twice: (n: number) => n * 2,
      hang: () => {
        started();
        return new Promise(() => {});
      },
    },
    exposed,
  );
  type Api = { twice(n: number): number; hang(): void };
  const api = Comlink.wrap<Api>(pidEndpoint(node, exposed.pid));
  t.is(await api.twice(4), 8);
  const waiting = api.hang();
  await hanging;
  node.exit(exposed.pid, 'shutdown');
  await t.throwsAsync(waiting, { name: 'ProcessExitError', message: /exited \(shutdown\)/ });
  await t.throwsAsync(api.twice(1), { name: 'ProcessExitError' });

  // A pid that never existed: the first call fails, it does not wait.
  const never = Comlink.wrap<Api>(pidEndpoint(node, (node.self() + 999_999) as typeof exposed.pid));
  await t.throwsAsync(never.twice(1), { name: 'NoProcessError' });
});
