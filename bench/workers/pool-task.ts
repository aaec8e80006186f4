/**
 * The task of the dispatch benchmark, for piscina and tinypool (a default export) and
 * for procgroups processes (the same function as a handler): a no-op, or about a
 * millisecond of CPU.
 */
export function burn(ms: number): number {
  const end = process.hrtime.bigint() + BigInt(Math.round(ms * 1e6));
  let x = 0;
  while (process.hrtime.bigint() < end)
    for (let i = 0; i < 1000; i++) x = (x * 1103515245 + 12345) | 0;
  return x;
}

export default function task(input: number | null): number | null {
  return input === null ? null : burn(input);
}
