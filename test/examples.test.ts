// Every example runs as documented (`node dist/examples/<name>/main.js`), exits 0 on
// its own, and prints what it claims.
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { findNatsServer, INSTALL_HINT, NatsServer } from './support/nats-server.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

function run(name: string, env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [`dist/examples/${name}/main.js`],
      { cwd: root, timeout: 60_000, env: { ...process.env, ...env } },
      (error, stdout, stderr) =>
        error ? reject(new Error(`${name}: ${error.message}\n${stderr}`)) : resolve(stdout),
    );
  });
}

test('roles: work by role, sticky routing by key', async (t) => {
  const out = await run('roles');
  t.regex(out, /resized 40 images/);
  t.regex(out, /sticky owners/);
  t.regex(out, /groups \[ 'resize', 'hash' \] members 4/);
});

test('shards: keys stay put, and only a stopped shard’s keys move', async (t) => {
  const out = await run('shards');
  t.regex(out, /stable: true/);
  t.regex(out, /keys moved, all of them its own: true/);
});

test('config-reload: broadcast reaches every member', async (t) => {
  const out = await run('config-reload');
  t.regex(out, /reload sent to 3 members/);
  t.regex(out, /versions: \[ 2, 2, 2 \] failures: 0/);
});

test('watch: a monitor sees joins, leaves and exits', async (t) => {
  const out = await run('watch');
  t.regex(out, /join jobs 2 pid\(s\)/);
  t.is(out.match(/leave jobs 1 pid\(s\)/g)?.length, 2);
  t.regex(out, /members now: \[\]/);
});

test('piscina: piscina threads join a group (bring your own thread)', async (t) => {
  const out = await run('piscina');
  t.regex(out, /piscina threads in the group: 2/);
  t.regex(out, /squares: \[ 1, 4, 9, 16 \]/);
});

test('demo (npm start): roles, a kill with failover, monitor events, a summary', async (t) => {
  const out = await run('demo', { DEMO_SECONDS: '3' });
  t.regex(out, /killing worker node 1/);
  t.regex(out, /leave resize/);
  t.regex(out, /join {2}resize {2}<5\.2>/);
  t.regex(out, /resize: \d+ tasks, 0 failed/);
  t.regex(out, /hash: {3}\d+ tasks, 0 failed/);
});

test('the README quick start runs as pasted', async (t) => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const block = (marker: string) => {
    const at = readme.indexOf(`<!-- quickstart:${marker} -->`);
    const m = /```js\n([\s\S]*?)```/.exec(readme.slice(at));
    if (at < 0 || m === null) throw new Error(`no quick start block '${marker}' in README.md`);
    return m[1]!;
  };
  // Inside the package, so that `import 'procgroups'` resolves to this build.
  const dir = join(root, 'dist', 'quickstart');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'main.mjs'), block('main'));
  writeFileSync(join(dir, 'worker.mjs'), block('worker'));
  const out = await new Promise<string>((resolve, reject) => {
    execFile(
      process.execPath,
      [join(dir, 'main.mjs')],
      { cwd: root, timeout: 60_000 },
      (error, stdout, stderr) =>
        error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout),
    );
  });
  t.regex(out, /\{ width: 400, by: [12] \}/);
  t.regex(out, /2 \[ 'resize', 'hash' \]/);
  t.regex(out, /2 members answered/);
});

// Needs a NATS server: skipped (and said so) without one, except in CI.
const withNats = findNatsServer() !== undefined || process.env.CI === 'true' ? test : test.skip;
withNats('multi-process: two OS processes share a role over NATS', async (t) => {
  if (findNatsServer() === undefined) return t.fail(`nats-server not found; ${INSTALL_HINT}`);
  const server = await NatsServer.create();
  t.teardown(() => server.stop());
  await server.start();
  const out = await run('multi-process', { NATS_URL: server.url });
  t.regex(out, /frontend: resized 20 images in the other process/);
  t.regex(out, /backend: the frontend left; stopping/);
  t.regex(out, /both processes exited cleanly/);
});
