/**
 * What a thread that checks invariants on every read found: how many checks failed, and
 * the first few, described (cut to 300 characters). The index readers report it.
 *
 * Fixtures import this module, so it must not import ava at run time.
 */
export class Violations {
  count = 0;
  readonly samples: string[] = [];

  add(what: string): void {
    this.count++;
    if (this.samples.length < 8) this.samples.push(what.slice(0, 300));
  }
}
