// A demo worker: one process in the group of its role, doing about 2 ms of CPU per task.
import { workerData } from 'node:worker_threads';
import { connect } from 'procgroups';

const node = await connect();
const { role } = workerData as { role: string };
const seen = new Map<string, number>();

function burn(ms: number): number {
  const end = performance.now() + ms;
  let x = 1;
  while (performance.now() < end) for (let i = 0; i < 1000; i++) x = (x * 48271) % 2147483647;
  return x;
}

const pid = node.spawn((task: { user?: string }) => {
  burn(2);
  // 'hash' workers keep per-user state: sticky routing sends each user to one of them.
  if (task.user !== undefined) seen.set(task.user, (seen.get(task.user) ?? 0) + 1);
  return { node: node.id, count: task.user === undefined ? 0 : seen.get(task.user) };
});
await node.pg.join(role, pid);
