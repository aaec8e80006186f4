// Sticky routing to stateful shards: keys map consistently to shards, and when a
// shard goes away only its own keys move (rendezvous hashing).
//
//   npm run build && node dist/examples/shards/main.js
import { startCluster } from 'procgroups';

const cluster = await startCluster();
const shards = [];
for (let i = 0; i < 4; i++)
  shards.push(await cluster.spawn(new URL('./worker.js', import.meta.url)));
const pg = cluster.node.pg;
const keys = Array.from({ length: 200 }, (_, i) => `customer-${i}`);

async function route(): Promise<Map<string, number>> {
  const owner = new Map<string, number>();
  for (const key of keys) {
    const r = await pg.dispatch<{ shard: number }>(
      'shards',
      { key },
      { strategy: 'hash', key, waitForMembers: 5000 },
    );
    owner.set(key, r.shard);
  }
  return owner;
}

// Wait for all four shards, then route every key twice: the owner never changes.
while (pg.count('shards') < 4) {
  const m = await pg.monitor('shards');
  await pg.demonitor(m.ref);
  pg.refresh();
}
const before = await route();
const again = await route();
console.log(
  'stable:',
  keys.every((k) => before.get(k) === again.get(k)),
);

// One shard goes away. Its keys move to the others; nobody else's key moves.
const gone = shards[0]!;
await gone.terminate();
const after = await route();
const moved = keys.filter((k) => before.get(k) !== after.get(k));
console.log(
  `shard ${gone.id} stopped: ${moved.length} of ${keys.length} keys moved, all of them its own:`,
  moved.every((k) => before.get(k) === gone.id),
);
await cluster.stop();
