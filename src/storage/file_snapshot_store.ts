/**
 * Snapshots on disk under `<data-dir>/snapshots/`, one directory per snapshot:
 *
 * ```
 * snapshots/<index>-<term>/data       the state machine's stream, byte for byte
 * snapshots/<index>-<term>/manifest   frame "ERSM" v1: index, term, membership, size, sha256, …
 * snapshots/<index>-<term>.tmp/       being written (removed at start-up)
 * snapshots/<index>-<term>.del/       being deleted by retention (removed at start-up)
 * snapshots/corrupt/<index>-<term>.N/ failed verification, kept for inspection
 * ```
 *
 * Publication (STYLE.md item 9): the data is piped through an incremental SHA-256 into
 * `<name>.tmp/data` chunk by chunk (memory does not grow with the snapshot), fsynced; the
 * manifest is written and fsynced; the temporary directory is fsynced, renamed to `<name>`,
 * and `snapshots/` is fsynced. A directory without the `.tmp` suffix is therefore complete,
 * and a crash before the final directory sync leaves the old set of snapshots.
 *
 * Reading verifies before use: `open` checks the manifest frame, the data size and the data's
 * SHA-256 (streamed), and the stream it hands out re-hashes and errors at the end on mismatch.
 *
 * @module
 */

import { pipeToSink } from "./pipe_to_sink.ts";
import { createHash, type Hash } from "node:crypto";
import { assert } from "../util/assert.ts";
import type { SnapshotMeta } from "../raft/types.ts";
import { SnapshotChecksumError, SnapshotCorruptError } from "./errors.ts";
import { consoleStorageEventSink, type StorageEventSink } from "./events.ts";
import { type FileHandle, type FileSystem, joinPath } from "./fs.ts";
import {
  compareNewestFirst,
  decodeManifest,
  encodeManifest,
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

/** Options of {@linkcode FileSnapshotStore.open}. */
export interface FileSnapshotStoreOptions {
  /** Snapshots kept after each publication (0 = never delete automatically). Default 2. */
  readonly snapshotsKeep?: number;
  /** Upper bound on one snapshot's data. Default 2^53 - 1 (unbounded). */
  readonly snapshotBytesMax?: number;
  /** Bytes per read when streaming or verifying. Default 256 KiB. */
  readonly readChunkBytes?: number;
  /** Wall clock for `created_at`, in ms since the epoch. Default `Date.now`. */
  readonly now?: () => number;
  readonly onEvent?: StorageEventSink;
}

/** Reads `path` chunk by chunk into `hash`; returns the byte count. */
function hashFile(fs: FileSystem, path: string, hash: Hash, chunkBytes: number): number {
  const h = fs.open(path);
  try {
    const buf = new Uint8Array(chunkBytes);
    let at = 0;
    for (;;) {
      const n = h.read(buf, at);
      if (n === 0) return at;
      hash.update(buf.subarray(0, n));
      at += n;
    }
  } finally {
    h.close();
  }
}

/** See the module documentation. */
export class FileSnapshotStore implements SnapshotStore {
  readonly #fs: FileSystem;
  readonly #dir: string;
  readonly #keep: number;
  readonly #bytesMax: number;
  readonly #chunkBytes: number;
  readonly #now: () => number;
  readonly #onEvent: StorageEventSink;
  readonly #inFlight = new Set<string>();
  readonly #removedTemp: string[] = [];
  readonly #setAside: { name: string; reason: string }[] = [];

  private constructor(fs: FileSystem, dir: string, options: FileSnapshotStoreOptions) {
    this.#fs = fs;
    this.#dir = dir;
    this.#keep = options.snapshotsKeep ?? 2;
    this.#bytesMax = options.snapshotBytesMax ?? Number.MAX_SAFE_INTEGER;
    this.#chunkBytes = options.readChunkBytes ?? 256 * 1024;
    this.#now = options.now ?? Date.now;
    this.#onEvent = options.onEvent ?? consoleStorageEventSink;
  }

  /** Opens `<dataDir>/snapshots`, creating it, and removes stray temporary directories. */
  static open(
    fs: FileSystem,
    dataDir: string,
    options: FileSnapshotStoreOptions = {},
  ): FileSnapshotStore {
    const dir = joinPath(dataDir, "snapshots");
    if (fs.stat(dir) === null) {
      fs.mkdir(dir, { recursive: true });
      fs.syncDir(dataDir);
    }
    const store = new FileSnapshotStore(fs, dir, options);
    let removed = false;
    for (const e of fs.readDir(dir)) {
      if (e.name.endsWith(".tmp") || e.name.endsWith(".del")) {
        const path = joinPath(dir, e.name);
        fs.remove(path, { recursive: true });
        store.#removedTemp.push(path);
        store.#onEvent({ kind: "temp_removed", path });
        removed = true;
      }
    }
    if (removed) fs.syncDir(dir);
    return store;
  }

  recovery(): SnapshotRecovery {
    return { removedTemp: [...this.#removedTemp], setAside: [...this.#setAside] };
  }

  create(meta: SnapshotMeta): Promise<SnapshotSink> {
    try {
      return Promise.resolve(this.#createSink(meta, {}));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #createSink(meta: SnapshotMeta, expect: ReceiveOptions): FileSnapshotSink {
    const problem = snapshotMetaProblem(meta);
    assert(problem === null, `bad snapshot meta: ${problem}`);
    const name = snapshotName(meta);
    assert(!this.#inFlight.has(name), `snapshot "${name}" is already being written`);
    const tmp = joinPath(this.#dir, `${name}.tmp`);
    this.#fs.remove(tmp, { recursive: true });
    this.#fs.mkdir(tmp);
    const data = this.#fs.open(joinPath(tmp, "data"), { createNew: true });
    this.#inFlight.add(name);
    return new FileSnapshotSink(this, meta, name, tmp, data, expect);
  }

  /** @internal the sink's end: called with the data synced and closed. */
  publish(
    meta: SnapshotMeta,
    name: string,
    tmp: string,
    size: number,
    sha256: string,
  ): SnapshotInfo {
    const fs = this.#fs;
    const info: SnapshotInfo = Object.freeze({
      index: meta.index,
      term: meta.term,
      membership: meta.membership,
      name,
      size,
      sha256,
      createdAt: new Date(this.#now()).toISOString(),
    });
    const manifest = fs.open(joinPath(tmp, "manifest"), { createNew: true });
    try {
      manifest.write(encodeManifest(info), 0);
      manifest.sync();
    } finally {
      manifest.close();
    }
    fs.syncDir(tmp);
    const final = joinPath(this.#dir, name);
    if (fs.stat(final) !== null) {
      // Same index and term means the same state: keep a sound published copy.
      const existing = this.#readInfo(name);
      if (typeof existing !== "string") {
        fs.remove(tmp, { recursive: true });
        this.#inFlight.delete(name);
        return existing;
      }
      this.#setAsideDir(name, existing);
    }
    fs.rename(tmp, final);
    fs.syncDir(this.#dir);
    this.#inFlight.delete(name);
    if (this.#keep > 0) this.#retainNow(this.#keep);
    return info;
  }

  /** @internal */
  abandon(name: string, tmp: string): void {
    this.#inFlight.delete(name);
    this.#fs.remove(tmp, { recursive: true });
  }

  /** @internal */
  get bytesMax(): number {
    return this.#bytesMax;
  }

  writeFromStream(
    meta: SnapshotMeta,
    stream: ReadableStream<Uint8Array>,
    options: ReceiveOptions = {},
  ): Promise<SnapshotInfo> {
    return pipeToSink(stream, this.#createSink(meta, options));
  }

  #readInfo(name: string): SnapshotInfo | string {
    const path = joinPath(this.#dir, name, "manifest");
    if (this.#fs.stat(path) === null) return "manifest missing";
    return decodeManifest(this.#fs.readFile(path), name);
  }

  #publishedNames(): { name: string; index: number; term: number }[] {
    const out: { name: string; index: number; term: number }[] = [];
    for (const e of this.#fs.readDir(this.#dir)) {
      const parsed = e.isDirectory ? parseSnapshotName(e.name) : null;
      if (parsed !== null) out.push({ name: e.name, ...parsed });
    }
    return out.sort(compareNewestFirst);
  }

  list(): Promise<SnapshotInfo[]> {
    const out: SnapshotInfo[] = [];
    for (const { name } of this.#publishedNames()) {
      const info = this.#readInfo(name);
      if (typeof info !== "string") out.push(info);
    }
    return Promise.resolve(out.reverse());
  }

  /** Verifies snapshot `name` (manifest, size, SHA-256) and returns its info. */
  #verify(name: string): SnapshotInfo {
    const info = this.#readInfo(name);
    if (typeof info === "string") throw new SnapshotCorruptError(name, info);
    const dataPath = joinPath(this.#dir, name, "data");
    const stat = this.#fs.stat(dataPath);
    if (stat === null) throw new SnapshotCorruptError(name, "data file missing");
    if (stat.size !== info.size) {
      throw new SnapshotCorruptError(
        name,
        `data is ${stat.size} bytes, manifest says ${info.size}`,
      );
    }
    const hash = createHash("sha256");
    hashFile(this.#fs, dataPath, hash, this.#chunkBytes);
    const sha = hash.digest("hex");
    if (sha !== info.sha256) throw new SnapshotCorruptError(name, "checksum mismatch");
    return info;
  }

  open(name: string): Promise<OpenedSnapshot> {
    try {
      const info = this.#verify(name);
      return Promise.resolve({ info, stream: () => this.#stream(info) });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async openLatest(): Promise<OpenedSnapshot | null> {
    for (const { name } of this.#publishedNames()) {
      try {
        return await this.open(name);
      } catch (error) {
        if (!(error instanceof SnapshotCorruptError)) throw error;
        this.#setAsideDir(name, error.reason);
      }
    }
    return null;
  }

  #setAsideDir(name: string, reason: string): void {
    const fs = this.#fs;
    const corrupt = joinPath(this.#dir, "corrupt");
    if (fs.stat(corrupt) === null) fs.mkdir(corrupt);
    let n = 0;
    while (fs.stat(joinPath(corrupt, `${name}.${n}`)) !== null) n++;
    fs.rename(joinPath(this.#dir, name), joinPath(corrupt, `${name}.${n}`));
    fs.syncDir(corrupt);
    fs.syncDir(this.#dir);
    this.#setAside.push({ name, reason });
    this.#onEvent({ kind: "snapshot_set_aside", name, reason });
  }

  /** A pull-based stream of the data file that re-hashes and checks size and SHA-256. */
  #stream(info: SnapshotInfo): ReadableStream<Uint8Array> {
    const path = joinPath(this.#dir, info.name, "data");
    let handle: FileHandle | null = null;
    let at = 0;
    const hash = createHash("sha256");
    const chunkBytes = this.#chunkBytes;
    const fs = this.#fs;
    const done = () => {
      handle?.close();
      handle = null;
    };
    return new ReadableStream<Uint8Array>({
      start() {
        handle = fs.open(path);
      },
      pull(controller) {
        try {
          const buf = new Uint8Array(chunkBytes);
          const n = handle!.read(buf, at);
          if (n === 0) {
            done();
            const sha = hash.digest("hex");
            if (at !== info.size || sha !== info.sha256) {
              controller.error(
                new SnapshotCorruptError(info.name, "data changed since it was verified"),
              );
            } else {
              controller.close();
            }
            return;
          }
          const chunk = n === buf.length ? buf : buf.slice(0, n);
          hash.update(chunk);
          at += n;
          controller.enqueue(chunk);
        } catch (error) {
          done();
          controller.error(error);
        }
      },
      cancel() {
        done();
      },
    }, { highWaterMark: 0 });
  }

  retain(keep: number): Promise<string[]> {
    try {
      return Promise.resolve(this.#retainNow(keep));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #retainNow(keep: number): string[] {
    assert(Number.isSafeInteger(keep) && keep >= 1, "keep at least one snapshot");
    const names = this.#publishedNames();
    const removed: string[] = [];
    for (const { name } of names.slice(keep).reverse()) {
      // Rename first so that a crash mid-delete leaves a ".del" stray, never a half snapshot.
      const doomed = joinPath(this.#dir, `${name}.del`);
      this.#fs.rename(joinPath(this.#dir, name), doomed);
      this.#fs.syncDir(this.#dir);
      this.#fs.remove(doomed, { recursive: true });
      removed.push(name);
    }
    return removed;
  }
}

class FileSnapshotSink implements SnapshotSink {
  readonly #store: FileSnapshotStore;
  readonly #meta: SnapshotMeta;
  readonly #name: string;
  readonly #tmp: string;
  readonly #expect: ReceiveOptions;
  #data: FileHandle | null;
  #hash = createHash("sha256");
  #size = 0;

  constructor(
    store: FileSnapshotStore,
    meta: SnapshotMeta,
    name: string,
    tmp: string,
    data: FileHandle,
    expect: ReceiveOptions,
  ) {
    this.#store = store;
    this.#meta = meta;
    this.#name = name;
    this.#tmp = tmp;
    this.#data = data;
    this.#expect = expect;
  }

  write(chunk: Uint8Array): Promise<void> {
    try {
      assert(this.#data !== null, `snapshot "${this.#name}" sink is finished`);
      const limit = Math.min(this.#store.bytesMax, this.#expect.expectedSize ?? Infinity);
      if (this.#size + chunk.length > limit) {
        throw new SnapshotChecksumError(this.#name, `more than ${limit} bytes`);
      }
      this.#data.write(chunk, this.#size);
      this.#hash.update(chunk);
      this.#size += chunk.length;
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async close(): Promise<SnapshotInfo> {
    assert(this.#data !== null, `snapshot "${this.#name}" sink is finished`);
    const data = this.#data;
    try {
      data.sync();
    } catch (error) {
      await this.cancel();
      throw error;
    }
    data.close();
    this.#data = null;
    const sha = this.#hash.digest("hex");
    const { expectedSha256, expectedSize } = this.#expect;
    if (
      (expectedSha256 !== undefined && sha !== expectedSha256) ||
      (expectedSize !== undefined && this.#size !== expectedSize)
    ) {
      this.#store.abandon(this.#name, this.#tmp);
      throw new SnapshotChecksumError(
        this.#name,
        expectedSha256 !== undefined && sha !== expectedSha256
          ? `sha256 ${sha} does not match the expected ${expectedSha256}`
          : `size ${this.#size} does not match the expected ${expectedSize}`,
      );
    }
    try {
      return this.#store.publish(this.#meta, this.#name, this.#tmp, this.#size, sha);
    } catch (error) {
      try {
        this.#store.abandon(this.#name, this.#tmp);
      } catch {
        // The machine may be gone; start-up removes the stray.
      }
      throw error;
    }
  }

  cancel(): Promise<void> {
    this.#data?.close();
    this.#data = null;
    try {
      this.#store.abandon(this.#name, this.#tmp);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }
}
