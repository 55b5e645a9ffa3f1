/**
 * Writes a frozen view of the KV index as a version 1 snapshot stream (layout in
 * snapshot_format.ts and docs/FORMATS.md).
 *
 * Memory: the writer holds one block (≤ {@linkcode SNAPSHOT_CHUNK_BYTES}, or one record when a
 * single value is larger) and produces it only when the consumer pulls, so a snapshot of any
 * size streams in constant memory beyond the state itself. Leaves already written are dropped
 * from the view, so a slow reader does not keep pre-images of rewritten leaves alive longer
 * than it needs them. Every chunk is a fresh buffer that shares nothing with the live state,
 * so a consumer may transfer or modify chunks freely.
 *
 * @module
 */

import { assert } from "../util/assert.ts";
import { crc32c, crc32cUpdate } from "../util/crc32c.ts";
import { encodeKeyInto, fromSortForm } from "./kv_key.ts";
import {
  BLOCK_TAG,
  RECORD_OVERHEAD_BYTES,
  setU64,
  SNAPSHOT_BLOCK_HEADER_BYTES,
  SNAPSHOT_CHUNK_BYTES,
  SNAPSHOT_HEADER_BYTES,
  SNAPSHOT_MAGIC,
  SNAPSHOT_TRAILER_BYTES,
  SNAPSHOT_VERSION,
  type SnapshotHeader,
  TRAILER_TAG,
} from "./snapshot_format.ts";
import type { Leaf } from "./sorted_index.ts";

const BLOCK_FRAMING_BYTES = SNAPSHOT_BLOCK_HEADER_BYTES + 4;
const PAYLOAD_TARGET_BYTES = SNAPSHOT_CHUNK_BYTES - BLOCK_FRAMING_BYTES;

/** Encodes the 42-byte snapshot header. */
export function encodeSnapshotHeader(header: SnapshotHeader): Uint8Array {
  const out = new Uint8Array(SNAPSHOT_HEADER_BYTES);
  const view = new DataView(out.buffer);
  out.set(SNAPSHOT_MAGIC, 0);
  view.setUint16(10, SNAPSHOT_VERSION);
  view.setUint16(12, 0);
  setU64(view, 14, header.appliedIndex);
  setU64(view, 22, header.records);
  setU64(view, 30, header.valueBytes);
  view.setUint32(38, crc32c(out.subarray(0, 38)));
  return out;
}

/** The next block of a snapshot: its payload length, record count and where the next starts. */
interface BlockPlan {
  readonly payload: number;
  readonly count: number;
  readonly nextLeaf: number;
  readonly nextPos: number;
}

/**
 * Plans the block that starts at record `pos` of leaf `leafIndex`: records while they fit the
 * payload target; a record larger than the target gets a block of its own. The one rule both
 * the writer and {@linkcode snapshotByteLength} follow, so the length cannot drift from the
 * bytes.
 */
function planBlock(
  leaves: readonly (Leaf | undefined)[],
  leafIndex: number,
  pos: number,
): BlockPlan {
  let payload = 0;
  let count = 0;
  let li = leafIndex;
  let lp = pos;
  while (li < leaves.length) {
    const leaf = leaves[li]!;
    if (lp >= leaf.keys.length) {
      li++;
      lp = 0;
      continue;
    }
    const record = leaf.records[lp]!;
    const size = RECORD_OVERHEAD_BYTES + record.keyBytes + record.value.length;
    if (count > 0 && payload + size > PAYLOAD_TARGET_BYTES) break;
    payload += size;
    count++;
    lp++;
    if (payload >= PAYLOAD_TARGET_BYTES) break;
  }
  return { payload, count, nextLeaf: li, nextPos: lp };
}

/**
 * The exact length in bytes of the snapshot stream {@linkcode snapshotChunks} will produce for
 * `leaves`, computed from record sizes without encoding anything (O(records), no allocation
 * per record). A backup archive needs it up front: a tar header carries its member's size
 * before the member's bytes. Call it before streaming starts (the writer releases leaves).
 */
export function snapshotByteLength(leaves: readonly (Leaf | undefined)[]): number {
  let bytes = SNAPSHOT_HEADER_BYTES + SNAPSHOT_TRAILER_BYTES;
  let leafIndex = 0;
  let pos = 0;
  for (;;) {
    while (leafIndex < leaves.length && pos >= leaves[leafIndex]!.keys.length) {
      leafIndex++;
      pos = 0;
    }
    if (leafIndex >= leaves.length) return bytes;
    const plan = planBlock(leaves, leafIndex, pos);
    bytes += BLOCK_FRAMING_BYTES + plan.payload;
    leafIndex = plan.nextLeaf;
    pos = plan.nextPos;
  }
}

/**
 * Yields the snapshot of `leaves` (a frozen view: never modified while this runs) in chunks of
 * at most {@linkcode SNAPSHOT_CHUNK_BYTES}. `header` must describe exactly those leaves; the
 * writer checks that before it writes the trailer.
 */
export function* snapshotChunks(
  leaves: (Leaf | undefined)[],
  header: SnapshotHeader,
): Generator<Uint8Array, void, undefined> {
  const head = encodeSnapshotHeader(header);
  yield head;
  let streamBytes = head.length;
  let records = 0;
  let valueBytes = 0;
  let blocks = 0;
  let chain = 0;
  const crcBytes = new Uint8Array(4);
  const crcView = new DataView(crcBytes.buffer);

  let leafIndex = 0;
  let pos = 0;
  for (;;) {
    // Skip exhausted leaves, releasing them so their memory can go once rewritten.
    while (leafIndex < leaves.length && pos >= leaves[leafIndex]!.keys.length) {
      leaves[leafIndex] = undefined;
      leafIndex++;
      pos = 0;
    }
    if (leafIndex >= leaves.length) break;

    const { payload, count } = planBlock(leaves, leafIndex, pos);

    const block = new Uint8Array(BLOCK_FRAMING_BYTES + payload);
    const view = new DataView(block.buffer);
    block[0] = BLOCK_TAG;
    view.setUint32(4, payload);
    view.setUint32(8, count);
    view.setUint32(12, crc32c(block.subarray(0, 12)));
    let offset = SNAPSHOT_BLOCK_HEADER_BYTES;
    for (let written = 0; written < count;) {
      const leaf = leaves[leafIndex]!;
      if (pos >= leaf.keys.length) {
        leaves[leafIndex] = undefined;
        leafIndex++;
        pos = 0;
        continue;
      }
      const record = leaf.records[pos]!;
      const key = fromSortForm(leaf.keys[pos]!);
      view.setUint16(offset, record.keyBytes);
      const keyWritten = encodeKeyInto(key, block, offset + 2);
      assert(keyWritten === record.keyBytes, "snapshot writer: key length changed");
      offset += 2 + record.keyBytes;
      setU64(view, offset, record.revision);
      view.setUint32(offset + 8, record.value.length);
      block.set(record.value, offset + 12);
      offset += 12 + record.value.length;
      valueBytes += record.value.length;
      written++;
      pos++;
    }
    assert(offset === SNAPSHOT_BLOCK_HEADER_BYTES + payload, "snapshot writer: block size");
    const payloadCrc = crc32c(block.subarray(SNAPSHOT_BLOCK_HEADER_BYTES, offset));
    view.setUint32(offset, payloadCrc);
    crcView.setUint32(0, payloadCrc);
    chain = crc32cUpdate(chain, crcBytes);
    records += count;
    blocks++;
    streamBytes += block.length;
    if (block.length <= SNAPSHOT_CHUNK_BYTES) {
      yield block;
    } else {
      // Copies, so that no two chunks share a buffer: a consumer may transfer any of them.
      for (let start = 0; start < block.length; start += SNAPSHOT_CHUNK_BYTES) {
        yield block.slice(start, Math.min(block.length, start + SNAPSHOT_CHUNK_BYTES));
      }
    }
  }

  // Writers check what they wrote before sealing it (STYLE.md item 8).
  assert(records === header.records, "snapshot writer: record count differs from header");
  assert(valueBytes === header.valueBytes, "snapshot writer: value bytes differ from header");
  const trailer = new Uint8Array(SNAPSHOT_TRAILER_BYTES);
  const view = new DataView(trailer.buffer);
  trailer[0] = TRAILER_TAG;
  setU64(view, 4, records);
  setU64(view, 12, valueBytes);
  setU64(view, 20, blocks);
  setU64(view, 28, streamBytes);
  view.setUint32(36, chain);
  view.setUint32(40, crc32c(trailer.subarray(0, 40)));
  yield trailer;
}

/**
 * A pull-based stream over {@linkcode snapshotChunks}: nothing is encoded until a reader asks,
 * and cancelling the stream stops the writer.
 */
export function snapshotStream(
  leaves: (Leaf | undefined)[],
  header: SnapshotHeader,
): ReadableStream<Uint8Array> {
  const chunks = snapshotChunks(leaves, header);
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = chunks.next();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    cancel() {
      chunks.return();
    },
  }, { highWaterMark: 0 });
}
