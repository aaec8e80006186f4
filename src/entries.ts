/**
 * The modules the library starts threads with. They are resolved from this module, at
 * the root of the library's code, because the package runs in two layouts that keep
 * the same paths from that root: the compiled tree (`dist/src`, what the tests load)
 * and the bundle (`dist/pkg`, what `import 'procgroups'` loads). The bundle keeps each
 * entry point at its path and puts shared code in chunks at its root, where this
 * module's code lands; a URL made in `coordinator/` would be wrong there.
 */

/** The first module of a worker that `cluster.spawn()` starts (runtime/spawned.ts). */
export const SPAWNED_ENTRY = new URL('./runtime/spawned.js', import.meta.url);

/** The coordinator thread's module (coordinator/thread.ts). */
export const THREAD_ENTRY = new URL('./coordinator/thread.js', import.meta.url);
