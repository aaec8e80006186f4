/**
 * A worker node as users start one: it imports the package by name, which resolves
 * (package.json "exports") to the bundle in dist/pkg, connects, and says `ready`.
 */
import { parentPort } from 'node:worker_threads';
import { connect } from 'procgroups';

await connect();
parentPort!.postMessage({ type: 'ready' });
