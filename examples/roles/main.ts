// Role-based CPU workers: four worker threads in two roles, work dispatched by role,
// and sticky routing by key to the stateful role.
//
//   npm run build && node dist/examples/roles/main.js
import { startCluster } from 'procgroups';

const cluster = await startCluster();
const worker = new URL('./worker.js', import.meta.url);
for (const role of ['resize', 'resize', 'hash', 'hash'])
  await cluster.spawn(worker, { workerData: { role } });
const pg = cluster.node.pg;

// Workers join their groups once they have started; the first dispatch waits for one.
const images = Array.from({ length: 40 }, (_, i) => ({ width: 800 + i, height: 600 + i }));
const resized = await Promise.all(
  images.map((img) =>
    pg.dispatch<{ by: number }>('resize', img, { strategy: 'least-loaded', waitForMembers: 5000 }),
  ),
);
const perWorker = new Map<number, number>();
for (const r of resized) perWorker.set(r.by, (perWorker.get(r.by) ?? 0) + 1);
console.log('resized', resized.length, 'images; per worker:', Object.fromEntries(perWorker));

// Sticky routing: every message about a user goes to the same 'hash' worker.
const owners = new Map<string, number>();
for (let round = 0; round < 3; round++) {
  for (const user of ['ada', 'grace', 'edsger', 'barbara', 'alan']) {
    const r = await pg.dispatch<{ by: number; digest: string }>(
      'hash',
      { user, data: `round ${round}` },
      { strategy: 'hash', key: user, waitForMembers: 5000 },
    );
    if (owners.has(user) && owners.get(user) !== r.by)
      throw new Error(`${user} moved between workers`);
    owners.set(user, r.by);
  }
}
console.log('sticky owners', Object.fromEntries(owners));
console.log('groups', pg.whichGroups(), 'members', pg.count('resize') + pg.count('hash'));
await cluster.stop();
