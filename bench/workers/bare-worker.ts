/**
 * A bare worker thread (the baseline with nothing between caller and task but
 * `postMessage`): runs a task module on each message and posts the result back, in order.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadTask } from './load-task.js';

const run = await loadTask((workerData as { task: string }).task);
const port = parentPort!;
port.on('message', (input: unknown) => port.postMessage(run(input)));
