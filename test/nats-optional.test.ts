/**
 * The NATS client is an optional peer dependency. These tests install the compiled
 * library alone in a fresh directory, with no node_modules at all, as a user who never
 * installed `@nats-io/transport-node` has it, and run real processes there.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const dist = fileURLToPath(new URL('../src/', import.meta.url));

function runIn(dir: string, code: string): Promise<string> {
  writeFileSync(join(dir, 'main.mjs'), code);
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['main.mjs'],
      { cwd: dir, timeout: 60_000 },
      (error, stdout, stderr) =>
        error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout),
    );
  });
}

function bareInstall(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'procgroups-bare-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(dist, join(dir, 'lib'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  return dir;
}

/** Where Node would find `name` from `dir`: a `node_modules` in it or in any folder above. */
function installedAbove(dir: string, name: string): string | undefined {
  for (let d = dir; ; d = dirname(d)) {
    const path = join(d, 'node_modules', name);
    if (existsSync(path)) return path;
    if (dirname(d) === d) return undefined;
  }
}

test('without the NATS client, a cluster with a NATS transport fails with MissingPackageError naming the package', async (t) => {
  const dir = bareInstall(t);
  // Node looks for packages in every folder above too: one there would make this test
  // connect instead, and fail with a TransportError that says nothing of why.
  const found = installedAbove(dir, '@nats-io/transport-node');
  if (found !== undefined) {
    t.fail(
      `${found} is installed above the temporary folder ${dir}: remove it, or set TMPDIR to a folder without node_modules above it`,
    );
    return;
  }
  const out = await runIn(
    dir,
    `import { startCluster } from './lib/index.js';
     import { natsTransport } from './lib/nats/index.js';
     try {
       await startCluster({ transport: natsTransport({ servers: 'nats://127.0.0.1:1', cluster: 'x' }) });
       console.log('started?!');
     } catch (e) {
       console.log(JSON.stringify({ name: e.name, code: e.code, packageName: e.packageName, message: e.message }));
     }`,
  );
  const e = JSON.parse(out) as { name: string; code: string; packageName: string; message: string };
  t.is(e.name, 'MissingPackageError');
  t.is(e.code, 'ERR_PG_MISSING_PACKAGE');
  t.is(e.packageName, '@nats-io/transport-node');
  t.regex(e.message, /npm install @nats-io\/transport-node/);
});

test('without a transport, the library runs with no dependency installed and nothing keeps the process alive', async (t) => {
  const dir = bareInstall(t);
  const out = await runIn(
    dir,
    `import { startCluster } from './lib/index.js';
     const cluster = await startCluster();
     const pid = cluster.node.spawn((m) => m * 2);
     await cluster.node.pg.join('g', pid);
     console.log(await cluster.node.call(pid, 21), cluster.peers().length, 'peering' in cluster.stats());
     await cluster.stop();`,
  );
  t.is(out.trim(), '42 0 false');
});
