/**
 * Reading a request body into memory with a byte limit (STYLE.md item 13: a limit on
 * everything). A declared `Content-Length` over the limit is refused before a byte is read; a
 * body without one (chunked) is read chunk by chunk and the stream is cancelled as soon as the
 * total passes the limit, so a client cannot make the node buffer more than `limitBytes` plus
 * one chunk.
 *
 * @module
 */

/** Options of {@linkcode readBodyLimited}. */
export interface ReadBodyOptions {
  /** The most bytes accepted. */
  readonly limitBytes: number;
  /** The error to throw when the body is larger (receives the declared size when known). */
  readonly tooLarge: (declaredBytes?: number) => Error;
  /** The error to throw for a malformed `Content-Length`. */
  readonly badLength: (message: string) => Error;
}

/** Reads `request`'s body (empty when it has none), refusing more than `limitBytes`. */
export async function readBodyLimited(
  request: Request,
  options: ReadBodyOptions,
): Promise<Uint8Array<ArrayBuffer>> {
  const { limitBytes } = options;
  const declared = request.headers.get("content-length");
  if (declared !== null) {
    if (!/^\d{1,15}$/.test(declared.trim())) {
      throw options.badLength(`Invalid Content-Length ${JSON.stringify(declared)}`);
    }
    const size = Number(declared.trim());
    if (size > limitBytes) throw options.tooLarge(size);
  }
  const body = request.body;
  if (body === null) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  let total = 0;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > limitBytes) {
        await reader.cancel().catch(() => {});
        throw options.tooLarge();
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/**
 * `bytes` as a fetch body: the DOM types accept only views of a plain `ArrayBuffer`; a view of a
 * `SharedArrayBuffer` is copied.
 */
export function bodyBytes(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer
    ? (bytes as Uint8Array<ArrayBuffer>)
    : new Uint8Array(bytes) as Uint8Array<ArrayBuffer>;
}
