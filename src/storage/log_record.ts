/**
 * Binary layout of log segments: a 32-byte segment header, then records, each a 32-byte header
 * and its payload. Little-endian; 64-bit fields are written as two 32-bit halves and must stay
 * below 2^53. See docs/STORAGE.md for the tables.
 *
 * A header of 32 zero bytes is never a record (magic ≠ 0): it marks the end of the written
 * part of a preallocated segment.
 *
 * @module
 */

import { assert } from "../util/assert.ts";
import type { Entry, EntryType } from "../raft/types.ts";
import { crc32c } from "../util/crc32c.ts";

/** "ERLS" little-endian: segment header magic. */
export const SEGMENT_MAGIC = 0x534c5245;
export const SEGMENT_VERSION = 1;
export const SEGMENT_HEADER_BYTES = 32;
/** "ER" little-endian: record magic. */
export const RECORD_MAGIC = 0x5245;
export const RECORD_VERSION = 1;
export const RECORD_HEADER_BYTES = 32;

const TWO_32 = 4294967296;
const ENTRY_TYPES: ReadonlySet<number> = new Set([0, 1, 2]);

function setU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, value % TWO_32, true);
  view.setUint32(at + 4, Math.floor(value / TWO_32), true);
}

function getU64(view: DataView, at: number): number {
  const hi = view.getUint32(at + 4, true);
  return hi >= 0x200000 ? -1 : hi * TWO_32 + view.getUint32(at, true);
}

/** Encodes a segment header for a segment whose first record has index `firstIndex`. */
export function encodeSegmentHeader(firstIndex: number): Uint8Array {
  const out = new Uint8Array(SEGMENT_HEADER_BYTES);
  const view = new DataView(out.buffer);
  view.setUint32(0, SEGMENT_MAGIC, true);
  view.setUint16(4, SEGMENT_VERSION, true);
  view.setUint16(6, SEGMENT_HEADER_BYTES, true);
  setU64(view, 8, firstIndex);
  view.setUint32(28, crc32c(out, 0, 28), true);
  return out;
}

/** The first index a segment header names, or a reason it is unusable. */
export function decodeSegmentHeader(
  bytes: Uint8Array,
): { ok: true; firstIndex: number } | { ok: false; reason: string } {
  if (bytes.length < SEGMENT_HEADER_BYTES) return { ok: false, reason: "short segment header" };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== SEGMENT_MAGIC) {
    return { ok: false, reason: "bad segment magic" };
  }
  if (view.getUint32(28, true) !== crc32c(bytes, 0, 28)) {
    return { ok: false, reason: "segment header checksum mismatch" };
  }
  const version = view.getUint16(4, true);
  if (version !== SEGMENT_VERSION) {
    return { ok: false, reason: `unsupported segment version ${version}` };
  }
  const firstIndex = getU64(view, 8);
  if (firstIndex < 1) return { ok: false, reason: "bad first index" };
  return { ok: true, firstIndex };
}

/** Bytes a record for `entry` takes on disk. */
export function recordBytes(entry: Entry): number {
  return RECORD_HEADER_BYTES + entry.data.length;
}

/**
 * Encodes `entry` into `out` at `at` and returns the offset after it. Checks the entry first
 * (STYLE.md item 8: writers check a record just before encoding).
 */
export function encodeRecord(entry: Entry, out: Uint8Array, at: number): number {
  assert(Number.isSafeInteger(entry.index) && entry.index >= 1, `bad index ${entry.index}`);
  assert(Number.isSafeInteger(entry.term) && entry.term >= 1, `bad term ${entry.term}`);
  assert(ENTRY_TYPES.has(entry.type), `bad entry type ${entry.type}`);
  assert(entry.data.length <= 0xffffffff, "entry too large");
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint16(at, RECORD_MAGIC, true);
  out[at + 2] = RECORD_VERSION;
  out[at + 3] = entry.type;
  view.setUint32(at + 4, entry.data.length, true);
  setU64(view, at + 8, entry.index);
  setU64(view, at + 16, entry.term);
  out.set(entry.data, at + RECORD_HEADER_BYTES);
  view.setUint32(at + 24, crc32c(entry.data), true);
  view.setUint32(at + 28, crc32c(out, at, at + 28), true);
  return at + RECORD_HEADER_BYTES + entry.data.length;
}

/** A parsed record header. */
export interface RecordHeader {
  readonly type: EntryType;
  readonly length: number;
  readonly index: number;
  readonly term: number;
  readonly payloadCrc: number;
}

/** Parses and checks the record header at `at`; null when it is not a valid header. */
export function decodeRecordHeader(bytes: Uint8Array, at: number): RecordHeader | null {
  if (bytes.length - at < RECORD_HEADER_BYTES) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint16(at, true) !== RECORD_MAGIC) return null;
  if (view.getUint32(at + 28, true) !== crc32c(bytes, at, at + 28)) return null;
  if (bytes[at + 2] !== RECORD_VERSION) return null;
  const type = bytes[at + 3]!;
  if (!ENTRY_TYPES.has(type)) return null;
  const index = getU64(view, at + 8);
  const term = getU64(view, at + 16);
  if (index < 1 || term < 1) return null;
  return {
    type: type as EntryType,
    length: view.getUint32(at + 4, true),
    index,
    term,
    payloadCrc: view.getUint32(at + 24, true),
  };
}

/** True when bytes [from, to) are all zero. */
export function allZero(bytes: Uint8Array, from: number, to: number = bytes.length): boolean {
  let i = from;
  while (i < to && (i & 7) !== 0) if (bytes[i++] !== 0) return false;
  const words = Math.floor((to - i) / 8);
  if (words > 0 && (bytes.byteOffset + i) % 8 === 0) {
    const f = new Float64Array(bytes.buffer, bytes.byteOffset + i, words);
    // Zero bytes are +0; -0 or NaN patterns compare differently, so check with Object.is.
    for (let k = 0; k < words; k++) if (!Object.is(f[k], 0)) return false;
    i += words * 8;
  }
  while (i < to) if (bytes[i++] !== 0) return false;
  return true;
}
