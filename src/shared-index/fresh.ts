/**
 * The set of blocks allocated since the last publish: no reader can reach them yet, so
 * the writer may edit them in place or free them at once.
 *
 * It is emptied on every publish, up to millions of times a second, so it must not
 * allocate: an open-addressing table of (block, generation) pairs in typed arrays,
 * emptied by bumping the generation. Entries of older generations count as empty.
 */
export class FreshSet {
  #ptr = new Int32Array(64);
  #gen = new Int32Array(64);
  #mask = 63;
  #current = 1;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  add(ptr: number): void {
    if (this.#size * 2 >= this.#mask) this.#grow();
    let i = Math.imul(ptr, 0x9e3779b1) & this.#mask;
    while (this.#gen[i] === this.#current) {
      if (this.#ptr[i] === ptr) return;
      i = (i + 1) & this.#mask;
    }
    this.#ptr[i] = ptr;
    this.#gen[i] = this.#current;
    this.#size++;
  }

  has(ptr: number): boolean {
    return this.#find(ptr) >= 0;
  }

  /** Removes `ptr`; returns whether it was there. */
  delete(ptr: number): boolean {
    let i = this.#find(ptr);
    if (i < 0) return false;
    // Backward-shift deletion keeps probe sequences intact without tombstones.
    let j = i;
    for (;;) {
      j = (j + 1) & this.#mask;
      if (this.#gen[j] !== this.#current) break;
      const home = Math.imul(this.#ptr[j]!, 0x9e3779b1) & this.#mask;
      // Move j back to i if its home is not in the cyclic range (i, j].
      if (i <= j ? home <= i || home > j : home <= i && home > j) {
        this.#ptr[i] = this.#ptr[j]!;
        i = j;
      }
    }
    this.#gen[i] = 0;
    this.#size--;
    return true;
  }

  clear(): void {
    this.#size = 0;
    this.#current = (this.#current + 1) | 0;
    if (this.#current === 0) {
      this.#gen.fill(0);
      this.#current = 1;
    }
  }

  #find(ptr: number): number {
    let i = Math.imul(ptr, 0x9e3779b1) & this.#mask;
    while (this.#gen[i] === this.#current) {
      if (this.#ptr[i] === ptr) return i;
      i = (i + 1) & this.#mask;
    }
    return -1;
  }

  #grow(): void {
    const ptrs = this.#ptr;
    const gens = this.#gen;
    const current = this.#current;
    const size = (this.#mask + 1) * 2;
    this.#ptr = new Int32Array(size);
    this.#gen = new Int32Array(size);
    this.#mask = size - 1;
    this.#current = 1;
    this.#size = 0;
    for (let i = 0; i < ptrs.length; i++) if (gens[i] === current) this.add(ptrs[i]!);
  }
}
