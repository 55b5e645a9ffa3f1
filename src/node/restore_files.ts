/**
 * The files of online restores, in `<data-dir>/restore/` (docs/BACKUP.md, "Online restore"):
 *
 * ```
 * <data-dir>/restore/
 *   upload-<id>.tmp                       an archive being received (and verified, then read);
 *                                         removed when its request ends, and at start-up
 *   undo-edgeraft-<cluster>-<index>.tar   the state before a restore, a complete backup archive;
 *                                         kept until the operator deletes it
 *   undo-edgeraft-<cluster>-<index>.tar.tmp   one being written; removed at start-up
 * ```
 *
 * Nothing here holds an archive in memory: uploads stream to disk chunk by chunk, undo archives
 * stream from the state machine's point-in-time view. An undo archive is published the way
 * every durable file of edgeraft is: written to a temporary name, fsynced, renamed, and the
 * directory fsynced.
 *
 * @module
 */

import { PayloadTooLargeError } from "../errors.ts";
import { DiskFullError } from "../storage/errors.ts";
import { DenoFileSystem } from "../storage/fs.ts";

/** The directory of restore files inside `dataDir`. */
export function restoreDir(dataDir: string): string {
  return `${dataDir.replace(/\/+$/, "")}/restore`;
}

function isDiskFull(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  return code === "ENOSPC" || code === "EDQUOT" ||
    /No space left|quota exceeded/i.test(error.message);
}

function mapWriteError(path: string, error: unknown): unknown {
  return isDiskFull(error) ? new DiskFullError(path, { cause: error }) : error;
}

async function removeQuietly(path: string): Promise<void> {
  await Deno.remove(path).catch(() => {});
}

/**
 * Creates the restore directory when missing and removes what an interrupted request left
 * (`*.tmp`: uploads and half-written undo archives). Returns the names removed. Run once at
 * start-up, before the node serves.
 */
export function cleanRestoreDir(dataDir: string): string[] {
  const dir = restoreDir(dataDir);
  Deno.mkdirSync(dir, { recursive: true });
  const removed: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    if (entry.isFile && entry.name.endsWith(".tmp")) {
      Deno.removeSync(`${dir}/${entry.name}`);
      removed.push(entry.name);
    }
  }
  return removed.sort();
}

/** An uploaded archive on disk. */
export interface SpooledUpload {
  readonly path: string;
  readonly size: number;
  /** Removes the file (idempotent). */
  remove(): Promise<void>;
}

/**
 * Streams `body` to a new `upload-<id>.tmp`, refusing (and removing what was written) once it
 * exceeds `maxBytes` ({@linkcode PayloadTooLargeError}). A full disk is `DiskFullError`; on any
 * failure the file is removed.
 */
export async function spoolUpload(
  dataDir: string,
  body: ReadableStream<Uint8Array>,
  maxBytes: number,
): Promise<SpooledUpload> {
  const dir = restoreDir(dataDir);
  await Deno.mkdir(dir, { recursive: true });
  const path = `${dir}/upload-${crypto.randomUUID()}.tmp`;
  const file = await Deno.open(path, { write: true, createNew: true });
  let size = 0;
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > maxBytes) throw new PayloadTooLargeError(maxBytes);
      let written = 0;
      while (written < value.length) {
        try {
          written += await file.write(value.subarray(written));
        } catch (error) {
          throw mapWriteError(path, error);
        }
      }
    }
  } catch (error) {
    await reader.cancel(error).catch(() => {});
    file.close();
    await removeQuietly(path);
    throw error;
  } finally {
    reader.releaseLock();
  }
  file.close();
  return { path, size, remove: () => removeQuietly(path) };
}

/**
 * Writes `stream` (an archive) to `<restore dir>/<name>` durably: temporary name, fsync,
 * rename, directory fsync. Returns the final path and size. On failure nothing is left.
 */
export async function writeDurably(
  dataDir: string,
  name: string,
  stream: ReadableStream<Uint8Array>,
): Promise<{ path: string; size: number }> {
  const dir = restoreDir(dataDir);
  await Deno.mkdir(dir, { recursive: true });
  const path = `${dir}/${name}`;
  const temp = `${path}.tmp`;
  let size = 0;
  const file = await Deno.open(temp, { write: true, create: true, truncate: true });
  try {
    for await (const chunk of stream) {
      let written = 0;
      while (written < chunk.length) written += await file.write(chunk.subarray(written));
      size += chunk.length;
    }
    await file.sync();
  } catch (error) {
    file.close();
    await removeQuietly(temp);
    throw mapWriteError(temp, error);
  }
  file.close();
  try {
    await Deno.rename(temp, path);
    new DenoFileSystem().syncDir(dir);
  } catch (error) {
    await removeQuietly(temp);
    throw mapWriteError(path, error);
  }
  return { path, size };
}
