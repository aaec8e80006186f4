// A worker whose processes join and leave a group over time.
import { connect } from 'procgroups';

const node = await connect();
const pids = [node.spawn(() => 'a'), node.spawn(() => 'b')];
await node.pg.join('jobs', pids);
await node.pg.leave('jobs', pids[0]!);
node.exit(pids[1]!);
node.close();
