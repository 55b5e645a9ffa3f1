/**
 * gzip for backup archives as Web stream pairs (for `pipeThrough`) over `node:zlib`, at
 * level 1: a backup is a transfer format, so speed matters more than the last percent of size
 * (level 1 measured 4–6 times faster than `CompressionStream("gzip")`, see
 * docs/BACKUP.md, "Performance").
 *
 * Backpressure both ways, so memory stays bounded whatever the compression ratio (a small
 * gzip input can expand a thousandfold; a verifier fed an archive from the network must not
 * inflate it into memory): the readable side pauses zlib as soon as its queue is full and
 * resumes it when the consumer pulls; a paused zlib stops producing output (it waits for its
 * own readable buffer to drain between output chunks) and so stops acknowledging writes, and
 * the writable side does not take the next chunk before zlib acknowledged the last.
 *
 * @module
 */

import { createGunzip, createGzip, type Gunzip, type Gzip } from "node:zlib";

/** The two bytes every gzip stream starts with. */
export const GZIP_MAGIC: readonly [number, number] = [0x1f, 0x8b];

/** zlib's output chunk size: larger chunks mean fewer hash and tar calls downstream. */
const ZLIB_CHUNK_BYTES = 64 * 1024;

/** An error of the gzip layer: `truncated` when the compressed stream ended early. */
export class GzipError extends Error {
  override name = "GzipError";
  readonly truncated: boolean;
  constructor(message: string, truncated: boolean, options?: ErrorOptions) {
    super(message, options);
    this.truncated = truncated;
  }
}

function toGzipError(error: unknown): GzipError {
  if (error instanceof GzipError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  // zlib reports input that stops mid-stream as Z_BUF_ERROR ("unexpected end of file").
  const truncated = code === "Z_BUF_ERROR" || /unexpected end/i.test(message);
  return new GzipError(
    truncated ? "gzip stream ends early (truncated)" : `gzip stream is damaged: ${message}`,
    truncated,
    { cause: error },
  );
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** A Web stream pair over a zlib stream, with backpressure both ways. */
function zlibPair(
  zlib: Gzip | Gunzip,
  mapError: (error: unknown) => Error,
): ReadableWritablePair<Uint8Array, Uint8Array> {
  let failure: Error | null = null;
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  /** Rejects the write or close waiting on zlib, if any. */
  let rejectPending: ((error: Error) => void) | null = null;
  let closed = false;

  const fail = (error: unknown): void => {
    if (failure !== null) return;
    failure = mapError(error);
    rejectPending?.(failure);
    rejectPending = null;
    if (!closed) {
      closed = true;
      controller.error(failure);
    }
    zlib.destroy();
  };

  const readable = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      zlib.on("data", (data: Uint8Array) => {
        if (closed) return;
        controller.enqueue(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        if ((controller.desiredSize ?? 0) <= 0) zlib.pause();
      });
      zlib.on("end", () => {
        if (closed) return;
        closed = true;
        controller.close();
      });
      zlib.on("error", fail);
      zlib.pause();
    },
    pull() {
      zlib.resume();
    },
    cancel() {
      closed = true;
      failure ??= new Error("gzip stream cancelled");
      rejectPending?.(failure);
      rejectPending = null;
      zlib.destroy();
    },
  }, { highWaterMark: 1 });

  const waitFor = (start: (done: (error?: unknown) => void) => void): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      if (failure !== null) {
        reject(failure);
        return;
      }
      rejectPending = reject;
      start((error) => {
        rejectPending = null;
        if (error) {
          fail(error);
          reject(failure);
        } else if (failure !== null) {
          reject(failure);
        } else {
          resolve();
        }
      });
    });

  const writable = new WritableStream<Uint8Array>({
    write(chunk) {
      return waitFor((done) => zlib.write(chunk, done));
    },
    close() {
      return waitFor((done) => {
        zlib.end(() => done());
      });
    },
    abort(reason) {
      fail(reason ?? new Error("gzip stream aborted"));
    },
  }, { highWaterMark: 1 });

  return { readable, writable };
}

/** A gzip compressor at level 1. */
export function gzipStream(): ReadableWritablePair<Uint8Array, Uint8Array> {
  return zlibPair(createGzip({ level: 1, chunkSize: ZLIB_CHUNK_BYTES }), asError);
}

/**
 * A gzip decompressor whose errors are {@linkcode GzipError}s (`truncated` when the input ends
 * before the gzip trailer). Concatenated gzip members are read as one stream (RFC 1952).
 */
export function gunzipStream(): ReadableWritablePair<Uint8Array, Uint8Array> {
  return zlibPair(createGunzip({ chunkSize: ZLIB_CHUNK_BYTES }), toGzipError);
}
