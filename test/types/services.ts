/**
 * Type test of typed services: compiled by `npm run typecheck` (and `npm run build`),
 * never run. Each `@ts-expect-error` line must fail to compile; if one compiles, tsc
 * reports the directive as unused and the type check fails.
 */
import type { Node, Scope, Service } from '../../src/index.js';
import { transfer } from '../../src/index.js';
import type * as Comlink from 'comlink';
import { pidEndpoint, type processEndpoint } from '../../src/services/comlink.js';

interface Images {
  resize(img: Uint8Array, width: number): Promise<Uint8Array>;
  stats(): { done: number };
  label: string;
}

/** True only when A and B are the same type. */
type Equal<A, B> =
  (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
/** `exact<E>()(value)` compiles only when the value's type is exactly E. */
function exact<E>() {
  return <V>(value: V, ..._same: Equal<V, E> extends true ? [] : [never]): V => value;
}

export async function callers(pg: Scope, images: Service<Images>, buf: Uint8Array) {
  const api = pg.service<Images>('images', { strategy: 'least-loaded', timeout: 5_000 });
  const small = await api.resize(buf, 800);
  exact<Uint8Array>()(small);
  // A synchronous method's result arrives as a promise.
  const stats = api.stats();
  void exact<Promise<{ done: number }>>()(stats);

  // @ts-expect-error: a method the interface lacks
  await api.crop(buf);
  // @ts-expect-error: an argument of the wrong type
  await api.resize(buf, '800');
  // @ts-expect-error: an argument missing
  await api.resize(buf);
  // @ts-expect-error: too many arguments
  await api.stats(1);
  // @ts-expect-error: a property that is not a method is not on the proxy
  void api.label;
  // @ts-expect-error: the answer is a promise, not the value
  const wrong: { done: number } = api.stats();
  void wrong;

  // Per call options, all and tell keep the types.
  const again = await images.with({ timeout: 100, signal: AbortSignal.timeout(50) }).resize(buf, 1);
  exact<Uint8Array>()(again);
  const all = await images.all.stats();
  exact<{ done: number }>()(all.replies[0]![1]);
  const told: number = images.tell.resize(buf, 2);
  void told;
  // @ts-expect-error: all has the interface's methods only
  await images.all.crop();
  // @ts-expect-error: an unknown option
  images.with({ timeOut: 5 });
  // transfer() keeps the argument's type.
  await api.resize(transfer(buf, [buf.buffer]), 800);
  // @ts-expect-error: the key function gets the interface's method names
  pg.service<Images>('images', { strategy: 'hash', key: (m) => (m === 'crop' ? 1 : 2) });
}

export async function servers(node: Node) {
  await node.serve<Images>('images', {
    async resize(img, width) {
      exact<number>()(width);
      return img.subarray(0, width);
    },
    stats: () => ({ done: 1 }),
    label: 'x',
  });
  await node.serve<Images>('images', {
    // @ts-expect-error: an implementation whose types do not match the interface
    resize: (img: Uint8Array, _width: string) => img,
    stats: () => ({ done: 1 }),
    label: 'x',
  });
  // @ts-expect-error: an implementation that misses a method
  await node.serve<Images>('images', { stats: () => ({ done: 1 }), label: 'x' });
}

export function comlinkShapes(node: Node, endpoint: ReturnType<typeof processEndpoint>) {
  // Both adapters are comlink Endpoints.
  const a: Comlink.Endpoint = pidEndpoint(node, endpoint.pid);
  const b: Comlink.Endpoint = endpoint;
  return [a, b];
}
