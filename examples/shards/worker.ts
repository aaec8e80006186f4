// A shard: keeps counters for the keys routed to it.
import { connect } from 'procgroups';

const node = await connect();
const counters = new Map<string, number>();
const pid = node.spawn((msg: { key: string }) => {
  const n = (counters.get(msg.key) ?? 0) + 1;
  counters.set(msg.key, n);
  return { shard: node.id, count: n };
});
await node.pg.join('shards', pid);
