/**
 * The other OS process of the NATS benchmark (bench/nats.ts forks it). `PG_ROLE`:
 * - `echo`: a peered cluster whose main node hosts an echo process (joined to `echo`),
 *   beside a raw NATS echo on `<prefix>.raw` for the baseline; on IPC `join`/`leave` it
 *   changes group `seen` and reports when it started the change (epoch ms);
 * - `big`: holds 100 groups of 1,000 pids (100,000 memberships);
 * - `victim`: holds 1,000 memberships in `victim`, and is killed;
 * - `late`: starts, and reports how long until it holds `PG_EXPECT` memberships.
 */
import { connect as natsConnect } from '@nats-io/transport-node';
import { startCluster } from '../../src/index.js';
import { natsTransport } from '../../src/nats/index.js';

const env = process.env;
const now = () => performance.timeOrigin + performance.now();
const t0 = now();
const cluster = await startCluster({
  transport: natsTransport({
    servers: env.PG_NATS!,
    cluster: env.PG_CLUSTER!,
    heartbeatMs: Number(env.PG_HB),
    peerTimeoutMs: Number(env.PG_TIMEOUT),
  }),
});
const node = cluster.node;
const pg = node.pg;
// The parent may be done with this process already (it had all it needed): a message it
// will not read is dropped, not an EPIPE that kills this process mid-stop.
const send = (m: unknown) => {
  if (process.connected) process.send!(m, undefined, {}, () => {});
};

switch (env.PG_ROLE) {
  case 'echo': {
    const echo = node.spawn((m) => m);
    await pg.join('echo', echo);
    const nc = await natsConnect({ servers: env.PG_NATS! });
    nc.subscribe(`raw.${env.PG_CLUSTER}.req`, {
      callback: (_e, msg) => void msg.respond(msg.data),
    });
    nc.subscribe(`raw.${env.PG_CLUSTER}.ping`, {
      callback: (_e, msg) => nc.publish(`raw.${env.PG_CLUSTER}.pong`, msg.data),
    });
    await nc.flush();
    const member = node.spawn(() => undefined);
    process.on('message', (m: { op: string }) => {
      const at = now();
      const done = m.op === 'join' ? pg.join('seen', member) : pg.leave('seen', member);
      void done.then(() => send({ op: m.op, at }));
    });
    break;
  }
  case 'big':
  case 'victim': {
    const big = env.PG_ROLE === 'big';
    const pids = Array.from({ length: 1_000 }, () => node.spawn(() => undefined));
    for (let g = 0; g < (big ? 100 : 1); g++) await pg.join(big ? `big${g}` : 'victim', pids);
    break;
  }
  case 'late': {
    const expect = Number(env.PG_EXPECT);
    const total = () => {
      let n = 0;
      for (let g = 0; g < 100; g++) n += pg.count(`big${g}`);
      return n;
    };
    await new Promise<void>((resolve) => {
      const check = () => (total() >= expect ? resolve() : setImmediate(check));
      check();
    });
    send({ op: 'synced', ms: now() - t0 });
    break;
  }
}
send({ op: 'ready' });
process.on('disconnect', () => void cluster.stop().then(() => process.exit(0)));
