// Watching a group: a snapshot of its members, then every join and leave as it happens.
//
//   npm run build && node dist/examples/watch/main.js
import { startCluster } from 'procgroups';

const cluster = await startCluster();
const pg = cluster.node.pg;
const watch = await pg.monitor('jobs');
console.log('members at start:', watch.members);

await cluster.spawn(new URL('./worker.js', import.meta.url));
let seen = 0;
for await (const e of watch.events) {
  console.log(e.kind, e.group, e.pids.length, 'pid(s)');
  if (++seen === 3) break; // one join of two, a leave, the exit of the other
}
await pg.demonitor(watch.ref);
console.log('members now:', pg.getMembers('jobs'));
await cluster.stop();
