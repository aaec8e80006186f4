// Piscina workers joining groups: each thread of a piscina pool attaches itself as a
// node with a port from the cluster, then serves a group besides its pool tasks.
//
// `atomics: 'disabled'` matters: by default an idle piscina thread blocks in
// Atomics.wait, and a blocked event loop cannot answer calls (with tinypool, pass
// `useAtomics: false`).
//
//   npm run build && node dist/examples/piscina/main.js
import { Piscina } from 'piscina';
import { startCluster } from 'procgroups';

const cluster = await startCluster();
const pool = new Piscina({
  filename: new URL('./task.js', import.meta.url).href,
  minThreads: 2,
  maxThreads: 2,
  atomics: 'disabled',
});

// One task per thread, each carrying a fresh connect port. (With two threads busy on a
// task each, the two tasks land on different threads.)
await Promise.all(
  [0, 1].map(() => {
    const port = cluster.connectPort();
    return pool.run({ port, n: 0 }, { transferList: [port] });
  }),
);
const pg = cluster.node.pg;
// Each thread joins as its task starts: wait until both have.
await pg.waitForMembers('squares', { count: 2 });
console.log('piscina threads in the group:', pg.count('squares'));
console.log('squares:', await Promise.all([1, 2, 3, 4].map((n) => pg.dispatch('squares', n))));
await pool.destroy();
await cluster.stop();
