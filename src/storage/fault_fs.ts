/**
 * An in-memory {@linkcode FileSystem} that models the page cache separately from the disk, for
 * crash and corruption tests.
 *
 * Model (strict POSIX, like a careful reading of ext4 without journalled data):
 * - every file has cached contents and durable contents; `sync`/`syncData` makes the cached
 *   contents durable. Writes and truncates since the last sync are kept as a list of pending
 *   operations;
 * - every directory has cached entries and durable entries; `syncDir` makes the cached entries
 *   durable. A create, rename or remove is lost in a crash until its directory is synced;
 * - `crashAfter(k)` stops "the machine" once k mutating operations (write, truncate, sync,
 *   syncData, syncDir, rename, remove, mkdir, create) have completed: the next one, and every
 *   other operation, throws {@linkcode MachineStoppedError} until {@linkcode FaultFileSystem.crash}
 *   is called;
 * - `crash(mode)` reboots: with "drop" every unsynced change is lost; with "keep" every one
 *   reached the disk; with "tear" (seeded) each file keeps a random prefix of its pending
 *   operations, the last one possibly torn to a prefix of its bytes, and each directory keeps
 *   either its durable or its cached entries.
 *
 * @module
 */

import { DiskFullError } from "./errors.ts";
import type { DirEntry, FileHandle, FileSystem, OpenOptions } from "./fs.ts";
import type { Random } from "../util/prng.ts";

/** Thrown by every operation once the simulated machine has stopped. */
export class MachineStoppedError extends Error {
  override name = "MachineStoppedError";
}

type PendingOp =
  | { readonly kind: "write"; readonly position: number; readonly data: Uint8Array }
  | { readonly kind: "truncate"; readonly length: number };

interface FileNode {
  readonly kind: "file";
  data: Uint8Array;
  durable: Uint8Array;
  pending: PendingOp[];
}

interface DirNode {
  readonly kind: "dir";
  children: Map<string, Node>;
  durable: Map<string, Node>;
}

type Node = FileNode | DirNode;

/** What a crash keeps of the changes that were never synced. */
export type CrashMode = "drop" | "keep" | "tear";

/** Kinds of mutating operation, as counted by {@linkcode FaultFileSystem.opCount}. */
export type MutatingOp =
  | "write"
  | "truncate"
  | "sync"
  | "syncDir"
  | "rename"
  | "remove"
  | "mkdir"
  | "create";

function applyOp(data: Uint8Array, op: PendingOp): Uint8Array {
  if (op.kind === "truncate") {
    const out = new Uint8Array(op.length);
    out.set(data.subarray(0, Math.min(op.length, data.length)));
    return out;
  }
  const end = op.position + op.data.length;
  const out = end > data.length ? new Uint8Array(end) : data.slice();
  if (end > data.length) out.set(data);
  out.set(op.data, op.position);
  return out;
}

function split(path: string): string[] {
  return path.split("/").filter((p) => p !== "" && p !== ".");
}

/** See the module documentation. */
export class FaultFileSystem implements FileSystem {
  #root: DirNode = { kind: "dir", children: new Map(), durable: new Map() };
  #ops = 0;
  #stopAfter = Infinity;
  #stopped = false;
  #diskFull = false;
  #generation = 0;
  /** Every mutating operation in order, for diagnostics ("write log/seg-…"). */
  readonly trace: string[] = [];

  /** Mutating operations completed since the last crash. */
  get opCount(): number {
    return this.#ops;
  }

  /** True once the machine has stopped (until `crash`). */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Stop the machine once `k` more mutating operations have completed (k ≥ 0). */
  crashAfter(k: number): void {
    this.#stopAfter = this.#ops + k;
  }

  /** Make every write fail with ENOSPC while `on`. */
  setDiskFull(on: boolean): void {
    this.#diskFull = on;
  }

  /** Reboot: see {@linkcode CrashMode}. Open handles become unusable. */
  crash(mode: CrashMode = "drop", random: Random = () => 0.5): void {
    const visit = (dir: DirNode): void => {
      if (mode === "keep" || (mode === "tear" && random() < 0.5)) {
        dir.durable = new Map(dir.children);
      } else {
        dir.children = new Map(dir.durable);
      }
      for (const child of dir.children.values()) {
        if (child.kind === "dir") visit(child);
        else this.#crashFile(child, mode, random);
      }
    };
    visit(this.#root);
    this.#stopped = false;
    this.#stopAfter = Infinity;
    this.#ops = 0;
    this.#generation++;
  }

  #crashFile(file: FileNode, mode: CrashMode, random: Random): void {
    let data = file.durable;
    if (mode === "keep") {
      data = file.data;
    } else if (mode === "tear" && file.pending.length > 0) {
      const keep = Math.floor(random() * (file.pending.length + 1));
      for (let i = 0; i < keep; i++) data = applyOp(data, file.pending[i]!);
      const torn = file.pending[keep];
      if (torn !== undefined && torn.kind === "write" && random() < 0.5) {
        const cut = Math.floor(random() * torn.data.length);
        data = applyOp(data, { ...torn, data: torn.data.subarray(0, cut) });
      }
    }
    file.data = data.slice();
    file.durable = data.slice();
    file.pending = [];
  }

  /** Replaces a file's contents both in cache and on "disk" (corruption tests). */
  corrupt(path: string, change: (bytes: Uint8Array) => Uint8Array): void {
    const node = this.#lookup(path);
    if (node === undefined || node.kind !== "file") throw new Deno.errors.NotFound(path);
    const next = change(node.data.slice());
    node.data = next.slice();
    node.durable = next.slice();
    node.pending = [];
  }

  #checkAlive(): void {
    if (this.#stopped) throw new MachineStoppedError("the machine has stopped");
  }

  /** Counts one mutating operation, stopping the machine instead when it is the fatal one. */
  #mutate(op: MutatingOp, path: string): void {
    this.#checkAlive();
    if (this.#ops >= this.#stopAfter) {
      this.#stopped = true;
      throw new MachineStoppedError(`the machine stopped before ${op} ${path}`);
    }
    this.#ops++;
    this.trace.push(`${op} ${path}`);
  }

  #lookup(path: string): Node | undefined {
    let node: Node = this.#root;
    for (const part of split(path)) {
      if (node.kind !== "dir") return undefined;
      const next: Node | undefined = node.children.get(part);
      if (next === undefined) return undefined;
      node = next;
    }
    return node;
  }

  #parent(path: string): { dir: DirNode; name: string } {
    const parts = split(path);
    const name = parts.pop();
    if (name === undefined) throw new Error(`Invalid path "${path}"`);
    const dir = this.#lookup(parts.join("/"));
    if (dir === undefined || dir.kind !== "dir") {
      throw new Deno.errors.NotFound(`No such directory for "${path}"`);
    }
    return { dir, name };
  }

  open(path: string, options: OpenOptions = {}): FileHandle {
    this.#checkAlive();
    const { dir, name } = this.#parent(path);
    let node = dir.children.get(name);
    if (node !== undefined && options.createNew === true) {
      throw new Deno.errors.AlreadyExists(path);
    }
    if (node === undefined) {
      if (options.create !== true && options.createNew !== true) {
        throw new Deno.errors.NotFound(path);
      }
      this.#mutate("create", path);
      node = { kind: "file", data: new Uint8Array(0), durable: new Uint8Array(0), pending: [] };
      dir.children.set(name, node);
    }
    if (node.kind !== "file") throw new Error(`Is a directory: "${path}"`);
    const writable = options.write === true || options.create === true ||
      options.createNew === true;
    return new FaultFileHandle(this, path, node, writable, this.#generation);
  }

  /** @internal used by handles */
  handleOp(handle: FaultFileHandle, op: MutatingOp | null): void {
    if (handle.generation !== this.#generation) {
      throw new Error(`Stale handle "${handle.path}" after a crash`);
    }
    if (op === null) this.#checkAlive();
    else this.#mutate(op, handle.path);
  }

  /** @internal */
  get diskFull(): boolean {
    return this.#diskFull;
  }

  readFile(path: string): Uint8Array {
    this.#checkAlive();
    const node = this.#lookup(path);
    if (node === undefined) throw new Deno.errors.NotFound(path);
    if (node.kind !== "file") throw new Error(`Is a directory: "${path}"`);
    return node.data.slice();
  }

  rename(from: string, to: string): void {
    this.#checkAlive();
    const src = this.#parent(from);
    const node = src.dir.children.get(src.name);
    if (node === undefined) throw new Deno.errors.NotFound(from);
    const dst = this.#parent(to);
    const existing = dst.dir.children.get(dst.name);
    if (existing !== undefined && existing.kind === "dir" && existing.children.size > 0) {
      throw new Error(`Directory not empty: "${to}"`);
    }
    this.#mutate("rename", `${from} -> ${to}`);
    src.dir.children.delete(src.name);
    dst.dir.children.set(dst.name, node);
  }

  remove(path: string, options: { readonly recursive?: boolean } = {}): void {
    this.#checkAlive();
    const { dir, name } = this.#parent(path);
    const node = dir.children.get(name);
    if (node === undefined) return;
    if (node.kind === "dir" && node.children.size > 0 && options.recursive !== true) {
      throw new Error(`Directory not empty: "${path}"`);
    }
    this.#mutate("remove", path);
    dir.children.delete(name);
  }

  readDir(path: string): DirEntry[] {
    this.#checkAlive();
    const node = this.#lookup(path);
    if (node === undefined) throw new Deno.errors.NotFound(path);
    if (node.kind !== "dir") throw new Error(`Not a directory: "${path}"`);
    return [...node.children.entries()]
      .map(([name, child]) => ({ name, isDirectory: child.kind === "dir" }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  mkdir(path: string, options: { readonly recursive?: boolean } = {}): void {
    this.#checkAlive();
    const parts = split(path);
    let dir = this.#root;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      const child = dir.children.get(part);
      if (child === undefined) {
        if (i < parts.length - 1 && options.recursive !== true) {
          throw new Deno.errors.NotFound(path);
        }
        this.#mutate("mkdir", parts.slice(0, i + 1).join("/"));
        const made: DirNode = { kind: "dir", children: new Map(), durable: new Map() };
        dir.children.set(part, made);
        dir = made;
      } else if (child.kind === "dir") {
        if (i === parts.length - 1 && options.recursive !== true) {
          throw new Deno.errors.AlreadyExists(path);
        }
        dir = child;
      } else {
        throw new Error(`Not a directory: "${path}"`);
      }
    }
  }

  syncDir(path: string): void {
    this.#checkAlive();
    const node = this.#lookup(path);
    if (node === undefined) throw new Deno.errors.NotFound(path);
    if (node.kind !== "dir") throw new Error(`Not a directory: "${path}"`);
    this.#mutate("syncDir", path);
    node.durable = new Map(node.children);
  }

  stat(path: string): { readonly size: number; readonly isDirectory: boolean } | null {
    this.#checkAlive();
    const node = this.#lookup(path);
    if (node === undefined) return null;
    return node.kind === "dir"
      ? { size: 0, isDirectory: true }
      : { size: node.data.length, isDirectory: false };
  }
}

class FaultFileHandle implements FileHandle {
  readonly path: string;
  readonly generation: number;
  #fs: FaultFileSystem;
  #node: FileNode;
  #writable: boolean;
  #closed = false;
  constructor(
    fs: FaultFileSystem,
    path: string,
    node: FileNode,
    writable: boolean,
    generation: number,
  ) {
    this.#fs = fs;
    this.path = path;
    this.#node = node;
    this.#writable = writable;
    this.generation = generation;
  }
  #check(op: MutatingOp | null): void {
    if (this.#closed) throw new Error(`Handle "${this.path}" is closed`);
    if (op === "write" || op === "truncate") {
      if (!this.#writable) throw new Error(`Handle "${this.path}" is read-only`);
    }
    this.#fs.handleOp(this, op);
  }
  write(data: Uint8Array, position: number): void {
    this.#check(null);
    if (this.#fs.diskFull) throw new DiskFullError(this.path);
    this.#check("write");
    const op: PendingOp = { kind: "write", position, data: data.slice() };
    this.#node.data = applyOp(this.#node.data, op);
    this.#node.pending.push(op);
  }
  read(buffer: Uint8Array, position: number): number {
    this.#check(null);
    const src = this.#node.data;
    if (position >= src.length) return 0;
    const n = Math.min(buffer.length, src.length - position);
    buffer.set(src.subarray(position, position + n));
    return n;
  }
  size(): number {
    this.#check(null);
    return this.#node.data.length;
  }
  truncate(length: number): void {
    this.#check("truncate");
    const op: PendingOp = { kind: "truncate", length };
    this.#node.data = applyOp(this.#node.data, op);
    this.#node.pending.push(op);
  }
  syncData(): void {
    this.#check("sync");
    this.#node.durable = this.#node.data.slice();
    this.#node.pending = [];
  }
  sync(): void {
    this.syncData();
  }
  close(): void {
    this.#closed = true;
  }
}
