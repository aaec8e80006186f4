/**
 * The growable SharedArrayBuffer behind one index, and the typed-array views over it.
 *
 * Views are fixed-length views of the growable buffer, not length-tracking ones: V8
 * (Node 20) compiles indexed access to fixed-length views as fast as to an ordinary
 * buffer, while length-tracking views were measured about 15× slower. The price is
 * that views must be rebuilt after a growth; the writer does it at once, readers at the
 * start of their next read section, when `H_COMMITTED` says the buffer is larger than
 * their views. Nothing a reader can reach lies beyond the committed length it read,
 * because the writer grows the buffer before it publishes any block placed in the new
 * part.
 */
import { IndexFullError, IndexLayoutError } from '../core/errors.js';
import { H_COMMITTED, H_MAGIC, H_VERSION, LAYOUT_VERSION, MAGIC } from './layout.js';

export const WORD = 4;

export class Arena {
  readonly buffer: SharedArrayBuffer;
  /** Int32 view of the committed part. Rebuilt by `grow` and `refresh`: never cache it across those. */
  i32: Int32Array;
  /** Uint16 view of the same bytes, for key records. */
  u16: Uint16Array;
  /** Length of the views in words. */
  words: number;

  constructor(buffer: SharedArrayBuffer) {
    if (!(buffer instanceof SharedArrayBuffer) || !buffer.growable) {
      throw new IndexLayoutError('a shared index lives in a growable SharedArrayBuffer');
    }
    this.buffer = buffer;
    this.words = 0;
    this.i32 = new Int32Array(0);
    this.u16 = new Uint16Array(0);
    this.view(Math.floor(buffer.byteLength / WORD));
  }

  /** Checks the header of a buffer made by `IndexWriter`. */
  static open(buffer: SharedArrayBuffer): Arena {
    const arena = new Arena(buffer);
    if (
      arena.words < 16 ||
      Atomics.load(arena.i32, H_MAGIC) !== MAGIC ||
      Atomics.load(arena.i32, H_VERSION) !== LAYOUT_VERSION
    ) {
      throw new IndexLayoutError(
        'this SharedArrayBuffer is not a procgroups index of this version (bad magic or layout version)',
      );
    }
    arena.refresh();
    return arena;
  }

  private view(words: number): void {
    this.words = words;
    this.i32 = new Int32Array(this.buffer, 0, words);
    this.u16 = new Uint16Array(this.buffer, 0, words * 2);
  }

  /**
   * Reader side: follows the committed length the writer announced. Called right after
   * the reader's `Atomics.load` of the epoch, so every growth published before the
   * epoch it announces is visible.
   */
  refresh(): void {
    const committed = Atomics.load(this.i32, H_COMMITTED);
    if (committed > this.words && committed * WORD <= this.buffer.byteLength) this.view(committed);
  }

  /** Writer side: makes at least `minWords` words addressable, doubling as it goes. */
  grow(minWords: number): void {
    if (minWords <= this.words) return;
    const max = Math.floor(this.buffer.maxByteLength / WORD);
    if (minWords > max) {
      throw new IndexFullError(
        `the shared index needs ${minWords * WORD} bytes but its maxBytes is ${max * WORD}; ` +
          'start the scope with a larger maxBytes',
      );
    }
    const words = Math.min(max, Math.max(minWords, this.words * 2));
    this.buffer.grow(words * WORD);
    this.view(words);
    Atomics.store(this.i32, H_COMMITTED, words);
  }
}
