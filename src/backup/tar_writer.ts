/**
 * A streaming ustar writer: members in, one tar stream out, produced as the reader pulls.
 *
 * Each member's size goes into its header before its bytes, so the caller must know it up
 * front; the writer checks that the body yields exactly that many bytes and errors the stream
 * otherwise (a tar whose header lies would be read wrongly by every tool). Members are taken
 * from the iterable one at a time, only after the previous body ended, so a member can be built
 * from what earlier members produced (the backup manifest holds the state's SHA-256).
 *
 * Memory: one body chunk at a time plus a 512-byte header; nothing is buffered.
 *
 * @module
 */

import { encodeTarHeader, TAR_BLOCK_BYTES } from "./tar_header.ts";

/** One regular file of the archive. */
export interface TarMember {
  /** A plain file name (no directory part), at most 100 bytes of UTF-8. */
  readonly name: string;
  /** Exact byte length of `body`. */
  readonly size: number;
  /** Modification time, seconds since the Unix epoch. */
  readonly mtime: number;
  /** Default 0o644. */
  readonly mode?: number;
  /** The bytes: a stream (read once, to the end) or a buffer. */
  readonly body: ReadableStream<Uint8Array> | Uint8Array;
}

/** A member's body did not yield exactly its declared size. */
export class TarWriteError extends Error {
  override name = "TarWriteError";
}

/** Two zero blocks end an archive. */
const END_OF_ARCHIVE = new Uint8Array(2 * TAR_BLOCK_BYTES);

/** Zero bytes that pad a body of `size` bytes to a whole block. */
function padding(size: number): Uint8Array | null {
  const rest = size % TAR_BLOCK_BYTES;
  return rest === 0 ? null : new Uint8Array(TAR_BLOCK_BYTES - rest);
}

async function* memberBody(member: TarMember): AsyncGenerator<Uint8Array, void, undefined> {
  const { body, name, size } = member;
  if (body instanceof Uint8Array) {
    if (body.length !== size) {
      throw new TarWriteError(`tar member "${name}": body is ${body.length} bytes, size ${size}`);
    }
    if (size > 0) yield body;
    return;
  }
  const reader = body.getReader();
  let written = 0;
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      written += value.length;
      if (written > size) {
        throw new TarWriteError(`tar member "${name}": body yields more than its size ${size}`);
      }
      if (value.length > 0) yield value;
    }
    finished = true;
  } finally {
    // An error or a cancelled archive stops the body's producer too.
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
  if (written !== size) {
    throw new TarWriteError(
      `tar member "${name}": body ended after ${written} of its ${size} bytes`,
    );
  }
}

async function* tarChunks(
  members: AsyncIterable<TarMember> | Iterable<TarMember>,
): AsyncGenerator<Uint8Array, void, undefined> {
  for await (const member of members) {
    yield encodeTarHeader({
      name: member.name,
      size: member.size,
      mtime: member.mtime,
      mode: member.mode,
    });
    yield* memberBody(member);
    const pad = padding(member.size);
    if (pad !== null) yield pad;
  }
  yield END_OF_ARCHIVE.slice();
}

/**
 * The ustar stream of `members`: for each a header, its body and zero padding to 512 bytes;
 * then two zero blocks. Pull-based (nothing runs until the reader asks); cancelling it cancels
 * the current member's body. The stream errors with {@linkcode TarWriteError} when a body's
 * length differs from its `size`, and with `RangeError` for a name or size tar cannot hold.
 */
export function tarStream(
  members: AsyncIterable<TarMember> | Iterable<TarMember>,
): ReadableStream<Uint8Array> {
  const chunks = tarChunks(members);
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await chunks.next();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    async cancel() {
      await chunks.return();
    },
  }, { highWaterMark: 0 });
}
