/** A worker node of the dispatch benchmark: one process in group 'work', running the same task as the pools. */
import { parentPort } from 'node:worker_threads';
import { connect } from '../../src/index.js';
import task from './pool-task.js';

const node = await connect();
const pid = node.spawn(task);
await node.pg.join('work', pid);
parentPort!.postMessage({ type: 'ready' });
