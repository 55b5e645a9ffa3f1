/**
 * The hard state in `<data-dir>/hardstate`, replaced atomically: write `hardstate.tmp`, fsync,
 * rename over `hardstate`, fsync the directory. A crash at any point leaves the old or the new
 * file in place, never neither; a stray `hardstate.tmp` is removed at start-up.
 *
 * A missing file is a new node only when the data directory holds nothing else: the file is
 * created before anything else on a new node, so if the log or snapshots exist without it, it
 * was lost and the node refuses to start ({@linkcode HardStateCorruptError}) rather than forget
 * its term and vote.
 *
 * @module
 */

import { HardStateCorruptError } from "./errors.ts";
import type { FileSystem } from "./fs.ts";
import { joinPath } from "./fs.ts";
import { decodeHardState, encodeHardState, hardStateProblem } from "./hard_state_codec.ts";
import { assert } from "../util/assert.ts";
import { type HardStateStore, INITIAL_HARD_STATE, type StoredHardState } from "./types.ts";

/** See the module documentation. */
export class FileHardStateStore implements HardStateStore {
  readonly #fs: FileSystem;
  readonly #dir: string;
  #state: StoredHardState;
  /** True when one of the two copies was damaged (reported; the next save rewrites both). */
  readonly damagedCopy: boolean;

  private constructor(fs: FileSystem, dir: string, state: StoredHardState, damaged: boolean) {
    this.#fs = fs;
    this.#dir = dir;
    this.#state = state;
    this.damagedCopy = damaged;
  }

  /** Reads (or, for an empty data directory, creates) the hard state of `dataDir`. */
  static open(fs: FileSystem, dataDir: string): FileHardStateStore {
    if (fs.stat(dataDir) === null) fs.mkdir(dataDir, { recursive: true });
    const path = joinPath(dataDir, "hardstate");
    const tmp = `${path}.tmp`;
    if (fs.stat(tmp) !== null) {
      fs.remove(tmp);
      fs.syncDir(dataDir);
    }
    if (fs.stat(path) === null) {
      const others = fs.readDir(dataDir).filter((e) => e.name === "log" || e.name === "snapshots");
      if (others.length > 0) {
        throw new HardStateCorruptError(path, "file missing while the log or snapshots exist");
      }
      const store = new FileHardStateStore(fs, dataDir, INITIAL_HARD_STATE, false);
      store.saveSync(INITIAL_HARD_STATE);
      return store;
    }
    const decoded = decodeHardState(fs.readFile(path));
    if (!decoded.ok) throw new HardStateCorruptError(path, decoded.reason);
    return new FileHardStateStore(fs, dataDir, decoded.state, decoded.damagedCopy);
  }

  load(): StoredHardState {
    return this.#state;
  }

  /** {@linkcode save} without the promise, for callers inside synchronous recovery steps. */
  saveSync(state: StoredHardState): void {
    const bytes = encodeHardState(state);
    const path = joinPath(this.#dir, "hardstate");
    const tmp = `${path}.tmp`;
    const h = this.#fs.open(tmp, { create: true });
    try {
      h.truncate(0);
      h.write(bytes, 0);
      h.sync();
    } finally {
      h.close();
    }
    this.#fs.rename(tmp, path);
    this.#fs.syncDir(this.#dir);
    this.#state = Object.freeze({ ...state });
  }

  save(state: StoredHardState): Promise<void> {
    const problem = hardStateProblem(state);
    assert(problem === null, `refusing to write a bad hard state: ${problem}`);
    try {
      this.saveSync(state);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  close(): void {}
}
