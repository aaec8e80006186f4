/**
 * A worker node of the task benchmarks: one process in group 'work', running the same
 * task module as the pools (`workerData.task`; pool-task by default).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { connect } from '../../src/index.js';
import { loadTask } from './load-task.js';

const { task = new URL('./pool-task.js', import.meta.url).href } = (workerData ?? {}) as {
  task?: string;
};
const run = await loadTask(task);
const node = await connect();
const pid = node.spawn((input) => run(input));
await node.pg.join('work', pid);
parentPort!.postMessage({ type: 'ready' });
