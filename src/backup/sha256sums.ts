/**
 * The `SHA256SUMS` member: one line per other member in the format `sha256sum` writes and
 * `sha256sum -c` checks, `<64 lowercase hex>  <name>\n` (two spaces: text mode).
 *
 * The parser is strict, accepting only what {@linkcode encodeSha256Sums} writes: LF line ends (no CR or other control characters),
 * a final newline, lowercase hex, two spaces, no blank lines, comments, binary-mode markers
 * ("*name"), escaped names or duplicates. Failures throw `ERR_BACKUP_CHECKSUM_MISMATCH` naming
 * `SHA256SUMS` (the list of checksums is itself damaged).
 *
 * @module
 */

import { BackupError } from "../errors.ts";
import { SUMS_FILE } from "./manifest.ts";

/** One line: a member's name and SHA-256 (lowercase hex). */
export interface Sha256Sum {
  readonly name: string;
  readonly sha256: string;
}

/** Largest SHA256SUMS a reader accepts (it is buffered to be parsed). */
export const SHA256SUMS_BYTES_MAX = 64 * 1024;
/** The check name a malformed SHA256SUMS carries. */
export const SHA256SUMS_CHECK = "SHA256SUMS format";

const LINE = /^([0-9a-f]{64}) {2}(.+)$/;

/** True for names sha256sum would escape (control characters, backslash) or read as binary. */
function unlistable(name: string): boolean {
  if (name.length === 0 || name.startsWith("*")) return true;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || c === 0x5c) return true;
  }
  return false;
}

/** Encodes the lines in the given order. */
export function encodeSha256Sums(sums: readonly Sha256Sum[]): Uint8Array {
  let out = "";
  for (const { name, sha256 } of sums) {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new RangeError(`SHA256SUMS: bad digest ${sha256}`);
    if (unlistable(name)) {
      throw new RangeError(`SHA256SUMS: name ${JSON.stringify(name)} cannot be listed`);
    }
    out += `${sha256}  ${name}\n`;
  }
  return new TextEncoder().encode(out);
}

function bad(message: string): never {
  throw new BackupError(
    "ERR_BACKUP_CHECKSUM_MISMATCH",
    SUMS_FILE,
    SHA256SUMS_CHECK,
    `Invalid SHA256SUMS: ${message}`,
  );
}

/** Parses SHA256SUMS bytes into its lines, in order. */
export function parseSha256Sums(bytes: Uint8Array): Sha256Sum[] {
  if (bytes.length > SHA256SUMS_BYTES_MAX) bad(`more than ${SHA256SUMS_BYTES_MAX} bytes`);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    bad("not UTF-8");
  }
  if (text.length === 0) bad("empty");
  if (!text.endsWith("\n")) bad("the last line has no newline");
  const lines = text.slice(0, -1).split("\n");
  const seen = new Set<string>();
  return lines.map((line, i) => {
    const match = LINE.exec(line);
    if (match === null) bad(`line ${i + 1} is not "<64 lowercase hex>  <name>"`);
    const name = match[2]!;
    if (unlistable(name)) bad(`line ${i + 1} has a name sha256sum would not read as written`);
    if (seen.has(name)) bad(`"${name}" is listed twice`);
    seen.add(name);
    return { name, sha256: match[1]! };
  });
}
