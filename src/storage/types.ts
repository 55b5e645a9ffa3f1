/**
 * The narrow interfaces between the node driver and durable storage (STYLE.md item 4). Each
 * has a file implementation and an in-memory twin, and one conformance suite runs against
 * both (`tests/storage/*_conformance.ts`).
 *
 * @module
 */

import type { Entry, HardState, Membership, SnapshotMeta } from "../raft/types.ts";

/**
 * The Raft hard state plus what storage itself must remember across restarts. Replaced
 * atomically as a whole.
 */
export interface StoredHardState extends HardState {
  /** First log index that is valid (snapshot index + 1 after a snapshot install). */
  readonly firstIndex: number;
  /**
   * Set while a snapshot received from the leader is being installed: the log is to be
   * replaced by the snapshot point `firstIndex - 1`. Recovery finishes or abandons the install.
   */
  readonly installingSnapshot: boolean;
  /**
   * 0, or the highest log index this node may have acknowledged before recovery had to drop
   * entries that were not at the torn tail (corruption). Until the log again reaches this
   * index the node must not vote and must not acknowledge appends (docs/STORAGE.md).
   */
  readonly lostAfter: number;
}

/** The hard state of a brand-new node. */
export const INITIAL_HARD_STATE: StoredHardState = Object.freeze({
  term: 0,
  vote: null,
  commit: 0,
  firstIndex: 1,
  installingSnapshot: false,
  lostAfter: 0,
});

/** Stores the hard state; `save` returns once the new state is durable. */
export interface HardStateStore {
  /** The state saved last (what recovery found), or the initial state for a new node. */
  load(): StoredHardState;
  /** Replaces the state durably: after a crash at any point, either the old or the new one. */
  save(state: StoredHardState): Promise<void>;
  close(): void;
}

/** A torn tail recovery cut off: never acknowledged, so nothing is lost. */
export interface TailCut {
  readonly file: string;
  readonly offset: number;
  /** Bytes removed from the end of the file. */
  readonly bytes: number;
  readonly reason: string;
}

/** Damage before the tail: entries were dropped and the damaged files set aside. */
export interface CorruptionReport {
  readonly code: "ERR_LOG_CORRUPT";
  readonly file: string;
  readonly offset: number;
  readonly reason: string;
  /** Where the damaged files were moved (under `log/corrupt/`). */
  readonly movedTo: readonly string[];
  /** Last index kept; every entry after it was dropped. */
  readonly keptThrough: number;
  /** Highest index seen anywhere in the damaged part (a lower bound of what was durable). */
  readonly highestSeen: number;
}

/** What opening (recovering) a log found. */
export interface LogRecovery {
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly cuts: readonly TailCut[];
  readonly corruption: CorruptionReport | null;
}

/**
 * The Raft log. Indexes are contiguous in [firstIndex, lastIndex]; an empty log has
 * lastIndex = firstIndex - 1. Appended entries are readable at once; `durableIndex` trails
 * `lastIndex` until the group commit that covers them has synced.
 */
export interface LogStore {
  firstIndex(): number;
  lastIndex(): number;
  /** Highest index known durable (fsynced). */
  durableIndex(): number;
  /** The term of entry `index`, or undefined outside [firstIndex, lastIndex]. */
  term(index: number): number | undefined;
  /** Entries in [lo, hi), lo ≥ firstIndex, hi ≤ lastIndex + 1; stops early past `maxBytes`
   * (always at least one entry). */
  entries(lo: number, hi: number, maxBytes?: number): Entry[];
  /**
   * Queues `entries` (contiguous; the first may overwrite: an entry at an index already stored
   * replaces it and every later one) and resolves once they are durable, with the durable
   * index. Every append queued before one sync shares that sync (group commit).
   */
  append(entries: readonly Entry[]): Promise<number>;
  /** Removes entries ≥ `fromIndex` (conflicting suffix); durable on return. */
  truncateSuffix(fromIndex: number): Promise<void>;
  /**
   * Drops entries ≤ `uptoIndex` that a snapshot covers. Whole segments at or below it are
   * deleted (`deleteLogsAfterSnapshot`); `firstIndex` becomes `uptoIndex + 1` (or stays when
   * already past it).
   */
  compactPrefix(uptoIndex: number): Promise<void>;
  /** Drops every entry; the log restarts empty at `nextIndex` (snapshot install). */
  reset(nextIndex: number): Promise<void>;
  /** Syncs anything queued, then releases files. */
  close(): Promise<void>;
}

/** Identifies a stored snapshot and how to check its data. */
export interface SnapshotInfo extends SnapshotMeta {
  /** Directory name, `<index>-<term>`. */
  readonly name: string;
  readonly size: number;
  /** Lowercase hex SHA-256 of the data file. */
  readonly sha256: string;
  /** RFC 3339. */
  readonly createdAt: string;
}

/** A snapshot opened for reading. */
export interface OpenedSnapshot {
  readonly info: SnapshotInfo;
  /**
   * A fresh stream of the data file. It hashes what it yields and errors at the end (instead
   * of closing) when size or SHA-256 differ from the manifest.
   */
  stream(): ReadableStream<Uint8Array>;
}

/** A snapshot being written; nothing is visible until `close` publishes it. */
export interface SnapshotSink {
  write(chunk: Uint8Array): Promise<void>;
  /** Syncs and publishes atomically; resolves with the published snapshot. */
  close(): Promise<SnapshotInfo>;
  /** Drops the temporary directory; nothing is published. */
  cancel(): Promise<void>;
}

/** Options of {@linkcode SnapshotStore.writeFromStream}. */
export interface ReceiveOptions {
  /** Refuse to publish unless the data hashes to this (lowercase hex). */
  readonly expectedSha256?: string;
  readonly expectedSize?: number;
}

/** What the snapshot store found at start-up. */
export interface SnapshotRecovery {
  /** Stray temporary directories removed. */
  readonly removedTemp: readonly string[];
  /** Snapshots that failed verification and were moved to `snapshots/corrupt/`. */
  readonly setAside: readonly { readonly name: string; readonly reason: string }[];
}

/** Stores state machine snapshots. */
export interface SnapshotStore {
  /** Starts writing a snapshot of the state at `meta.index`. */
  create(meta: SnapshotMeta): Promise<SnapshotSink>;
  /**
   * Writes `stream` as snapshot `meta` (hash while writing). With `expectedSha256`/`expectedSize`
   * (InstallSnapshot from a peer, a restore) it refuses to publish on mismatch with
   * `SnapshotChecksumError`.
   */
  writeFromStream(
    meta: SnapshotMeta,
    stream: ReadableStream<Uint8Array>,
    options?: ReceiveOptions,
  ): Promise<SnapshotInfo>;
  /** Published snapshots, oldest first (manifest checked, data not re-hashed). */
  list(): Promise<SnapshotInfo[]>;
  /** Opens snapshot `name`, verifying size and SHA-256 of the data first. */
  open(name: string): Promise<OpenedSnapshot>;
  /**
   * The newest snapshot whose data verifies; a bad one is set aside (reported) and the next
   * older is tried. Null when there is none.
   */
  openLatest(): Promise<OpenedSnapshot | null>;
  /** Deletes the oldest snapshots until `keep` remain. Returns the names removed. */
  retain(keep: number): Promise<string[]>;
  /** What start-up cleaned up or set aside so far. */
  recovery(): SnapshotRecovery;
}

/** Re-exported for implementers. */
export type { Entry, Membership, SnapshotMeta };
