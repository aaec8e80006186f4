// Two OS processes share roles over NATS: a "backend" process runs two worker threads in
// the role `resize`; a "frontend" process has no workers of its own and dispatches to that
// role all the same, reading the members from its own shared index.
//
//   nats-server -p 4222 &                       # or: apt-get install nats-server
//   npm run build && node dist/examples/multi-process/main.js
//
// NATS_URL picks another server. Here one launcher starts both processes; in real life
// they are separate services, on one host or many, started with the same cluster name.
import { fork } from 'node:child_process';

const url = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const node = new URL('./process.js', import.meta.url);
const start = (role: string) =>
  new Promise<void>((resolve, reject) => {
    const child = fork(node, [role], { env: { ...process.env, NATS_URL: url } });
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${role} exited with ${code}`)),
    );
  });
await Promise.all([start('backend'), start('frontend')]);
console.log('both processes exited cleanly');
