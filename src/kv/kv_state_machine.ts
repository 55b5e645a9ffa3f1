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
 * Online restore (kv_restore.ts, docs/BACKUP.md): `restore_begin` opens a restore, its
 * `restore_chunk`s stage a KV snapshot aside, and `restore_end` replaces the whole state with
 * it, every key at revision = the end entry's index (so revisions keep increasing across the
 * restore) and `appliedIndex` = that index; writes applied between begin and end are replaced
 * too. An open restore is aborted, deterministically, by an entry of another term than its
 * begin (a new leader), a new begin, `restore_abort`, a chunk out of sequence or of another
 * restore, or staged bytes that do not decode; installing a snapshot (`restore()`) drops it.
 * The open restore is not part of a snapshot: the driver must not take one while
 * {@linkcode KvStateMachine.openRestore} is set.
 *
 * @module
 */

import { assert } from "../util/assert.ts";
import { decodeKvCommand, KvCommandError, type KvRestoreCommand } from "./kv_command.ts";
import { type OpenRestore, RestoreStaging } from "./kv_restore.ts";
import { fromSortForm, InvalidKeyError, toSortForm, utf8Length } from "./kv_key.ts";
import {
  readSnapshot,
  type SnapshotDecoderOptions,
  type SnapshotSummary,
} from "./snapshot_decoder.ts";
import { snapshotByteLength, snapshotStream } from "./snapshot_encoder.ts";
import { SnapshotFormatError } from "./snapshot_format.ts";
import { type KvRecord, SortedIndex, SortedIndexBuilder } from "./sorted_index.ts";

/** What a `restore_end` put in place. */
export interface RestoredState {
  readonly restoreId: string;
  readonly sourceClusterId: string;
  readonly sourceIndex: number;
  readonly keys: number;
  readonly valueBytes: number;
  /** The index of the `restore_begin` entry. */
  readonly beginIndex: number;
}

/**
 * The outcome of applying one entry. Restore commands answer `ok` with `revision` = their
 * index (a `restore_end` also with `restored`), or `restore_failed`.
 */
export type ApplyResult =
  | { readonly ok: true; readonly revision: number; readonly restored?: RestoredState }
  | { readonly ok: false; readonly code: "revision_mismatch"; readonly current: number }
  | { readonly ok: false; readonly code: "not_found" }
  | { readonly ok: false; readonly code: "invalid_command"; readonly message: string }
  | { readonly ok: false; readonly code: "restore_failed"; readonly message: string };

/** Why the last open restore ended without replacing the state. */
export interface RestoreAbort {
  readonly restoreId: string;
  /** The index of the entry that ended it. */
  readonly index: number;
  readonly reason: string;
}

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
  #staging: RestoreStaging | null = null;
  #lastAbort: RestoreAbort | null = null;

  /** The index of the last entry applied. */
  get appliedIndex(): number {
    return this.#appliedIndex;
  }

  /** The online restore in progress (begin applied, end not yet), or null. */
  get openRestore(): OpenRestore | null {
    return this.#staging?.info ?? null;
  }

  /** How the last restore that did not complete ended, or null. Diagnostics only. */
  get lastRestoreAbort(): RestoreAbort | null {
    return this.#lastAbort;
  }

  /**
   * Applies the Normal entry at `index` whose data is an encoded KV command. `index` must be
   * greater than {@linkcode appliedIndex} (entries are applied in log order). `term` is the
   * entry's term: the driver passes it so that a leader change aborts an open restore (without
   * it, that rule is not applied).
   */
  apply(index: number, data: Uint8Array, term?: number): ApplyResult {
    this.#advance(index);
    this.#checkRestoreTerm(index, term);
    let command;
    try {
      command = decodeKvCommand(data);
    } catch (error) {
      if (error instanceof KvCommandError) {
        return { ok: false, code: "invalid_command", message: error.message };
      }
      throw error;
    }
    if (command.op !== "put" && command.op !== "delete") {
      return this.#applyRestore(index, term ?? 0, command);
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

  /**
   * Marks the entry at `index` applied without a KV command (a no-op or membership entry).
   * `term` as for {@linkcode apply}: a new leader's no-op aborts an open restore.
   */
  markApplied(index: number, term?: number): void {
    this.#advance(index);
    this.#checkRestoreTerm(index, term);
  }

  #checkRestoreTerm(index: number, term: number | undefined): void {
    const staging = this.#staging;
    if (staging === null || term === undefined || term === staging.begin.term) return;
    this.#abortRestore(
      index,
      `the leader changed (entry ${index} is of term ${term}, the restore began in term ${staging.begin.term})`,
    );
  }

  #abortRestore(index: number, reason: string): void {
    const staging = this.#staging;
    if (staging === null) return;
    this.#staging = null;
    this.#lastAbort = { restoreId: staging.begin.restoreId, index, reason };
  }

  #restoreFailed(message: string): ApplyResult {
    return { ok: false, code: "restore_failed", message };
  }

  /** Why restore `restoreId` is not open, for the answer to its chunk or end. */
  #notOpen(restoreId: string): string {
    const abort = this.#lastAbort;
    if (abort !== null && abort.restoreId === restoreId) {
      return `restore ${restoreId} was aborted at index ${abort.index}: ${abort.reason}`;
    }
    return `restore ${restoreId} is not open`;
  }

  #applyRestore(index: number, term: number, command: KvRestoreCommand): ApplyResult {
    const staging = this.#staging;
    const ok: ApplyResult = { ok: true, revision: index };
    switch (command.op) {
      case "restore_begin": {
        if (staging !== null) {
          this.#abortRestore(index, `restore ${command.restoreId} began at index ${index}`);
        }
        this.#staging = new RestoreStaging({
          restoreId: command.restoreId,
          size: command.size,
          sha256: command.sha256,
          sourceClusterId: command.sourceClusterId,
          sourceIndex: command.sourceIndex,
          beginIndex: index,
          term,
        });
        return ok;
      }
      case "restore_chunk": {
        if (staging === null || staging.begin.restoreId !== command.restoreId) {
          const message = this.#notOpen(command.restoreId);
          this.#abortRestore(index, `a chunk of restore ${command.restoreId} arrived`);
          return this.#restoreFailed(message);
        }
        const problem = staging.append(command.seq, command.bytes);
        if (problem !== null) {
          this.#abortRestore(index, problem);
          return this.#restoreFailed(this.#notOpen(command.restoreId));
        }
        return ok;
      }
      case "restore_abort": {
        if (staging !== null && staging.begin.restoreId === command.restoreId) {
          this.#abortRestore(index, "aborted by the leader");
        }
        return ok;
      }
      case "restore_end": {
        if (staging === null || staging.begin.restoreId !== command.restoreId) {
          const message = this.#notOpen(command.restoreId);
          this.#abortRestore(index, `the end of restore ${command.restoreId} arrived`);
          return this.#restoreFailed(message);
        }
        const outcome = staging.finish(index);
        if (!outcome.ok) {
          this.#abortRestore(index, outcome.reason);
          return this.#restoreFailed(this.#notOpen(command.restoreId));
        }
        this.#staging = null;
        this.#index = outcome.state.index;
        this.#keyBytes = outcome.state.keyBytes;
        this.#valueBytes = outcome.state.valueBytes;
        const begin = staging.begin;
        return {
          ok: true,
          revision: index,
          restored: {
            restoreId: begin.restoreId,
            sourceClusterId: begin.sourceClusterId,
            sourceIndex: begin.sourceIndex,
            keys: outcome.state.keys,
            valueBytes: outcome.state.valueBytes,
            beginIndex: begin.beginIndex,
          },
        };
      }
    }
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
   * Replaces the whole state with the snapshot in `stream`, after verifying all of it, and
   * drops an open online restore. On any error (a `SnapshotFormatError` for damage, or the
   * stream's own error) the previous state is left exactly as it was.
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
      // A snapshot never holds an open online restore (none is taken while one is open).
      this.#staging = null;
      return summary;
    } finally {
      this.#restoring = false;
    }
  }
}
