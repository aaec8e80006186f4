// A piscina task file. The first task a thread runs attaches the thread to the cluster
// (bring your own thread) and joins a group; later tasks reuse that node.
import type { MessagePort } from 'node:worker_threads';
import { connect, type Node } from 'procgroups';

let node: Node | undefined;

export default async function task(input: { port?: MessagePort; n: number }): Promise<number> {
  if (node === undefined && input.port !== undefined) {
    node = await connect(input.port);
    const pid = node.spawn((x: number) => x * x);
    await node.pg.join('squares', pid);
  }
  return input.n + 1;
}
