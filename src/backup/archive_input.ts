/**
 * The input side of archive readers: an archive is gzip-compressed exactly when it starts with
 * the gzip magic `1f 8b` (a ustar archive starts with a member name, never with those bytes),
 * whatever its file name says.
 *
 * @module
 */

import { gunzipStream, GZIP_MAGIC } from "./gzip.ts";

/** An archive's tar stream. */
export interface ArchiveInput {
  /** The tar bytes (decompressed when `gzip`). */
  readonly tar: ReadableStream<Uint8Array>;
  readonly gzip: boolean;
  /** Bytes read from the original stream so far. */
  bytesRead(): number;
}

/**
 * Detects gzip by its first two bytes (without consuming them) and returns the tar stream,
 * decompressed when needed, with a count of the bytes read from `stream` so far.
 */
export async function openArchiveInput(
  stream: ReadableStream<Uint8Array>,
): Promise<ArchiveInput> {
  const reader = stream.getReader();
  const head: Uint8Array[] = [];
  let headBytes = 0;
  let ended = false;
  try {
    while (headBytes < 2) {
      const { done, value } = await reader.read();
      if (done) {
        ended = true;
        break;
      }
      head.push(value);
      headBytes += value.length;
    }
  } catch (error) {
    await reader.cancel(error).catch(() => {});
    reader.releaseLock();
    throw error;
  }
  let bytes = headBytes;
  const first = head[0];
  const second = first !== undefined && first.length >= 2 ? first[1] : head[1]?.[0];
  const gzip = first?.[0] === GZIP_MAGIC[0] && second === GZIP_MAGIC[1];
  const raw = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const queued = head.shift();
      if (queued !== undefined) {
        controller.enqueue(queued);
        return;
      }
      if (ended) {
        controller.close();
        reader.releaseLock();
        return;
      }
      const { done, value } = await reader.read();
      if (done) {
        controller.close();
        reader.releaseLock();
        return;
      }
      bytes += value.length;
      controller.enqueue(value);
    },
    async cancel(reason) {
      await reader.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
  return {
    tar: gzip ? raw.pipeThrough(gunzipStream()) : raw,
    gzip,
    bytesRead: () => bytes,
  };
}
