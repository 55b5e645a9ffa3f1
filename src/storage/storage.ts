/**
 * The node's durable state as one unit: hard state, log and snapshots under one data
 * directory, recovered together because their checks depend on each other.
 *
 * Start-up (`Storage.open`), in order:
 * 1. hard state: read (the first sound of its two copies) or, for an empty data directory,
 *    created first of all; unreadable → `HardStateCorruptError`, the node refuses to start;
 * 2. snapshots: stray `.tmp`/`.del` directories removed; the newest snapshot whose manifest,
 *    size and SHA-256 verify is chosen, bad newer ones are moved to `snapshots/corrupt/`;
 * 3. log: recovered with first index = snapshot index + 1 (see `file_log_store.ts`). Before
 *    recovery drops anything that is not a torn tail it persists `lostAfter` in the hard state;
 * 4. an interrupted snapshot install (`installingSnapshot`) is finished (log reset to the
 *    snapshot point) when its snapshot was published, abandoned otherwise;
 * 5. if the log now ends below the persisted commit index (and the snapshot does not cover
 *    it), committed entries were lost: `lostAfter` is raised to the commit index.
 *
 * The no-vote rule: while `lostAfter > 0` and the log's durable last index is below it, the
 * node must neither grant votes nor acknowledge appends (`mayVote()`), because a quorum may
 * have counted it for entries it no longer has. The driver calls `noteCaughtUp()` after
 * appends; it clears the marker durably once the log reaches `lostAfter` again.
 *
 * @module
 */

import type { Entry, HardState, SnapshotMeta } from "../raft/types.ts";
import { DEFAULT_STORAGE_CONFIG, type StorageConfig, validateStorageConfig } from "./config.ts";
import { consoleStorageEventSink, type StorageEventSink } from "./events.ts";
import { FileHardStateStore } from "./file_hard_state_store.ts";
import { FileLogStore } from "./file_log_store.ts";
import { FileSnapshotStore } from "./file_snapshot_store.ts";
import type { FileSystem } from "./fs.ts";
import type {
  LogRecovery,
  OpenedSnapshot,
  ReceiveOptions,
  SnapshotInfo,
  SnapshotRecovery,
  StoredHardState,
} from "./types.ts";

/** A problem recovery found, as the status page shows it. */
export interface StorageProblem {
  readonly code: "ERR_LOG_CORRUPT";
  readonly file: string;
  readonly offset: number;
  readonly reason: string;
}

/** Everything start-up found; `entries` and `snapshot` seed the Raft core's boot state. */
export interface StorageRecovery {
  /** The persisted hard state after recovery's own updates. */
  readonly hardState: StoredHardState;
  /** The hard state for the Raft core: commit clamped to what is still held. */
  readonly raftHardState: HardState;
  /** The newest verified snapshot (its stream is ready to restore the state machine). */
  readonly snapshot: OpenedSnapshot | null;
  /** Log entries after the snapshot, contiguous. */
  readonly entries: readonly Entry[];
  readonly log: LogRecovery;
  readonly snapshots: SnapshotRecovery;
  /** 0, or the index the log must reach again before the node may vote or acknowledge. */
  readonly lostAfter: number;
  /** Every corruption found (log, snapshots, hard state copies), for the log and status. */
  readonly problems: readonly StorageProblem[];
}

/** Options of {@linkcode Storage.open}. */
export interface StorageOptions {
  readonly config?: Partial<StorageConfig>;
  readonly onEvent?: StorageEventSink;
  /** Wall clock for snapshot `created_at`. */
  readonly now?: () => number;
}

/** See the module documentation. */
export class Storage {
  readonly log: FileLogStore;
  readonly hardState: FileHardStateStore;
  readonly snapshots: FileSnapshotStore;
  readonly config: StorageConfig;

  private constructor(
    log: FileLogStore,
    hardState: FileHardStateStore,
    snapshots: FileSnapshotStore,
    config: StorageConfig,
  ) {
    this.log = log;
    this.hardState = hardState;
    this.snapshots = snapshots;
    this.config = config;
  }

  /** Recovers the data directory `dataDir` (created when missing). */
  static async open(
    fs: FileSystem,
    dataDir: string,
    options: StorageOptions = {},
  ): Promise<{ storage: Storage; recovery: StorageRecovery }> {
    const config: StorageConfig = { ...DEFAULT_STORAGE_CONFIG, ...options.config };
    const problems = validateStorageConfig(config);
    if (problems.length > 0) throw new RangeError(`Invalid storage config: ${problems.join("; ")}`);
    const onEvent = options.onEvent ?? consoleStorageEventSink;
    const found: StorageProblem[] = [];

    const hardState = FileHardStateStore.open(fs, dataDir);
    if (hardState.damagedCopy) {
      found.push({
        code: "ERR_LOG_CORRUPT",
        file: `${dataDir}/hardstate`,
        offset: 0,
        reason: "first copy damaged; the second copy was used",
      });
      hardState.saveSync(hardState.load());
    }
    const snapshots = FileSnapshotStore.open(fs, dataDir, {
      snapshotsKeep: config.snapshotsKeep,
      snapshotBytesMax: config.snapshotBytesMax,
      now: options.now,
      onEvent,
    });
    const snapshot = await snapshots.openLatest();
    const snapIndex = snapshot?.info.index ?? 0;
    for (const s of snapshots.recovery().setAside) {
      found.push({
        code: "ERR_LOG_CORRUPT",
        file: `${dataDir}/snapshots/${s.name}`,
        offset: 0,
        reason: s.reason,
      });
    }

    const raise = (lostAfter: number) => {
      const hs = hardState.load();
      if (lostAfter > hs.lostAfter) hardState.saveSync({ ...hs, lostAfter });
    };
    const { store: log, recovery: logRecovery } = await FileLogStore.open(fs, dataDir, {
      firstIndex: snapIndex + 1,
      segmentBytes: config.segmentBytes,
      preallocate: config.preallocateSegments,
      entryBytesMax: config.entryBytesMax,
      onEvent,
      // Persist the marker before anything is destroyed (docs/STORAGE.md).
      beforeDiscard: (highestSeen) => {
        const hs = hardState.load();
        const lost = Math.max(highestSeen, hs.commit);
        if (lost > snapIndex) raise(lost);
      },
    });
    if (logRecovery.corruption !== null) {
      const c = logRecovery.corruption;
      found.push({ code: c.code, file: c.file, offset: c.offset, reason: c.reason });
    }

    let hs = hardState.load();
    if (hs.installingSnapshot) {
      if (snapshot !== null && snapIndex >= hs.firstIndex - 1) {
        await log.reset(snapIndex + 1); // the install was published: finish it
      }
      hardState.saveSync({ ...hs, installingSnapshot: false, firstIndex: snapIndex + 1 });
    } else if (hs.firstIndex !== snapIndex + 1 && hs.firstIndex > snapIndex + 1) {
      hardState.saveSync({ ...hs, firstIndex: snapIndex + 1 });
    }
    hs = hardState.load();
    const held = Math.max(log.lastIndex(), snapIndex);
    if (hs.commit > held) raise(hs.commit);
    hs = hardState.load();
    if (hs.lostAfter > 0 && log.lastIndex() >= hs.lostAfter) {
      hardState.saveSync({ ...hs, lostAfter: 0 });
      hs = hardState.load();
    }
    const entries = log.lastIndex() >= log.firstIndex()
      ? log.entries(log.firstIndex(), log.lastIndex() + 1)
      : [];
    const storage = new Storage(log, hardState, snapshots, config);
    return {
      storage,
      recovery: {
        hardState: hs,
        raftHardState: { term: hs.term, vote: hs.vote, commit: Math.min(hs.commit, held) },
        snapshot,
        entries,
        log: logRecovery,
        snapshots: snapshots.recovery(),
        lostAfter: hs.lostAfter,
        problems: found,
      },
    };
  }

  /** False while recovery's lost-entries marker is set and the log has not caught up. */
  mayVote(): boolean {
    const lost = this.hardState.load().lostAfter;
    return lost === 0 || this.log.durableIndex() >= lost;
  }

  /** Clears the lost-entries marker durably once the log reached it; true when clear. */
  async noteCaughtUp(): Promise<boolean> {
    const hs = this.hardState.load();
    if (hs.lostAfter === 0) return true;
    if (this.log.durableIndex() < hs.lostAfter) return false;
    await this.hardState.save({ ...hs, lostAfter: 0 });
    return true;
  }

  /** Persists the Raft hard state, keeping storage's own fields. */
  saveHardState(state: HardState): Promise<void> {
    const hs = this.hardState.load();
    return this.hardState.save({ ...hs, term: state.term, vote: state.vote, commit: state.commit });
  }

  /**
   * Stores a snapshot the local state machine produced and, with `deleteLogsAfterSnapshot`,
   * deletes the log segments it covers.
   */
  async saveSnapshot(
    meta: SnapshotMeta,
    stream: ReadableStream<Uint8Array>,
  ): Promise<SnapshotInfo> {
    const info = await this.snapshots.writeFromStream(meta, stream);
    if (this.config.deleteLogsAfterSnapshot && meta.index >= this.log.firstIndex()) {
      await this.log.compactPrefix(Math.min(meta.index, this.log.lastIndex()));
    }
    return info;
  }

  /**
   * Installs a snapshot received from the leader (Raft §7): flag the install in the hard state,
   * receive and verify the stream (refusing to publish on a SHA-256 or size mismatch), replace
   * the log by the snapshot point, clear the flag. A crash anywhere is finished or abandoned by
   * the next start-up.
   */
  async installSnapshot(
    meta: SnapshotMeta,
    stream: ReadableStream<Uint8Array>,
    options: ReceiveOptions,
  ): Promise<SnapshotInfo> {
    const before = this.hardState.load();
    await this.hardState.save({ ...before, installingSnapshot: true, firstIndex: meta.index + 1 });
    let info: SnapshotInfo;
    try {
      info = await this.snapshots.writeFromStream(meta, stream, options);
    } catch (error) {
      await this.hardState.save({
        ...this.hardState.load(),
        installingSnapshot: false,
        firstIndex: before.firstIndex,
      });
      throw error;
    }
    await this.log.reset(meta.index + 1);
    const hs = this.hardState.load();
    await this.hardState.save({
      ...hs,
      installingSnapshot: false,
      firstIndex: meta.index + 1,
      commit: Math.max(hs.commit, meta.index),
    });
    return info;
  }

  async close(): Promise<void> {
    await this.log.close();
    this.hardState.close();
  }
}
