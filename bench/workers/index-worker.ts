/**
 * A thread of the index benchmark: either the writer (owns the IndexWriter, fills it,
 * churns on command) or a reader (measures read operations on command). The main
 * thread only orchestrates, so that it never competes for one of the two cores while
 * a figure is being measured.
 */
import { parentPort, workerData } from 'node:worker_threads';
import {
  encodeGroup,
  type Group,
  type GroupKey,
  IndexReader,
  IndexWriter,
  makePid,
} from '../../src/index.js';
import type { IndexHandle } from '../../src/index.js';
import { groupName, memberPid, SIZES, sizeGroup } from '../lib/index-data.js';
import { type Op, randomSequence, throughput } from '../lib/measure.js';

export interface WriterData {
  role: 'writer';
  groups: number;
  members: number;
  /** Groups the churn touches, disjoint from the ones readers read. */
  churnGroups: number;
}

export interface ReaderData {
  role: 'reader';
  handle: IndexHandle;
  groups: number;
  members: number;
}

export type Command =
  | { cmd: 'measure'; cases: ReadCase[]; ms: number; go?: Int32Array }
  | { cmd: 'churn'; stop: Int32Array }
  | { cmd: 'spin'; stop: Int32Array }
  | { cmd: 'write'; ms: number; batch: number; map: boolean }
  | { cmd: 'sizes'; ms: number }
  | { cmd: 'exit' };

export type ReadCase = 'members' | 'slice' | 'count' | 'pick' | 'get';

const port = parentPort!;
const data = workerData as WriterData | ReaderData;

if (data.role === 'writer') {
  const writer = new IndexWriter();
  writer.batch(() => {
    for (let i = 0; i < data.groups; i++) {
      writer.join(
        encodeGroup(groupName(i)),
        Array.from({ length: data.members }, (_, j) => memberPid(i, j)),
      );
    }
    for (const n of SIZES) {
      writer.join(
        encodeGroup(sizeGroup(n)),
        Array.from({ length: n }, (_, j) => memberPid(j, 0)),
      );
    }
    for (let i = 0; i < data.churnGroups; i++) {
      writer.join(
        encodeGroup(`churn-${i}`),
        Array.from({ length: data.members }, (_, j) => memberPid(i, j)),
      );
    }
  });
  const churnKeys = Array.from({ length: data.churnGroups }, (_, i) => encodeGroup(`churn-${i}`));
  const extras = churnKeys.map((_, i) => makePid(1, 0xfff0_0000 + i));
  /** `batch` join + leave pairs on the index, published as one version. */
  const indexPairs =
    (batch: number): Op<number> =>
    (_, i) => {
      writer.batch(() => {
        for (let k = 0; k < batch; k++) {
          const g = (i * batch + k) % churnKeys.length;
          writer.join(churnKeys[g]!, [extras[g]!]);
          writer.leave(churnKeys[g]!, [extras[g]!]);
        }
      });
      return batch;
    };
  // The writer's baseline: the same groups in a same-thread Map, copy-on-write. Like the
  // index, every change makes a new member list, so that whoever holds the old one keeps
  // a consistent copy; no version to publish, nothing shared.
  const cow = new Map<GroupKey, readonly number[]>(
    churnKeys.map((k, i) => [k, Array.from({ length: data.members }, (_, j) => memberPid(i, j))]),
  );
  const cowJoin = (key: GroupKey, pids: readonly number[]) =>
    cow.set(key, cow.get(key)!.concat(pids));
  const cowLeave = (key: GroupKey, pids: readonly number[]) => {
    const next = cow.get(key)!.slice();
    for (const p of pids) {
      const j = next.lastIndexOf(p);
      if (j >= 0) next.splice(j, 1);
    }
    cow.set(key, next);
  };
  const mapPairs =
    (batch: number): Op<number> =>
    (_, i) => {
      for (let k = 0; k < batch; k++) {
        const g = (i * batch + k) % churnKeys.length;
        cowJoin(churnKeys[g]!, [extras[g]!]);
        cowLeave(churnKeys[g]!, [extras[g]!]);
      }
      return batch;
    };
  port.postMessage({ type: 'ready', handle: writer.handle });
  port.on('message', (msg: Command) => {
    if (msg.cmd === 'churn') {
      // Join and leave one extra member per churn group until told to stop.
      let changes = 0;
      const extra = makePid(1, 0xffff_0000);
      while (Atomics.load(msg.stop, 0) === 0) {
        for (let k = 0; k < 64; k++) {
          const key = churnKeys[(changes >> 1) % churnKeys.length]!;
          writer.join(key, [extra]);
          writer.leave(key, [extra]);
          changes += 2;
        }
      }
      port.postMessage({ type: 'churned', changes });
    } else if (msg.cmd === 'spin') {
      // A control: keep the writer's core busy with plain arithmetic, touching no memory.
      let x = 1;
      while (Atomics.load(msg.stop, 0) === 0)
        for (let k = 0; k < 100_000; k++) x = (x * 1103515245 + 12345) | 0;
      port.postMessage({ type: 'churned', changes: x & 0 });
    } else if (msg.cmd === 'write') {
      // Writer throughput: a join then a leave of a member of a node already in the group,
      // `batch` pairs per published version; the clock is read every 512 pairs.
      const op = (msg.map ? mapPairs : indexPairs)(msg.batch);
      const pairs = throughput(op, [0], msg.ms, Math.max(1, 512 / msg.batch)) * msg.batch;
      port.postMessage({ type: 'written', perSecond: pairs * 2 });
    } else if (msg.cmd === 'exit') {
      port.close();
    }
  });
} else {
  const reader = new IndexReader(data.handle);
  // The same-thread baseline: a plain Map from the group name to its member array.
  const map = new Map<string, number[]>();
  for (let i = 0; i < data.groups; i++) {
    map.set(
      groupName(i),
      Array.from({ length: data.members }, (_, j) => memberPid(i, j)),
    );
  }
  const keys = randomSequence(1 << 16, data.groups).map(groupName);
  const ops: Record<ReadCase, Op<string>> = {
    members: (k) => reader.members(k).length,
    slice: (k) => map.get(k)!.slice().length,
    count: (k) => reader.count(k),
    pick: (k, i) => reader.memberAt(k, i),
    get: (k) => map.get(k)!.length,
  };
  // Sanity: the index and the baseline agree before anything is measured.
  for (let i = 0; i < data.groups; i++) {
    const a = reader.members(groupName(i) as Group).join();
    if (a !== map.get(groupName(i))!.join())
      throw new Error(`index and baseline differ for ${groupName(i)}`);
  }
  port.on('message', (msg: Command) => {
    if (msg.cmd === 'measure') {
      if (msg.go !== undefined) Atomics.wait(msg.go, 0, 0);
      const values = msg.cases.map((c) => throughput(ops[c], keys, msg.ms));
      port.postMessage({ type: 'measured', values });
    } else if (msg.cmd === 'sizes') {
      // members() on one group of each size, against slice() of a same-size array.
      const values: [number, number][] = [];
      for (const n of SIZES) {
        const key = [sizeGroup(n)];
        const array = Array.from({ length: n }, (_, j) => memberPid(j, 0) as number);
        const base = new Map([[sizeGroup(n), array]]);
        const ours = throughput(
          (k: string) => reader.members(k).length,
          key,
          msg.ms,
          n > 1000 ? 20 : 20_000,
        );
        const theirs = throughput(
          (k: string) => base.get(k)!.slice().length,
          key,
          msg.ms,
          n > 1000 ? 20 : 20_000,
        );
        values.push([1e9 / ours, 1e9 / theirs]);
      }
      port.postMessage({ type: 'sized', values });
    } else if (msg.cmd === 'exit') {
      reader.release();
      port.close();
    }
  });
  port.postMessage({ type: 'ready' });
}
