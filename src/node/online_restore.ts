/**
 * Online restore, the leader's side (docs/BACKUP.md, "Online restore"): replaces the whole
 * cluster's state with a backup archive's, through the Raft log, while the cluster serves.
 *
 * 1. Verify the uploaded archive completely (`verifyArchive`, one streaming pass over the
 *    file). Unsound: `ERR_BACKUP_*`, nothing changed. Another cluster's archive is refused
 *    (`ERR_RESTORE_CONFLICT`) unless `force`.
 * 2. Take the undo point: a linearizable view of the current state (`backupView`), written as
 *    a complete backup archive to `<data-dir>/restore/undo-edgeraft-<cluster>-<index>.tar`
 *    (temporary name, fsync, rename, directory fsync). It streams while step 3 runs, and must
 *    be durable before the end entry is proposed.
 * 3. Propose `restore_begin` (size and SHA-256 of the archive's `state.kvsnap`), then the
 *    state's bytes as `restore_chunk`s (at most `restoreChunkBytes()` each, a bounded number
 *    in flight, each awaited until applied here, so the leader's uncommitted-bytes budget is
 *    respected and client writes keep room), then `restore_end`.
 * 4. Every node applies the same entries and, at `restore_end`, swaps in the staged state with
 *    every key at revision = the end entry's index (src/kv/kv_restore.ts). The answer is sent
 *    once the end entry is applied here.
 *
 * Failures: before the end entry is proposed, the open restore is dropped with
 * `restore_abort` (or by the next leader's first entry) and nothing changed; the undo archive
 * is removed again. An end entry that fails its checks is a no-op on every node. An end entry
 * whose fate is unknown (deadline) is `ERR_TIMEOUT`, and the undo archive is kept.
 *
 * @module
 */

import { openArchiveState } from "../backup/archive_state.ts";
import { reportError, verifyArchive } from "../backup/archive_verifier.ts";
import { backupFileName, writeBackupArchive } from "../backup/archive_writer.ts";
import {
  EdgeraftError,
  isErrorCode,
  NoLeaderError,
  NotLeaderError,
  RestoreConflictError,
  RestoreFailedError,
  TimeoutError,
  toEdgeraftError,
} from "../errors.ts";
import type { KvRestoreCommand } from "../kv/kv_command.ts";
import type { ApplyResult, RestoredState } from "../kv/kv_state_machine.ts";
import { type Logger, nullLogger } from "../util/logger.ts";
import { VERSION } from "../version.ts";
import type { NodeStatus } from "./node_api.ts";
import type { BackupView, RestoreProposal } from "./raft_node.ts";
import { writeDurably } from "./restore_files.ts";

/** What an online restore needs from the node (a `RaftNode` in production). */
export interface OnlineRestoreNode {
  readonly id: string;
  readonly clusterId: string;
  status(): NodeStatus;
  backupView(options: { stale: boolean }): Promise<BackupView>;
  restoreChunkBytes(): number;
  restoreChunksInFlightMax(): number;
  proposeRestoreCommand(command: KvRestoreCommand): RestoreProposal;
}

/** Options of {@linkcode OnlineRestore}. */
export interface OnlineRestoreOptions {
  /** The node's data directory (undo archives go to `<dataDir>/restore/`). */
  readonly dataDir: string;
  readonly logger?: Logger;
  /** How long a chunk may wait for room in the leader's uncommitted budget. Default 10 s. */
  readonly overloadWaitMs?: number;
  readonly now?: () => number;
}

/** Options of {@linkcode OnlineRestore.run}. */
export interface RunRestoreOptions {
  /** Restore an archive of another cluster. */
  readonly force?: boolean;
}

/** What a completed restore reports (the HTTP answer, in snake case). */
export interface OnlineRestoreResult {
  /** The index of the `restore_end` entry: the restored state's applied index and every
   * restored key's revision. */
  readonly index: number;
  readonly term: number;
  readonly restoreId: string;
  readonly sourceClusterId: string;
  readonly sourceIndex: number;
  readonly keys: number;
  readonly valueBytes: number;
  /** Bytes of `state.kvsnap` sent through the log, and in how many chunks. */
  readonly stateBytes: number;
  readonly chunks: number;
  /** The index of the `restore_begin` entry. */
  readonly beginIndex: number;
  /** The undo archive: the state before the restore, at `undoIndex`, on node `node`. */
  readonly undoArchive: string;
  readonly undoIndex: number;
  readonly node: string;
  readonly elapsedMs: number;
}

interface InFlight {
  readonly what: string;
  readonly index: number;
  readonly term: number;
  readonly applied: Promise<ApplyResult>;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Runs online restores on the leader, one at a time. */
export class OnlineRestore {
  readonly #node: OnlineRestoreNode;
  readonly #dataDir: string;
  readonly #logger: Logger;
  readonly #overloadWaitMs: number;
  readonly #now: () => number;
  #running = false;

  constructor(node: OnlineRestoreNode, options: OnlineRestoreOptions) {
    this.#node = node;
    this.#dataDir = options.dataDir;
    this.#logger = options.logger ?? nullLogger();
    this.#overloadWaitMs = options.overloadWaitMs ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /** True while a restore runs on this node. */
  get running(): boolean {
    return this.#running;
  }

  /**
   * Restores the archive in the file `archivePath` (plain or gzip), which must stay in place
   * until this returns. Throws `BackupError` (unsound), `RestoreConflictError`,
   * `NotLeaderError` (before anything was proposed: the caller may forward the request),
   * `NoLeaderError`, `RestoreFailedError` or `TimeoutError`.
   */
  async run(archivePath: string, options: RunRestoreOptions = {}): Promise<OnlineRestoreResult> {
    const started = performance.now();
    const report = await verifyArchive((await Deno.open(archivePath)).readable);
    const unsound = reportError(report);
    if (unsound !== null) throw unsound;
    const manifest = report.manifest!;
    const node = this.#node;
    if (manifest.cluster_id !== node.clusterId && options.force !== true) {
      throw new RestoreConflictError(
        `The archive comes from cluster "${manifest.cluster_id}", this is cluster "${node.clusterId}"`,
        { hint: "Check that this is the archive you mean; add ?force=true to restore it anyway." },
      );
    }
    if (this.#running) {
      throw new RestoreConflictError("Another restore is running on this node", {
        hint: "Wait for the running restore to answer, then retry.",
      });
    }
    this.#running = true;
    try {
      return await this.#restore(archivePath, manifest, started);
    } finally {
      this.#running = false;
    }
  }

  async #restore(
    archivePath: string,
    manifest: NonNullable<Awaited<ReturnType<typeof verifyArchive>>["manifest"]>,
    started: number,
  ): Promise<OnlineRestoreResult> {
    const node = this.#node;
    const stateFile = manifest.files[0]!;
    // The undo point. Throws NotLeaderError on a follower (nothing proposed yet).
    const view = await node.backupView({ stale: false });
    const createdAt = new Date(this.#now()).toISOString().replace(/\.\d{3}Z$/, "Z");
    const undoName = `undo-${backupFileName(view.clusterId, view.index)}`;
    const undoArchive = writeBackupArchive({
      clusterId: view.clusterId,
      nodeId: view.nodeId,
      index: view.index,
      term: view.term,
      membership: view.membership,
      state: view.snapshot,
      createdAt,
      edgeraftVersion: VERSION,
    });
    const undoWrite = writeDurably(this.#dataDir, undoName, undoArchive.stream);
    undoWrite.catch(() => {}); // awaited below; do not report it as unhandled meanwhile
    const restoreId = crypto.randomUUID();
    this.#logger.info("restore requested", {
      restoreId,
      sourceCluster: manifest.cluster_id,
      sourceIndex: manifest.index,
      stateBytes: stateFile.size,
      keys: manifest.state.keys,
      undoIndex: view.index,
    });

    const inFlight: InFlight[] = [];
    const settle = async (): Promise<void> => {
      const next = inFlight.shift()!;
      const result = await next.applied;
      if (!result.ok) {
        throw new RestoreFailedError(
          `${next.what} at index ${next.index} failed: ${
            "message" in result ? result.message : result.code
          }`,
        );
      }
    };
    const propose = async (command: KvRestoreCommand, what: string): Promise<InFlight> => {
      const deadline = this.#now() + this.#overloadWaitMs;
      for (;;) {
        const proposal = node.proposeRestoreCommand(command);
        if (proposal.ok) {
          const entry = {
            what,
            index: proposal.index,
            term: proposal.term,
            applied: proposal.applied,
          };
          inFlight.push(entry);
          return entry;
        }
        if (this.#now() > deadline) {
          throw new NoLeaderError("The leader has too many uncommitted writes; retry shortly");
        }
        if (inFlight.length > 0) await settle();
        else await delay(10);
      }
    };

    let beginProposed = false;
    let endEntry: InFlight | null = null;
    let stateBody: ReadableStream<Uint8Array> | null = null;
    let chunks = 0;
    let sent = 0;
    try {
      const state = await openArchiveState((await Deno.open(archivePath)).readable);
      stateBody = state.body;
      if (state.size !== stateFile.size) {
        throw new RestoreFailedError(
          `The archive changed after it was verified (state.kvsnap is now ${state.size} bytes)`,
        );
      }
      await propose({
        op: "restore_begin",
        restoreId,
        size: stateFile.size,
        sha256: stateFile.sha256,
        sourceClusterId: manifest.cluster_id,
        sourceIndex: manifest.index,
      }, "restore_begin");
      beginProposed = true;
      const chunkBytes = node.restoreChunkBytes();
      const window = node.restoreChunksInFlightMax();
      // Reused: encoding the proposal copies the bytes.
      const buffer = new Uint8Array(chunkBytes);
      let filled = 0;
      const flush = async (): Promise<void> => {
        while (inFlight.length >= window) await settle();
        await propose(
          { op: "restore_chunk", restoreId, seq: chunks, bytes: buffer.subarray(0, filled) },
          `restore_chunk ${chunks}`,
        );
        chunks++;
        sent += filled;
        filled = 0;
      };
      const reader = state.body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          let at = 0;
          while (at < value.length) {
            const n = Math.min(chunkBytes - filled, value.length - at);
            buffer.set(value.subarray(at, at + n), filled);
            filled += n;
            at += n;
            if (filled === chunkBytes) await flush();
          }
        }
      } finally {
        reader.releaseLock();
      }
      if (filled > 0) await flush();
      if (sent !== stateFile.size) {
        throw new RestoreFailedError(
          `The archive changed after it was verified (read ${sent} of ${stateFile.size} state bytes)`,
        );
      }
      const undo = await undoWrite;
      while (inFlight.length > 0) await settle();
      endEntry = await propose({ op: "restore_end", restoreId }, "restore_end");
      inFlight.length = 0;
      let result: ApplyResult;
      try {
        result = await endEntry.applied;
      } catch (error) {
        throw this.#endUnknown(error, undo.path);
      }
      if (!result.ok || result.restored === undefined) {
        throw new RestoreFailedError(
          `The restore failed at its end entry ${endEntry.index}: ${
            "message" in result ? result.message : "no state"
          }; nothing was changed`,
        );
      }
      const restored: RestoredState = result.restored;
      const elapsedMs = Math.round(performance.now() - started);
      this.#logger.info("restore finished", {
        restoreId,
        index: endEntry.index,
        keys: restored.keys,
        stateBytes: sent,
        chunks,
        undoArchive: undo.path,
        elapsedMs,
      });
      return {
        index: endEntry.index,
        term: endEntry.term,
        restoreId,
        sourceClusterId: restored.sourceClusterId,
        sourceIndex: restored.sourceIndex,
        keys: restored.keys,
        valueBytes: restored.valueBytes,
        stateBytes: sent,
        chunks,
        beginIndex: restored.beginIndex,
        undoArchive: undo.path,
        undoIndex: view.index,
        node: node.id,
        elapsedMs,
      };
    } catch (error) {
      await stateBody?.cancel().catch(() => {});
      const unknown = error instanceof TimeoutError && endEntry !== null;
      if (!unknown) {
        if (beginProposed && endEntry === null) this.#abort(restoreId);
        // Nothing changed: the undo archive is not needed.
        const undo = await undoWrite.catch(() => null);
        if (undo !== null) await Deno.remove(undo.path).catch(() => {});
      }
      this.#logger.warn("restore failed", { restoreId, error: messageOf(error) });
      // Refused before anything was proposed: the caller may forward to the new leader.
      if (error instanceof NotLeaderError && !beginProposed) throw error;
      throw this.#nothingChanged(error, endEntry !== null);
    }
  }

  /** Drops the open restore on every node (best effort: a leader change drops it too). */
  #abort(restoreId: string): void {
    try {
      const proposal = this.#node.proposeRestoreCommand({ op: "restore_abort", restoreId });
      if (proposal.ok) proposal.applied.catch(() => {});
    } catch {
      // not leader any more: the next leader's first entry aborts it
    }
  }

  #endUnknown(error: unknown, undoPath: string): EdgeraftError {
    if (error instanceof TimeoutError) {
      return new TimeoutError(
        `The restore's end entry did not apply in time: the restore may or may not have ` +
          `taken effect; check the data, and undo with the archive ${undoPath} if needed`,
        { cause: error },
      );
    }
    // Lost in a leader change: the end entry was replaced, so it will never apply.
    return error instanceof EdgeraftError ? error : new RestoreFailedError(messageOf(error));
  }

  /** The error to answer with once we know the state did not change (or the fate is unknown). */
  #nothingChanged(error: unknown, endProposed: boolean): unknown {
    if (error instanceof TimeoutError && endProposed) return error;
    if (error instanceof NotLeaderError || error instanceof NoLeaderError) {
      return new NoLeaderError(
        `The restore was interrupted by a leader change (${error.message}); nothing was changed; retry`,
        { cause: error },
      );
    }
    if (error instanceof RestoreFailedError) return error;
    const code = (error as { code?: unknown }).code;
    if (isErrorCode(code) && code !== "ERR_TIMEOUT" && code !== "ERR_INTERNAL") {
      return toEdgeraftError(error); // disk full, shutting down, a changed archive, ...
    }
    return new RestoreFailedError(
      `The restore was interrupted: ${messageOf(error)}; nothing was changed`,
      { cause: error },
    );
  }
}
