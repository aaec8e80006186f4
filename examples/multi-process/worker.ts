// A worker thread of the backend process, in the role `resize`.
import { connect } from 'procgroups';

const node = await connect();
const pid = node.spawn((msg: { width: number }) => {
  let x = 0;
  for (let i = 0; i < 200_000; i++) x = (x * 31 + i) | 0; // stand-in for CPU work
  return { width: Math.round(msg.width / 2), by: node.id, x: x & 1 };
});
await node.pg.join('resize', pid);
