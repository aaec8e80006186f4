// One process of the example: `backend` or `frontend` (see main.ts).
import { startCluster } from 'procgroups';
import { natsTransport } from 'procgroups/nats';

const role = process.argv[2];
const cluster = await startCluster({
  // Processes with the same cluster name peer; heartbeats and the peer timeout are defaults.
  transport: natsTransport({ servers: process.env.NATS_URL!, cluster: 'example-shop' }),
});
const pg = cluster.node.pg;

if (role === 'backend') {
  for (let i = 0; i < 2; i++) await cluster.spawn(new URL('./worker.js', import.meta.url));
  // Stay until the frontend has come and gone: its members leave when it stops.
  const frontend = await pg.monitor('frontend');
  let seen = frontend.members.length > 0;
  for await (const e of frontend.events) {
    if (e.kind === 'join') seen = true;
    else if (seen && pg.count('frontend') === 0) break;
  }
  console.log('backend: the frontend left; stopping');
} else {
  await pg.join('frontend', cluster.node.self());
  // The members of `resize` live in the other process; wait until they show here.
  await pg.waitForMembers('resize', { count: 2, timeout: 30_000 });
  console.log(
    'frontend: peers',
    cluster.peers().map((p) => `${p.name} nodes ${p.nodes.join(',')}`),
  );
  const done = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      pg.dispatch<{ by: number }>('resize', { width: 800 + i }, { strategy: 'least-loaded' }),
    ),
  );
  const perNode = new Map<number, number>();
  for (const r of done) perNode.set(r.by, (perNode.get(r.by) ?? 0) + 1);
  console.log(
    'frontend: resized',
    done.length,
    'images in the other process, per node:',
    Object.fromEntries(perNode),
  );
}
await cluster.stop();
