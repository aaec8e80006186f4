/**
 * The first module of every worker that `cluster.spawn()` starts. It takes the control
 * port and the URL of the user's module from the handshake waiting on `parentPort`,
 * imports that module, and once the module has finished evaluating (its top-level
 * `await connect()` and joins included) lets the coordinator know, so that `spawn()`
 * resolves when the worker is ready rather than when it merely connected.
 *
 * An error thrown while the module evaluates ends the worker with that error, as if
 * the module had been the worker's entry: `spawn()` rejects with it.
 */
import { type MessagePort, parentPort, receiveMessageOnPort } from 'node:worker_threads';
import { HANDSHAKE } from '../protocol/messages.js';
import { holdSpawnedPort, moduleEvaluated } from './connect.js';

const first = parentPort === null ? undefined : receiveMessageOnPort(parentPort);
const handshake = first?.message as { tag?: unknown; port?: unknown; entry?: unknown } | undefined;
if (handshake?.tag !== HANDSHAKE || typeof handshake.entry !== 'string') {
  throw new Error(
    'procgroups: this module is the entry of workers started by cluster.spawn() only',
  );
}
holdSpawnedPort(handshake.port as MessagePort);
await import(handshake.entry);
moduleEvaluated();
