// A worker thread with one role: it joins the group named after its role and does that kind of work.
import { createHash } from 'node:crypto';
import { workerData } from 'node:worker_threads';
import { connect } from 'procgroups';

const node = await connect();
const role = (workerData as { role: 'resize' | 'hash' }).role;

// 'hash' workers are stateful: each keeps a running digest per user, so every message
// about one user must reach the same worker (the caller routes by key).
const digests = new Map<string, string>();

const pid = node.spawn((msg: { user?: string; width?: number; height?: number; data?: string }) => {
  if (role === 'resize') {
    // Stand-in for CPU work: "resize" to half, burning a little CPU.
    let x = 0;
    for (let i = 0; i < 200_000; i++) x = (x * 31 + i) | 0;
    return {
      width: Math.round(msg.width! / 2),
      height: Math.round(msg.height! / 2),
      by: node.id,
      x: x & 1,
    };
  }
  const before = digests.get(msg.user!) ?? '';
  const digest = createHash('sha256')
    .update(before + msg.data)
    .digest('hex')
    .slice(0, 12);
  digests.set(msg.user!, digest);
  return { user: msg.user, digest, by: node.id };
});
await node.pg.join(role, pid);
