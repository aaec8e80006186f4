/**
 * A real `nats-server` on a loopback port, for the peering tests and the benchmark
 * (no test framework here, so bench/ can use it too). Every wait is on an event: the
 * server's "ready" log line, its exit.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';

/** Where `nats-server` is, or undefined. Debian installs it in /usr/sbin, outside a user's PATH. */
export function findNatsServer(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin'];
  for (const d of dirs) {
    const p = join(d, 'nats-server');
    if (d !== '' && existsSync(p)) return p;
  }
  return undefined;
}

export const INSTALL_HINT =
  'install it to run them: `sudo apt-get install nats-server` (Debian, Ubuntu), ' +
  '`brew install nats-server` (macOS), or a binary from https://github.com/nats-io/nats-server/releases';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A nats-server on 127.0.0.1; `stop()` and `start()` again keep its port (the broker-loss test). */
export class NatsServer {
  readonly port: number;
  readonly #bin: string;
  readonly #args: string[];
  #proc: ChildProcess | undefined;

  private constructor(bin: string, port: number, args: string[]) {
    this.#bin = bin;
    this.port = port;
    this.#args = args;
  }

  /** A server on a free loopback port, not started yet. */
  static async create(args: string[] = []): Promise<NatsServer> {
    const bin = findNatsServer();
    if (bin === undefined) throw new Error(`nats-server not found: ${INSTALL_HINT}`);
    return new NatsServer(bin, await freePort(), args);
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** Starts the server; resolves when it logs that it is ready. */
  start(): Promise<void> {
    const proc = spawn(this.#bin, ['-a', '127.0.0.1', '-p', String(this.port), ...this.#args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.#proc = proc;
    return new Promise((resolve, reject) => {
      let log = '';
      const timer = setTimeout(
        () => fail(new Error(`nats-server not ready in 20 s:\n${log}`)),
        20_000,
      );
      const fail = (e: Error) => {
        clearTimeout(timer);
        reject(e);
      };
      proc.stderr!.on('data', (chunk: Buffer) => {
        log += chunk.toString();
        if (log.includes('Server is ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once('error', fail);
      proc.once('exit', (code) => fail(new Error(`nats-server exited (${code}):\n${log}`)));
    });
  }

  /** Stops the server; resolves when it has exited. */
  async stop(): Promise<void> {
    const proc = this.#proc;
    this.#proc = undefined;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGKILL');
    await exited;
  }
}
