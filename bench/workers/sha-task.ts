/**
 * A real CPU job: a chain of `n` sha256 digests, each of the one before (the jobs
 * benchmark calibrates `n` so that one job takes about a millisecond). Returns the last
 * digest in hex, a small result as real jobs have.
 */
import { createHash } from 'node:crypto';

export function chain(n: number): Buffer {
  let digest = Buffer.from('procgroups');
  for (let i = 0; i < n; i++) digest = createHash('sha256').update(digest).digest();
  return digest;
}

export default function task(n: number): string {
  return chain(n).toString('hex');
}
