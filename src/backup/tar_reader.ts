/**
 * A strict, streaming ustar reader: members are pulled one at a time, each with its body read
 * in place (chunks are views of the input's chunks, no copies beyond one 512-byte header), so
 * memory stays constant whatever the archive's size.
 *
 * What it checks, and the code a failure carries (a {@linkcode BackupError}, whose `file` is
 * the member concerned when known, else null):
 *
 * | problem                                                   | code                             |
 * | --------------------------------------------------------- | -------------------------------- |
 * | input ends inside a header, body, padding or before the    | `ERR_BACKUP_INCOMPLETE`          |
 * | two end-of-archive blocks (a truncated download)           |                                  |
 * | header checksum mismatch (a damaged header)               | `ERR_BACKUP_CHECKSUM_MISMATCH`   |
 * | non-zero padding after a body; non-zero bytes after the   | `ERR_BACKUP_CHECKSUM_MISMATCH`   |
 * | end-of-archive blocks (damage, or data appended)          |                                  |
 * | a well-formed header that is not what edgeraft archives  | `ERR_BACKUP_MANIFEST_CORRUPT`    |
 * | hold: bad magic, bad octal field, links, devices,         |                                  |
 * | directories, pax/GNU extensions, absolute or ".." paths   |                                  |
 *
 * A failure inside a member's body or padding names that member; a damaged header names no
 * file (its name field is not trustworthy), nor does a truncation between members.
 *
 * The reasoning: truncation is what the operator must learn about first (retry the
 * transfer); bytes that a checksum or a must-be-zero rule proves changed are damage; a header
 * whose own checksum is right was written that way, so the archive is not an edgeraft backup.
 * Every such failure uses the check name "tar framing".
 *
 * @module
 */

import { BackupError, type BackupErrorCode } from "../errors.ts";
import {
  headerNameHint,
  isZeroBlock,
  parseTarHeader,
  TAR_BLOCK_BYTES,
  type TarHeader,
} from "./tar_header.ts";

/** The check name every framing failure carries. */
export const TAR_FRAMING_CHECK = "tar framing";

/** A member being read. Read its body to the end (or not at all) before the next `next()`. */
export interface TarEntry extends TarHeader {
  /** Offset of the member's header in the (uncompressed) tar stream. */
  readonly headerOffset: number;
  /**
   * The next piece of the body (a view valid until the following call), or null once all
   * `size` bytes were read. Throws `ERR_BACKUP_INCOMPLETE` if the input ends first.
   */
  read(): Promise<Uint8Array | null>;
  /** The body as a stream (created on first access; read it or `next()` skips it). */
  readonly body: ReadableStream<Uint8Array>;
}

/** A strict pull reader over a tar stream. */
export class TarReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  #chunk: Uint8Array = new Uint8Array(0);
  #pos = 0;
  #ended = false;
  /** Bytes consumed from the input. */
  #offset = 0;
  /** The member whose body is being read, with its unread byte count. */
  #current: { name: string; size: number; remaining: number } | null = null;
  #finished = false;
  #members = 0;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  /** Bytes of the tar stream read so far. */
  get offset(): number {
    return this.#offset;
  }

  /** Members seen so far. */
  get members(): number {
    return this.#members;
  }

  /** Stops reading and cancels the input (safe to call more than once). */
  async cancel(reason?: unknown): Promise<void> {
    this.#finished = true;
    await this.#reader.cancel(reason).catch(() => {});
    try {
      this.#reader.releaseLock();
    } catch {
      // already released
    }
  }

  #fail(code: BackupErrorCode, file: string | null, message: string): never {
    throw new BackupError(code, file, TAR_FRAMING_CHECK, message);
  }

  /** Makes at least one unread byte available; false at the end of the input. */
  async #fill(): Promise<boolean> {
    while (this.#pos >= this.#chunk.length) {
      if (this.#ended) return false;
      const { done, value } = await this.#reader.read();
      if (done) {
        this.#ended = true;
        return false;
      }
      if (!(value instanceof Uint8Array)) {
        throw new TypeError("tar reader: input chunk is not a Uint8Array");
      }
      this.#chunk = value;
      this.#pos = 0;
    }
    return true;
  }

  /** Up to `max` unread bytes as a view, or null at the end of the input. */
  async #take(max: number): Promise<Uint8Array | null> {
    if (!(await this.#fill())) return null;
    const n = Math.min(max, this.#chunk.length - this.#pos);
    const view = this.#chunk.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    this.#offset += n;
    return view;
  }

  /** The next 512-byte block, or the number of bytes found before the input ended. */
  async #block(): Promise<Uint8Array | number> {
    if (!(await this.#fill())) return 0;
    if (this.#chunk.length - this.#pos >= TAR_BLOCK_BYTES) {
      const view = this.#chunk.subarray(this.#pos, this.#pos + TAR_BLOCK_BYTES);
      this.#pos += TAR_BLOCK_BYTES;
      this.#offset += TAR_BLOCK_BYTES;
      return view;
    }
    const block = new Uint8Array(TAR_BLOCK_BYTES);
    let filled = 0;
    while (filled < TAR_BLOCK_BYTES) {
      const piece = await this.#take(TAR_BLOCK_BYTES - filled);
      if (piece === null) return filled;
      block.set(piece, filled);
      filled += piece.length;
    }
    return block;
  }

  async #readBody(): Promise<Uint8Array | null> {
    const current = this.#current;
    if (current === null || current.remaining === 0) return null;
    const piece = await this.#take(current.remaining);
    if (piece === null) {
      this.#fail(
        "ERR_BACKUP_INCOMPLETE",
        current.name,
        `archive ends inside member "${current.name}" after ${
          current.size - current.remaining
        } of its ${current.size} bytes (truncated)`,
      );
    }
    current.remaining -= piece.length;
    return piece;
  }

  /** Skips what is left of the current body and checks its padding is zeros. */
  async #closeMember(): Promise<void> {
    const current = this.#current;
    if (current === null) return;
    while (current.remaining > 0) await this.#readBody();
    let pad = (TAR_BLOCK_BYTES - (current.size % TAR_BLOCK_BYTES)) % TAR_BLOCK_BYTES;
    while (pad > 0) {
      const piece = await this.#take(pad);
      if (piece === null) {
        this.#fail(
          "ERR_BACKUP_INCOMPLETE",
          current.name,
          `archive ends in the padding after member "${current.name}" (truncated)`,
        );
      }
      if (!isZeroBlock(piece)) {
        this.#fail(
          "ERR_BACKUP_CHECKSUM_MISMATCH",
          current.name,
          `non-zero padding after member "${current.name}" at offset ${
            this.#offset - piece.length
          }`,
        );
      }
      pad -= piece.length;
    }
    this.#current = null;
  }

  /**
   * The next member, or null after the end-of-archive blocks (having checked that the input
   * holds only zeros after them). Throws {@linkcode BackupError} as the module doc says.
   */
  async next(): Promise<TarEntry | null> {
    if (this.#finished) return null;
    const previous = this.#current?.name ?? null;
    await this.#closeMember();
    const headerOffset = this.#offset;
    const block = await this.#block();
    const where = previous === null ? "at the start" : `after member "${previous}"`;
    if (typeof block === "number") {
      this.#fail(
        "ERR_BACKUP_INCOMPLETE",
        null,
        block === 0
          ? `archive ends ${where} without the end-of-archive blocks (truncated)`
          : `archive ends inside the header at offset ${headerOffset} (truncated)`,
      );
    }
    if (isZeroBlock(block)) {
      await this.#readEnd(headerOffset);
      return null;
    }
    const header = parseTarHeader(block);
    if ("kind" in header) {
      // A header that fails its checksum may have a damaged name: do not name a file after it.
      const damaged = header.kind === "checksum";
      const hint = headerNameHint(block);
      const label = hint === null ? "" : damaged ? ` (name field reads "${hint}")` : ` ("${hint}")`;
      this.#fail(
        damaged ? "ERR_BACKUP_CHECKSUM_MISMATCH" : "ERR_BACKUP_MANIFEST_CORRUPT",
        damaged ? null : hint,
        `tar header ${this.#members + 1} at offset ${headerOffset}${label}: ${header.message}`,
      );
    }
    this.#members++;
    const current = { name: header.name, size: header.size, remaining: header.size };
    this.#current = current;
    let body: ReadableStream<Uint8Array> | null = null;
    const read = (): Promise<Uint8Array | null> =>
      this.#current === current ? this.#readBody() : Promise.resolve(null);
    return {
      ...header,
      headerOffset,
      read,
      get body(): ReadableStream<Uint8Array> {
        body ??= new ReadableStream<Uint8Array>({
          async pull(controller) {
            const piece = await read();
            if (piece === null) controller.close();
            else controller.enqueue(piece);
          },
        }, { highWaterMark: 0 });
        return body;
      },
    };
  }

  /** After the first zero block: a second one, then nothing but zeros to the end. */
  async #readEnd(firstOffset: number): Promise<void> {
    const second = await this.#block();
    if (typeof second === "number") {
      this.#fail(
        "ERR_BACKUP_INCOMPLETE",
        null,
        `archive ends after one end-of-archive block at offset ${firstOffset} (truncated)`,
      );
    }
    if (!isZeroBlock(second)) {
      this.#fail(
        "ERR_BACKUP_CHECKSUM_MISMATCH",
        null,
        `a zero block at offset ${firstOffset} is followed by data (a damaged header?)`,
      );
    }
    for (;;) {
      const start = this.#offset;
      const piece = await this.#take(1 << 20);
      if (piece === null) break;
      if (!isZeroBlock(piece)) {
        let at = 0;
        while (piece[at] === 0) at++;
        this.#fail(
          "ERR_BACKUP_CHECKSUM_MISMATCH",
          null,
          `unexpected data at offset ${start + at}, after the end-of-archive blocks`,
        );
      }
    }
    this.#finished = true;
    this.#reader.releaseLock();
  }
}
