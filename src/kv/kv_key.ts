/**
 * Keys of the KV store: validation and the byte order every listing and snapshot uses.
 *
 * A key is a well-formed Unicode string whose UTF-8 encoding is 1 to {@linkcode KEY_BYTES_MAX}
 * bytes (../shared/DESIGN.md). Keys are ordered by their UTF-8 bytes, which is Unicode code
 * point order. JavaScript compares strings by UTF-16 code units, which disagrees with code point
 * order only where a surrogate (U+D800..U+DFFF, half of a code point ≥ U+10000) meets a unit in
 * U+E000..U+FFFF. Inside the state machine every key is therefore held in a *sort form*: units
 * in U+E000..U+FFFF move down by 0x800 and surrogates move up by 0x2000, after which the plain
 * `<` on sort forms is UTF-8 byte order. Keys without such units (ASCII, Latin, CJK, ...) are
 * their own sort form, so the common case costs one regular-expression test.
 *
 * @module
 */

/** The longest key, in UTF-8 bytes. */
export const KEY_BYTES_MAX = 1024;

/** Thrown for a key that is empty, too long or not well-formed Unicode. */
export class InvalidKeyError extends Error {
  override name = "InvalidKeyError";
}

const HIGH_UNITS = /[\uD800-\uFFFF]/;
const HIGH_UNITS_GLOBAL = /[\uD800-\uFFFF]/g;

/** The UTF-8 length of a well-formed string, without encoding it. */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    // A surrogate pair (two units) is one 4-byte code point: 2 bytes per unit.
    else if (unit >= 0xd800 && unit <= 0xdfff) bytes += 2;
    else bytes += 3;
  }
  return bytes;
}

/**
 * Returns why `key` is not a valid key, or null when it is. For callers that turn the reason
 * into their own error (the HTTP edge answers `ERR_BAD_REQUEST`).
 */
export function keyProblem(key: string): string | null {
  if (key.length === 0) return "a key must not be empty";
  if (!key.isWellFormed()) return "a key must be well-formed Unicode";
  const bytes = utf8Length(key);
  if (bytes > KEY_BYTES_MAX) {
    return `a key must be at most ${KEY_BYTES_MAX} bytes of UTF-8, got ${bytes}`;
  }
  return null;
}

/** Throws {@linkcode InvalidKeyError} unless `key` is a valid key. */
export function validateKey(key: string): void {
  const problem = keyProblem(key);
  if (problem !== null) throw new InvalidKeyError(`Invalid key: ${problem}`);
}

function toSortUnit(unit: string): string {
  const c = unit.charCodeAt(0);
  return String.fromCharCode(c >= 0xe000 ? c - 0x800 : c + 0x2000);
}

function fromSortUnit(unit: string): string {
  const c = unit.charCodeAt(0);
  return String.fromCharCode(c >= 0xf800 ? c - 0x2000 : c + 0x800);
}

/** The sort form of a well-formed string (see the module doc). */
export function toSortForm(text: string): string {
  return HIGH_UNITS.test(text) ? text.replace(HIGH_UNITS_GLOBAL, toSortUnit) : text;
}

/** The inverse of {@linkcode toSortForm}. */
export function fromSortForm(sortForm: string): string {
  return HIGH_UNITS.test(sortForm) ? sortForm.replace(HIGH_UNITS_GLOBAL, fromSortUnit) : sortForm;
}

const utf8Encoder = new TextEncoder();
const strictUtf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Decodes key bytes (at most {@linkcode KEY_BYTES_MAX}) as strict UTF-8, or returns null for
 * invalid UTF-8. ASCII keys, the common case, skip the TextDecoder call (several times faster
 * for short strings; restore decodes every key).
 */
export function decodeKeyBytes(bytes: Uint8Array): string | null {
  let ascii = true;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i]! >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return String.fromCharCode.apply(null, bytes as unknown as number[]);
  try {
    return strictUtf8Decoder.decode(bytes);
  } catch {
    return null;
  }
}

/**
 * Writes the UTF-8 encoding of a well-formed `key` into `out` at `offset`, which must have room
 * for `utf8Length(key)` bytes; returns the number of bytes written. ASCII keys are copied unit
 * by unit, avoiding a subarray per call.
 */
export function encodeKeyInto(key: string, out: Uint8Array, offset: number): number {
  const n = key.length;
  for (let i = 0; i < n; i++) {
    const unit = key.charCodeAt(i);
    if (unit >= 0x80) {
      return i + utf8Encoder.encodeInto(key.slice(i), out.subarray(offset + i)).written;
    }
    out[offset + i] = unit;
  }
  return n;
}
