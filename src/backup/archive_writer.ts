/**
 * Writes a backup archive (docs/BACKUP.md) in one streaming pass: the state's bytes flow
 * through an incremental SHA-256 straight into the tar stream as the consumer pulls; once they
 * are through, the manifest (which records that SHA-256, hence its place after the state) and
 * `SHA256SUMS` are built and appended; then the end-of-archive blocks. With `gzip`, the tar
 * stream goes through a level-1 gzip transform.
 *
 * Memory does not grow with the state's size: nothing holds more than one chunk of it, and the
 * consumer's pace drives the state machine's snapshot writer (pull all the way down).
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { Membership } from "../raft/types.ts";
import { VERSION } from "../version.ts";
import { gzipStream } from "./gzip.ts";
import {
  type BackupManifest,
  buildManifest,
  encodeManifest,
  MANIFEST_FILE,
  parseRfc3339,
  STATE_FILE,
  SUMS_FILE,
} from "./manifest.ts";
import { encodeSha256Sums } from "./sha256sums.ts";
import { type TarMember, tarStream } from "./tar_writer.ts";

/** The state to archive: a KV snapshot (`KvStateMachine.snapshot()` fits as it is). */
export interface BackupState {
  /** The KV snapshot v1 stream (read once). */
  readonly stream: ReadableStream<Uint8Array>;
  /** Its exact length in bytes. */
  readonly byteLength: number;
  /** Key count and total value bytes, recorded in the manifest. */
  readonly keys: number;
  readonly valueBytes: number;
}

/** Options of {@linkcode writeBackupArchive}. */
export interface WriteBackupArchiveOptions {
  readonly clusterId: string;
  readonly nodeId: string;
  /** The Raft index the state reflects (the snapshot's applied index). */
  readonly index: number;
  /** The term of the entry at `index`. */
  readonly term: number;
  /** The membership in force at `index`. */
  readonly membership: Membership;
  readonly state: BackupState;
  /** RFC 3339 (default: now, to the second). Also every member's mtime. */
  readonly createdAt?: string;
  /** Default: this build's version. */
  readonly edgeraftVersion?: string;
  /** gzip the archive (level 1). Default false. */
  readonly gzip?: boolean;
}

/** What a finished archive holds. */
export interface BackupArchiveResult {
  /** Lowercase hex SHA-256 of the state file. */
  readonly sha256OfState: string;
  /** Bytes of the archive as produced (compressed size with gzip). */
  readonly archiveBytes: number;
  readonly manifest: BackupManifest;
}

/** An archive being produced. */
export interface BackupArchive {
  /** The archive's bytes; read it to the end (or cancel it). */
  readonly stream: ReadableStream<Uint8Array>;
  /**
   * Resolves once the last byte was read; rejects if the stream errors or is cancelled. (A
   * rejection nobody awaits is not reported as unhandled.)
   */
  readonly done: Promise<BackupArchiveResult>;
}

/** `edgeraft-<cluster>-<index>.tar[.gz]`, with characters unsafe in file names replaced. */
export function backupFileName(clusterId: string, index: number, gzip = false): string {
  const cluster = clusterId.replace(/[^A-Za-z0-9._-]/g, "_");
  return `edgeraft-${cluster}-${index}.tar${gzip ? ".gz" : ""}`;
}

/** Now, as RFC 3339 to the second (tar mtimes are whole seconds). */
function nowRfc3339(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Starts producing the archive; see the module doc. */
export function writeBackupArchive(options: WriteBackupArchiveOptions): BackupArchive {
  const createdAt = options.createdAt ?? nowRfc3339();
  const createdMs = parseRfc3339(createdAt);
  if (Number.isNaN(createdMs) || createdMs < 0) {
    throw new RangeError(`writeBackupArchive: createdAt "${createdAt}" is not RFC 3339`);
  }
  const mtime = Math.floor(createdMs / 1000);
  const { state } = options;

  let resolveDone!: (result: BackupArchiveResult) => void;
  let rejectDone!: (error: unknown) => void;
  const done = new Promise<BackupArchiveResult>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  done.catch(() => {});

  const hash = createHash("sha256");
  let stateBytes = 0;
  const hashed = state.stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        hash.update(chunk);
        stateBytes += chunk.length;
        controller.enqueue(chunk);
      },
    }),
  );

  let manifest: BackupManifest | null = null;
  let sha256OfState = "";
  function* members(): Generator<TarMember, void, undefined> {
    yield { name: STATE_FILE, size: state.byteLength, mtime, body: hashed };
    // Runs only after the tar writer read the whole state body (sizes already checked).
    sha256OfState = hash.digest("hex");
    manifest = buildManifest({
      clusterId: options.clusterId,
      nodeId: options.nodeId,
      index: options.index,
      term: options.term,
      membership: options.membership,
      createdAt,
      edgeraftVersion: options.edgeraftVersion ?? VERSION,
      keys: state.keys,
      valueBytes: state.valueBytes,
      stateSize: stateBytes,
      stateSha256: sha256OfState,
    });
    const manifestBytes = encodeManifest(manifest);
    yield { name: MANIFEST_FILE, size: manifestBytes.length, mtime, body: manifestBytes };
    const sums = encodeSha256Sums([
      { name: STATE_FILE, sha256: sha256OfState },
      { name: MANIFEST_FILE, sha256: createHash("sha256").update(manifestBytes).digest("hex") },
    ]);
    yield { name: SUMS_FILE, size: sums.length, mtime, body: sums };
  }

  let tar = tarStream(members());
  if (options.gzip) tar = tar.pipeThrough(gzipStream());

  let archiveBytes = 0;
  const reader = tar.getReader();
  let settled = false;
  const settle = (error: unknown): void => {
    if (settled) return;
    settled = true;
    rejectDone(error);
  };
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      let next;
      try {
        next = await reader.read();
      } catch (error) {
        settle(error);
        reader.releaseLock();
        throw error;
      }
      if (next.done) {
        reader.releaseLock();
        controller.close();
        settled = true;
        resolveDone({ sha256OfState, archiveBytes, manifest: manifest! });
        return;
      }
      archiveBytes += next.value.length;
      controller.enqueue(next.value);
    },
    async cancel(reason) {
      settle(reason ?? new Error("backup archive stream cancelled"));
      await reader.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
  return { stream, done };
}
