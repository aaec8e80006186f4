// A worker thread with one role: it serves that role's interface (api.ts) under the
// group named after the role.
import { createHash } from 'node:crypto';
import { workerData } from 'node:worker_threads';
import { connect } from 'procgroups';
import type { Hasher, Resizer } from './api.js';

const node = await connect();
const role = (workerData as { role: 'resize' | 'hash' }).role;

if (role === 'resize') {
  await node.serve<Resizer>('resize', {
    resize(img) {
      // Stand-in for CPU work: "resize" to half, burning a little CPU.
      let x = 0;
      for (let i = 0; i < 200_000; i++) x = (x * 31 + i) | 0;
      return {
        width: Math.round(img.width / 2),
        height: Math.round(img.height / 2),
        by: node.id,
        x: x & 1,
      };
    },
  });
} else {
  const digests = new Map<string, string>();
  await node.serve<Hasher>('hash', {
    update(user, data) {
      const digest = createHash('sha256')
        .update((digests.get(user) ?? '') + data)
        .digest('hex')
        .slice(0, 12);
      digests.set(user, digest);
      return { user, digest, by: node.id };
    },
  });
}
