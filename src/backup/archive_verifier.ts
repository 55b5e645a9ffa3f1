/**
 * Verifies a backup archive (docs/BACKUP.md) in one streaming pass and constant memory: gzip
 * is detected by its magic and undone on the fly; the tar framing is checked strictly; every
 * member is hashed as it passes; the state file is also fed, chunk by chunk, to the KV snapshot
 * decoder (every block checksum, key order, counts, trailer), which gathers the statistics
 * `inspect` shows; `manifest.json` and `SHA256SUMS` are small and kept to be parsed.
 *
 * Then, with everything known, the checks run in this order and the first failure ends the
 * report (the order makes the named file the one at fault where that can be told):
 *
 * 1. gzip stream (when compressed) and tar framing: during the pass (truncation, damage).
 * 2. member layout: exactly `state.kvsnap`, `manifest.json`, `SHA256SUMS`, in that order.
 * 3. `SHA256SUMS` format.
 * 4. `manifest.json` against its line in `SHA256SUMS` (a damaged manifest is damage, not a
 *    schema error: this runs before the schema check).
 * 5. manifest schema and versions.
 * 6. `state.kvsnap` size and SHA-256 against the manifest, then against `SHA256SUMS` (when the
 *    state agrees with the manifest but not with `SHA256SUMS`, the list is at fault).
 * 7. the state decodes completely.
 * 8. the state's applied index, key count and value bytes equal the manifest's.
 *
 * A layout this build does not know, or an unparseable `SHA256SUMS`, is reported as
 * `ERR_BACKUP_VERSION_UNSUPPORTED` when `manifest.json` says it is a newer format version: an
 * archive from a newer edgeraft may well be laid out differently.
 *
 * Never throws for bad input: every failure becomes a report with `ok: false` and an error
 * naming the code, the file (null for the archive as a whole) and the check. (Assertion
 * failures, which mean a bug in edgeraft, are not caught.)
 *
 * @module
 */

import { createHash } from "node:crypto";
import { BackupError, type BackupErrorCode } from "../errors.ts";
import { SnapshotDecoder, type SnapshotSummary } from "../kv/snapshot_decoder.ts";
import { SnapshotFormatError } from "../kv/snapshot_format.ts";
import { AssertionError } from "../util/assert.ts";
import { openArchiveInput } from "./archive_input.ts";
import { GzipError } from "./gzip.ts";
import {
  ARCHIVE_MEMBERS,
  BACKUP_FORMAT_VERSION,
  type BackupManifest,
  MANIFEST_BYTES_MAX,
  MANIFEST_CHECK,
  MANIFEST_FILE,
  parseManifest,
  peekManifestVersion,
  STATE_FILE,
  SUMS_FILE,
} from "./manifest.ts";
import { parseSha256Sums, SHA256SUMS_BYTES_MAX, SHA256SUMS_CHECK } from "./sha256sums.ts";
import { TAR_FRAMING_CHECK, TarReader } from "./tar_reader.ts";

/** One check of the report. */
export interface VerifyCheck {
  /** Stable name, e.g. "tar framing", "state.kvsnap sha256 (manifest)". */
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** Why an archive is unsound. */
export interface VerifyError {
  readonly code: BackupErrorCode;
  /** The member at fault, or null for the archive as a whole. */
  readonly file: string | null;
  /** The failing check's name (as in `checks`). */
  readonly check: string;
  readonly message: string;
}

/** Totals of one key prefix (the key up to and including its first "/" or ":"). */
export interface PrefixUsage {
  /** "" groups keys that have neither delimiter. */
  readonly prefix: string;
  readonly keys: number;
  readonly keyBytes: number;
  readonly valueBytes: number;
  /** keyBytes + valueBytes: what the prefix costs. */
  readonly bytes: number;
}

/** What the pass measured. */
export interface ArchiveStats {
  /** True when the archive was gzip-compressed. */
  readonly gzip: boolean;
  /** Bytes of the archive as given (compressed size when gzip). */
  readonly archiveBytes: number;
  /** Bytes of the tar stream (after decompression). */
  readonly tarBytes: number;
  /** Size of state.kvsnap. */
  readonly stateBytes: number;
  readonly appliedIndex: number;
  readonly keys: number;
  readonly keyBytes: number;
  readonly valueBytes: number;
  readonly largestValue: number;
  /** A key holding the largest value ("" when there are no keys). */
  readonly largestValueKey: string;
  readonly maxRevision: number;
  /** Snapshot blocks in the state file. */
  readonly blocks: number;
  /** Distinct prefixes counted (at most `prefixesMax`). */
  readonly prefixCount: number;
  /** The largest prefixes by bytes, at most `topPrefixes`. */
  readonly prefixes: readonly PrefixUsage[];
  /** Keys whose prefix did not fit the prefix table. */
  readonly otherPrefixKeys: number;
}

/**
 * The outcome of {@linkcode verifyArchive}. (A type alias rather than an interface so that it is
 * assignable to `Record<string, unknown>`, as the HTTP edge's verifier type expects.)
 */
export type VerifyReport = {
  /** True only when every check passed. */
  readonly ok: boolean;
  /** The checks in the order they ran, up to and including the first failure. */
  readonly checks: readonly VerifyCheck[];
  /** The validated manifest, or null when it did not validate. */
  readonly manifest: BackupManifest | null;
  /** Statistics of the state, when it decoded completely (even if a later check failed). */
  readonly stats: ArchiveStats | null;
  readonly error: VerifyError | null;
};

/** Options of {@linkcode verifyArchive}. */
export interface VerifyArchiveOptions {
  /** How many prefixes `stats.prefixes` lists (default 10). */
  readonly topPrefixes?: number;
  /** At most this many distinct prefixes are tracked (default 10 000): bounds memory. */
  readonly prefixesMax?: number;
  /** The snapshot decoder's block payload limit (default: the decoder's, 256 MiB). */
  readonly blockBytesMax?: number;
}

/** Members beyond this many are not read: no edgeraft archive has that many. */
const MEMBERS_MAX = 64;

/** Check names, in order. */
export const CHECKS = {
  gzip: "gzip stream",
  framing: TAR_FRAMING_CHECK,
  layout: "member layout",
  sumsFormat: SHA256SUMS_CHECK,
  manifestSum: "manifest.json sha256 (SHA256SUMS)",
  manifest: MANIFEST_CHECK,
  stateSize: "state.kvsnap size (manifest)",
  stateSha: "state.kvsnap sha256 (manifest)",
  stateSum: "state.kvsnap sha256 (SHA256SUMS)",
  stateDecode: "state.kvsnap decodes",
  stateMatches: "state matches manifest",
} as const;

/** A member as the pass saw it. */
interface SeenMember {
  readonly name: string;
  readonly size: number;
  readonly sha256: string;
}

/** Statistics gathered while the state decodes. */
class StateScan {
  keyBytes = 0;
  largestValue = 0;
  largestValueKey = "";
  maxRevision = 0;
  otherPrefixKeys = 0;
  readonly prefixes = new Map<string, { keys: number; keyBytes: number; valueBytes: number }>();
  readonly #prefixesMax: number;
  readonly decoder: SnapshotDecoder;
  error: SnapshotFormatError | null = null;
  summary: SnapshotSummary | null = null;

  constructor(options: VerifyArchiveOptions) {
    this.#prefixesMax = options.prefixesMax ?? 10_000;
    this.decoder = new SnapshotDecoder({
      record: (key, keyBytes, revision, value) => this.#record(key, keyBytes, revision, value),
    }, options.blockBytesMax === undefined ? {} : { blockBytesMax: options.blockBytesMax });
  }

  #record(key: string, keyBytes: number, revision: number, value: Uint8Array): void {
    this.keyBytes += keyBytes;
    // Keys are never empty, so "" means "no record yet".
    if (this.largestValueKey === "" || value.length > this.largestValue) {
      this.largestValue = value.length;
      this.largestValueKey = key;
    }
    if (revision > this.maxRevision) this.maxRevision = revision;
    const slash = key.indexOf("/");
    const colon = key.indexOf(":");
    const cut = slash < 0 ? colon : colon < 0 ? slash : Math.min(slash, colon);
    const prefix = cut < 0 ? "" : key.slice(0, cut + 1);
    const entry = this.prefixes.get(prefix);
    if (entry !== undefined) {
      entry.keys++;
      entry.keyBytes += keyBytes;
      entry.valueBytes += value.length;
    } else if (this.prefixes.size < this.#prefixesMax) {
      this.prefixes.set(prefix, { keys: 1, keyBytes, valueBytes: value.length });
    } else {
      this.otherPrefixKeys++;
    }
  }

  push(chunk: Uint8Array): void {
    if (this.error !== null) return;
    try {
      this.decoder.push(chunk);
    } catch (error) {
      if (!(error instanceof SnapshotFormatError)) throw error;
      this.error = error;
    }
  }

  finish(): void {
    if (this.error !== null) return;
    try {
      this.summary = this.decoder.finish();
    } catch (error) {
      if (!(error instanceof SnapshotFormatError)) throw error;
      this.error = error;
    }
  }

  top(n: number): PrefixUsage[] {
    return [...this.prefixes].map(([prefix, p]) => ({
      prefix,
      keys: p.keys,
      keyBytes: p.keyBytes,
      valueBytes: p.valueBytes,
      bytes: p.keyBytes + p.valueBytes,
    }))
      .sort((a, b) => b.bytes - a.bytes || (a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0))
      .slice(0, n);
  }
}

/** A failure found while reading, as a report error. */
function streamFailure(error: unknown): VerifyError {
  if (error instanceof AssertionError) throw error;
  if (error instanceof BackupError) {
    return {
      code: error.code as BackupErrorCode,
      file: error.file,
      check: error.check,
      message: error.message,
    };
  }
  if (error instanceof GzipError) {
    return {
      code: error.truncated ? "ERR_BACKUP_INCOMPLETE" : "ERR_BACKUP_CHECKSUM_MISMATCH",
      file: null,
      check: CHECKS.gzip,
      message: error.message,
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  return {
    code: "ERR_BACKUP_INCOMPLETE",
    file: null,
    check: TAR_FRAMING_CHECK,
    message: `could not read the archive: ${message}`,
  };
}

/** Maps a state file's own decoding failure to a code (see docs/BACKUP.md). */
function stateDecodeCode(error: SnapshotFormatError): BackupErrorCode {
  switch (error.reason) {
    case "unsupported_version":
      return "ERR_BACKUP_VERSION_UNSUPPORTED";
    case "truncated":
      return "ERR_BACKUP_INCOMPLETE";
    default:
      return "ERR_BACKUP_CHECKSUM_MISMATCH";
  }
}

/**
 * Verifies the archive in `stream` (plain or gzip tar) and reports on it; consumes the stream
 * (cancelling it on an early failure). See the module doc for the checks and their order.
 */
export async function verifyArchive(
  stream: ReadableStream<Uint8Array>,
  options: VerifyArchiveOptions = {},
): Promise<VerifyReport> {
  const checks: VerifyCheck[] = [];
  let manifest: BackupManifest | null = null;
  let stats: ArchiveStats | null = null;
  const report = (error: VerifyError | null): VerifyReport => {
    if (error !== null) checks.push({ name: error.check, ok: false, detail: error.message });
    return { ok: error === null, checks, manifest, stats, error };
  };
  const pass = (name: string, detail: string): void => {
    checks.push({ name, ok: true, detail });
  };

  let input;
  try {
    input = await openArchiveInput(stream);
  } catch (error) {
    return report(streamFailure(error));
  }
  const tar = new TarReader(input.tar);
  const seen: SeenMember[] = [];
  const scan = new StateScan(options);
  let stateMember: SeenMember | null = null;
  let manifestBytes: Uint8Array | null = null;
  let sumsBytes: Uint8Array | null = null;

  try {
    for (;;) {
      const entry = await tar.next();
      if (entry === null) break;
      if (seen.length >= MEMBERS_MAX) {
        throw new BackupError(
          "ERR_BACKUP_MANIFEST_CORRUPT",
          entry.name,
          CHECKS.layout,
          `more than ${MEMBERS_MAX} members; an edgeraft backup has ${ARCHIVE_MEMBERS.length}`,
        );
      }
      const isState = entry.name === STATE_FILE && stateMember === null;
      let buffer: Uint8Array | null = null;
      if (entry.name === MANIFEST_FILE && manifestBytes === null) {
        if (entry.size > MANIFEST_BYTES_MAX) {
          throw new BackupError(
            "ERR_BACKUP_MANIFEST_CORRUPT",
            MANIFEST_FILE,
            CHECKS.manifest,
            `manifest.json is ${entry.size} bytes, more than the limit of ${MANIFEST_BYTES_MAX}`,
          );
        }
        buffer = manifestBytes = new Uint8Array(entry.size);
      } else if (entry.name === SUMS_FILE && sumsBytes === null) {
        if (entry.size > SHA256SUMS_BYTES_MAX) {
          throw new BackupError(
            "ERR_BACKUP_CHECKSUM_MISMATCH",
            SUMS_FILE,
            CHECKS.sumsFormat,
            `SHA256SUMS is ${entry.size} bytes, more than the limit of ${SHA256SUMS_BYTES_MAX}`,
          );
        }
        buffer = sumsBytes = new Uint8Array(entry.size);
      }
      const hash = createHash("sha256");
      let offset = 0;
      for (;;) {
        const piece = await entry.read();
        if (piece === null) break;
        hash.update(piece);
        if (isState) scan.push(piece);
        if (buffer !== null) buffer.set(piece, offset);
        offset += piece.length;
      }
      const member = { name: entry.name, size: entry.size, sha256: hash.digest("hex") };
      if (isState) {
        scan.finish();
        stateMember = member;
      }
      seen.push(member);
    }
  } catch (error) {
    await tar.cancel(error);
    return report(streamFailure(error));
  }

  // The pass is over: the framing held.
  if (input.gzip) pass(CHECKS.gzip, `gzip, ${input.bytesRead()} compressed bytes`);
  pass(
    CHECKS.framing,
    `${seen.length} members, headers, padding and end-of-archive blocks verified (${tar.offset} bytes)`,
  );

  const summary = scan.summary;
  if (summary !== null && stateMember !== null) {
    stats = {
      gzip: input.gzip,
      archiveBytes: input.bytesRead(),
      tarBytes: tar.offset,
      stateBytes: stateMember.size,
      appliedIndex: summary.appliedIndex,
      keys: summary.records,
      keyBytes: scan.keyBytes,
      valueBytes: summary.valueBytes,
      largestValue: scan.largestValue,
      largestValueKey: scan.largestValueKey,
      maxRevision: scan.maxRevision,
      blocks: summary.blocks,
      prefixCount: scan.prefixes.size,
      prefixes: scan.top(options.topPrefixes ?? 10),
      otherPrefixKeys: scan.otherPrefixKeys,
    };
  }

  const newer = (): VerifyError | null => {
    const version = manifestBytes === null ? null : peekManifestVersion(manifestBytes);
    if (version === null || version <= BACKUP_FORMAT_VERSION) return null;
    return {
      code: "ERR_BACKUP_VERSION_UNSUPPORTED",
      file: MANIFEST_FILE,
      check: CHECKS.manifest,
      message: `Unsupported backup: archive format version ${version} is newer than this ` +
        `build reads (${BACKUP_FORMAT_VERSION})`,
    };
  };

  // 2. Layout.
  const names = seen.map((m) => m.name);
  const layoutOk = names.length === ARCHIVE_MEMBERS.length &&
    names.every((name, i) => name === ARCHIVE_MEMBERS[i]);
  if (!layoutOk) {
    const newerError = newer();
    if (newerError !== null) return report(newerError);
    const missing = ARCHIVE_MEMBERS.filter((name) => !names.includes(name));
    const listed = names.length === 0 ? "no members" : names.join(", ");
    if (missing.length > 0) {
      const code = missing[0] === MANIFEST_FILE
        ? "ERR_BACKUP_MANIFEST_CORRUPT"
        : "ERR_BACKUP_INCOMPLETE";
      return report({
        code,
        file: missing[0]!,
        check: CHECKS.layout,
        message: `the archive has no ${missing[0]} (members: ${listed})`,
      });
    }
    const extra = names.find((name, i) => name !== ARCHIVE_MEMBERS[i]) ?? null;
    return report({
      code: "ERR_BACKUP_MANIFEST_CORRUPT",
      file: extra,
      check: CHECKS.layout,
      message: `members must be exactly ${ARCHIVE_MEMBERS.join(", ")} in this order, ` +
        `found ${listed}`,
    });
  }
  pass(CHECKS.layout, ARCHIVE_MEMBERS.join(", "));
  const state = seen[0]!;
  const manifestMember = seen[1]!;

  // 3. SHA256SUMS format.
  let sums;
  try {
    sums = parseSha256Sums(sumsBytes!);
    const listed = sums.map((s) => s.name);
    const expected = [STATE_FILE, MANIFEST_FILE];
    if (listed.length !== expected.length || listed.some((n, i) => n !== expected[i])) {
      throw new BackupError(
        "ERR_BACKUP_CHECKSUM_MISMATCH",
        SUMS_FILE,
        CHECKS.sumsFormat,
        `SHA256SUMS must list ${expected.join(", ")} in this order, found ${
          listed.join(", ") || "nothing"
        }`,
      );
    }
  } catch (error) {
    return report(newer() ?? streamFailure(error));
  }
  pass(CHECKS.sumsFormat, `${sums.length} lines`);
  const stateSum = sums[0]!.sha256;
  const manifestSum = sums[1]!.sha256;

  // 4. The manifest's bytes against SHA256SUMS.
  if (manifestMember.sha256 !== manifestSum) {
    return report({
      code: "ERR_BACKUP_CHECKSUM_MISMATCH",
      file: MANIFEST_FILE,
      check: CHECKS.manifestSum,
      message: `manifest.json has SHA-256 ${manifestMember.sha256}, SHA256SUMS lists ` +
        `${manifestSum} (damaged manifest or list)`,
    });
  }
  pass(CHECKS.manifestSum, manifestSum);

  // 5. Schema and versions.
  try {
    manifest = parseManifest(manifestBytes!);
  } catch (error) {
    return report(streamFailure(error));
  }
  pass(
    CHECKS.manifest,
    `format ${manifest.format} version ${manifest.version}, cluster ${manifest.cluster_id}, ` +
      `index ${manifest.index}, term ${manifest.term}`,
  );

  // 6. The state's size and SHA-256.
  const recorded = manifest.files[0]!;
  if (recorded.size !== state.size) {
    return report({
      code: "ERR_BACKUP_CHECKSUM_MISMATCH",
      file: STATE_FILE,
      check: CHECKS.stateSize,
      message: `state.kvsnap is ${state.size} bytes, the manifest records ${recorded.size}`,
    });
  }
  pass(CHECKS.stateSize, `${state.size} bytes`);
  if (recorded.sha256 !== state.sha256) {
    return report({
      code: "ERR_BACKUP_CHECKSUM_MISMATCH",
      file: STATE_FILE,
      check: CHECKS.stateSha,
      message: `state.kvsnap has SHA-256 ${state.sha256}, the manifest records ${recorded.sha256}`,
    });
  }
  pass(CHECKS.stateSha, state.sha256);
  if (stateSum !== state.sha256) {
    // The state agrees with the (checksummed) manifest: the list is what changed.
    return report({
      code: "ERR_BACKUP_CHECKSUM_MISMATCH",
      file: SUMS_FILE,
      check: CHECKS.stateSum,
      message: `SHA256SUMS lists ${stateSum} for state.kvsnap, whose SHA-256 is ${state.sha256}`,
    });
  }
  pass(CHECKS.stateSum, stateSum);

  // 7. The state decodes.
  if (scan.error !== null || summary === null) {
    const error = scan.error!;
    return report({
      code: stateDecodeCode(error),
      file: STATE_FILE,
      check: CHECKS.stateDecode,
      message: `state.kvsnap: ${error.message}`,
    });
  }
  pass(
    CHECKS.stateDecode,
    `${summary.records} keys, ${summary.valueBytes} value bytes, ${summary.blocks} blocks`,
  );

  // 8. The state is what the manifest says.
  const mismatches: string[] = [];
  if (summary.appliedIndex !== manifest.index) {
    mismatches.push(`index ${summary.appliedIndex} ≠ manifest ${manifest.index}`);
  }
  if (summary.records !== manifest.state.keys) {
    mismatches.push(`keys ${summary.records} ≠ manifest ${manifest.state.keys}`);
  }
  if (summary.valueBytes !== manifest.state.value_bytes) {
    mismatches.push(`value bytes ${summary.valueBytes} ≠ manifest ${manifest.state.value_bytes}`);
  }
  if (mismatches.length > 0) {
    return report({
      code: "ERR_BACKUP_MANIFEST_CORRUPT",
      file: MANIFEST_FILE,
      check: CHECKS.stateMatches,
      message: `the state does not match manifest.json: ${mismatches.join("; ")}`,
    });
  }
  pass(CHECKS.stateMatches, `index ${manifest.index}, ${manifest.state.keys} keys`);
  return report(null);
}

/** The report's failure as a throwable {@linkcode BackupError}, or null when it is sound. */
export function reportError(report: VerifyReport): BackupError | null {
  const e = report.error;
  return e === null ? null : new BackupError(e.code, e.file, e.check, e.message);
}
