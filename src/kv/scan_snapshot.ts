/**
 * Verifies a KV snapshot stream and summarizes it without building any state: what
 * `edgeraft verify` and `edgeraft inspect` report about a backup's state file. Memory is one
 * block plus the per-prefix table, which is capped.
 *
 * @module
 */

import { toSortForm } from "./kv_key.ts";
import { readSnapshot, type SnapshotDecoderOptions } from "./snapshot_decoder.ts";

/** Per-prefix totals: keys grouped by the text up to and including the first delimiter. */
export interface PrefixStats {
  /** The key's text up to and including the first delimiter; "" for keys without one. */
  readonly prefix: string;
  readonly keys: number;
  readonly valueBytes: number;
}

/** What {@linkcode scanSnapshot} found in a sound snapshot. */
export interface SnapshotScan {
  readonly appliedIndex: number;
  readonly keys: number;
  /** Sum of the keys' UTF-8 lengths. */
  readonly keyBytes: number;
  readonly valueBytes: number;
  /** Length of the longest value. */
  readonly largestValue: number;
  /** The newest revision of any key (0 when empty). */
  readonly maxRevision: number;
  readonly blocks: number;
  /** Length of the whole stream. */
  readonly streamBytes: number;
  /** Per-prefix totals in key order, at most `prefixesMax` of them. */
  readonly prefixes: readonly PrefixStats[];
  /** Keys whose prefix did not fit in the table. */
  readonly otherPrefixKeys: number;
}

/** Options of {@linkcode scanSnapshot}. */
export interface ScanSnapshotOptions extends SnapshotDecoderOptions {
  /** Groups keys by the text before this delimiter (default "/"). */
  readonly prefixDelimiter?: string;
  /** At most this many prefixes are tracked (default 100). */
  readonly prefixesMax?: number;
}

/**
 * Reads `stream` to the end, verifying every checksum and invariant, and returns its summary.
 * Throws `SnapshotFormatError` for any damage.
 */
export async function scanSnapshot(
  stream: ReadableStream<Uint8Array>,
  options: ScanSnapshotOptions = {},
): Promise<SnapshotScan> {
  const delimiter = options.prefixDelimiter ?? "/";
  const prefixesMax = options.prefixesMax ?? 100;
  const prefixes = new Map<string, { keys: number; valueBytes: number }>();
  let otherPrefixKeys = 0;
  let keyBytes = 0;
  let largestValue = 0;
  let maxRevision = 0;
  const summary = await readSnapshot(stream, {
    record(key, length, revision, value) {
      keyBytes += length;
      if (value.length > largestValue) largestValue = value.length;
      if (revision > maxRevision) maxRevision = revision;
      const cut = delimiter === "" ? -1 : key.indexOf(delimiter);
      const prefix = cut < 0 ? "" : key.slice(0, cut + delimiter.length);
      const stats = prefixes.get(prefix);
      if (stats !== undefined) {
        stats.keys++;
        stats.valueBytes += value.length;
      } else if (prefixes.size < prefixesMax) {
        prefixes.set(prefix, { keys: 1, valueBytes: value.length });
      } else {
        otherPrefixKeys++;
      }
    },
  }, options);
  const sorted = [...prefixes].map(([prefix, stats]) => ({
    prefix,
    ...stats,
    sort: toSortForm(prefix),
  }))
    .sort((a, b) => (a.sort < b.sort ? -1 : a.sort > b.sort ? 1 : 0))
    .map(({ prefix, keys, valueBytes }) => ({ prefix, keys, valueBytes }));
  return {
    appliedIndex: summary.appliedIndex,
    keys: summary.records,
    keyBytes,
    valueBytes: summary.valueBytes,
    largestValue,
    maxRevision,
    blocks: summary.blocks,
    streamBytes: summary.streamBytes,
    prefixes: sorted,
    otherPrefixKeys,
  };
}
