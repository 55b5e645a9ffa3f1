/**
 * Feeds a stream into a {@linkcode SnapshotSink} and publishes it: the one way a snapshot is
 * written from a stream (local snapshots, InstallSnapshot bodies, restores), for the file store
 * and its in-memory twin alike. On any failure, of the stream or of the sink, the sink is
 * cancelled (nothing published, the temporary data removed) and the stream is cancelled too.
 *
 * @module
 */

import type { SnapshotInfo, SnapshotSink } from "./types.ts";

/** Writes every chunk of `stream` to `sink`, then closes (publishes) it. */
export async function pipeToSink(
  stream: ReadableStream<Uint8Array>,
  sink: SnapshotSink,
): Promise<SnapshotInfo> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      await sink.write(value);
    }
  } catch (error) {
    await sink.cancel();
    await reader.cancel(error).catch(() => {});
    throw error;
  } finally {
    reader.releaseLock();
  }
  return await sink.close();
}
