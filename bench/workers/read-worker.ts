/**
 * A node of the read-path benchmark: the holder (its processes are the members of every
 * group read) or a reader (measures the public read path on command, on this thread).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { connect } from '../../src/index.js';
import { groupName, sizeGroup } from '../lib/index-data.js';
import {
  GROUPS,
  LARGE,
  MEMBERS,
  measureReads,
  type ReadCase,
  readCases,
} from '../lib/read-cases.js';

export interface ReadCommand {
  cases: ReadCase[];
  ms: number;
}

const node = await connect();
const pg = node.pg;
const port = parentPort!;

if ((workerData as { role: string }).role === 'holder') {
  const largest = Math.max(...LARGE);
  const pids = Array.from({ length: largest }, () => node.spawn(() => null));
  const few = pids.slice(0, MEMBERS);
  await Promise.all(Array.from({ length: GROUPS }, (_, i) => pg.join(groupName(i), few)));
  for (const n of LARGE) await pg.join(sizeGroup(n), pids.slice(0, n));
  port.postMessage({ type: 'ready' });
} else {
  // Built on the first command: by then the holder has joined everything.
  let cases: ReturnType<typeof readCases> | undefined;
  port.on('message', (m: ReadCommand) => {
    cases ??= readCases(pg);
    port.postMessage({ type: 'measured', values: measureReads(cases, m.cases, m.ms) });
  });
  port.postMessage({ type: 'ready' });
}
