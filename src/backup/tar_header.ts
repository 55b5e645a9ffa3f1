/**
 * The POSIX ustar header (IEEE Std 1003.1, "pax" utility, ustar interchange format): one
 * 512-byte block before each member's bytes. Shared by the streaming writer and reader so that
 * what one writes is exactly what the other accepts.
 *
 * Layout (offset, size): name 0/100, mode 100/8, uid 108/8, gid 116/8, size 124/12,
 * mtime 136/12, chksum 148/8, typeflag 156/1, linkname 157/100, magic 257/6 ("ustar\0"),
 * version 263/2 ("00"), uname 265/32, gname 297/32, devmajor 329/8, devminor 337/8,
 * prefix 345/155, then 12 bytes of padding. Numeric fields are zero-padded octal ASCII ended
 * by a NUL; the checksum is the unsigned sum of all 512 bytes with the checksum field counted
 * as eight spaces, written as six octal digits, a NUL and a space.
 *
 * What edgeraft writes and reads: regular files only (typeflag '0'), names without a directory
 * part that fit the 100-byte name field, sizes below 8 GiB (11 octal digits; no GNU base-256
 * or pax size extension). The reader also accepts the GNU magic ("ustar  \0") so an archive
 * that was unpacked and re-packed with GNU tar in the same member order still verifies.
 *
 * @module
 */

/** Size of a tar block: every header and every member's padded body is a multiple of it. */
export const TAR_BLOCK_BYTES = 512;
/** Largest member size an 11-digit octal size field holds: 8 GiB - 1. */
export const TAR_SIZE_MAX = 0o77777777777;
/** Longest name in bytes (the name field; the prefix field is not used by the writer). */
export const TAR_NAME_BYTES_MAX = 100;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** What a member's header says. */
export interface TarHeader {
  /** The member's path (prefix + "/" + name when the prefix field is used). */
  readonly name: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  /** Modification time, seconds since the Unix epoch. */
  readonly mtime: number;
  /** The typeflag character ("0" for a regular file; NUL is read as "0"). */
  readonly typeflag: string;
  readonly uname: string;
  readonly gname: string;
}

/** What the writer puts in a header; owner and mode default to edgeraft's fixed values. */
export interface TarHeaderFields {
  readonly name: string;
  readonly size: number;
  /** Seconds since the Unix epoch. */
  readonly mtime: number;
  /** Default 0o644. */
  readonly mode?: number;
  /** Default "edgeraft" (uid and gid are always 0). */
  readonly uname?: string;
  readonly gname?: string;
}

/** Why {@linkcode parseTarHeader} rejected a block. */
export type TarHeaderProblem =
  | { readonly kind: "checksum"; readonly message: string }
  | { readonly kind: "invalid"; readonly message: string };

/** True when every byte of `block` is zero (an end-of-archive block). */
export function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

function writeOctal(block: Uint8Array, offset: number, width: number, value: number): void {
  // width - 1 digits, zero-padded, then NUL.
  const digits = value.toString(8).padStart(width - 1, "0");
  if (digits.length > width - 1) throw new RangeError(`tar: ${value} does not fit ${width} bytes`);
  block.set(encoder.encode(digits), offset);
  block[offset + width - 1] = 0;
}

function writeText(block: Uint8Array, offset: number, width: number, text: string): void {
  const bytes = encoder.encode(text);
  if (bytes.length > width) throw new RangeError(`tar: "${text}" is longer than ${width} bytes`);
  block.set(bytes, offset);
}

/** Sum of the header's bytes with the checksum field counted as spaces. */
function headerChecksum(block: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK_BYTES; i++) {
    sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  }
  return sum;
}

/**
 * Encodes a ustar header for a regular file. Throws `RangeError` for a name that is empty,
 * too long, absolute or has a directory part, and for a size or time out of range: callers
 * pass names they chose, so these are programming errors.
 */
export function encodeTarHeader(fields: TarHeaderFields): Uint8Array {
  const { name, size, mtime } = fields;
  const problem = nameProblem(name);
  if (problem !== null || name.includes("/")) {
    throw new RangeError(`tar: member name "${name}" is not a plain file name`);
  }
  if (!Number.isSafeInteger(size) || size < 0 || size > TAR_SIZE_MAX) {
    throw new RangeError(`tar: member "${name}" size ${size} is outside 0..${TAR_SIZE_MAX}`);
  }
  if (!Number.isSafeInteger(mtime) || mtime < 0 || mtime > TAR_SIZE_MAX) {
    throw new RangeError(`tar: member "${name}" mtime ${mtime} is out of range`);
  }
  const block = new Uint8Array(TAR_BLOCK_BYTES);
  writeText(block, 0, TAR_NAME_BYTES_MAX, name);
  writeOctal(block, 100, 8, fields.mode ?? 0o644);
  writeOctal(block, 108, 8, 0);
  writeOctal(block, 116, 8, 0);
  writeOctal(block, 124, 12, size);
  writeOctal(block, 136, 12, mtime);
  block[156] = 0x30; // '0': regular file
  writeText(block, 257, 6, "ustar\0");
  writeText(block, 263, 2, "00");
  writeText(block, 265, 31, fields.uname ?? "edgeraft");
  writeText(block, 297, 31, fields.gname ?? "edgeraft");
  writeOctal(block, 329, 8, 0);
  writeOctal(block, 337, 8, 0);
  const sum = headerChecksum(block);
  block.set(encoder.encode(sum.toString(8).padStart(6, "0")), 148);
  block[154] = 0;
  block[155] = 0x20;
  return block;
}

/**
 * Why `name` is not acceptable as a member path, or null: it must be non-empty UTF-8, not
 * absolute, without "." or ".." components, empty components, backslashes or control bytes.
 */
export function nameProblem(name: string): string | null {
  if (name.length === 0) return "an empty name";
  if (name.startsWith("/")) return "an absolute path";
  if (encoder.encode(name).length > TAR_NAME_BYTES_MAX + 155) return "a name that is too long";
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return "a control character in the name";
    if (c === 0x5c) return "a backslash in the name";
  }
  for (const part of name.split("/")) {
    if (part === "..") return 'a ".." component';
    if (part === "." || part === "") return 'an empty or "." component';
  }
  return null;
}

/** Reads a NUL-terminated text field (bytes after the first NUL are ignored). */
function readText(block: Uint8Array, offset: number, width: number): string | null {
  let end = offset;
  while (end < offset + width && block[end] !== 0) end++;
  try {
    return decoder.decode(block.subarray(offset, end));
  } catch {
    return null;
  }
}

/**
 * Reads an octal numeric field: optional leading spaces, at least one octal digit, then only
 * NULs or spaces to the end of the field. Returns -1 for anything else (including GNU base-256
 * numbers, which edgeraft never writes).
 */
function readOctal(block: Uint8Array, offset: number, width: number): number {
  let i = offset;
  const end = offset + width;
  while (i < end && block[i] === 0x20) i++;
  let value = 0;
  let digits = 0;
  while (i < end && block[i]! >= 0x30 && block[i]! <= 0x37) {
    value = value * 8 + (block[i]! - 0x30);
    digits++;
    i++;
  }
  if (digits === 0) return -1;
  while (i < end) {
    if (block[i] !== 0 && block[i] !== 0x20) return -1;
    i++;
  }
  return value;
}

/**
 * The name field as text if it is readable, for error messages about a header that failed
 * its checks (null when it is not clean printable text).
 */
export function headerNameHint(block: Uint8Array): string | null {
  const name = readText(block, 0, TAR_NAME_BYTES_MAX);
  return name !== null && name.length > 0 && nameProblem(name) === null ? name : null;
}

/**
 * Parses and checks a (non-zero) header block: checksum first (so a flipped bit is reported
 * as damage), then magic, numeric fields, typeflag (regular files only) and the path.
 */
export function parseTarHeader(block: Uint8Array): TarHeader | TarHeaderProblem {
  const stored = readOctal(block, 148, 8);
  const computed = headerChecksum(block);
  if (stored !== computed) {
    return {
      kind: "checksum",
      message: `header checksum mismatch (stored ${
        stored < 0 ? "unreadable" : stored.toString(8)
      }, computed ${computed.toString(8)})`,
    };
  }
  const magic = String.fromCharCode(...block.subarray(257, 265));
  if (magic !== "ustar\x0000" && magic !== "ustar  \x00") {
    return { kind: "invalid", message: "not a ustar header (bad magic)" };
  }
  const mode = readOctal(block, 100, 8);
  const uid = readOctal(block, 108, 8);
  const gid = readOctal(block, 116, 8);
  const size = readOctal(block, 124, 12);
  const mtime = readOctal(block, 136, 12);
  for (
    const [field, value] of [["mode", mode], ["uid", uid], ["gid", gid], ["size", size]] as const
  ) {
    if (value < 0) return { kind: "invalid", message: `malformed ${field} field` };
  }
  if (mtime < 0) return { kind: "invalid", message: "malformed mtime field" };
  const flag = block[156]!;
  const typeflag = flag === 0 ? "0" : String.fromCharCode(flag);
  const name = readText(block, 0, TAR_NAME_BYTES_MAX);
  const prefix = readText(block, 345, 155);
  if (name === null || prefix === null) {
    return { kind: "invalid", message: "member name is not UTF-8" };
  }
  const path = prefix === "" ? name : `${prefix}/${name}`;
  if (typeflag !== "0") {
    const what = TYPE_NAMES[typeflag] ?? `typeflag '${typeflag}'`;
    return {
      kind: "invalid",
      message: `member "${path}" is a ${what}; only regular files are supported`,
    };
  }
  const problem = nameProblem(path);
  if (problem !== null) {
    return { kind: "invalid", message: `member "${path}" has ${problem}` };
  }
  const uname = readText(block, 265, 32) ?? "";
  const gname = readText(block, 297, 32) ?? "";
  return { name: path, mode, uid, gid, size, mtime, typeflag, uname, gname };
}

const TYPE_NAMES: Readonly<Record<string, string>> = {
  "1": "hard link",
  "2": "symbolic link",
  "3": "character device",
  "4": "block device",
  "5": "directory",
  "6": "FIFO",
  "7": "contiguous file",
  "x": "pax extended header",
  "g": "pax global header",
  "L": "GNU long name",
  "K": "GNU long link name",
};
