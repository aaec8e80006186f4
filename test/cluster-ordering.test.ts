/**
 * Erlang's ordering guarantee across a node going down: a reply, a message or a process
 * monitor's DOWN that a node sent before its thread ended arrives before the down signal
 * (`NodeDownError`, `'nodedown'`). The coordinator's notice travels on another port than
 * the frames between nodes, so it can overtake them; these tests make that race likely
 * (many nodes ending at once, two spinning threads on a 2-core machine) and check that
 * nothing sent is lost. They run one at a time, each with its own load.
 */
import test from 'ava';
import { NodeDownError, type Pid } from '../src/index.js';
import { type Agent, rejects, spawnAgent, start } from './support/cluster.js';
import { cpuLoad } from './support/load.js';

/** Rounds of `NODES` nodes each; 50 calls in all, as in the report of the race. */
const ROUNDS = 10;
const NODES = 5;

type CallOutcome = { ok: true; value: unknown } | { ok: false; error: string };

async function mortals(cluster: Awaited<ReturnType<typeof start>>): Promise<[Agent, Pid][]> {
  const agents = await Promise.all(Array.from({ length: NODES }, () => spawnAgent(cluster)));
  return Promise.all(
    agents.map(async (a): Promise<[Agent, Pid]> => [a, await a.spawn('lastWords')]),
  );
}

for (const how of ['exit', 'close'] as const) {
  test.serial(
    `a reply sent just before its node ends (${how === 'exit' ? 'process.exit' : 'node.close()'}) reaches a caller on another worker, under CPU load`,
    async (t) => {
      cpuLoad(t);
      const cluster = await start(t);
      const caller = await spawnAgent(cluster);
      const outcomes: CallOutcome[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const pairs = await mortals(cluster);
        outcomes.push(
          ...(await caller.cmd<CallOutcome[]>({
            cmd: 'callAll',
            pids: pairs.map(([, p]) => p),
            msg: how,
          })),
        );
      }
      t.deepEqual(
        outcomes.filter((o) => !o.ok),
        [],
        'every call got the reply its process sent before the node ended',
      );
      t.is(outcomes.length, ROUNDS * NODES);
    },
  );
}

test.serial(
  'a reply sent just before its node ends reaches a caller on the coordinator thread, under CPU load',
  async (t) => {
    cpuLoad(t);
    const cluster = await start(t);
    const failures: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const pairs = await mortals(cluster);
      const settled = await Promise.allSettled(pairs.map(([, p]) => cluster.node.call(p, 'exit')));
      for (const s of settled) if (s.status === 'rejected') failures.push(String(s.reason));
    }
    t.deepEqual(failures, []);
  },
);

for (const now of [false, true]) {
  test.serial(
    `messages sent just before a node ends (${now ? 'process.exit in the same job' : 'exit on the next turn'}) all arrive before its nodedown, under CPU load`,
    async (t) => {
      cpuLoad(t);
      const cluster = await start(t);
      const receiver = await spawnAgent(cluster);
      const sink = await receiver.spawn('recorder');
      const N = 200;
      for (let round = 0; round < ROUNDS; round++) {
        const senders = await Promise.all(Array.from({ length: NODES }, () => spawnAgent(cluster)));
        await Promise.all(
          senders.map(async (s) => {
            const sent = s.cmd({ cmd: 'lastSends', pid: sink, n: N, now });
            // Ending the thread in the same job, the sender never answers this command.
            if (now) await rejects(t, sent, { instanceOf: NodeDownError });
            else t.is(await sent, N);
          }),
        );
        for (const s of senders) t.true(await receiver.cmd({ cmd: 'waitDown', id: s.id }));
      }
      // Read once every sender is down: nothing more can arrive, and none may be missing.
      const got = await receiver.cmd<{ from: number; seq: number }[]>({
        cmd: 'received',
        pid: sink,
        count: 0,
      });
      const bySender = new Map<number, number[]>();
      for (const m of got) bySender.set(m.from, [...(bySender.get(m.from) ?? []), m.seq]);
      t.is(bySender.size, ROUNDS * NODES, 'every sender was heard');
      const inOrder = Array.from({ length: N }, (_, i) => i);
      for (const [from, seqs] of bySender)
        t.deepEqual(seqs, inOrder, `all of node ${from}'s messages, in order`);
    },
  );
}

test.serial(
  'a process monitor gets the exit reason, not nodedown, when the process ends just before its node, under CPU load',
  async (t) => {
    cpuLoad(t);
    const cluster = await start(t);
    const watcher = await spawnAgent(cluster);
    const reasons: unknown[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const pairs = await mortals(cluster);
      const keys = await Promise.all(
        pairs.map(([, pid]) => watcher.cmd<number>({ cmd: 'monitorStart', pid })),
      );
      // The watcher's MONITOR frames have reached each process's node once a call to its root
      // process (over the same link) has been answered there.
      await Promise.all(
        pairs.map(([a]) => watcher.cmd({ cmd: 'call', pid: a.root, msg: { cmd: 'id' } })),
      );
      await Promise.all(
        pairs.map(([a, pid]) =>
          a.cmd({ cmd: 'exitThenEnd', pid, reason: 'finished' }).catch(() => {}),
        ),
      );
      for (const key of keys) reasons.push(await watcher.cmd({ cmd: 'monitorResult', key }));
    }
    t.deepEqual(
      reasons,
      Array.from({ length: ROUNDS * NODES }, () => 'finished'),
    );
  },
);
