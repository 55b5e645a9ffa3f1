/**
 * Reads and fully verifies a version 1 KV snapshot stream (layout in snapshot_format.ts and
 * docs/FORMATS.md), handing each record to a visitor.
 *
 * The decoder is push-based and accepts chunks of any size and boundary (down to one byte).
 * It holds at most one block: a block's bytes reach the visitor only after the block's header
 * and payload checksums matched, so a flipped bit is reported as a checksum mismatch and never
 * as a strange record. Whole-stream properties (record and block counts, byte count, the chain
 * of block checksums, strictly increasing keys, nothing after the trailer) are checked too, so
 * truncation at a block boundary, dropped, repeated or reordered blocks and appended garbage
 * are all detected. Callers that build state must not publish it before {@linkcode
 * SnapshotDecoder.finish} returns.
 *
 * @module
 */

import { crc32c, crc32cUpdate } from "../util/crc32c.ts";
import { decodeKeyBytes, KEY_BYTES_MAX } from "./kv_key.ts";
import {
  BLOCK_TAG,
  getU64,
  RECORD_OVERHEAD_BYTES,
  SNAPSHOT_BLOCK_HEADER_BYTES,
  SNAPSHOT_HEADER_BYTES,
  SNAPSHOT_MAGIC,
  SNAPSHOT_TRAILER_BYTES,
  SNAPSHOT_VERSION,
  SnapshotFormatError,
  type SnapshotHeader,
  TRAILER_TAG,
} from "./snapshot_format.ts";

/** Receives what the decoder verified, in stream order. */
export interface SnapshotVisitor {
  /** Called once, after the header's checksum matched. May throw to abort. */
  header?(header: SnapshotHeader): void;
  /**
   * Called per record, in strictly increasing key byte order, after its block verified.
   * `value` is a view into the decoder's buffer, valid only during the call (copy it to keep
   * it), unless `retainValues` is set.
   */
  record(key: string, keyBytes: number, revision: number, value: Uint8Array): void;
  /**
   * When true, each block's payload is in a buffer of its own that the decoder never reuses,
   * so `value` views may be kept: one copy per block instead of one allocation per value.
   */
  readonly retainValues?: boolean;
}

/** Limits that protect a reader from a snapshot that is sound but absurd. */
export interface SnapshotDecoderOptions {
  /** Largest block payload accepted, in bytes (default 256 MiB). Bounds one allocation. */
  readonly blockBytesMax?: number;
}

/** Totals of a verified snapshot. */
export interface SnapshotSummary extends SnapshotHeader {
  readonly blocks: number;
  /** Length of the whole stream, trailer included. */
  readonly streamBytes: number;
}

const DEFAULT_BLOCK_BYTES_MAX = 256 * 1024 * 1024;

const State = { Header: 0, BlockHead: 1, BlockBody: 2, Trailer: 3, Done: 4 } as const;
type State = typeof State[keyof typeof State];

/** Bytewise comparison of two byte strings: negative, zero or positive. */
function compareBytes(a: Uint8Array, aLength: number, b: Uint8Array): number {
  const n = Math.min(aLength, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return aLength - b.length;
}

/** An incremental snapshot reader: `push` chunks, then `finish`. */
export class SnapshotDecoder {
  readonly #visitor: SnapshotVisitor;
  readonly #blockBytesMax: number;
  #state: State = State.Header;
  #need = SNAPSHOT_HEADER_BYTES;
  #fill: Uint8Array | null = null;
  #filled = 0;
  #header: SnapshotHeader | null = null;
  #blockPayload = 0;
  #blockRecords = 0;
  #blocks = 0;
  #records = 0;
  #valueBytes = 0;
  #streamBytes = 0;
  #chain = 0;
  readonly #crcBytes = new Uint8Array(4);
  readonly #prevKey = new Uint8Array(KEY_BYTES_MAX);
  #prevKeyLength = -1;
  #summary: SnapshotSummary | null = null;

  constructor(visitor: SnapshotVisitor, options: SnapshotDecoderOptions = {}) {
    this.#visitor = visitor;
    this.#blockBytesMax = options.blockBytesMax ?? DEFAULT_BLOCK_BYTES_MAX;
  }

  /** Consumes the next bytes of the stream. Throws {@linkcode SnapshotFormatError}. */
  push(chunk: Uint8Array): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#state === State.Done) {
        throw new SnapshotFormatError(
          "trailing_bytes",
          `${chunk.length - offset} unexpected bytes after the trailer`,
        );
      }
      const need = this.#need;
      if (this.#fill === null && chunk.length - offset >= need) {
        // The common case: the whole unit is inside this chunk, no copy.
        const unit = chunk.subarray(offset, offset + need);
        offset += need;
        this.#consume(unit, false);
        continue;
      }
      if (this.#fill === null) {
        this.#fill = new Uint8Array(need);
        this.#filled = 0;
      }
      const n = Math.min(need - this.#filled, chunk.length - offset);
      this.#fill.set(chunk.subarray(offset, offset + n), this.#filled);
      this.#filled += n;
      offset += n;
      if (this.#filled === need) {
        const unit = this.#fill;
        this.#fill = null;
        this.#consume(unit, true);
      }
    }
  }

  /**
   * Ends the stream: throws {@linkcode SnapshotFormatError} unless a complete, verified
   * snapshot was read; returns its totals.
   */
  finish(): SnapshotSummary {
    if (this.#summary !== null) return this.#summary;
    const where = this.#state === State.Header
      ? "in the header"
      : this.#state === State.BlockHead
      ? `after block ${this.#blocks} with no trailer`
      : this.#state === State.BlockBody
      ? `in block ${this.#blocks + 1}`
      : "in the trailer";
    throw new SnapshotFormatError("truncated", `stream ends ${where}`);
  }

  /** Handles one complete unit; `owned` when it is a buffer of the decoder's own. */
  #consume(unit: Uint8Array, owned: boolean): void {
    this.#streamBytes += unit.length;
    const view = new DataView(unit.buffer, unit.byteOffset, unit.byteLength);
    switch (this.#state) {
      case State.Header:
        this.#readHeader(unit, view);
        return;
      case State.BlockHead:
        this.#readBlockHead(unit, view);
        return;
      case State.BlockBody:
        if (this.#visitor.retainValues && !owned) {
          // The caller's chunk may be reused (BYOB reads): values must not point into it.
          const copy = unit.slice();
          this.#readBlockBody(copy, new DataView(copy.buffer));
        } else {
          this.#readBlockBody(unit, view);
        }
        return;
      case State.Trailer:
        this.#readTrailer(unit, view);
        return;
      case State.Done:
        return;
    }
  }

  #readHeader(unit: Uint8Array, view: DataView): void {
    for (let i = 0; i < SNAPSHOT_MAGIC.length; i++) {
      if (unit[i] !== SNAPSHOT_MAGIC[i]) {
        throw new SnapshotFormatError("bad_magic", "not an edgeraft KV snapshot (bad magic)");
      }
    }
    const version = view.getUint16(10);
    if (version !== SNAPSHOT_VERSION) {
      throw new SnapshotFormatError(
        "unsupported_version",
        `format version ${version} is not supported (this build reads ${SNAPSHOT_VERSION})`,
      );
    }
    if (view.getUint32(38) !== crc32c(unit.subarray(0, 38))) {
      throw new SnapshotFormatError("checksum_mismatch", "checksum mismatch in the header");
    }
    if (view.getUint16(12) !== 0) {
      throw new SnapshotFormatError("malformed", `unknown header flags ${view.getUint16(12)}`);
    }
    const appliedIndex = getU64(view, 14);
    const records = getU64(view, 22);
    const valueBytes = getU64(view, 30);
    if (appliedIndex < 0 || records < 0 || valueBytes < 0) {
      throw new SnapshotFormatError("malformed", "a header field exceeds 2^53 - 1");
    }
    if (records > 0 && appliedIndex === 0) {
      throw new SnapshotFormatError("malformed", "records present at applied index 0");
    }
    this.#header = { appliedIndex, records, valueBytes };
    this.#visitor.header?.(this.#header);
    this.#state = State.BlockHead;
    this.#need = SNAPSHOT_BLOCK_HEADER_BYTES;
  }

  #readBlockHead(unit: Uint8Array, view: DataView): void {
    const block = this.#blocks + 1;
    if (unit[0] === TRAILER_TAG) {
      // The trailer is longer than a block header: read the rest of it first.
      this.#state = State.Trailer;
      this.#fill = new Uint8Array(SNAPSHOT_TRAILER_BYTES);
      this.#fill.set(unit, 0);
      this.#filled = unit.length;
      this.#need = SNAPSHOT_TRAILER_BYTES;
      this.#streamBytes -= unit.length; // counted again with the whole trailer
      return;
    }
    if (unit[0] !== BLOCK_TAG) {
      throw new SnapshotFormatError(
        "malformed",
        `bad tag 0x${unit[0]!.toString(16)} at block ${block}`,
      );
    }
    if (view.getUint32(12) !== crc32c(unit.subarray(0, 12))) {
      throw new SnapshotFormatError(
        "checksum_mismatch",
        `checksum mismatch in block ${block} header`,
      );
    }
    if (unit[1] !== 0 || unit[2] !== 0 || unit[3] !== 0) {
      throw new SnapshotFormatError("malformed", `reserved bytes set in block ${block} header`);
    }
    const payload = view.getUint32(4);
    const count = view.getUint32(8);
    if (payload > this.#blockBytesMax) {
      throw new SnapshotFormatError(
        "limit_exceeded",
        `block ${block} payload of ${payload} bytes exceeds the limit of ${this.#blockBytesMax}`,
      );
    }
    if (count === 0 || count * RECORD_OVERHEAD_BYTES > payload) {
      throw new SnapshotFormatError(
        "malformed",
        `block ${block} declares ${count} records in ${payload} bytes`,
      );
    }
    this.#blockPayload = payload;
    this.#blockRecords = count;
    this.#state = State.BlockBody;
    this.#need = payload + 4;
  }

  #readBlockBody(unit: Uint8Array, view: DataView): void {
    const block = this.#blocks + 1;
    const payloadLength = this.#blockPayload;
    const payload = unit.subarray(0, payloadLength);
    const payloadCrc = view.getUint32(payloadLength);
    if (payloadCrc !== crc32c(payload)) {
      throw new SnapshotFormatError("checksum_mismatch", `checksum mismatch in block ${block}`);
    }
    const header = this.#header!;
    let offset = 0;
    for (let r = 0; r < this.#blockRecords; r++) {
      const bad = (what: string): SnapshotFormatError =>
        new SnapshotFormatError("malformed", `${what} in record ${r + 1} of block ${block}`);
      if (payloadLength - offset < RECORD_OVERHEAD_BYTES) throw bad("record overruns its block");
      const keyLength = view.getUint16(offset);
      if (keyLength === 0 || keyLength > KEY_BYTES_MAX) throw bad(`key length ${keyLength}`);
      if (payloadLength - offset < RECORD_OVERHEAD_BYTES + keyLength) {
        throw bad("key overruns its block");
      }
      const keyBytes = unit.subarray(offset + 2, offset + 2 + keyLength);
      if (
        this.#prevKeyLength >= 0 && compareBytes(this.#prevKey, this.#prevKeyLength, keyBytes) >= 0
      ) {
        throw bad("key out of order");
      }
      const key = decodeKeyBytes(keyBytes);
      if (key === null) throw bad("key that is not UTF-8");
      this.#prevKey.set(keyBytes, 0);
      this.#prevKeyLength = keyLength;
      offset += 2 + keyLength;
      const revision = getU64(view, offset);
      if (revision < 1 || revision > header.appliedIndex) {
        throw bad(`revision outside 1..${header.appliedIndex}`);
      }
      const valueLength = view.getUint32(offset + 8);
      offset += 12;
      if (payloadLength - offset < valueLength) throw bad("value overruns its block");
      const value = unit.subarray(offset, offset + valueLength);
      offset += valueLength;
      this.#records++;
      this.#valueBytes += valueLength;
      this.#visitor.record(key, keyLength, revision, value);
    }
    if (offset !== payloadLength) {
      throw new SnapshotFormatError(
        "malformed",
        `${payloadLength - offset} bytes after the last record of block ${block}`,
      );
    }
    if (this.#records > header.records) {
      throw new SnapshotFormatError(
        "malformed",
        `more records than the ${header.records} the header declares`,
      );
    }
    new DataView(this.#crcBytes.buffer).setUint32(0, payloadCrc);
    this.#chain = crc32cUpdate(this.#chain, this.#crcBytes);
    this.#blocks = block;
    this.#state = State.BlockHead;
    this.#need = SNAPSHOT_BLOCK_HEADER_BYTES;
  }

  #readTrailer(unit: Uint8Array, view: DataView): void {
    if (view.getUint32(40) !== crc32c(unit.subarray(0, 40))) {
      throw new SnapshotFormatError("checksum_mismatch", "checksum mismatch in the trailer");
    }
    if (unit[1] !== 0 || unit[2] !== 0 || unit[3] !== 0) {
      throw new SnapshotFormatError("malformed", "reserved bytes set in the trailer");
    }
    const header = this.#header!;
    const streamBytes = this.#streamBytes - SNAPSHOT_TRAILER_BYTES;
    const checks: [string, number, number][] = [
      ["record count", getU64(view, 4), this.#records],
      ["value bytes", getU64(view, 12), this.#valueBytes],
      ["block count", getU64(view, 20), this.#blocks],
      ["stream bytes", getU64(view, 28), streamBytes],
      ["block checksum chain", view.getUint32(36), this.#chain],
      ["header record count", header.records, this.#records],
      ["header value bytes", header.valueBytes, this.#valueBytes],
    ];
    for (const [what, declared, actual] of checks) {
      if (declared !== actual) {
        throw new SnapshotFormatError(
          "malformed",
          `${what} mismatch: trailer or header says ${declared}, stream has ${actual}`,
        );
      }
    }
    this.#summary = {
      ...header,
      blocks: this.#blocks,
      streamBytes: this.#streamBytes,
    };
    this.#state = State.Done;
    this.#need = 1;
  }
}

/**
 * Reads `stream` to its end through a {@linkcode SnapshotDecoder}. On any error the stream is
 * cancelled and the error rethrown: a {@linkcode SnapshotFormatError} for damage, or the
 * stream's own error (I/O) unchanged.
 */
export async function readSnapshot(
  stream: ReadableStream<Uint8Array>,
  visitor: SnapshotVisitor,
  options: SnapshotDecoderOptions = {},
): Promise<SnapshotSummary> {
  const decoder = new SnapshotDecoder(visitor, options);
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!(value instanceof Uint8Array)) {
        throw new SnapshotFormatError("malformed", "stream chunk is not a Uint8Array");
      }
      decoder.push(value);
    }
    return decoder.finish();
  } catch (error) {
    await reader.cancel(error).catch(() => {});
    throw error;
  } finally {
    reader.releaseLock();
  }
}
