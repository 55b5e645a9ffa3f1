/**
 * Constants and the error type of the KV snapshot format, version 1 (docs/FORMATS.md, "KV
 * snapshot"). The same bytes are a Raft snapshot on disk, an InstallSnapshot body on the peer
 * wire and the state file of a backup archive, so this format is a public, versioned contract:
 * a change of layout needs a new version number, and readers must keep reading version 1.
 *
 * Layout (all integers big-endian):
 *
 * ```
 * header  (42 B)  "EDGERAFTKV" u16 version u16 flags=0 u64 applied_index u64 records
 *                 u64 value_bytes u32 crc32c(previous 38 bytes)
 * block   (16 B + payload + 4 B), repeated, records in strictly increasing key byte order:
 *                 'B' 0 0 0 u32 payload_len u32 record_count u32 crc32c(previous 12 bytes)
 *                 payload = record*   record = u16 key_len, key, u64 revision, u32 value_len, value
 *                 u32 crc32c(payload)
 * trailer (44 B)  'E' 0 0 0 u64 records u64 value_bytes u64 blocks u64 stream_bytes
 *                 u32 chain_crc u32 crc32c(previous 40 bytes)
 * ```
 *
 * `stream_bytes` counts every byte before the trailer; `chain_crc` is the CRC-32C of the
 * concatenated 4-byte payload checksums of all blocks, in order. Nothing follows the trailer.
 *
 * @module
 */

/** The 10 ASCII bytes every snapshot starts with. */
export const SNAPSHOT_MAGIC: Uint8Array = new TextEncoder().encode("EDGERAFTKV");
/** The format version this code writes; readers accept exactly the versions they know. */
export const SNAPSHOT_VERSION = 1;
/** Header size in bytes. */
export const SNAPSHOT_HEADER_BYTES = 42;
/** Block header size in bytes (the payload checksum after the payload is 4 more). */
export const SNAPSHOT_BLOCK_HEADER_BYTES = 16;
/** Trailer size in bytes. */
export const SNAPSHOT_TRAILER_BYTES = 44;
/** Tag byte of a block. */
export const BLOCK_TAG = 0x42; // 'B'
/** Tag byte of the trailer. */
export const TRAILER_TAG = 0x45; // 'E'
/** Fixed bytes of a record besides key and value: u16 key length, u64 revision, u32 length. */
export const RECORD_OVERHEAD_BYTES = 14;
/**
 * The writer's chunk size: every chunk of a snapshot stream is at most this long, and a block
 * (header, payload, checksum) fills at most one chunk unless a single record is larger.
 */
export const SNAPSHOT_CHUNK_BYTES = 64 * 1024;

/** Stable reasons a snapshot is rejected, for mapping to error codes at the edge. */
export type SnapshotFormatErrorReason =
  | "bad_magic"
  | "unsupported_version"
  | "checksum_mismatch"
  | "truncated"
  | "trailing_bytes"
  | "malformed"
  | "limit_exceeded"
  | "index_mismatch";

/** A snapshot stream that is damaged, truncated, of an unknown version or otherwise unsound. */
export class SnapshotFormatError extends Error {
  override name = "SnapshotFormatError";
  /** A stable, machine-readable reason. */
  readonly reason: SnapshotFormatErrorReason;

  constructor(reason: SnapshotFormatErrorReason, detail: string) {
    super(`Cannot decode snapshot: ${detail}`);
    this.reason = reason;
  }
}

/** What a snapshot header declares. */
export interface SnapshotHeader {
  /** The Raft index of the last entry applied to the state. */
  readonly appliedIndex: number;
  /** The number of keys. */
  readonly records: number;
  /** The sum of all value lengths. */
  readonly valueBytes: number;
}

/** Largest safe integer's high 32 bits: u64 fields above 2^53 - 1 are rejected. */
export const U64_HIGH_MAX = 0x1fffff;

/** Writes a non-negative safe integer as a big-endian u64. */
export function setU64(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, Math.floor(value / 0x1_0000_0000));
  view.setUint32(offset + 4, value >>> 0);
}

/** Reads a big-endian u64, or returns -1 when it exceeds 2^53 - 1. */
export function getU64(view: DataView, offset: number): number {
  const high = view.getUint32(offset);
  if (high > U64_HIGH_MAX) return -1;
  return high * 0x1_0000_0000 + view.getUint32(offset + 4);
}
