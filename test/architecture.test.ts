/**
 * docs/ARCHITECTURE.md names the files of each path through the code; a rename that
 * leaves the document behind fails here. Every `src/…` path it mentions must exist.
 */
import { existsSync, readFileSync } from 'node:fs';
import test from 'ava';

/** The repository root, from dist/test/. */
const root = new URL('../../', import.meta.url);

test('every src/ path named in docs/ARCHITECTURE.md exists', (t) => {
  const text = readFileSync(new URL('docs/ARCHITECTURE.md', root), 'utf8');
  const named = new Set(text.match(/src\/[\w./-]*[\w/]/g) ?? []);
  t.true(named.size >= 20, `the document names files (found ${named.size})`);
  const missing = [...named].filter((p) => !existsSync(new URL(p, root)));
  t.deepEqual(missing, [], 'paths named in docs/ARCHITECTURE.md that do not exist');
});
