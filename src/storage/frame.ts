/**
 * The checksummed frame used by the small files of the data directory (hard state, snapshot
 * manifest): magic, version, length, payload, CRC-32C. Little-endian:
 *
 * ```
 * offset  size  field
 *      0     4  magic (file kind)
 *      4     2  version
 *      6     2  reserved, 0
 *      8     4  payload length in bytes
 *     12     n  payload (UTF-8 JSON)
 *   12+n     4  CRC-32C of bytes [0, 12+n)
 * ```
 *
 * @module
 */

import { crc32c } from "../util/crc32c.ts";

/** Bytes of a frame around its payload. */
export const FRAME_OVERHEAD_BYTES = 16;

/** Encodes one frame. */
export function encodeFrame(magic: number, version: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_OVERHEAD_BYTES + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, magic, true);
  view.setUint16(4, version, true);
  view.setUint32(8, payload.length, true);
  out.set(payload, 12);
  view.setUint32(12 + payload.length, crc32c(out, 0, 12 + payload.length), true);
  return out;
}

/** A decoded frame, or why there is none at that offset. */
export type FrameResult =
  | {
    readonly ok: true;
    readonly version: number;
    readonly payload: Uint8Array;
    readonly end: number;
  }
  | { readonly ok: false; readonly reason: string };

/** Decodes the frame starting at `offset` of `bytes`, checking magic, length and checksum. */
export function decodeFrame(bytes: Uint8Array, magic: number, offset = 0): FrameResult {
  if (bytes.length - offset < FRAME_OVERHEAD_BYTES) return { ok: false, reason: "short frame" };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(offset, true) !== magic) return { ok: false, reason: "bad magic" };
  const length = view.getUint32(offset + 8, true);
  if (length > bytes.length - offset - FRAME_OVERHEAD_BYTES) {
    return { ok: false, reason: "length beyond end of file" };
  }
  const crcAt = offset + 12 + length;
  if (view.getUint32(crcAt, true) !== crc32c(bytes, offset, crcAt)) {
    return { ok: false, reason: "checksum mismatch" };
  }
  return {
    ok: true,
    version: view.getUint16(offset + 4, true),
    payload: bytes.subarray(offset + 12, crcAt),
    end: crcAt + 4,
  };
}
