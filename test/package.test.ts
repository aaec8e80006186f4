/**
 * The package as users import it. `procgroups` resolves (package.json "exports") to the
 * bundle in dist/pkg, not to the compiled tree (dist/src) that the other tests load, and
 * the bundle starts the coordinator thread and spawned workers from modules it finds by
 * URL (src/entries.ts). These tests start clusters from the bundle, in both coordinator
 * modes, with workers that import the bundle too.
 */
import { readdirSync, readFileSync } from 'node:fs';
import test from 'ava';
import * as pkg from 'procgroups';
import { fixture } from './support/workers.js';

const bundle = new URL('../pkg/', import.meta.url);

test('`procgroups` and its subpaths load the bundle', (t) => {
  t.is(import.meta.resolve('procgroups'), new URL('index.js', bundle).href);
  t.is(import.meta.resolve('procgroups/nats'), new URL('nats/index.js', bundle).href);
  t.is(import.meta.resolve('procgroups/comlink'), new URL('services/comlink.js', bundle).href);
});

test('the bundle holds the core once: its entry points share it', (t) => {
  const files = readdirSync(bundle, { recursive: true, encoding: 'utf8' }).filter((f) =>
    f.endsWith('.js'),
  );
  // The subpaths use the core's classes (procgroups/nats throws its errors): a second
  // copy would make `instanceof` fail between them.
  for (const name of ['NoMembersError', 'TransportError', 'Cluster', 'Node']) {
    const defining = files.filter((f) =>
      new RegExp(`\\b(class ${name}\\b|var ${name} = class\\b)`).test(
        readFileSync(new URL(f, bundle), 'utf8'),
      ),
    );
    t.is(defining.length, 1, `${name} is defined in ${defining.join(', ') || 'no file'}`);
  }
});

for (const coordinator of ['main', 'thread'] as const) {
  test(`a cluster from the bundle, coordinator: '${coordinator}', spawns a worker that imports it`, async (t) => {
    const cluster = await pkg.startCluster({ coordinator });
    try {
      const w = await cluster.spawn(fixture('package-worker'));
      const pg = cluster.node.pg;
      // Ready once its module has run: its join is in the index.
      t.deepEqual(pg.getMembers('package').map(pkg.nodeOf), [w.id]);
      t.is(await pg.dispatch<number>('package', 21), 42);
      await t.throwsAsync(pg.dispatch('nobody', 1), { instanceOf: pkg.NoMembersError });
    } finally {
      await cluster.stop();
    }
  });
}
