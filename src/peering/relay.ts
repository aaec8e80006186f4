/**
 * Channels between a node of this process and a node of a peer process.
 *
 * To a node, a node of another process looks like any other: it gets a channel
 * (protocol/channel.ts) and posts frames on it. The far end of that channel is held
 * here, on the coordinator, which forwards what arrives to the peer's coordinator over
 * the broker; that coordinator posts it into the channel it holds to its own node. One
 * hop per process, no payload decoded on the way: the nodes serialize payloads
 * themselves (a channel in remote mode), so a coordinator only wraps bytes.
 *
 * Order: all frames of one pair of nodes go through one port on each side and one
 * broker subject, so they stay in order, as on a local channel.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';

interface Pair {
  /** Where frames from the remote node are posted: the first port of the pair. */
  inbound: MessagePort;
  ports: MessagePort[];
}

export interface RelayHost {
  /** Forwards frames a local node posted to `remote`, to that node's process. */
  forward(local: number, remote: number, batch: Uint8Array): void;
  /** Hands a local node its end of a new channel to `remote` (a `linked` message). */
  link(local: number, remote: number, port: MessagePort): void;
}

/** A pair's key: both ids are below 2^21, so this is a safe integer. */
const pairKey = (local: number, remote: number): number => local * 0x20_0000 + remote;

export class Relay {
  readonly #pairs = new Map<number, Pair>();
  readonly #host: RelayHost;

  constructor(host: RelayHost) {
    this.#host = host;
  }

  /** A local node made a channel to `remote` and handed us its other end. */
  adopt(local: number, remote: number, port: MessagePort): void {
    const key = pairKey(local, remote);
    const pair = this.#pairs.get(key);
    if (pair === undefined) this.#pairs.set(key, { inbound: port, ports: [port] });
    else pair.ports.push(port);
    this.#listen(local, remote, port);
  }

  /** Frames from `remote` for `local`: posted into the pair's channel, made now if need be. */
  deliver(local: number, remote: number, batch: Uint8Array): void {
    const key = pairKey(local, remote);
    let pair = this.#pairs.get(key);
    if (pair === undefined) {
      const { port1, port2 } = new MessageChannel();
      pair = { inbound: port1, ports: [port1] };
      this.#pairs.set(key, pair);
      this.#listen(local, remote, port1);
      this.#host.link(local, remote, port2);
    }
    // The buffer came from the broker and is ours alone: move it, do not copy it.
    const own = batch.byteOffset === 0 && batch.byteLength === batch.buffer.byteLength;
    if (own) pair.inbound.postMessage(batch, [batch.buffer as ArrayBuffer]);
    else pair.inbound.postMessage(batch);
  }

  /** A node went down, local or remote: every channel of its pairs closes. */
  drop(node: number, local: boolean): void {
    for (const [key, pair] of this.#pairs) {
      const l = Math.floor(key / 0x20_0000);
      const r = key % 0x20_0000;
      if ((local ? l : r) !== node) continue;
      this.#pairs.delete(key);
      for (const port of pair.ports) port.close();
    }
  }

  /** Every channel closes (the cluster stops). */
  close(): void {
    for (const pair of this.#pairs.values()) for (const port of pair.ports) port.close();
    this.#pairs.clear();
  }

  get size(): number {
    return this.#pairs.size;
  }

  #listen(local: number, remote: number, port: MessagePort): void {
    port.on('message', (batch: unknown) => {
      // A node posts its frames to another process as one buffer (protocol/remote-codec.ts).
      if (batch instanceof Uint8Array) this.#host.forward(local, remote, batch);
    });
    port.once('close', () => {
      const key = pairKey(local, remote);
      const pair = this.#pairs.get(key);
      if (pair === undefined) return;
      pair.ports = pair.ports.filter((p) => p !== port);
      if (pair.ports.length === 0) this.#pairs.delete(key);
      else if (pair.inbound === port) pair.inbound = pair.ports[0]!;
    });
  }
}
