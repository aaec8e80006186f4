/**
 * Which property names a service proxy may turn into remote methods. Shared by the
 * proxy (client.ts), which must not answer `then` (or `await api` would call the
 * service), and by `serve` (server.ts), which refuses methods the proxy cannot reach.
 */

/** The proxy's own members: a service cannot offer methods under these names. */
export const RESERVED = new Set(['with', 'all', 'tell', 'group', 'then']);

/**
 * Names the proxy never sends: asked for by the language and by tools (`await`,
 * `JSON.stringify`, string conversion, inspection), never meant as calls.
 */
const NOT_METHODS = new Set([
  'then',
  'constructor',
  'toJSON',
  'toString',
  'toLocaleString',
  'valueOf',
  'hasOwnProperty',
  'isPrototypeOf',
  'propertyIsEnumerable',
  '__proto__',
]);

/** True when a property read on a proxy should become a remote method. */
export function isRemoteName(name: string | symbol): name is string {
  return typeof name === 'string' && !NOT_METHODS.has(name);
}
