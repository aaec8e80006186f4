/**
 * The commands a test runs on a node: the one command core of the agent fixture
 * (test/fixtures/agent.ts), which every suite that drives a worker node uses, and which
 * a test can run on node 0 too (`new Commands(cluster.node)`).
 *
 * An agent runs them on two processes: its root (serial 1) one at a time, and its side
 * process (serial `SIDE_SERIAL`) concurrently. Everything up to the first `await` of a
 * command runs synchronously, so commands sent in a row take effect on the node in that
 * order, on either process.
 *
 * Library errors are not caught: they travel back to the caller, rebuilt as the same
 * error classes.
 *
 * The fixture imports this module, so it must not import ava at run time.
 */
import { workerData } from 'node:worker_threads';
import * as library from '../../src/index.js';
import {
  type DispatchOptions,
  type Group,
  type MembershipEvent,
  type Node,
  type Pid,
  type Scope,
} from '../../src/index.js';
import {
  Collector,
  type MonitorSpec,
  runWorkload,
  type Started,
  type Watch,
  type WorkloadPlan,
  watch,
} from './monitor.js';
import { type Kind, type MemberKind, Members, Processes, Recorder } from './processes.js';
import { Rng } from './random.js';
import { pipeline, raiseAfterPost } from './reliability.js';
import { localViewOf, Rebuild, sorted, type View, viewOf } from './views.js';
import { Condition, errorName, POLL_LIMIT, type PollResult, settle, turn } from './wait.js';

/** Serial of an agent's side process (concurrent), next to its root process (serial 1). */
export const SIDE_SERIAL = 2;

/** A strategy a node can be asked to use (functions do not cross threads). */
export type NamedStrategy = 'random' | 'round-robin' | 'local-first' | 'least-loaded' | 'hash';

/**
 * Every command, by what it works on. `scope` names a scope of the node (`'pg'` or
 * none: the default scope). A `signal` makes the node raise it once the request has left
 * for the coordinator (see `raiseAfterPost` and `waitSignal` in reliability.ts).
 */
export type Command =
  // The node -----------------------------------------------------------------------------
  /** → its node id */
  | { cmd: 'id' }
  /** → the workerData it was started with */
  | { cmd: 'workerData' }
  /** → node.nodes() */
  | { cmd: 'nodes' }
  /** → node.stats() */
  | { cmd: 'stats' }
  /** A round trip: every message this node got before from the caller's node was handled. → true */
  | { cmd: 'ping' }
  /** The nodeup and nodedown events it heard, in order. → ['up' | 'down', id][] */
  | { cmd: 'nodeEvents' }
  /** Resolves once it heard the nodeup (or nodedown) of `id`. → true */
  | { cmd: 'waitUp'; id: number }
  | { cmd: 'waitDown'; id: number }
  /** Every processError it heard, as `'<pid>: <message>'`. → string[] */
  | { cmd: 'processErrors' }
  /** Heap of this thread after a full GC when available. → bytes */
  | { cmd: 'heap' }
  /** Posts each message raw on this node's control port (as the node). → count */
  | { cmd: 'raw'; messages: unknown[] }
  /** An uncaught throw of an Error 'boom' in the thread (it dies). → 'crashing' */
  | { cmd: 'crash' }
  /** Allocates until the thread runs out of heap. → never answers */
  | { cmd: 'oom' }
  /** Ends the thread with process.exit(code) after answering. → 'exiting' */
  | { cmd: 'exitProcess'; code?: number }
  /** Leaves the cluster (node.close()) after answering. → 'closing' */
  | { cmd: 'close' }
  // Processes ----------------------------------------------------------------------------
  /** Starts one process of `kind` (default `echo`), or `n` of them. → Pid, or Pid[] when `n` is given */
  | { cmd: 'spawn'; kind?: Kind; n?: number; concurrency?: number }
  /** Starts dispatch members, and joins them to `join` if given. → Pid[] */
  | { cmd: 'spawnMembers'; kind: MemberKind; n?: number; concurrency?: number; join?: Group }
  /** Opens gates of members (see `Members.open`). → number released */
  | { cmd: 'open'; pid?: Pid; n?: number; forever?: boolean }
  /**
   * Ends a local process (→ boolean), or several (→ boolean[]). `errorReason` rebuilds
   * an Error of that name and message as the reason; `signal` is raised once the exit's
   * leaves have left for the coordinator.
   */
  | {
      cmd: 'exit';
      pid: Pid;
      reason?: unknown;
      errorReason?: { name: string; message: string };
      signal?: SharedArrayBuffer;
    }
  | { cmd: 'exit'; pids: Pid[]; reason?: unknown }
  /** Exits the pids a few per turn of the event loop, while calls to them arrive. → count */
  | { cmd: 'exitSpread'; pids: Pid[]; reason?: unknown }
  /** → boolean */
  | { cmd: 'isAlive'; pid: Pid }
  /** The messages recorded by `pid`, once there are at least `count`. → unknown[] */
  | { cmd: 'received'; pid: Pid; count?: number }
  /** Every recording process with its messages. → [Pid, unknown[]][] */
  | { cmd: 'receivedAll' }
  // Messages ------------------------------------------------------------------------------
  /** → the answer (rejects with its error) */
  | { cmd: 'call'; pid: Pid; msg: unknown; timeout?: number }
  /**
   * Calls `pid`, which must fail. → `{ name, instance, message }`: the error's name, and
   * whether it is an instance of the library's class of that name on this thread
   */
  | { cmd: 'callError'; pid: Pid; msg: unknown }
  /** → node.send's result */
  | { cmd: 'send'; pid: Pid; msg: unknown }
  /** Calls every pid at once. → each outcome as `{ ok, value }` or `{ ok: false, error: name }` */
  | { cmd: 'callAll'; pids: Pid[]; msg: unknown }
  /** Calls `pid` `n` times, `window` in flight. → n */
  | { cmd: 'callLoop'; pid: Pid; n: number; window: number }
  /** Sends `{ from, seq }` for seq 0..n-1 to `pid`. → n */
  | { cmd: 'sendSeq'; pid: Pid; n: number }
  /** Sends `msg` to each pid. → true */
  | { cmd: 'sendEach'; pids: Pid[]; msg: unknown }
  /** Sends `{ from, seq }` for seq 0..n-1 to every target, round by round. → messages sent */
  | { cmd: 'mesh'; targets: Pid[]; n: number }
  /** Sends (or calls with) `{ buf }`, a `filled` ArrayBuffer of `size` bytes, transferred. → its byteLength after */
  | { cmd: 'sendBuffer'; pid: Pid; size: number; via: 'send' | 'call' }
  /**
   * Sends `{ from, seq }` for seq 0..n-1 to `pid`, then ends this thread: in the same
   * job with `now` (the frames are still batched), else on the next turn. → n
   */
  | { cmd: 'lastSends'; pid: Pid; n: number; now?: boolean }
  /** Ends a process (its monitors get `reason`), then this thread, in the same job. → never answers */
  | { cmd: 'exitThenEnd'; pid: Pid; reason: unknown }
  // Process monitors ------------------------------------------------------------------------
  /** Monitors `pid`. → a key for the two below */
  | { cmd: 'monitorStart'; pid: Pid }
  /** → the monitor's ref */
  | { cmd: 'monitorRef'; key: number }
  /** The monitor's DOWN reason (an Error as `{ error: { name, message } }`), once it came. */
  | { cmd: 'monitorResult'; key: number }
  // Groups ------------------------------------------------------------------------------------
  /** Joins `pids` (default: the root process). → 'ok' */
  | { cmd: 'join'; scope?: string; group: Group; pids?: Pid | Pid[]; signal?: SharedArrayBuffer }
  /** → 'ok' | 'not_joined' */
  | { cmd: 'leave'; scope?: string; group: Group; pids: Pid | Pid[]; signal?: SharedArrayBuffer }
  /** → Pid[] as read here (after a refresh) */
  | { cmd: 'members'; scope?: string; group: Group }
  /** → Pid[] */
  | { cmd: 'localMembers'; scope?: string; group: Group }
  /** → count(group) as read here (after a refresh) */
  | { cmd: 'count'; scope?: string; group: Group }
  /** → Group[] */
  | { cmd: 'whichGroups'; scope?: string }
  | { cmd: 'whichLocalGroups'; scope?: string }
  /** → View of the index, as read here */
  | { cmd: 'view'; scope?: string }
  /** → View of this node's own memberships */
  | { cmd: 'localView'; scope?: string }
  /** This node's own memberships in each scope, read in one job. → View[] */
  | { cmd: 'localViews'; scopes: string[] }
  /** Polls getMembers here until it equals `expected` (sorted). → PollResult<Pid[]> */
  | { cmd: 'waitMembers'; scope?: string; group: Group; expected: Pid[]; limit?: number }
  /** Polls the whole view here until it equals `expected`. → PollResult<View> */
  | { cmd: 'waitView'; scope?: string; expected: View; limit?: number }
  /** Tries bad group keys on every API here. → BadGroupReport[] */
  | { cmd: 'badGroups'; scope?: string }
  /** Joins `pids` to `group` in chunks of `chunk`, one list join each, `window` in flight. → joins */
  | { cmd: 'joinChunks'; scope: string; group: Group; pids: Pid[]; chunk: number; window: number }
  /** Leaves `pids` from `group` in chunks of `chunk`, one list leave each. → leaves */
  | { cmd: 'leaveChunks'; scope: string; group: Group; pids: Pid[]; chunk: number; window: number }
  /** Joins `pid` to groups `prefix:0..n-1`, `window` in flight. → n */
  | { cmd: 'joinMany'; scope: string; prefix: string; n: number; pid: Pid; window: number }
  /** `cycles` join/leave cycles of one process over changing group names, `window` in flight. → cycles */
  | { cmd: 'cycleChurn'; scope: string; cycles: number; window: number; groups: number }
  /** Toggles the membership of random `pids` in `group`, `steps` times. → Pid[] joined at the end */
  | { cmd: 'toggleChurn'; group: Group; pids: Pid[]; steps: number; seed: number }
  /** Spawns, joins, leaves and exits echo members of `group` at random. → Pid[] alive and joined at the end */
  | { cmd: 'lifeChurn'; group: Group; steps: number; seed: number }
  // Dispatch ---------------------------------------------------------------------------------
  /** `n` picks here. → (Pid | undefined)[] */
  | { cmd: 'picks'; group: Group; strategy: NamedStrategy; n: number; key?: string | number }
  /** One 'hash' pick per key here. → (Pid | undefined)[] */
  | { cmd: 'hashPicks'; group: Group; keys: (string | number)[] }
  /** `node.loadOf(pid)` as this node reads it. → number */
  | { cmd: 'loadOf'; pid: Pid }
  /** `node.load(pid)`: the owner's own count. → number */
  | { cmd: 'load'; pid: Pid }
  /** A dispatch from here. → its answer (rejects with its error) */
  | { cmd: 'dispatch'; group: Group; msg: unknown; options?: Omit<DispatchOptions, 'signal'> }
  /** → DispatchStats of this thread */
  | { cmd: 'dispatchStats'; group: Group }
  // Group monitors ------------------------------------------------------------------------------
  /** Starts a group or scope monitor, held here by name. → Started */
  | ({ cmd: 'watch' } & MonitorSpec)
  /** → CollectorState of the named monitor */
  | { cmd: 'watchEvents'; name: string }
  /** The named monitor's snapshot. → Started */
  | { cmd: 'watchSnapshot'; name: string }
  /** Names of the monitors held. → string[] */
  | { cmd: 'watchNames' }
  /** Reads an idle monitor's iterator to its end. → CollectorState */
  | { cmd: 'watchDrain'; name: string }
  /** → 'ok' */
  | { cmd: 'demonitor'; name: string }
  /**
   * Runs `runWorkload`; before the chain-0 operations listed in `monitorAt`, starts the
   * monitors given there (its mid-stream snapshots). → WorkloadReport
   */
  | { cmd: 'workload'; plan: WorkloadPlan; monitorAt?: [number, MonitorSpec][] }
  /** Starts a scope monitor that rebuilds the membership from its snapshot and events. → id */
  | { cmd: 'rebuildStart'; scope: string }
  /** → RebuildReport */
  | { cmd: 'rebuildView'; id: number };

export interface BadGroupReport {
  label: string;
  /** Error name each API failed with, or 'none' when it did not fail. */
  join: string;
  leave: string;
  getMembers: string;
  getLocalMembers: string;
  count: string;
}

/** What a rebuilding monitor holds: its view, the events it applied, the leaves it could not. */
export interface RebuildReport {
  view: View;
  events: number;
  anomalies: number;
  samples: string[];
}

/** Group keys that are not groups: values that cannot cross a thread are made here. */
const BAD_GROUPS: [string, unknown][] = [
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['object', { a: 1 }],
  ['symbol', Symbol('g')],
  ['null', null],
  ['undefined', undefined],
  ['boolean', true],
  ['bigint', 10n],
  ['function', () => 1],
  ['tuple with NaN', ['ok', Number.NaN]],
  ['tuple with object', ['ok', {}]],
  ['tuple with symbol', [Symbol('t')]],
  ['nested tuple', [['inner']]],
];

export interface CommandsOptions {
  /** The probe process that blocking members tell of each arrival (dispatch tests). */
  probe?: Pid;
  /** Posts a message raw on the node's control port (the agent keeps its port). */
  raw?: (message: unknown) => void;
}

/** The command interpreter of one node. */
export class Commands {
  readonly node: Node;
  readonly recorder = new Recorder();
  readonly processes: Processes;
  readonly members: Members;
  readonly #raw: ((message: unknown) => void) | undefined;
  readonly #nodeEvents: [kind: 'up' | 'down', id: number][] = [];
  readonly #nodeEventSeen = new Condition();
  readonly #processErrors: string[] = [];
  /** Process monitors (`monitorStart`), by key. */
  readonly #monitors = new Map<number, { ref: number; down: Promise<unknown> }>();
  #monitorKey = 0;
  /** Group monitors (`watch`), by name. */
  readonly #held = new Map<string, Watch>();
  /** Rebuilding monitors (`rebuildStart`), by id. */
  readonly #rebuilds = new Map<number, Rebuild>();
  #rebuildId = 0;

  constructor(node: Node, options: CommandsOptions = {}) {
    this.node = node;
    this.processes = new Processes(node, this.recorder);
    this.members = new Members(node, options.probe, this.recorder);
    this.#raw = options.raw;
  }

  /** Records the node's nodeup, nodedown and processError events (for `nodeEvents`, `waitUp`, …). */
  /**
   * Records node events and process errors. `downs: false` leaves out the 'nodedown'
   * listener: such a node is told of downs late (coordinator/down-notices.ts).
   */
  listen({ downs = true }: { downs?: boolean } = {}): void {
    this.node.on('nodeup', (id) => {
      this.#nodeEvents.push(['up', id]);
      this.#nodeEventSeen.notify();
    });
    if (downs)
      this.node.on('nodedown', (id) => {
        this.#nodeEvents.push(['down', id]);
        this.#nodeEventSeen.notify();
      });
    this.node.on('processError', (pid, error) => {
      this.#processErrors.push(`${pid}: ${error instanceof Error ? error.message : String(error)}`);
    });
  }

  /** The node's default scope for `'pg'` or none, else the named one. */
  scope(name: string | undefined): Scope {
    return name === undefined || name === 'pg' ? this.node.pg : this.node.scope(name);
  }

  /** Runs a command: its value, or a promise of it for a command that waits. */
  run(c: Command): unknown {
    const node = this.node;
    switch (c.cmd) {
      // The node
      case 'id':
        return node.id;
      case 'workerData':
        return workerData;
      case 'nodes':
        return node.nodes();
      case 'stats':
        return node.stats();
      case 'ping':
        return true;
      case 'nodeEvents':
        return this.#nodeEvents;
      case 'waitUp':
      case 'waitDown': {
        const kind = c.cmd === 'waitUp' ? 'up' : 'down';
        return this.#nodeEventSeen
          .until(() => this.#nodeEvents.some(([k, n]) => k === kind && n === c.id))
          .then(() => true);
      }
      case 'processErrors':
        return this.#processErrors;
      case 'heap': {
        (globalThis as { gc?: () => void }).gc?.();
        return process.memoryUsage().heapUsed;
      }
      case 'raw': {
        const post = this.#raw;
        if (post === undefined) throw new Error('this node has no raw control port');
        for (const m of c.messages) post(m);
        return c.messages.length;
      }
      case 'crash':
        setTimeout(() => {
          throw new Error('boom');
        });
        return 'crashing';
      case 'oom': {
        const hoard: unknown[] = [];
        const grow = (): void => {
          for (let i = 0; i < 2000; i++) hoard.push(new Array(1000).fill(i));
          setImmediate(grow);
        };
        grow();
        return new Promise(() => {});
      }
      case 'exitProcess':
        setImmediate(() => process.exit(c.code ?? 0));
        return 'exiting';
      case 'close':
        setImmediate(() => node.close());
        return 'closing';

      // Processes
      case 'spawn': {
        const kind = c.kind ?? 'echo';
        if (c.n === undefined) return this.processes.spawn(kind, c.concurrency);
        return Array.from({ length: c.n }, () => this.processes.spawn(kind, c.concurrency));
      }
      case 'spawnMembers': {
        const pids = this.members.spawn(c.kind, c.n ?? 1, c.concurrency);
        if (c.join === undefined) return pids;
        return node.pg.join(c.join, pids).then(() => pids);
      }
      case 'open':
        return this.members.open(c.pid, c.n, c.forever);
      case 'exit': {
        if ('pids' in c) return c.pids.map((p) => node.exit(p, c.reason));
        const exited = node.exit(
          c.pid,
          c.errorReason === undefined ? c.reason : errorOf(c.errorReason),
        );
        if (c.signal !== undefined) raiseAfterPost(c.signal);
        return exited;
      }
      case 'exitSpread': {
        const pids = c.pids;
        let i = 0;
        const step = () => {
          for (let k = 0; k < 3 && i < pids.length; k++) node.exit(pids[i++]!, c.reason);
          if (i < pids.length) setImmediate(step);
        };
        setImmediate(step);
        return pids.length;
      }
      case 'isAlive':
        return node.isAlive(c.pid);
      case 'received':
        return this.recorder.received(c.pid, c.count);
      case 'receivedAll':
        return this.recorder.all();

      // Messages
      case 'call':
        return node.call(c.pid, c.msg, c.timeout === undefined ? {} : { timeout: c.timeout });
      case 'callError':
        return node.call(c.pid, c.msg).then(
          () => ({ name: undefined, instance: false, message: 'it answered' }),
          (e: Error) => {
            const Class = (library as unknown as Record<string, unknown>)[e.name];
            return {
              name: e.name,
              instance: typeof Class === 'function' && e instanceof Class,
              message: e.message,
            };
          },
        );
      case 'send':
        return node.send(c.pid, c.msg);
      case 'callAll':
        return Promise.allSettled(c.pids.map((pid) => node.call(pid, c.msg))).then((settled) =>
          settled.map((s) =>
            s.status === 'fulfilled'
              ? { ok: true, value: s.value }
              : { ok: false, error: String((s.reason as Error)?.name) },
          ),
        );
      case 'callLoop':
        return pipeline(c.n, c.window, (i) => node.call(c.pid, i)).then(() => c.n);
      case 'sendSeq':
        for (let i = 0; i < c.n; i++) node.send(c.pid, { from: node.id, seq: i });
        return c.n;
      case 'sendEach':
        for (const pid of c.pids) node.send(pid, c.msg);
        return true;
      case 'mesh':
        for (let i = 0; i < c.n; i++)
          for (const t of c.targets) node.send(t, { from: node.id, seq: i });
        return c.n * c.targets.length;
      case 'sendBuffer':
        return this.#sendBuffer(c.pid, c.size, c.via);
      case 'lastSends':
        for (let i = 0; i < c.n; i++) node.send(c.pid, { from: node.id, seq: i });
        if (c.now === true) process.exit(0);
        setImmediate(() => process.exit(0));
        return c.n;
      case 'exitThenEnd':
        node.exit(c.pid, c.reason);
        process.exit(0);
        return true;

      // Process monitors
      case 'monitorStart': {
        const key = ++this.#monitorKey;
        this.#monitors.set(key, node.monitor(c.pid));
        return key;
      }
      case 'monitorRef':
        return this.#monitors.get(c.key)?.ref;
      case 'monitorResult':
        return this.#monitors.get(c.key)?.down.then(describeReason);

      // Groups
      case 'join': {
        const joined = this.scope(c.scope)
          .join(c.group, c.pids ?? node.self())
          .then(() => 'ok');
        if (c.signal !== undefined) raiseAfterPost(c.signal);
        return joined;
      }
      case 'leave': {
        const left = this.scope(c.scope).leave(c.group, c.pids);
        if (c.signal !== undefined) raiseAfterPost(c.signal);
        return left;
      }
      case 'members': {
        const scope = this.scope(c.scope);
        scope.refresh();
        return scope.getMembers(c.group);
      }
      case 'localMembers':
        return this.scope(c.scope).getLocalMembers(c.group);
      case 'count': {
        const scope = this.scope(c.scope);
        scope.refresh();
        return scope.count(c.group);
      }
      case 'whichGroups':
        return this.scope(c.scope).whichGroups();
      case 'whichLocalGroups':
        return this.scope(c.scope).whichLocalGroups();
      case 'view':
        return viewOf(this.scope(c.scope));
      case 'localView':
        return localViewOf(this.scope(c.scope));
      case 'localViews':
        return c.scopes.map((s) => localViewOf(this.scope(s)));
      case 'waitMembers': {
        const scope = this.scope(c.scope);
        const r: Promise<PollResult<Pid[]>> = settle(
          () => sorted(scope.getMembers(c.group)),
          sorted(c.expected),
          c.limit ?? POLL_LIMIT,
        );
        return r;
      }
      case 'waitView': {
        const scope = this.scope(c.scope);
        const r: Promise<PollResult<View>> = settle(
          () => viewOf(scope),
          c.expected,
          c.limit ?? POLL_LIMIT,
        );
        return r;
      }
      case 'badGroups':
        return this.#badGroups(this.scope(c.scope));
      case 'joinChunks': {
        const scope = this.scope(c.scope);
        const chunks = Math.ceil(c.pids.length / c.chunk);
        return pipeline(chunks, c.window, (i) =>
          scope.join(c.group, c.pids.slice(i * c.chunk, (i + 1) * c.chunk)),
        ).then(() => chunks);
      }
      case 'leaveChunks': {
        const scope = this.scope(c.scope);
        const chunks = Math.ceil(c.pids.length / c.chunk);
        return pipeline(chunks, c.window, async (i) => {
          const r = await scope.leave(c.group, c.pids.slice(i * c.chunk, (i + 1) * c.chunk));
          if (r !== 'ok') throw new Error(`leave of chunk ${i}: ${r}`);
        }).then(() => chunks);
      }
      case 'joinMany': {
        const scope = this.scope(c.scope);
        return pipeline(c.n, c.window, (i) => scope.join(`${c.prefix}:${i}`, c.pid)).then(
          () => c.n,
        );
      }
      case 'cycleChurn': {
        const scope = this.scope(c.scope);
        const pid = node.spawn((m) => m);
        return pipeline(c.cycles, c.window, async (i) => {
          const g = `churn:${i % c.groups}:${Math.floor(i / c.groups)}`;
          await scope.join(g, pid);
          const r = await scope.leave(g, pid);
          if (r !== 'ok') throw new Error(`churn leave ${g}: ${r}`);
        }).then(() => {
          node.exit(pid);
          return c.cycles;
        });
      }
      case 'toggleChurn':
        return this.#toggleChurn(c.group, c.pids, c.steps, c.seed);
      case 'lifeChurn':
        return this.#lifeChurn(c.group, c.steps, c.seed);

      // Dispatch
      case 'picks': {
        node.pg.refresh();
        const out: (Pid | undefined)[] = [];
        for (let i = 0; i < c.n; i++) out.push(node.pg.pick(c.group, c.strategy, c.key));
        return out;
      }
      case 'hashPicks':
        node.pg.refresh();
        return c.keys.map((k) => node.pg.pick(c.group, 'hash', k));
      case 'loadOf':
        return node.loadOf(c.pid);
      case 'load':
        return node.load(c.pid);
      case 'dispatch':
        node.pg.refresh();
        return node.pg.dispatch(c.group, c.msg, c.options);
      case 'dispatchStats':
        return node.pg.dispatchStats(c.group);

      // Group monitors
      case 'watch': {
        const { cmd: _, ...spec } = c;
        return this.#watch(spec);
      }
      case 'watchEvents':
        return this.#heldBy(c.name).c.state();
      case 'watchSnapshot': {
        const h = this.#heldBy(c.name);
        const out: Started = { ref: h.ref, snapshot: h.snapshot };
        return out;
      }
      case 'watchNames':
        return [...this.#held.keys()];
      case 'watchDrain': {
        const h = this.#heldBy(c.name);
        if (h.events === undefined) throw new Error(`agent: ${c.name} is not idle`);
        const drained = new Collector(h.events);
        return drained.done.then(() => drained.state());
      }
      case 'demonitor':
        return node.pg.demonitor(this.#heldBy(c.name).ref).then(() => 'ok');
      case 'workload': {
        const at = new Map<number, MonitorSpec[]>();
        for (const [i, spec] of c.monitorAt ?? []) at.set(i, [...(at.get(i) ?? []), spec]);
        return runWorkload(node, node.pg, c.plan, async (i) => {
          for (const spec of at.get(i) ?? []) await this.#watch(spec);
        });
      }
      case 'rebuildStart':
        return this.rebuildStart(c.scope);
      case 'rebuildView': {
        const m = this.#rebuilds.get(c.id);
        if (m === undefined) throw new Error(`no rebuilding monitor ${c.id}`);
        const report: RebuildReport = {
          view: m.state.view(),
          events: m.events,
          anomalies: m.anomalies,
          samples: m.samples,
        };
        return report;
      }
      default:
        throw new Error(`unknown command ${JSON.stringify(c)}`);
    }
  }

  /** Starts a scope monitor that rebuilds the membership of `scopeName`. → its id */
  async rebuildStart(scopeName: string): Promise<number> {
    const scope = this.scope(scopeName);
    // eslint-disable-next-line prefer-const -- assigned after the subscription, read by its callback
    let model: Rebuild | undefined;
    const early: MembershipEvent[] = [];
    const m = await scope.monitorScope({
      onEvent: (e) => {
        if (model === undefined) early.push(e);
        else model.apply(e);
      },
    });
    model = new Rebuild(m.groups);
    for (const e of early) model.apply(e);
    const id = ++this.#rebuildId;
    this.#rebuilds.set(id, model);
    return id;
  }

  /** The rebuilding monitor `id` (node 0 reads it directly). */
  rebuild(id: number): Rebuild | undefined {
    return this.#rebuilds.get(id);
  }

  async #watch(spec: MonitorSpec): Promise<Started> {
    const { name, group, ...options } = spec;
    const w = await watch(this.node.pg, group, options);
    this.#held.set(name, w);
    return { ref: w.ref, snapshot: [...w.snapshot] };
  }

  #heldBy(name: string): Watch {
    const h = this.#held.get(name);
    if (h === undefined) throw new Error(`agent: no monitor named ${name}`);
    return h;
  }

  async #sendBuffer(pid: Pid, size: number, via: 'send' | 'call'): Promise<unknown> {
    const buf = filled(size);
    if (via === 'call') await this.node.call(pid, { buf }, { transfer: [buf] });
    else this.node.send(pid, { buf }, [buf]);
    return { byteLengthAfter: buf.byteLength };
  }

  async #badGroups(scope: Scope): Promise<BadGroupReport[]> {
    const self = this.node.self();
    const out: BadGroupReport[] = [];
    for (const [label, bad] of BAD_GROUPS) {
      const g = bad as Group;
      out.push({
        label,
        join: await failure(() => scope.join(g, self)),
        leave: await failure(() => scope.leave(g, self)),
        getMembers: await failure(() => scope.getMembers(g)),
        getLocalMembers: await failure(() => scope.getLocalMembers(g)),
        count: await failure(() => scope.count(g)),
      });
    }
    return out;
  }

  async #toggleChurn(group: Group, pids: Pid[], steps: number, seed: number): Promise<Pid[]> {
    const pg = this.node.pg;
    const rng = new Rng(seed);
    const joined = new Set<Pid>();
    for (let i = 0; i < steps; i++) {
      const p = pids[rng.below(pids.length)]!;
      if (joined.has(p)) {
        await pg.leave(group, p);
        joined.delete(p);
      } else {
        await pg.join(group, p);
        joined.add(p);
      }
    }
    return [...joined];
  }

  async #lifeChurn(group: Group, steps: number, seed: number): Promise<Pid[]> {
    const pg = this.node.pg;
    const rng = new Rng(seed);
    const joined = new Set<Pid>();
    const idle: Pid[] = [];
    for (let i = 0; i < steps; i++) {
      const r = rng.below(4);
      const list = [...joined];
      if (r === 0 || list.length === 0) {
        const [p] = this.members.spawn('echo');
        await pg.join(group, p!);
        joined.add(p!);
      } else if (r === 1) {
        const p = list[rng.below(list.length)]!;
        await pg.leave(group, p);
        joined.delete(p);
        idle.push(p);
      } else if (r === 2 && idle.length > 0) {
        const p = idle.pop()!;
        await pg.join(group, p);
        joined.add(p);
      } else {
        // An exit leaves every group on its own.
        const p = list[rng.below(list.length)]!;
        this.node.exit(p, 'churn');
        joined.delete(p);
        await turn();
      }
    }
    return [...joined];
  }
}

/** An ArrayBuffer of `size` bytes holding a known pattern (see `isFilled`). */
export function filled(size: number): ArrayBuffer {
  const buf = new ArrayBuffer(size);
  const view = new Uint8Array(buf);
  for (let i = 0; i < size; i++) view[i] = i % 251;
  return buf;
}

/** True when `buf` is an ArrayBuffer of `size` bytes made by `filled`. */
export function isFilled(buf: unknown, size: number): boolean {
  if (!(buf instanceof ArrayBuffer) || buf.byteLength !== size) return false;
  const view = new Uint8Array(buf);
  for (let i = 0; i < size; i++) if (view[i] !== i % 251) return false;
  return true;
}

/** The name of the error `f` throws or rejects with, or 'none'. */
async function failure(f: () => unknown): Promise<string> {
  try {
    await f();
    return 'none';
  } catch (e) {
    return errorName(e);
  }
}

function errorOf({ name, message }: { name: string; message: string }): Error {
  const e = new Error(message);
  e.name = name;
  return e;
}

/** A DOWN reason as plain data: an Error becomes `{ error: { name, message } }`. */
function describeReason(reason: unknown): unknown {
  return reason instanceof Error
    ? { error: { name: reason.name, message: reason.message } }
    : reason;
}
