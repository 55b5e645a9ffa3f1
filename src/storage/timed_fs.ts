/**
 * A {@linkcode FileSystem} decorator that reports how long every fsync takes (file data syncs,
 * full syncs and directory syncs), so the node can export `edgeraft_fsync_seconds` without the
 * stores knowing about metrics. Everything else passes straight through.
 *
 * @module
 */

import type { DirEntry, FileHandle, FileSystem, OpenOptions } from "./fs.ts";

/** Receives the duration of one sync, in seconds. */
export type SyncObserver = (seconds: number, kind: "data" | "file" | "dir") => void;

/** Wraps `inner`, timing its syncs; see the module documentation. */
export class TimedFileSystem implements FileSystem {
  readonly #inner: FileSystem;
  readonly #observe: SyncObserver;

  constructor(inner: FileSystem, observe: SyncObserver) {
    this.#inner = inner;
    this.#observe = observe;
  }

  open(path: string, options?: OpenOptions): FileHandle {
    return new TimedFileHandle(this.#inner.open(path, options), this.#observe);
  }
  readFile(path: string): Uint8Array {
    return this.#inner.readFile(path);
  }
  rename(from: string, to: string): void {
    this.#inner.rename(from, to);
  }
  remove(path: string, options?: { readonly recursive?: boolean }): void {
    this.#inner.remove(path, options);
  }
  readDir(path: string): DirEntry[] {
    return this.#inner.readDir(path);
  }
  mkdir(path: string, options?: { readonly recursive?: boolean }): void {
    this.#inner.mkdir(path, options);
  }
  syncDir(path: string): void {
    timed(this.#observe, "dir", () => this.#inner.syncDir(path));
  }
  stat(path: string): { readonly size: number; readonly isDirectory: boolean } | null {
    return this.#inner.stat(path);
  }
}

class TimedFileHandle implements FileHandle {
  readonly #inner: FileHandle;
  readonly #observe: SyncObserver;

  constructor(inner: FileHandle, observe: SyncObserver) {
    this.#inner = inner;
    this.#observe = observe;
  }

  get path(): string {
    return this.#inner.path;
  }
  write(data: Uint8Array, position: number): void {
    this.#inner.write(data, position);
  }
  read(buffer: Uint8Array, position: number): number {
    return this.#inner.read(buffer, position);
  }
  size(): number {
    return this.#inner.size();
  }
  truncate(length: number): void {
    this.#inner.truncate(length);
  }
  syncData(): void {
    timed(this.#observe, "data", () => this.#inner.syncData());
  }
  sync(): void {
    timed(this.#observe, "file", () => this.#inner.sync());
  }
  close(): void {
    this.#inner.close();
  }
}

function timed(observe: SyncObserver, kind: "data" | "file" | "dir", sync: () => void): void {
  const started = performance.now();
  try {
    sync();
  } finally {
    observe((performance.now() - started) / 1000, kind);
  }
}
