/**
 * The staging side of an online restore (docs/BACKUP.md, "Online restore"): what the KV state
 * machine holds between a `restore_begin` and its `restore_end`.
 *
 * Every node applies the same entries, so every node builds the same staged state: the chunks'
 * bytes (a KV snapshot stream, the `state.kvsnap` of a verified archive) are hashed and fed to
 * the snapshot decoder as they are applied, and the decoded keys go into a new index built
 * aside. Nothing touches the disk: a restart rebuilds the staging by replaying the log from a
 * snapshot taken before the begin (the driver takes no snapshot while a restore is open), so
 * there is no staging file to clean up or to lose. The work of decoding is spread over the
 * chunks; `restore_end` only checks the totals and swaps the index in, so it never stalls the
 * apply loop for long.
 *
 * Each check here is a pure function of the log, so a failure (a gap in the chunk sequence, a
 * chunk of another restore, bytes that do not decode, a size or SHA-256 that differs from the
 * begin's) happens at the same entry on every node, and ends the restore there with the state
 * unchanged.
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";
import { toSortForm } from "./kv_key.ts";
import { SnapshotDecoder, type SnapshotSummary } from "./snapshot_decoder.ts";
import { SnapshotFormatError } from "./snapshot_format.ts";
import { type KvRecord, type SortedIndex, SortedIndexBuilder } from "./sorted_index.ts";

/** What a `restore_begin` announced, and where it sits in the log. */
export interface RestoreBegin {
  readonly restoreId: string;
  /** Exact length of the staged KV snapshot stream, in bytes. */
  readonly size: number;
  /** Its SHA-256, lowercase hex. */
  readonly sha256: string;
  /** The cluster and index the archive was taken from (its manifest's). */
  readonly sourceClusterId: string;
  readonly sourceIndex: number;
  /** Index and term of the `restore_begin` entry. */
  readonly beginIndex: number;
  readonly term: number;
}

/** A restore in progress, as {@linkcode KvStateMachine.openRestore} shows it. */
export interface OpenRestore extends RestoreBegin {
  /** Chunks and bytes applied so far. */
  readonly chunks: number;
  readonly receivedBytes: number;
}

/** The fully staged state, ready to be swapped in. */
export interface StagedState {
  readonly index: SortedIndex;
  readonly keys: number;
  readonly keyBytes: number;
  readonly valueBytes: number;
}

/** A record whose revision is set when the restore ends (the end entry's index). */
interface StagedRecord {
  readonly value: Uint8Array;
  revision: number;
  readonly keyBytes: number;
}

/** The largest snapshot block a restore accepts: a constant, so every node decides alike. */
const RESTORE_BLOCK_BYTES_MAX = 256 * 1024 * 1024;

/** One open restore: hashes and decodes chunks as they are applied. */
export class RestoreStaging {
  readonly begin: RestoreBegin;
  #nextSeq = 0;
  #received = 0;
  #hash: Hash = createHash("sha256");
  #decoder: SnapshotDecoder;
  #builder = new SortedIndexBuilder();
  #records: StagedRecord[] = [];
  #keyBytes = 0;

  constructor(begin: RestoreBegin) {
    this.begin = begin;
    const sourceIndex = begin.sourceIndex;
    const builder = this.#builder;
    const records = this.#records;
    this.#decoder = new SnapshotDecoder({
      header(header) {
        if (header.appliedIndex !== sourceIndex) {
          throw new SnapshotFormatError(
            "index_mismatch",
            `snapshot is at index ${header.appliedIndex}, the restore announced ${sourceIndex}`,
          );
        }
      },
      // Values of one block share that block's buffer (as in KvStateMachine.restore).
      retainValues: true,
      record: (key, length, _revision, value) => {
        const record: StagedRecord = { value, revision: 0, keyBytes: length };
        records.push(record);
        builder.push(toSortForm(key), record as KvRecord);
        this.#keyBytes += length;
      },
    }, { blockBytesMax: RESTORE_BLOCK_BYTES_MAX });
  }

  /** The restore as a status page shows it. */
  get info(): OpenRestore {
    return { ...this.begin, chunks: this.#nextSeq, receivedBytes: this.#received };
  }

  /**
   * Applies chunk `seq`. Returns null when accepted, or why the restore must end here (the
   * caller aborts it).
   */
  append(seq: number, bytes: Uint8Array): string | null {
    if (seq !== this.#nextSeq) {
      return `chunk ${seq} arrived where chunk ${this.#nextSeq} was due`;
    }
    if (this.#received + bytes.length > this.begin.size) {
      return `chunks exceed the announced ${this.begin.size} bytes`;
    }
    this.#nextSeq++;
    this.#received += bytes.length;
    this.#hash.update(bytes);
    try {
      this.#decoder.push(bytes);
    } catch (error) {
      if (error instanceof SnapshotFormatError) {
        return `the staged state does not decode: ${error.message}`;
      }
      throw error;
    }
    return null;
  }

  /**
   * Ends the restore at the entry `index`: checks size, SHA-256 and that the snapshot is
   * complete, then sets every staged key's revision to `index`. Returns the state to swap in,
   * or why the restore failed.
   */
  finish(index: number): { ok: true; state: StagedState; summary: SnapshotSummary } | {
    ok: false;
    reason: string;
  } {
    if (this.#received !== this.begin.size) {
      return {
        ok: false,
        reason: `received ${this.#received} of the announced ${this.begin.size} bytes`,
      };
    }
    const digest = this.#hash.digest("hex");
    if (digest !== this.begin.sha256) {
      return {
        ok: false,
        reason:
          `the staged bytes have SHA-256 ${digest}, the restore announced ${this.begin.sha256}`,
      };
    }
    let summary: SnapshotSummary;
    try {
      summary = this.#decoder.finish();
    } catch (error) {
      if (error instanceof SnapshotFormatError) {
        return { ok: false, reason: `the staged state does not decode: ${error.message}` };
      }
      throw error;
    }
    for (const record of this.#records) record.revision = index;
    this.#records = [];
    return {
      ok: true,
      summary,
      state: {
        index: this.#builder.finish(),
        keys: summary.records,
        keyBytes: this.#keyBytes,
        valueBytes: summary.valueBytes,
      },
    };
  }
}
