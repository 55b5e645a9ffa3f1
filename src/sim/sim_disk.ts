/**
 * One simulated node's durable storage: what survives a crash. It holds the hard state, the
 * latest snapshot (metadata and a copy of the registers) and the log entries after it.
 *
 * Semantics follow the driver contract in docs/ARCHITECTURE.md: appending an entry at an index
 * already stored replaces that entry and every later one; installing or taking a snapshot drops
 * the entries it covers. Writes are atomic per call; torn batches are modelled by the driver
 * writing only a prefix of a batch before it "crashes".
 *
 * @module
 */

import {
  type Entry,
  type HardState,
  JOINING_LOST_AFTER,
  type SnapshotMeta,
} from "../raft/types.ts";
import type { RegisterSnapshot } from "./register_state.ts";

/** A snapshot as stored: the core's metadata and the state machine at that index. */
export interface StoredSnapshot {
  readonly meta: SnapshotMeta;
  readonly state: RegisterSnapshot;
}

/** The durable state of one node. */
export class SimDisk {
  hardState: HardState = { term: 0, vote: null, commit: 0 };
  /**
   * 0, or the index recovery had to drop entries below after corruption: until the log
   * reaches it again the node may not vote (docs/STORAGE.md, "the no-vote rule"). Cleared
   * durably once the log gets there, like `Storage.noteCaughtUp()`. JOINING_LOST_AFTER on a
   * wiped disk started with `--join`, until the core stops joining.
   */
  lostAfter = 0;
  #snapshot: StoredSnapshot | null = null;
  /** Contiguous entries; `#entries[0]` (if any) has index {@linkcode firstIndex}. */
  #entries: Entry[] = [];

  /** The stored snapshot, or null. */
  get snapshot(): StoredSnapshot | null {
    return this.#snapshot;
  }

  /** The index the snapshot covers (0 without one). */
  get snapshotIndex(): number {
    return this.#snapshot?.meta.index ?? 0;
  }

  /** The index of the first stored entry (snapshot index + 1). */
  get firstIndex(): number {
    return this.snapshotIndex + 1;
  }

  /** The index of the last stored entry, or the snapshot index when none. */
  get lastIndex(): number {
    return this.snapshotIndex + this.#entries.length;
  }

  /** The term at `index`: 0 at index 0, the snapshot's term at its index, else the entry's. */
  termAt(index: number): number | undefined {
    if (index === 0) return 0;
    const snapIndex = this.snapshotIndex;
    if (index === snapIndex) return this.#snapshot!.meta.term;
    if (index < snapIndex) return undefined;
    return this.#entries[index - snapIndex - 1]?.term;
  }

  /** The stored entry at `index`, if any. */
  entryAt(index: number): Entry | undefined {
    const offset = index - this.snapshotIndex - 1;
    return offset < 0 ? undefined : this.#entries[offset];
  }

  /** The stored entries after the snapshot (a copy; what a restart recovers). */
  entries(): Entry[] {
    return [...this.#entries];
  }

  /**
   * Appends `entries` (contiguous, ascending) with replacement semantics. Entries at or below
   * the snapshot index are ignored. Returns an error message, without writing, when the batch
   * would leave a gap.
   */
  append(entries: readonly Entry[]): string | null {
    const snapIndex = this.snapshotIndex;
    let start = 0;
    while (start < entries.length && entries[start]!.index <= snapIndex) start++;
    if (start === entries.length) return null;
    const first = entries[start]!.index;
    if (first > this.lastIndex + 1) {
      return `entries start at ${first} but the stored log ends at ${this.lastIndex}`;
    }
    for (let i = start + 1; i < entries.length; i++) {
      if (entries[i]!.index !== entries[i - 1]!.index + 1) {
        return `entries are not contiguous at ${entries[i - 1]!.index} → ${entries[i]!.index}`;
      }
    }
    this.#entries.length = first - snapIndex - 1;
    for (let i = start; i < entries.length; i++) this.#entries.push(entries[i]!);
    if (this.lostAfter > 0 && this.lastIndex >= this.lostAfter) this.lostAfter = 0;
    return null;
  }

  /**
   * Corruption found at recovery: every entry after `keep` is dropped, the commit index is
   * clamped to what is still held and {@linkcode lostAfter} marks what was lost, as
   * `Storage.open` does for damage that is not a torn tail.
   */
  loseEntriesAfter(keep: number): void {
    const snapIndex = this.snapshotIndex;
    const cut = Math.max(keep, snapIndex);
    if (cut >= this.lastIndex) return;
    this.lostAfter = Math.max(this.lostAfter, this.lastIndex, this.hardState.commit);
    this.#entries.length = cut - snapIndex;
    this.hardState = { ...this.hardState, commit: Math.min(this.hardState.commit, cut) };
  }

  /**
   * The disk is lost and replaced by an empty one, bootstrapped with `--join` (node
   * replacement): only the joining marker, as `openNode` writes it.
   */
  wipe(): void {
    this.hardState = { term: 0, vote: null, commit: 0 };
    this.#snapshot = null;
    this.#entries = [];
    this.lostAfter = JOINING_LOST_AFTER;
  }

  /**
   * Stores `snapshot` as the newest one. With `keepSuffix`, entries after the snapshot index are
   * kept when the stored log agrees with the snapshot at its index (taking a snapshot locally);
   * otherwise the whole log is replaced by the snapshot point (installing one from a leader).
   */
  storeSnapshot(snapshot: StoredSnapshot, keepSuffix: boolean): void {
    const { index, term } = snapshot.meta;
    let suffix: Entry[] = [];
    if (keepSuffix && this.termAt(index) === term) {
      suffix = this.#entries.slice(index - this.snapshotIndex);
    }
    this.#snapshot = snapshot;
    this.#entries = suffix;
    if (this.lostAfter > 0 && this.lastIndex >= this.lostAfter) this.lostAfter = 0;
  }
}
