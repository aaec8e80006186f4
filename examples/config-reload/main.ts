// Broadcasting a config reload to every member of a group, then checking with
// multiCall that every one of them runs the new version.
//
//   npm run build && node dist/examples/config-reload/main.js
import { startCluster } from 'procgroups';

const cluster = await startCluster();
for (let i = 0; i < 3; i++) await cluster.spawn(new URL('./worker.js', import.meta.url));
const pg = cluster.node.pg;

// A group monitor tells us as members arrive; wait for all three.
const m = await pg.monitor('config-listeners');
let members = m.members.length;
if (members < 3) {
  for await (const event of m.events) {
    members += event.kind === 'join' ? event.pids.length : -event.pids.length;
    if (members >= 3) break;
  }
}
await pg.demonitor(m.ref);

const sent = pg.broadcast('config-listeners', { reload: { version: 2 } });
console.log('reload sent to', sent, 'members');
// Messages from one sender arrive in order, so this call is answered after the reload.
const { replies, failures } = await pg.multiCall<{ version: number }>('config-listeners', {
  get: true,
});
console.log(
  'versions:',
  replies.map(([, c]) => c.version),
  'failures:',
  failures.length,
);
await cluster.stop();
