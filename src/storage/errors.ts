/**
 * Typed errors of the storage layer (STYLE.md item 12): failures that come from the world (a
 * damaged file, a full disk), mapped once at the HTTP edge to the `ERR_*` codes of DESIGN.md.
 * Programming errors use `assert` from `src/util/assert.ts` instead and are never caught.
 *
 * @module
 */

/** Base class: every storage error carries a stable `code`. */
export class StorageError extends Error {
  override name = "StorageError";
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/**
 * A file in the data directory failed a frame, checksum or continuity check. `file` is the
 * path of the damaged file and `offset` the byte offset of the first bad byte range.
 */
export class LogCorruptError extends StorageError {
  override name = "LogCorruptError";
  readonly file: string;
  readonly offset: number;
  readonly reason: string;
  constructor(file: string, offset: number, reason: string) {
    super("ERR_LOG_CORRUPT", `Corrupt file "${file}" at offset ${offset}: ${reason}`);
    this.file = file;
    this.offset = offset;
    this.reason = reason;
  }
}

/** A snapshot's data or manifest failed verification (size, SHA-256, frame). */
export class SnapshotCorruptError extends StorageError {
  override name = "SnapshotCorruptError";
  readonly snapshot: string;
  readonly reason: string;
  constructor(snapshot: string, reason: string) {
    super("ERR_LOG_CORRUPT", `Cannot open snapshot "${snapshot}": ${reason}`);
    this.snapshot = snapshot;
    this.reason = reason;
  }
}

/** A received snapshot did not match the SHA-256 (or size) the sender announced. */
export class SnapshotChecksumError extends StorageError {
  override name = "SnapshotChecksumError";
  constructor(snapshot: string, reason: string) {
    super("ERR_BACKUP_CHECKSUM_MISMATCH", `Cannot publish snapshot "${snapshot}": ${reason}`);
  }
}

/**
 * The hard state file is unreadable in both of its copies. The node must not guess its term or
 * vote (it could vote twice in a term), so it refuses to start; see docs/STORAGE.md.
 */
export class HardStateCorruptError extends StorageError {
  override name = "HardStateCorruptError";
  readonly file: string;
  readonly reason: string;
  constructor(file: string, reason: string) {
    super("ERR_LOG_CORRUPT", `Corrupt hard state "${file}": ${reason}`);
    this.file = file;
    this.reason = reason;
  }
}

/** A write failed because the disk is full (ENOSPC or EDQUOT). */
export class DiskFullError extends StorageError {
  override name = "DiskFullError";
  readonly file: string;
  constructor(file: string, options?: ErrorOptions) {
    super("ERR_DISK_FULL", `Cannot write "${file}": no space left on device`, options);
    this.file = file;
  }
}

/**
 * A store refused an operation because an earlier I/O failure left its on-disk state unknown.
 * The node must restart and recover from disk.
 */
export class StoreFailedError extends StorageError {
  override name = "StoreFailedError";
  constructor(store: string, cause: unknown) {
    super("ERR_LOG_CORRUPT", `${store} failed earlier and must be reopened`, { cause });
  }
}
