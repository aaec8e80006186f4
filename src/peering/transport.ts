/**
 * The seam between a cluster and the broker its coordinators peer over. Small on
 * purpose: a broker needs only to carry opaque bytes to every peer of a cluster and to
 * one named peer. NATS is the first adapter (`procgroups/nats`); a Redis one needs the
 * same four calls.
 *
 * Delivery is at most once, as between Erlang nodes: the peering protocol
 * (peering.ts) detects gaps by sequence number and repairs them by sync, so an adapter
 * never retries.
 */

/** What the peering layer hands a transport when it opens it. */
export interface TransportHandlers {
  /** Bytes published by any process of the cluster (this one's own included: ignore them by id). */
  message(bytes: Uint8Array): void;
  /** The broker link went down (`false`) or came back (`true`). Peers time out meanwhile. */
  status(up: boolean): void;
}

/** An open link to the broker. */
export interface TransportLink {
  /** Largest message the broker takes, in bytes. */
  readonly maxPayload: number;
  /** Sends to every process of the cluster, in order with this link's other `broadcast`s. */
  broadcast(bytes: Uint8Array): void;
  /** Sends to one process, by its peer id. */
  sendTo(peer: string, bytes: Uint8Array): void;
  /** Sends what is buffered and lets go of the broker. */
  close(): Promise<void>;
}

/**
 * How a coordinator thread (`startCluster({ coordinator: 'thread', transport })`) makes
 * the transport for itself. A transport holds functions and, once open, a connection,
 * and neither can be sent to another thread; so the coordinator thread imports `module`
 * and calls its export `factory` with a structured clone of `options`, which must then
 * be plain data. Best defined as a non-enumerable property (as `natsTransport` does), so
 * that a transport spread into a wrapper does not pass for the one the recipe makes.
 */
export interface TransportRecipe {
  /** The URL of an ES module (`import.meta.url` of the module that made the transport). */
  readonly module: string;
  /** The name of the function of that module that makes the transport. */
  readonly factory: string;
  /** Its argument. */
  readonly options: unknown;
}

/**
 * A transport, as `startCluster({ transport })` takes it. `open` is called once, with
 * this process's peer id (random, never reused), and resolves when the link is up; it
 * rejects with a `TransportError` when the broker cannot be reached.
 */
export interface Transport {
  /** The cluster's name: processes with the same name peer; others never see each other. */
  readonly cluster: string;
  /** Milliseconds between heartbeats. */
  readonly heartbeatMs: number;
  /** Milliseconds of silence after which a peer is down. */
  readonly peerTimeoutMs: number;
  /** A name for this process in `cluster.peers()` (defaults to host:pid). */
  readonly name?: string;
  /** How a coordinator thread makes this transport; without it, only a coordinator on the calling thread can use it. */
  readonly recipe?: TransportRecipe;
  open(self: string, handlers: TransportHandlers): Promise<TransportLink>;
}
