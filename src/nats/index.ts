/**
 * `procgroups/nats`: peers clusters of several OS processes over NATS core pub/sub.
 *
 * ```ts
 * import { startCluster } from 'procgroups';
 * import { natsTransport } from 'procgroups/nats';
 * const cluster = await startCluster({
 *   transport: natsTransport({ servers: 'nats://127.0.0.1:4222', cluster: 'shop' }),
 * });
 * ```
 *
 * The NATS client, `@nats-io/transport-node`, is an optional peer dependency: only this
 * module loads it, when the cluster starts. Subjects: `procgroups.<cluster>.all` for
 * what every peer hears (heartbeats and membership), `procgroups.<cluster>.to.<peer>`
 * for channel frames to one peer. With NATS authorization, grant the cluster's
 * processes publish and subscribe on `procgroups.<cluster>.>` and no one else.
 */
import { hostname } from 'node:os';
import type * as Nats from '@nats-io/transport-node';
import type { NodeConnectionOptions } from '@nats-io/transport-node';
import { checkNumber, describe, MissingPackageError, TransportError } from '../core/errors.js';
import type { Transport, TransportHandlers, TransportLink } from '../peering/transport.js';

/** Options of `natsTransport()`: these, plus NATS's own connection options, passed through. */
export interface NatsTransportOptions extends Omit<NodeConnectionOptions, 'servers' | 'name'> {
  /** The NATS server(s): `'nats://127.0.0.1:4222'` or a list. */
  servers: string | string[];
  /** The cluster's name: processes with the same name peer, others never see each other. Letters, digits, `-` and `_`. */
  cluster: string;
  /** Milliseconds between heartbeats. Default 1,000. */
  heartbeatMs?: number;
  /** Milliseconds of silence after which a peer process is down (its members go). Default 5,000. */
  peerTimeoutMs?: number;
  /** This process's name in `cluster.peers()` and in the NATS server's connection list. Default host:pid. */
  name?: string;
}

const CLUSTER_NAME = /^[A-Za-z0-9_-]{1,128}$/;
const PACKAGE = '@nats-io/transport-node';

/** A transport over NATS for `startCluster({ transport })`. Checks its options now; connects when the cluster starts. */
export function natsTransport(options: NatsTransportOptions): Transport {
  if (typeof options !== 'object' || options === null)
    throw new TypeError(`natsTransport needs an options object, got ${describe(options)}`);
  const {
    servers,
    cluster,
    heartbeatMs = 1_000,
    peerTimeoutMs = 5_000,
    name = `${hostname()}:${process.pid}`,
    ...connection
  } = options;
  const list = typeof servers === 'string' ? [servers] : servers;
  if (!Array.isArray(list) || list.length === 0 || !list.every((s) => typeof s === 'string'))
    throw new TypeError(
      `servers must be a NATS URL or a list of them ('nats://127.0.0.1:4222'), got ${describe(servers)}`,
    );
  if (typeof cluster !== 'string' || !CLUSTER_NAME.test(cluster))
    throw new TypeError(
      `cluster must be a name of letters, digits, '-' and '_' (it becomes a NATS subject token), got ${describe(cluster)}`,
    );
  checkNumber('heartbeatMs', heartbeatMs, 1, { integer: true });
  checkNumber('peerTimeoutMs', peerTimeoutMs, 1, { integer: true });
  if (peerTimeoutMs <= heartbeatMs)
    throw new RangeError(
      `peerTimeoutMs (${peerTimeoutMs}) must be longer than heartbeatMs (${heartbeatMs}), or every peer times out between two heartbeats`,
    );
  if (typeof name !== 'string' || name.length > 256)
    throw new TypeError(`name must be a string of at most 256 characters, got ${describe(name)}`);
  const prefix = `procgroups.${cluster}`;
  const transport: Transport = {
    cluster,
    heartbeatMs,
    peerTimeoutMs,
    name,
    open: (self, handlers) => open({ ...connection, servers: list, name }, prefix, self, handlers),
  };
  // How a coordinator thread makes its own, from the same options (see TransportRecipe).
  // Not enumerable: a wrapper spread from this transport (another `open`, say) does not
  // inherit it, so a coordinator thread refuses the wrapper instead of silently making
  // the plain transport; and the options (credentials too) stay out of logs of it.
  Object.defineProperty(transport, 'recipe', {
    value: { module: import.meta.url, factory: 'natsTransport', options },
  });
  return transport;
}

async function open(
  options: NodeConnectionOptions,
  prefix: string,
  self: string,
  handlers: TransportHandlers,
): Promise<TransportLink> {
  let nats: typeof Nats;
  try {
    nats = await import(PACKAGE);
  } catch (error) {
    throw new MissingPackageError(
      `procgroups/nats needs the NATS client: npm install ${PACKAGE}`,
      PACKAGE,
      { cause: error },
    );
  }
  let nc: Awaited<ReturnType<typeof nats.connect>>;
  try {
    // Keep reconnecting for ever: while the broker is away, the cluster works locally.
    nc = await nats.connect({ maxReconnectAttempts: -1, reconnectTimeWait: 250, ...options });
  } catch (error) {
    throw new TransportError(
      `could not connect to NATS at ${String(options.servers)}: ${error instanceof Error ? error.message : String(error)}. Is nats-server running there?`,
      { cause: error },
    );
  }
  const deliver = (error: Error | null, msg: { data: Uint8Array }) => {
    if (error === null) handlers.message(msg.data);
  };
  nc.subscribe(`${prefix}.all`, { callback: deliver });
  nc.subscribe(`${prefix}.to.${self}`, { callback: deliver });
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') handlers.status(false);
      else if (s.type === 'reconnect') handlers.status(true);
    }
  })().catch(() => {});
  await nc.flush();
  const publish = (subject: string, bytes: Uint8Array) => {
    try {
      nc.publish(subject, bytes);
    } catch {
      // closed, or draining
    }
  };
  return {
    maxPayload: nc.info?.max_payload ?? 1 << 20,
    // At most once: a publish on a closed connection is lost like one the broker dropped.
    broadcast: (bytes) => publish(`${prefix}.all`, bytes),
    sendTo: (peer, bytes) => publish(`${prefix}.to.${peer}`, bytes),
    close: async () => {
      // Send what is buffered, but do not wait on a broker that is away.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        nc.flush().catch(() => {}),
        new Promise((resolve) => (timer = setTimeout(resolve, 1_000))),
      ]);
      clearTimeout(timer);
      await nc.close().catch(() => {});
    },
  };
}
