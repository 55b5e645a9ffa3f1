/**
 * The in-memory twin of {@linkcode FileSnapshotStore}: same names, same verification of
 * expected size and SHA-256, same retention, data held as chunks in memory.
 *
 * @module
 */

import { pipeToSink } from "./pipe_to_sink.ts";
import { createHash } from "node:crypto";
import { assert } from "../util/assert.ts";
import type { SnapshotMeta } from "../raft/types.ts";
import { SnapshotChecksumError, SnapshotCorruptError } from "./errors.ts";
import {
  compareNewestFirst,
  parseSnapshotName,
  snapshotMetaProblem,
  snapshotName,
} from "./snapshot_manifest.ts";
import type {
  OpenedSnapshot,
  ReceiveOptions,
  SnapshotInfo,
  SnapshotRecovery,
  SnapshotSink,
  SnapshotStore,
} from "./types.ts";

interface Stored {
  info: SnapshotInfo;
  chunks: Uint8Array[];
}

/** See the module documentation. */
export class MemorySnapshotStore implements SnapshotStore {
  readonly #snapshots = new Map<string, Stored>();
  readonly #keep: number;
  readonly #now: () => number;

  constructor(options: { readonly snapshotsKeep?: number; readonly now?: () => number } = {}) {
    this.#keep = options.snapshotsKeep ?? 2;
    this.#now = options.now ?? Date.now;
  }

  recovery(): SnapshotRecovery {
    return { removedTemp: [], setAside: [] };
  }

  create(meta: SnapshotMeta): Promise<SnapshotSink> {
    return Promise.resolve(this.#sink(meta, {}));
  }

  #sink(meta: SnapshotMeta, expect: ReceiveOptions): SnapshotSink {
    const problem = snapshotMetaProblem(meta);
    assert(problem === null, `bad snapshot meta: ${problem}`);
    const name = snapshotName(meta);
    const chunks: Uint8Array[] = [];
    const hash = createHash("sha256");
    let size = 0;
    let open = true;
    return {
      write: (chunk) => {
        assert(open, `snapshot "${name}" sink is finished`);
        if (expect.expectedSize !== undefined && size + chunk.length > expect.expectedSize) {
          return Promise.reject(
            new SnapshotChecksumError(name, `more than ${expect.expectedSize} bytes`),
          );
        }
        chunks.push(chunk.slice());
        hash.update(chunk);
        size += chunk.length;
        return Promise.resolve();
      },
      close: () => {
        assert(open, `snapshot "${name}" sink is finished`);
        open = false;
        const sha256 = hash.digest("hex");
        if (expect.expectedSha256 !== undefined && sha256 !== expect.expectedSha256) {
          return Promise.reject(
            new SnapshotChecksumError(
              name,
              `sha256 ${sha256} does not match the expected ${expect.expectedSha256}`,
            ),
          );
        }
        if (expect.expectedSize !== undefined && size !== expect.expectedSize) {
          return Promise.reject(
            new SnapshotChecksumError(
              name,
              `size ${size} does not match the expected ${expect.expectedSize}`,
            ),
          );
        }
        const existing = this.#snapshots.get(name);
        if (existing !== undefined) return Promise.resolve(existing.info);
        const info: SnapshotInfo = Object.freeze({
          index: meta.index,
          term: meta.term,
          membership: meta.membership,
          name,
          size,
          sha256,
          createdAt: new Date(this.#now()).toISOString(),
        });
        this.#snapshots.set(name, { info, chunks });
        if (this.#keep > 0) this.#retainNow(this.#keep);
        return Promise.resolve(info);
      },
      cancel: () => {
        open = false;
        return Promise.resolve();
      },
    };
  }

  writeFromStream(
    meta: SnapshotMeta,
    stream: ReadableStream<Uint8Array>,
    options: ReceiveOptions = {},
  ): Promise<SnapshotInfo> {
    return pipeToSink(stream, this.#sink(meta, options));
  }

  #sorted(): Stored[] {
    return [...this.#snapshots.values()].sort((a, b) => compareNewestFirst(a.info, b.info));
  }

  list(): Promise<SnapshotInfo[]> {
    return Promise.resolve(this.#sorted().map((s) => s.info).reverse());
  }

  open(name: string): Promise<OpenedSnapshot> {
    const stored = this.#snapshots.get(name);
    if (stored === undefined || parseSnapshotName(name) === null) {
      return Promise.reject(new SnapshotCorruptError(name, "no such snapshot"));
    }
    const { info, chunks } = stored;
    return Promise.resolve({
      info,
      stream: () => {
        let i = 0;
        return new ReadableStream<Uint8Array>({
          pull(controller) {
            const chunk = chunks[i++];
            if (chunk === undefined) controller.close();
            else controller.enqueue(chunk.slice());
          },
        }, { highWaterMark: 0 });
      },
    });
  }

  openLatest(): Promise<OpenedSnapshot | null> {
    const newest = this.#sorted()[0];
    return newest === undefined ? Promise.resolve(null) : this.open(newest.info.name);
  }

  retain(keep: number): Promise<string[]> {
    return Promise.resolve(this.#retainNow(keep));
  }

  #retainNow(keep: number): string[] {
    assert(Number.isSafeInteger(keep) && keep >= 1, "keep at least one snapshot");
    const removed: string[] = [];
    for (const s of this.#sorted().slice(keep).reverse()) {
      this.#snapshots.delete(s.info.name);
      removed.push(s.info.name);
    }
    return removed;
  }
}
