/**
 * The core's in-memory log: the entries after the latest snapshot, the commit, applied and
 * persisted indexes, and the configuration history those entries carry.
 *
 * Index bookkeeping, all in log indexes:
 *
 *     snapshotIndex ≤ applied ≤ committed ≤ lastIndex      (applied may lag a new snapshot
 *     snapshotIndex ≤ persisted ≤ lastIndex                 until the driver installed it)
 *
 * - `persisted`: entries up to here are durable in local storage *and* identical to the
 *   in-memory ones; entries after it go out in the next `Ready.entries`. Truncating a
 *   conflicting suffix pulls it back, so the replacement is written again.
 * - `committed` never decreases, and never moves past `lastIndex`.
 * - entries are contiguous, start at `snapshotIndex + 1`, and their terms never decrease.
 *
 * Membership (thesis §4.1): a configuration is in force as soon as its entry is in the log.
 * The history keeps one record per ConfChange entry after the snapshot, on top of the base
 * configuration (the snapshot's, or the boot membership); truncating an entry rolls its
 * configuration back.
 *
 * @module
 */

import { assert } from "../util/assert.ts";
import { applyConfChange, decodeConfChange } from "./conf_change.ts";
import { type Entry, EntryType, type Membership, type SnapshotMeta } from "./types.ts";

interface ConfigRecord {
  readonly index: number;
  readonly membership: Membership;
}

/** What the log starts from (see {@linkcode RaftBootState}). */
export interface RaftLogInit {
  readonly snapshot: SnapshotMeta | null;
  readonly entries: readonly Entry[];
  readonly membership: Membership;
  readonly committed: number;
  readonly applied: number;
}

/** The entries after the latest snapshot and the indexes that describe them. */
export class RaftLog {
  #snapshot: SnapshotMeta | null;
  #snapshotIndex: number;
  #snapshotTerm: number;
  /** entries[i] has index snapshotIndex + 1 + i. */
  #entries: Entry[] = [];
  #committed: number;
  #applied: number;
  #persisted: number;
  /** A snapshot received from the leader that the driver has not installed yet. */
  #pendingSnapshot: SnapshotMeta | null = null;
  #configs: ConfigRecord[];

  constructor(init: RaftLogInit) {
    this.#snapshot = init.snapshot;
    this.#snapshotIndex = init.snapshot?.index ?? 0;
    this.#snapshotTerm = init.snapshot?.term ?? 0;
    this.#configs = [{
      index: this.#snapshotIndex,
      membership: init.snapshot?.membership ?? init.membership,
    }];
    // Storage may still hold entries the snapshot covers; they are not part of the log.
    const entries = init.entries.filter((e) => e.index > this.#snapshotIndex);
    const first = entries[0];
    assert(
      first === undefined || first.index === this.#snapshotIndex + 1,
      `boot entries start at ${first?.index}, expected ${this.#snapshotIndex + 1}`,
    );
    this.#committed = this.#snapshotIndex;
    this.#applied = this.#snapshotIndex;
    this.#persisted = this.#snapshotIndex;
    this.#appendUnchecked(entries);
    this.#persisted = this.lastIndex;
    // An applied entry was committed, even if the hard state was written before it.
    const committed = Math.max(init.committed, init.applied, this.#snapshotIndex);
    assert(
      committed <= this.lastIndex,
      `boot commit ${committed} is past the last stored entry ${this.lastIndex}`,
    );
    this.#committed = committed;
    this.#applied = Math.max(init.applied, this.#snapshotIndex);
  }

  /** The latest snapshot (received or taken), or null. */
  get snapshot(): SnapshotMeta | null {
    return this.#snapshot;
  }

  /** A received snapshot the driver still has to install, or null. */
  get pendingSnapshot(): SnapshotMeta | null {
    return this.#pendingSnapshot;
  }

  get snapshotIndex(): number {
    return this.#snapshotIndex;
  }

  get firstIndex(): number {
    return this.#snapshotIndex + 1;
  }

  get lastIndex(): number {
    return this.#snapshotIndex + this.#entries.length;
  }

  get lastTerm(): number {
    return this.#entries[this.#entries.length - 1]?.term ?? this.#snapshotTerm;
  }

  get committed(): number {
    return this.#committed;
  }

  get applied(): number {
    return this.#applied;
  }

  get persisted(): number {
    return this.#persisted;
  }

  /** The configuration in force: the latest one in the log. */
  get membership(): Membership {
    return this.#lastConfig().membership;
  }

  /** The index of the entry that set the configuration in force (≤ snapshotIndex for base). */
  get membershipIndex(): number {
    return this.#lastConfig().index;
  }

  /** The configuration in force at `index` (snapshotIndex ≤ index ≤ lastIndex). */
  membershipAt(index: number): Membership {
    assert(
      index >= this.#snapshotIndex && index <= this.lastIndex,
      `membership at ${index} is outside [${this.#snapshotIndex}, ${this.lastIndex}]`,
    );
    let found = this.#configs[0];
    for (const record of this.#configs) {
      if (record.index > index) break;
      found = record;
    }
    assert(found !== undefined, "configuration history is never empty");
    return found.membership;
  }

  /** The term of the entry at `index`, or undefined when it is compacted or absent. */
  term(index: number): number | undefined {
    if (index === this.#snapshotIndex) return this.#snapshotTerm;
    return this.#entries[index - this.#snapshotIndex - 1]?.term;
  }

  /** The entry at `index`, or undefined when it is compacted or absent. */
  entry(index: number): Entry | undefined {
    return this.#entries[index - this.#snapshotIndex - 1];
  }

  /** Raft §5.4.1: whether a log ending at (index, term) is at least as up to date as ours. */
  isUpToDate(index: number, term: number): boolean {
    const lastTerm = this.lastTerm;
    return term > lastTerm || (term === lastTerm && index >= this.lastIndex);
  }

  /** Appends entries produced by this node as leader. */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    assert(first.index === this.lastIndex + 1, `leader append at ${first.index} leaves a gap`);
    this.#appendUnchecked(entries);
  }

  /**
   * Raft §5.3 receiver rules: if our log holds (prevIndex, prevTerm), drops any conflicting
   * suffix, appends what is new and advances the commit to min(commit, last new index).
   * Returns the last index now known to match the leader's, or null when prev mismatches.
   */
  maybeAppend(
    prevIndex: number,
    prevTerm: number,
    commit: number,
    entries: readonly Entry[],
  ): number | null {
    if (this.term(prevIndex) !== prevTerm) return null;
    const lastNew = prevIndex + entries.length;
    const conflict = this.#findConflict(entries);
    if (conflict !== 0) {
      // Raft §5.4 (leader completeness): a committed entry can never be in conflict.
      assert(conflict > this.#committed, `entry ${conflict} conflicts below commit`);
      this.#appendUnchecked(entries.slice(conflict - prevIndex - 1));
    }
    this.commitTo(Math.min(commit, lastNew));
    return lastNew;
  }

  /**
   * Fast back-off (thesis §5.3): the last index ≤ `index` whose term is ≤ `term`, or the
   * snapshot index when every retained entry up to `index` has a larger term.
   */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex);
    while (i > this.#snapshotIndex && (this.term(i) ?? 0) > term) i--;
    return Math.max(i, this.#snapshotIndex);
  }

  /** Moves the commit index forward (never back). */
  commitTo(index: number): void {
    if (index <= this.#committed) return;
    assert(index <= this.lastIndex, `commit ${index} is past the last index ${this.lastIndex}`);
    this.#committed = index;
  }

  /**
   * The entries from `from` on, up to `bytesMax` bytes of data but at least one entry
   * (empty when `from` is past the end). `from` must be after the snapshot.
   */
  slice(from: number, bytesMax: number): Entry[] {
    assert(from > this.#snapshotIndex, `entry ${from} is compacted`);
    const start = from - this.#snapshotIndex - 1;
    if (start >= this.#entries.length) return [];
    let end = start;
    let bytes = 0;
    while (end < this.#entries.length) {
      const size = (this.#entries[end] as Entry).data.byteLength;
      if (end > start && bytes + size > bytesMax) break;
      bytes += size;
      end++;
    }
    return this.#entries.slice(start, end);
  }

  /** Whether some entries are not yet handed to storage. */
  get hasUnstable(): boolean {
    return this.#persisted < this.lastIndex;
  }

  /** The entries not yet durable, to go out in the next Ready. */
  unstableEntries(): Entry[] {
    return this.#entries.slice(this.#persisted - this.#snapshotIndex);
  }

  /**
   * Records that storage holds entries up to (index, term). Ignored when that entry has been
   * replaced or compacted meanwhile: the replacement is still to be written.
   */
  stableTo(index: number, term: number): void {
    if (index > this.#persisted && this.term(index) === term) this.#persisted = index;
  }

  /** Whether committed entries wait to be applied. */
  get hasNextCommitted(): boolean {
    return this.#pendingSnapshot === null && this.#applied >= this.#snapshotIndex &&
      this.#committed > this.#applied;
  }

  /**
   * The committed entries after `applied`, up to `bytesMax` bytes (at least one). The bound
   * is the commit index: every entry up to it is in memory, and whatever of it is not yet
   * durable is in the same Ready, which the driver persists before it applies.
   */
  nextCommittedEntries(bytesMax: number): Entry[] {
    if (!this.hasNextCommitted) return [];
    const start = this.#applied - this.#snapshotIndex;
    const end = this.#committed - this.#snapshotIndex;
    let stop = start;
    let bytes = 0;
    while (stop < end) {
      const size = (this.#entries[stop] as Entry).data.byteLength;
      if (stop > start && bytes + size > bytesMax) break;
      bytes += size;
      stop++;
    }
    return this.#entries.slice(start, stop);
  }

  /** The driver applied every entry up to `index`. */
  appliedTo(index: number): void {
    assert(index <= this.#committed, `applied ${index} is past commit ${this.#committed}`);
    assert(index >= this.#applied, `applied index ${index} moves back from ${this.#applied}`);
    this.#applied = index;
  }

  /**
   * Raft §7: replaces the whole log by the snapshot point `meta` (received from the leader).
   * The driver installs it from the next Ready; until then nothing is applied.
   */
  restore(meta: SnapshotMeta): void {
    assert(meta.index > this.#committed, "a snapshot only moves the log forward");
    this.#entries = [];
    this.#snapshot = meta;
    this.#pendingSnapshot = meta;
    this.#snapshotIndex = meta.index;
    this.#snapshotTerm = meta.term;
    this.#committed = meta.index;
    this.#persisted = meta.index;
    this.#configs = [{ index: meta.index, membership: meta.membership }];
  }

  /** The driver installed `meta` (from a Ready): the state machine is at its index. */
  snapshotInstalled(meta: SnapshotMeta): void {
    if (this.#pendingSnapshot?.index === meta.index) this.#pendingSnapshot = null;
    this.#applied = Math.max(this.#applied, meta.index);
  }

  /** Raft §7: drops the entries up to `meta.index`, which the driver stored a snapshot of. */
  compact(meta: SnapshotMeta): void {
    if (meta.index <= this.#snapshotIndex) return;
    assert(meta.index <= this.#applied, `snapshot ${meta.index} is past applied ${this.#applied}`);
    assert(
      this.term(meta.index) === meta.term,
      `snapshot term ${meta.term} differs from the log's ${this.term(meta.index)} at ${meta.index}`,
    );
    this.#entries = this.#entries.slice(meta.index - this.#snapshotIndex);
    this.#snapshot = meta;
    this.#snapshotIndex = meta.index;
    this.#snapshotTerm = meta.term;
    // Keep the configuration in force at the snapshot as the new base.
    let base = 0;
    while (base + 1 < this.#configs.length && this.#configs[base + 1]!.index <= meta.index) {
      base++;
    }
    this.#configs = this.#configs.slice(base);
  }

  #lastConfig(): ConfigRecord {
    const record = this.#configs[this.#configs.length - 1];
    assert(record !== undefined, "configuration history is never empty");
    return record;
  }

  /** The index of the first entry whose term differs from ours (or is new), else 0. */
  #findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (this.term(entry.index) !== entry.term) return entry.index;
    }
    return 0;
  }

  /** Appends `entries`, replacing any existing entry at or after the first one's index. */
  #appendUnchecked(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const after = first.index - 1;
    assert(
      after >= this.#snapshotIndex && after <= this.lastIndex,
      `append at ${first.index} outside [${this.firstIndex}, ${this.lastIndex + 1}]`,
    );
    if (after < this.lastIndex) {
      this.#entries.length = after - this.#snapshotIndex;
      if (this.#persisted > after) this.#persisted = after;
      while (this.#configs.length > 1 && this.#lastConfig().index > after) this.#configs.pop();
    }
    let prevTerm = this.term(after) ?? 0;
    let expected = first.index;
    for (const entry of entries) {
      assert(entry.index === expected, `entry ${entry.index} is not contiguous (${expected})`);
      assert(entry.term >= prevTerm, `entry ${entry.index} has a term below its predecessor`);
      this.#entries.push(entry);
      if (entry.type === EntryType.ConfChange) this.#recordConfig(entry);
      prevTerm = entry.term;
      expected++;
    }
  }

  #recordConfig(entry: Entry): void {
    const change = decodeConfChange(entry.data);
    // A change that does not decode or apply is a no-op on every node alike.
    if (change === null) return;
    const next = applyConfChange(this.membership, change);
    if (typeof next === "string") return;
    this.#configs.push({ index: entry.index, membership: next });
  }
}
