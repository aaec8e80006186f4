// A worker that holds a configuration and reloads it when told.
import { connect } from 'procgroups';

const node = await connect();
let config = { version: 0 };
const pid = node.spawn((msg: { reload?: { version: number }; get?: true }) => {
  if (msg.reload) config = msg.reload;
  return config;
});
await node.pg.join('config-listeners', pid);
