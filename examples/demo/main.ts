// The procgroups demo (`npm start`): worker threads in two roles, CPU work dispatched
// by role, a live view of the groups, a worker killed partway (failover and monitor
// events visible), and a summary. About 20 seconds; plain output when not on a TTY.
import {
  type Group,
  type MembershipEvent,
  nodeOf,
  type Pid,
  startCluster,
  type WorkerNode,
} from 'procgroups';

const DURATION = Number(process.env.DEMO_SECONDS ?? 20) * 1000;
const tty = process.stdout.isTTY === true;
const t0 = performance.now();
const elapsed = () => ((performance.now() - t0) / 1000).toFixed(1).padStart(5);

const cluster = await startCluster();
const pg = cluster.node.pg;
const workerUrl = new URL('./worker.js', import.meta.url);
const workers: WorkerNode[] = [];
const spawn = async (role: string) =>
  workers.push(await cluster.spawn(workerUrl, { workerData: { role } }));

// Every membership change in the scope, from a monitor, for the event log.
const log: string[] = [];
const say = (line: string) => {
  log.push(`${elapsed()}s  ${line}`);
  if (!tty) console.log(`${elapsed()}s  ${line}`);
};
const describeEvent = (e: MembershipEvent) =>
  `${e.kind.padEnd(5)} ${String(e.group).padEnd(7)} ${e.pids.map((p) => `<${nodeOf(p)}.${p % 2 ** 32}>`).join(' ')}`;
const monitor = await pg.monitorScope({ onEvent: (e) => say(describeEvent(e)) });

say('starting 2 "resize" and 2 "hash" worker threads');
for (const role of ['resize', 'resize', 'hash', 'hash']) await spawn(role);

// Load: resize tasks go to the least-loaded member and may be retried elsewhere
// (they are idempotent); hash tasks stick to one member per user.
const done = { resize: 0, hash: 0 };
const failed = { resize: 0, hash: 0 };
const users = ['ada', 'grace', 'edsger', 'barbara', 'alan', 'donald', 'frances', 'john'];
let running = true;
async function pump(role: 'resize' | 'hash', inFlight: number): Promise<void> {
  let i = 0;
  const lane = async () => {
    while (running) {
      const user = users[i++ % users.length]!;
      try {
        await (role === 'resize'
          ? pg.dispatch(role, {}, { strategy: 'least-loaded', retries: 2, waitForMembers: 5000 })
          : pg.dispatch(role, { user }, { strategy: 'hash', key: user, waitForMembers: 5000 }));
        done[role]++;
      } catch (error) {
        failed[role]++;
        say(`${role} task failed: ${(error as Error).name}`);
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
}
const pumps = [pump('resize', 4), pump('hash', 4)];

// The live view.
let lastDone = { ...done };
let lastTick = performance.now();
let rates = { resize: 0, hash: 0 };
function view(): string {
  const now = performance.now();
  const dt = (now - lastTick) / 1000;
  if (dt >= 0.5) {
    rates = {
      resize: (done.resize - lastDone.resize) / dt,
      hash: (done.hash - lastDone.hash) / dt,
    };
    lastDone = { ...done };
    lastTick = now;
  }
  pg.refresh();
  const lines = [
    `procgroups demo — ${elapsed()}s of ${DURATION / 1000}s   nodes: ${cluster.nodes().join(', ')}`,
    '',
  ];
  lines.push('group    members (node)          tasks done   tasks/s   p50 ms   p99 ms');
  for (const role of ['resize', 'hash'] as const) {
    const members = pg
      .getMembers(role as Group)
      .map((p: Pid) => nodeOf(p))
      .sort();
    const s = pg.dispatchStats(role);
    lines.push(
      `${role.padEnd(8)} ${members.join(', ').padEnd(22)} ${String(done[role]).padStart(10)} ${rates[role].toFixed(0).padStart(9)} ${(s.p50 / 1000).toFixed(1).padStart(8)} ${(s.p99 / 1000).toFixed(1).padStart(8)}`,
    );
  }
  lines.push('', 'membership events (monitorScope):', ...log.slice(-8).map((l) => `  ${l}`));
  return lines.join('\n');
}
let drawn = 0;
const draw = () => {
  if (!tty) return;
  const out = view();
  process.stdout.write(`${drawn > 0 ? `\x1b[${drawn}A\x1b[0J` : ''}${out}\n`);
  drawn = out.split('\n').length;
};
const timer = setInterval(draw, 200);
const plain = tty
  ? undefined
  : setInterval(() => console.log(view().split('\n').slice(2, 5).join('\n')), 2000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
await sleep(DURATION * 0.35);
const victim = workers.find((w) => w.id === 1)!;
say(`killing worker node ${victim.id} (a "resize" member) with worker.terminate()`);
await victim.terminate();
await sleep(DURATION * 0.25);
say('starting a replacement "resize" worker');
await spawn('resize');
await sleep(DURATION * 0.4);

running = false;
await Promise.all(pumps);
clearInterval(timer);
if (plain !== undefined) clearInterval(plain);
draw();
await pg.demonitor(monitor.ref);
const r = pg.dispatchStats('resize');
const seconds = (performance.now() - t0) / 1000;
console.log(
  [
    '',
    'summary',
    `  resize: ${done.resize} tasks, ${failed.resize} failed, ${r.retries} retried on another member after the kill`,
    `  hash:   ${done.hash} tasks, ${failed.hash} failed (sticky: a user never moves while its member lives)`,
    `  dispatch latency: resize p50 ${(r.p50 / 1000).toFixed(1)} ms, p99 ${(r.p99 / 1000).toFixed(1)} ms`,
    `  ${((done.resize + done.hash) / seconds).toFixed(0)} tasks/s over ${seconds.toFixed(1)} s; ${log.length} membership events seen`,
  ].join('\n'),
);
await cluster.stop();
