// Role-based CPU workers: four worker threads in two roles, typed services by role,
// and sticky routing by key to the stateful role.
//
//   npm run build && node dist/examples/roles/main.js
import { startCluster } from 'procgroups';
import type { Hasher, Resizer } from './api.js';

const cluster = await startCluster();
const worker = new URL('./worker.js', import.meta.url);
for (const role of ['resize', 'resize', 'hash', 'hash'])
  await cluster.spawn(worker, { workerData: { role } });
const pg = cluster.node.pg;

// A typed proxy over each group: tsc checks the calls against the role's interface.
const resizer = pg.service<Resizer>('resize', { strategy: 'least-loaded', waitForMembers: 5000 });
const images = Array.from({ length: 40 }, (_, i) => ({ width: 800 + i, height: 600 + i }));
const resized = await Promise.all(images.map((img) => resizer.resize(img)));
const perWorker = new Map<number, number>();
for (const r of resized) perWorker.set(r.by, (perWorker.get(r.by) ?? 0) + 1);
console.log('resized', resized.length, 'images; per worker:', Object.fromEntries(perWorker));

// Sticky routing: the key is taken from the call's arguments (the user), so every call
// about a user goes to the same 'hash' worker.
const hasher = pg.service<Hasher>('hash', {
  strategy: 'hash',
  key: (_method, [user]) => user as string,
  waitForMembers: 5000,
});
const owners = new Map<string, number>();
for (let round = 0; round < 3; round++) {
  for (const user of ['ada', 'grace', 'edsger', 'barbara', 'alan']) {
    const r = await hasher.update(user, `round ${round}`);
    if (owners.has(user) && owners.get(user) !== r.by)
      throw new Error(`${user} moved between workers`);
    owners.set(user, r.by);
  }
}
console.log('sticky owners', Object.fromEntries(owners));
console.log('groups', pg.whichGroups(), 'members', pg.count('resize') + pg.count('hash'));
await cluster.stop();
