/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) in pure JS with slicing-by-8 tables,
 * ≈1 GiB/s on the project's machines. Used for every record, frame and segment header.
 *
 * `crc32c(data)` gives the checksum of one buffer; `crc32cUpdate(crc, data)` continues a running
 * checksum (start with 0), so a header and a payload held in two buffers need no copy.
 *
 * @module
 */

const TABLES: Uint32Array = (() => {
  const t = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + n] = c >>> 0;
    }
  }
  return t;
})();

/** Continues the CRC-32C `crc` (0 for a fresh checksum) over `data[start, end)`. */
export function crc32cUpdate(
  crc: number,
  data: Uint8Array,
  start = 0,
  end: number = data.length,
): number {
  const t = TABLES;
  let c = ~crc >>> 0;
  let i = start;
  // Align nothing: read bytes individually but eight at a time (slicing-by-8).
  const last8 = end - 8;
  while (i <= last8) {
    const lo = (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)) ^ c;
    const hi = data[i + 4]! | (data[i + 5]! << 8) | (data[i + 6]! << 16) | (data[i + 7]! << 24);
    c = t[1792 + (lo & 0xff)]! ^ t[1536 + ((lo >>> 8) & 0xff)]! ^
      t[1280 + ((lo >>> 16) & 0xff)]! ^ t[1024 + (lo >>> 24)]! ^
      t[768 + (hi & 0xff)]! ^ t[512 + ((hi >>> 8) & 0xff)]! ^
      t[256 + ((hi >>> 16) & 0xff)]! ^ t[hi >>> 24]!;
    i += 8;
  }
  while (i < end) c = t[(c ^ data[i++]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** The CRC-32C of `data` (of `data[start, end)` when given). */
export function crc32c(data: Uint8Array, start = 0, end: number = data.length): number {
  return crc32cUpdate(0, data, start, end);
}
