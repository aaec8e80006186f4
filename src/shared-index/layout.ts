/**
 * Memory layout of the shared membership index, and why reading it is sound.
 *
 * ## Shape
 *
 * One growable `SharedArrayBuffer` per scope, addressed in 32-bit words. A fixed
 * header, a table of reader records, then an arena of immutable blocks:
 *
 * - a **root record** per published version (epoch): where the slot table and the
 *   bucket table start, their depths, a few counts, the root record of the version
 *   before, and the slots whose block this version changed (see "Catching up");
 * - the **slot table**, a persistent radix vector (fan-out 32) from a group's slot
 *   number to its **member block** `[gid, keyPtr, len, tag, (node, serial) × len]`,
 *   where `tag` is the epoch of the version that first published the block (see
 *   "Per-thread copies" below);
 * - the **bucket table**, a second radix vector from `hash & mask` to a bucket block
 *   `[n, (hash, slot) × n]`, used only when a thread meets a group key for the first
 *   time (its per-thread cache answers after that);
 * - **key records** `[hash, units, UTF-16 code units packed two per word]`.
 *
 * ## Why plain reads are enough (the memory-model argument)
 *
 * Every block is written once, with plain stores, while no reader can reach it, and is
 * then made reachable by one `Atomics.store` of the new root (`H_ROOT`) followed by one
 * `Atomics.store` of the new epoch (`H_EPOCH`). A reader starts a read section with
 * `Atomics.load(H_EPOCH)`, announces that epoch in its own reader record with
 * `Atomics.store`, and only then does `Atomics.load(H_ROOT)`. Those atomics are
 * sequentially consistent, so the load of the root *synchronizes with* the store that
 * published it, and every plain store that built the blocks reachable from that root
 * *happens before* the reader's plain loads of them. This is the message-passing idiom,
 * which the ECMAScript memory model guarantees on every architecture, ARM64 included,
 * not only on x86's stronger ordering.
 *
 * What remains is reuse: a block may be rewritten only when no reader can still be
 * reading it, otherwise the reader's plain loads would race with the writer's plain
 * stores. Reclamation is quiescent-state based (QSBR):
 *
 * - a block that a new version no longer references is *retired* with that version's
 *   epoch `r`;
 * - it is reused only once every reader record is either offline (`0`) or announces
 *   an epoch `≥ r`, read by the writer with `Atomics.load`.
 *
 * If the writer's load of a record sees the reader's announcement `a ≥ r`, the reader
 * read `H_EPOCH` after epoch `r` was published, so its later load of `H_ROOT` returns a
 * root of epoch `≥ r`, from which the retired block is unreachable. If the writer sees
 * an older announcement, it waits. If it sees `0` (offline), either the reader's last
 * section ended before that store — and the store, read by the writer, orders all the
 * reader's earlier plain loads before the writer's reuse — or the reader's next
 * announcement comes later in the single total order of SC atomics, and then so does
 * its load of the root, which is already past `r`. In every case no plain load of the
 * reader races with the reuse. There is no data race at all, so no torn value and no
 * validation loop is needed.
 *
 * The code of this protocol: the two publishing stores in writer.ts; reader records,
 * read sections, retirement and reuse, both sides, in reclamation.ts.
 *
 * ## Catching up
 *
 * Each root record points at the one published before it and lists the slots that its
 * version pointed at another block (or at none), up to `ROOT_MAX_CHANGED` (-1 beyond,
 * or when the writer is short of room). A reader that adopts a newer root follows this
 * chain back to the root it read before, and forgets only what it knew of the slots
 * listed on the way; when it cannot get there it checks all it knows again (each
 * entry on its next read, the listed arrays at once: lookup.ts, `#forget`).
 *
 * The chain is read like any other block, with plain loads, so it must obey the same
 * rule: no reader may read a root record that can have been reused. Root records are
 * therefore retired late: the one of the `n`-th publish is retired with the epoch of the
 * `n + ROOT_CHAIN`-th, not the `n + 1`-th, and a reader follows at most `ROOT_CHAIN`
 * root records, the one it loaded included. With root `E` loaded (of the `m`-th
 * publish), it reads root records of publishes `m - ROOT_CHAIN + 1` to `m`, each
 * retired, if at all, with the epoch of a publish after the `m`-th, so later than `E`:
 * exactly the case of a block that `E` still references, covered above. The pointer
 * to the root record before the last one it may read is a number it never follows.
 *
 * A slot that no root record on the way lists points at the same block in both
 * versions, and blocks do not change while referenced, so all that the reader knew of
 * it (the block's offset, tag, count, and its copy of the members) still holds.
 *
 * ## Why reads are wait-free
 *
 * A read follows pointers from an immutable root: a bounded number of steps, no retry,
 * no lock, nothing that depends on the writer making progress. A writer preempted in
 * the middle of an update has published nothing yet; readers keep reading the previous
 * version. The cost of a read section (three atomics) is paid once per synchronous job
 * of the reading thread (a microtask ends it) and every `READ_BUDGET` reads inside a
 * long job, so a hot read is one `Map.get` plus a handful of plain loads.
 *
 * The price is that a reader sees the index as of the start of its section: at most
 * `READ_BUDGET` reads or one synchronous job old. `refresh()` ends a section on demand
 * (the node agent does it on every acknowledgement, so a thread reads its own writes).
 * A thread that stays inside one synchronous job for a long time without reading holds
 * back reclamation of blocks retired meanwhile: memory grows, nothing breaks, and the
 * space is reused once its job ends (or it calls `release()`).
 *
 * ## Per-thread copies of member blocks
 *
 * A reader may keep, per group, a JS array of the members of the block it last read
 * (lookup.ts), and hand out copies of it instead of decoding the block again. The
 * array stands for the pair (block offset, tag). The offset alone would not do: a
 * retired block is reused once every reader has moved past it, possibly for the same
 * group, so the same offset can come back with other members. The tag tells them
 * apart: a block reused at offset `x` was retired at some epoch `r` after the old
 * block's tag and is written before the next publish, so it carries a tag newer than
 * `r`. Two blocks at one offset carry the same tag only if 2^32 versions were
 * published between them and this thread read neither the group in between, the same
 * bound as gids and epochs themselves, which also wrap at 2^32.
 *
 * The copy is checked only when the thread reads a new version that changed its slot,
 * or that the thread cannot relate to the one it read before ("Catching up"): its cache
 * entry then follows the slot again, and compares offset and tag. Within one version
 * the block it stands for cannot change. The arrays up to date with the version read
 * are also listed in a map of their own, from which the reader takes the arrays of the
 * slots a new version changed (all of them, when it cannot tell which). So the check
 * costs nothing on the hot path, a writer busy with other groups costs a reader only
 * the walk down the chain, and a thread still reads its own writes: the acknowledgement
 * ends its read section (`refresh()`), and its next read is of a version at least as
 * new as the write.
 *
 * ## Bounds
 *
 * Readers still bound every offset, length, depth and probe against their view, so a
 * corrupted buffer (any thread holding it can write to it) yields wrong answers, never
 * an exception, a hang, or an out-of-bounds access.
 */

/** Magic number in word 0: "pgix". */
export const MAGIC = 0x70676978;
/** Layout version in word 1; readers refuse a buffer with another version. */
export const LAYOUT_VERSION = 3;

// Header words.
export const H_MAGIC = 0;
export const H_VERSION = 1;
/** Word offset of the current root record. Written only with `Atomics.store`. */
export const H_ROOT = 2;
/** Epoch of the current root; never 0 (0 marks an offline reader). */
export const H_EPOCH = 3;
/** Words committed to the buffer so far (it only grows). */
export const H_COMMITTED = 4;
/** Number of reader records. */
export const H_MAX_READERS = 5;
/** Seed of the key hash, random per index so that colliding keys cannot be prepared. */
export const H_SEED = 6;
// Word 7 is reserved.
/** One more than the highest reader record ever claimed, so the writer scans no further. */
export const H_READERS_USED = 8;

/** Reader records start here; each takes a 64-byte line of its own to avoid false sharing. */
export const READERS_BASE = 16;
export const READER_STRIDE = 16;
/** Offsets inside a reader record. */
export const R_OWNER = 0;
export const R_EPOCH = 1;

/** Reads inside one synchronous job before the reader re-announces a newer epoch. */
export const READ_BUDGET = 1024;

// Root record fields.
export const ROOT_EPOCH = 0;
export const ROOT_SLOTS = 1;
export const ROOT_SLOTS_DEPTH = 2;
export const ROOT_BUCKETS = 3;
export const ROOT_BUCKETS_DEPTH = 4;
export const ROOT_BUCKET_BITS = 5;
export const ROOT_SLOT_LIMIT = 6;
export const ROOT_GROUPS = 7;
export const ROOT_MEMBERS = 8;
/** The root record of the version published before this one (0 for the first). */
export const ROOT_PREV = 9;
/**
 * How many slots this version pointed at another block (or at none), listed right
 * after the fixed fields; -1 when there were more than `ROOT_MAX_CHANGED`.
 */
export const ROOT_CHANGED = 10;
/** Words of a root record's fixed fields; the changed slots follow them. */
export const ROOT_WORDS = 11;
/** Most slots a root record lists; a version that changed more lists none (-1). */
export const ROOT_MAX_CHANGED = 32;
/**
 * Root records a reader may follow back from the one it loaded, that one included:
 * the writer keeps each root record unretired until this many newer ones are published.
 */
export const ROOT_CHAIN = 256;

// Member block fields.
export const B_GID = 0;
export const B_KEY = 1;
export const B_LEN = 2;
/** Epoch of the version that first published the block: tells a reused offset apart. */
export const B_TAG = 3;
export const B_PIDS = 4;

// Key record fields.
export const K_HASH = 0;
export const K_UNITS = 1;
export const K_CHARS = 2;

/** Radix vectors: 32 children per node, so a depth of 4 covers a million slots. */
export const RADIX_BITS = 5;
export const RADIX_FANOUT = 1 << RADIX_BITS;
export const RADIX_MASK = RADIX_FANOUT - 1;
/** Deepest radix vector a reader will follow (covers 2^30 entries). */
export const RADIX_MAX_DEPTH = 6;

/** First word of the arena, given the number of reader records. */
export function dataBase(maxReaders: number): number {
  return READERS_BASE + maxReaders * READER_STRIDE;
}

/** Words a member block of `len` members takes. */
export function memberBlockWords(len: number): number {
  return B_PIDS + 2 * len;
}

/** Words a key record of `units` UTF-16 code units takes. */
export function keyRecordWords(units: number): number {
  return K_CHARS + ((units + 1) >> 1);
}

/** The next epoch after `epoch`, in wrapping 32-bit arithmetic, skipping 0. */
export function nextEpoch(epoch: number): number {
  const next = (epoch + 1) | 0;
  return next === 0 ? 1 : next;
}

/** `a` is at or after `b` in wrapping epoch order (valid while they are < 2^31 apart). */
export function epochAtOrAfter(a: number, b: number): boolean {
  return ((a - b) | 0) >= 0;
}
