/**
 * Opens the state file of an archive as a stream, for a restore that has already verified the
 * archive with `verifyArchive` and now copies the state into place (a second pass, over a file
 * that may have changed in between: the caller hashes what it copies and compares it with the
 * verified manifest).
 *
 * Only the first member is read: it must be `state.kvsnap`. The body errors with
 * `ERR_BACKUP_INCOMPLETE` when the archive ends inside it; when the body has been read to its
 * end (or cancelled), the rest of the archive is not read and its input is cancelled.
 *
 * @module
 */

import { BackupError } from "../errors.ts";
import { openArchiveInput } from "./archive_input.ts";
import { STATE_FILE } from "./manifest.ts";
import { TAR_FRAMING_CHECK, TarReader } from "./tar_reader.ts";

/** The state member of an archive. */
export interface ArchiveState {
  /** Its size, from the tar header. */
  readonly size: number;
  /** Its bytes (read once). */
  readonly body: ReadableStream<Uint8Array>;
}

/**
 * The `state.kvsnap` member of the archive in `stream` (plain or gzip). Throws
 * {@linkcode BackupError} when the archive does not start with it.
 */
export async function openArchiveState(
  stream: ReadableStream<Uint8Array>,
): Promise<ArchiveState> {
  const input = await openArchiveInput(stream);
  const tar = new TarReader(input.tar);
  let entry;
  try {
    entry = await tar.next();
    if (entry === null || entry.name !== STATE_FILE) {
      throw new BackupError(
        entry === null ? "ERR_BACKUP_INCOMPLETE" : "ERR_BACKUP_MANIFEST_CORRUPT",
        STATE_FILE,
        "member layout",
        `the archive does not start with ${STATE_FILE}`,
      );
    }
  } catch (error) {
    await tar.cancel(error);
    if (error instanceof BackupError) throw error;
    throw new BackupError(
      "ERR_BACKUP_INCOMPLETE",
      null,
      TAR_FRAMING_CHECK,
      `could not read the archive: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  const read = entry.read;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      let piece;
      try {
        piece = await read();
      } catch (error) {
        await tar.cancel(error);
        throw error;
      }
      if (piece === null) {
        controller.close();
        await tar.cancel();
      } else {
        // A copy: the caller may keep or transfer chunks; views share the input's buffers.
        controller.enqueue(piece.slice());
      }
    },
    async cancel(reason) {
      await tar.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return { size: entry.size, body };
}
