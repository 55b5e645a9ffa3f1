/**
 * The replicated key-value state machine: what every node applies committed entries to.
 *
 * Semantics (../shared/DESIGN.md): a key's revision is the Raft index of the entry that last
 * wrote it; `prevRevision` N makes a write conditional on the key's current revision being N,
 * and 0 means "only if absent". A failed condition, a delete of a missing key or an undecodable
 * command is a deterministic *result*, never an exception, and still advances the applied
 * index: every node sees the same bytes, so every node reaches the same result and state.
 *
 * Invariants: `appliedIndex` only grows; every revision is ≤ `appliedIndex`; stored values and
 * records are never mutated after they are stored (a snapshot relies on that to stream a
 * point-in-time view while applies continue); configured limits (value size) are enforced at
 * proposal time, not here, so nodes with different settings cannot diverge.
 *
 * @module
 */

import { assert } from "../util/assert.ts";
import { decodeKvCommand, KvCommandError } from "./kv_command.ts";
import { fromSortForm, InvalidKeyError, toSortForm, utf8Length } from "./kv_key.ts";
import {
  readSnapshot,
  type SnapshotDecoderOptions,
  type SnapshotSummary,
} from "./snapshot_decoder.ts";
import { snapshotByteLength, snapshotStream } from "./snapshot_encoder.ts";
import { SnapshotFormatError } from "./snapshot_format.ts";
import { type KvRecord, SortedIndex, SortedIndexBuilder } from "./sorted_index.ts";

/** The outcome of applying one entry. */
export type ApplyResult =
  | { readonly ok: true; readonly revision: number }
  | { readonly ok: false; readonly code: "revision_mismatch"; readonly current: number }
  | { readonly ok: false; readonly code: "not_found" }
  | { readonly ok: false; readonly code: "invalid_command"; readonly message: string };

/** A stored value. `value` is shared with the store: never modify or transfer it. */
export interface KvValue {
  readonly value: Uint8Array;
  readonly revision: number;
}

/** Options of {@linkcode KvStateMachine.list}. */
export interface KvListOptions {
  /** Only keys starting with this text (default: all keys). */
  readonly prefix?: string;
  /** Only keys sorting after this key (exclusive), for pagination. */
  readonly after?: string;
  /** At most this many items (default 1000). */
  readonly limit?: number;
  /** Include values (default false). */
  readonly values?: boolean;
}

/** One listed key. */
export interface KvListItem {
  readonly key: string;
  readonly revision: number;
  /** Present when listing with `values: true`; shared with the store, do not modify. */
  readonly value?: Uint8Array;
}

/** A page of keys in UTF-8 byte order; `more` when keys matching the query follow. */
export interface KvListResult {
  readonly items: KvListItem[];
  readonly more: boolean;
}

/** Counters for status pages and metrics. */
export interface KvStats {
  readonly appliedIndex: number;
  readonly keys: number;
  /** Sum of the keys' UTF-8 lengths. */
  readonly keyBytes: number;
  /** Sum of the values' lengths. */
  readonly valueBytes: number;
}

/** A point-in-time snapshot: its totals and the stream of its bytes. */
export interface KvSnapshot {
  readonly appliedIndex: number;
  readonly keys: number;
  readonly valueBytes: number;
  /**
   * The exact length of `stream` in bytes, known before a byte is encoded (a backup archive's
   * tar header needs it first).
   */
  readonly byteLength: number;
  /** The snapshot file (docs/FORMATS.md), produced as the reader pulls. Read it once. */
  readonly stream: ReadableStream<Uint8Array>;
}

/** Options of {@linkcode KvStateMachine.restore}. */
export interface KvRestoreOptions extends SnapshotDecoderOptions {
  /** Reject the snapshot unless its applied index is exactly this (the Raft snapshot index). */
  readonly expectedAppliedIndex?: number;
}

const LIST_LIMIT_DEFAULT = 1000;

/** The KV store that Raft replicates. Single-threaded; apply entries in log order. */
export class KvStateMachine {
  #index = new SortedIndex();
  #appliedIndex = 0;
  #keyBytes = 0;
  #valueBytes = 0;
  #restoring = false;

  /** The index of the last entry applied. */
  get appliedIndex(): number {
    return this.#appliedIndex;
  }

  /**
   * Applies the Normal entry at `index` whose data is an encoded KV command. `index` must be
   * greater than {@linkcode appliedIndex} (entries are applied in log order).
   */
  apply(index: number, data: Uint8Array): ApplyResult {
    this.#advance(index);
    let command;
    try {
      command = decodeKvCommand(data);
    } catch (error) {
      if (error instanceof KvCommandError) {
        return { ok: false, code: "invalid_command", message: error.message };
      }
      throw error;
    }
    const key = toSortForm(command.key);
    const existing = this.#index.get(key);
    const current = existing?.revision ?? 0;
    if (command.prevRevision !== undefined && command.prevRevision !== current) {
      return { ok: false, code: "revision_mismatch", current };
    }
    if (command.op === "delete") {
      // Also reached by "delete only if absent" on an absent key: the condition holds, but
      // there is nothing to delete.
      if (existing === undefined) return { ok: false, code: "not_found" };
      this.#index.delete(key);
      this.#keyBytes -= existing.keyBytes;
      this.#valueBytes -= existing.value.length;
      return { ok: true, revision: index };
    }
    const keyBytes = existing?.keyBytes ?? utf8Length(command.key);
    this.#index.set(key, { value: command.value, revision: index, keyBytes });
    if (existing === undefined) this.#keyBytes += keyBytes;
    this.#valueBytes += command.value.length - (existing?.value.length ?? 0);
    return { ok: true, revision: index };
  }

  /** Marks the entry at `index` applied without a KV command (a no-op or membership entry). */
  markApplied(index: number): void {
    this.#advance(index);
  }

  #advance(index: number): void {
    assert(!this.#restoring, "KvStateMachine: apply during restore");
    assert(
      Number.isSafeInteger(index) && index > this.#appliedIndex,
      `KvStateMachine: entry ${index} applied after ${this.#appliedIndex}`,
    );
    this.#appliedIndex = index;
  }

  /** The value and revision of `key`, or null when absent (or not a possible key). */
  get(key: string): KvValue | null {
    if (!key.isWellFormed()) return null;
    const record = this.#index.get(toSortForm(key));
    return record === undefined ? null : { value: record.value, revision: record.revision };
  }

  /**
   * Keys in UTF-8 byte order, filtered by `prefix`, starting after `after`, at most `limit`.
   * Throws {@linkcode InvalidKeyError} for a prefix or cursor that is not well-formed.
   */
  list(options: KvListOptions = {}): KvListResult {
    const prefix = options.prefix ?? "";
    const limit = options.limit ?? LIST_LIMIT_DEFAULT;
    assert(Number.isSafeInteger(limit) && limit >= 1, `KvStateMachine.list: bad limit ${limit}`);
    if (!prefix.isWellFormed() || (options.after !== undefined && !options.after.isWellFormed())) {
      throw new InvalidKeyError("Invalid key: prefix and after must be well-formed Unicode");
    }
    const sortPrefix = toSortForm(prefix);
    const sortAfter = options.after === undefined ? null : toSortForm(options.after);
    // The sort form maps code units one to one, so a prefix stays a prefix.
    const start = sortAfter !== null && sortAfter > sortPrefix ? sortAfter : sortPrefix;
    const items: KvListItem[] = [];
    let more = false;
    this.#index.scanFrom(start, (key, record) => {
      if (sortAfter !== null && key <= sortAfter) return true;
      if (!key.startsWith(sortPrefix)) return false;
      if (items.length === limit) {
        more = true;
        return false;
      }
      const external = fromSortForm(key);
      items.push(
        options.values
          ? { key: external, revision: record.revision, value: record.value }
          : { key: external, revision: record.revision },
      );
      return true;
    });
    return { items, more };
  }

  /** Counters of the current state. */
  stats(): KvStats {
    return {
      appliedIndex: this.#appliedIndex,
      keys: this.#index.size,
      keyBytes: this.#keyBytes,
      valueBytes: this.#valueBytes,
    };
  }

  /**
   * A snapshot of the state as of now. Applies may continue while the stream is read: they do
   * not change what it yields (copy-on-write at leaf granularity, see sorted_index.ts).
   */
  snapshot(): KvSnapshot {
    const header = {
      appliedIndex: this.#appliedIndex,
      records: this.#index.size,
      valueBytes: this.#valueBytes,
    };
    const leaves = this.#index.freeze();
    // Before the stream starts: the writer releases leaves as it goes.
    const byteLength = snapshotByteLength(leaves);
    const stream = snapshotStream(leaves, header);
    return {
      appliedIndex: header.appliedIndex,
      keys: header.records,
      valueBytes: header.valueBytes,
      byteLength,
      stream,
    };
  }

  /**
   * Replaces the whole state with the snapshot in `stream`, after verifying all of it. On any
   * error (a `SnapshotFormatError` for damage, or the stream's own error) the previous state
   * is left exactly as it was.
   */
  async restore(
    stream: ReadableStream<Uint8Array>,
    options: KvRestoreOptions = {},
  ): Promise<SnapshotSummary> {
    assert(!this.#restoring, "KvStateMachine: concurrent restore");
    this.#restoring = true;
    try {
      const builder = new SortedIndexBuilder();
      let keyBytes = 0;
      const summary = await readSnapshot(stream, {
        header(header) {
          const expected = options.expectedAppliedIndex;
          if (expected !== undefined && header.appliedIndex !== expected) {
            throw new SnapshotFormatError(
              "index_mismatch",
              `snapshot is at index ${header.appliedIndex}, expected ${expected}`,
            );
          }
        },
        // Values of one block share that block's buffer (one allocation per ~64 KiB instead of
        // one per value). The cost: a block's memory is freed only once all its values are
        // overwritten or deleted, so restored state may retain up to the snapshot's size.
        retainValues: true,
        record(key, length, revision, value) {
          const record: KvRecord = { value, revision, keyBytes: length };
          builder.push(toSortForm(key), record);
          keyBytes += length;
        },
      }, options);
      this.#index = builder.finish();
      this.#appliedIndex = summary.appliedIndex;
      this.#keyBytes = keyBytes;
      this.#valueBytes = summary.valueBytes;
      return summary;
    } finally {
      this.#restoring = false;
    }
  }
}
