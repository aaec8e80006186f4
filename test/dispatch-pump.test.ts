/**
 * The dispatch queue's pump (dispatch/backpressure.ts), driven directly: a burst of
 * replies frees many slots in one job, and the dispatches waiting behind them must go
 * out in that job, in FIFO order, with one pass over the queue for the whole burst
 * rather than one per freed slot (a pass that finds no room costs a full pick); and in
 * a pass, a random pick takes the member the waiter before it went to (the hint).
 *
 * `Backpressure` is a plain class: the reads it makes go through a `MembershipView`
 * and the waiters are its own interface, so both are given here in memory, and every
 * step is deterministic.
 */
import test from 'ava';
import type { Group } from '../src/core/group.js';
import type { MembershipView } from '../src/core/membership-view.js';
import type { Pid } from '../src/core/pid.js';
import { Backpressure, type GroupState, type Waiter } from '../src/dispatch/backpressure.js';
import type { Strategy } from '../src/dispatch/options.js';
import { Picker } from '../src/dispatch/strategies.js';
import type { Slot } from '../src/dispatch/window.js';

const A = (2 ** 32 + 1) as Pid;
const B = (2 ** 33 + 1) as Pid;

/** A group `g` of the given members, read in memory (round-robin over them all). */
function view(members: Pid[]): MembershipView {
  const of = (g: Group) => (g === 'g' ? members : []);
  let rr = 0;
  return {
    members: (g) => of(g).slice(),
    count: (g) => of(g).length,
    memberAt: (g, i) => of(g)[i % Math.max(1, of(g).length)],
    next: (g) => of(g)[rr++ % Math.max(1, of(g).length)],
    membersInto(g, out) {
      of(g).forEach((p, i) => (out[i] = p));
      return of(g).length;
    },
    forEach(g, fn) {
      of(g).forEach(fn);
      return of(g).length;
    },
    groups: () => ['g'],
  };
}

/** A queue whose join monitor never answers: only freed slots pump it. */
function queue(members: Pid[]): Backpressure {
  const v = view(members);
  return new Backpressure(
    's',
    () => v,
    {
      monitor: () => new Promise<never>(() => {}),
      demonitor: async () => {},
    },
    1024,
  );
}

/**
 * A dispatch of group `g` that goes to the first member with room (the pass is under
 * test here, not the pick).
 */
class Dispatch implements Waiter {
  readonly group = 'g';
  readonly sticky = false;
  queued = false;
  went: Pid | undefined;
  slot: Slot | undefined;
  constructor(
    readonly state: GroupState,
    private readonly bp: Backpressure,
    private readonly members: Pid[],
    private readonly log: { picks: number; order: number[] },
    readonly n: number,
  ) {}
  pick(): Pid | undefined {
    this.log.picks++;
    return this.members.find((p) => this.bp.windows.hasRoom(p, undefined));
  }
  start(pid: Pid): void {
    this.went = pid;
    this.slot = this.bp.take(pid);
    this.log.order.push(this.n);
  }
  fail(error: unknown): void {
    throw error;
  }
}

test('slots freed in one job start their waiters at its end, FIFO, in one pass over the queue', async (t) => {
  const members = [A, B];
  const bp = queue(members);
  const state = bp.state('g');
  // Both members at their window (4, before any measurement): 8 calls in flight.
  const held = [A, A, A, A, B, B, B, B].map((p) => bp.take(p));
  t.false(bp.windows.hasRoom(A, undefined));
  t.false(bp.windows.hasRoom(B, undefined));
  const log = { picks: 0, order: [] as number[] };
  const ds = Array.from({ length: 10 }, (_, n) => new Dispatch(state, bp, members, log, n));
  for (const d of ds) t.is(bp.add(d, 100), undefined);
  t.is(state.waiting, 10);

  // A batch of three replies from A, handled in one job.
  for (const slot of held.slice(0, 3)) bp.release(slot, 0);
  t.is(log.picks, 0, 'nothing is picked while the batch is still being handled');

  await Promise.resolve(); // the end of that job: its microtasks run
  t.deepEqual(log.order, [0, 1, 2], 'the three oldest went, oldest first');
  t.true(
    ds.slice(0, 3).every((d) => d.went === A),
    'to the member that freed up',
  );
  t.is(
    log.picks,
    4,
    'three picks that went, and one that found no room; the six behind it not asked',
  );
  t.is(state.waiting, 7);

  // The next batch, from B, frees two more: the next two in line go, to B.
  for (const slot of held.slice(4, 6)) bp.release(slot, 0);
  await Promise.resolve();
  t.deepEqual(log.order, [0, 1, 2, 3, 4]);
  t.is(ds[3]!.went, B);
  t.is(ds[4]!.went, B);
  t.is(log.picks, 7);

  // Everything answered: the queue drains.
  const rest = [...held.slice(3, 4), ...held.slice(6), ...ds.slice(0, 5).map((d) => d.slot!)];
  for (const slot of rest) bp.release(slot, 0);
  await Promise.resolve();
  t.deepEqual(log.order, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  t.is(state.waiting, 0);
});

test('a slot freed with nobody waiting queues no pass at all', async (t) => {
  const bp = queue([A]);
  const state = bp.state('g');
  const log = { picks: 0, order: [] as number[] };
  const slot = bp.take(A);
  bp.release(slot, 0);
  await Promise.resolve();
  t.is(log.picks, 0);
  // And a waiter added later still goes on the next freed slot.
  const held = [A, A, A, A].map((p) => bp.take(p));
  const d = new Dispatch(state, bp, [A], log, 0);
  t.is(bp.add(d, 10), undefined);
  bp.release(held[0]!, 0);
  await Promise.resolve();
  t.is(d.went, A);
});

test("the pass's hint: a random pick takes the member the last waiter went to while it has room, and nothing else does", (t) => {
  const C = (2 ** 34 + 1) as Pid;
  const members = [A, B, C];
  const bp = queue(members);
  const v = view(members);
  const picker = new Picker(
    { id: 0, loadOf: () => 0, isAlive: () => true, nodes: () => [0] },
    () => v,
    bp.windows,
  );
  const pick = (strategy: Strategy, hint: Pid, tried?: Set<Pid>, maxInFlight?: number) =>
    picker.pick('g', strategy, 'k', tried, maxInFlight, hint);
  // Every random pick with room at the hint takes it (a random one would take it a third of the time).
  for (let i = 0; i < 30; i++) t.is(pick('random', B), B);
  // Full (its window, then a fixed bound): any other member with room.
  const held = [B, B, B, B].map((p) => bp.take(p));
  for (let i = 0; i < 30; i++) t.not(pick('random', B), B);
  const one = bp.take(A);
  t.is(pick('random', A, undefined, 1), C, 'a fixed bound of the dispatch applies to the hint');
  bp.release(one, 0);
  for (const slot of held) bp.release(slot, 0);
  // A dispatch that has tried members, and the other strategies, pick as they would.
  t.not(pick('random', B, new Set([B])), B);
  const rr = Array.from({ length: 6 }, () => pick('round-robin', B));
  t.deepEqual(new Set(rr), new Set(members), 'round-robin still goes round');
  t.not(pick('hash', C), undefined);
  t.is(pick('hash', C), pick('hash', A), 'hash goes by its key');
});
