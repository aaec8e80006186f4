/**
 * docs/ARCHITECTURE.md names the files of each path through the code; a rename that
 * leaves the document behind fails here. Every path under `src/` it mentions must exist.
 */
import { existsSync, readFileSync } from 'node:fs';
import test from 'ava';

/** The repository root, from dist/test/. */
const root = new URL('../../', import.meta.url);

test('every src/ path named in docs/ARCHITECTURE.md exists', (t) => {
  const text = readFileSync(new URL('docs/ARCHITECTURE.md', root), 'utf8');
  // Paths in backticks, with or without the leading `src/`: `src/pg/`, `pg/scope.ts`.
  const rooms = 'core|protocol|runtime|coordinator|pg|dispatch|services|shared-index|peering|nats';
  const pattern = new RegExp(`\`(?:src/)?((?:${rooms})/[\\w./-]*)\``, 'g');
  const named = new Set([...text.matchAll(pattern)].map((m) => `src/${m[1]}`));
  t.true(named.size >= 20, `the document names files (found ${named.size})`);
  const missing = [...named].filter((p) => !existsSync(new URL(p, root)));
  t.deepEqual(missing, [], 'paths named in docs/ARCHITECTURE.md that do not exist');
});
