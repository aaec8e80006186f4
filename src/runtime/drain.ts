/**
 * A graceful stop, on one node (`drain` from the coordinator): every peer handles what
 * this node sent it before now, this node handles its own mailboxes, and its calls and
 * its requests to the coordinator (joins, leaves) in flight settle. Frames on a channel
 * are handled in order, so a DRAIN frame put behind them and answered with DRAINED once
 * the peer's mailboxes are empty proves the peer handled everything before it. The
 * coordinator bounds the whole wait with the stop's timeout.
 */
import type { Channel } from '../protocol/channel.js';
import { DRAIN, DRAINED } from '../protocol/frames.js';
import type { Control } from './control.js';
import type { Calls } from './pending-calls.js';
import type { Peers } from './peers.js';
import type { Processes } from './processes.js';

export class Drain {
  readonly #peers: Peers;
  readonly #processes: Processes;
  readonly #calls: Calls;
  readonly #control: Control;
  /** DRAIN frames awaiting their DRAINED, by id. */
  readonly #waiting = new Map<number, { peer: number; resolve(): void }>();
  #id = 0;

  constructor(peers: Peers, processes: Processes, calls: Calls, control: Control) {
    this.#peers = peers;
    this.#processes = processes;
    this.#calls = calls;
    this.#control = control;
  }

  /** Resolves once this node's part of a graceful stop is done. */
  async run(): Promise<void> {
    const peers = this.#peers.open().map(
      (channel) =>
        new Promise<void>((resolve) => {
          const id = ++this.#id;
          this.#waiting.set(id, {
            peer: channel.peer,
            resolve: () => {
              this.#waiting.delete(id);
              resolve();
            },
          });
          channel.post([DRAIN, id]);
        }),
    );
    const control = this.#control;
    await Promise.all([
      ...peers,
      this.#processes.idle(),
      this.#calls.whenEmpty(),
      control.whenAnswered(),
    ]);
    // Handlers may have sent or joined more meanwhile: let this node settle again.
    await this.#processes.idle();
    await control.whenAnswered();
  }

  /** A peer's DRAIN: everything it sent before is in a mailbox now; answer once they are empty. */
  onDrain(channel: Channel, id: number): void {
    void this.#processes.idle().then(() => {
      if (channel.open) channel.post([DRAINED, id]);
    });
  }

  onDrained(id: number): void {
    this.#waiting.get(id)?.resolve();
  }

  /** A peer that went down will answer no DRAIN: stop waiting for it. */
  peerGone(node: number): void {
    for (const d of this.#waiting.values()) if (d.peer === node) d.resolve();
  }
}
