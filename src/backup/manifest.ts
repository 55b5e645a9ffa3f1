/**
 * `manifest.json`, the description of a backup archive (docs/BACKUP.md): which cluster, node,
 * Raft index, term and membership the state belongs to, when it was taken, and the size and
 * SHA-256 of the state file.
 *
 * The encoding is stable: keys in a fixed order, two-space indentation, a final newline, so
 * two archives of the same state differ only where their facts differ. The parser is strict:
 * a version-1 manifest has exactly the fields below, every one checked; a failure names the
 * field. A manifest from a newer edgeraft (format version above 1, an unknown state format
 * version, or a kind this build cannot restore) is `ERR_BACKUP_VERSION_UNSUPPORTED`, so the
 * operator learns to upgrade rather than that the archive is broken.
 *
 * @module
 */

import { BackupError } from "../errors.ts";
import { SNAPSHOT_VERSION } from "../kv/snapshot_format.ts";
import type { Membership } from "../raft/types.ts";

/** The `format` of every edgeraft backup manifest. */
export const BACKUP_FORMAT = "edgeraft-backup";
/** The archive format version this build writes and reads. */
export const BACKUP_FORMAT_VERSION = 1;
/** The `state.format` of a KV snapshot state file (docs/FORMATS.md). */
export const STATE_FORMAT = "edgeraft-kv-snapshot";
/** Member names, in archive order. */
export const STATE_FILE = "state.kvsnap";
export const MANIFEST_FILE = "manifest.json";
export const SUMS_FILE = "SHA256SUMS";
/** The members of a version 1 archive, in order. */
export const ARCHIVE_MEMBERS: readonly string[] = [STATE_FILE, MANIFEST_FILE, SUMS_FILE];
/** Largest manifest a reader accepts (it is buffered to be parsed). */
export const MANIFEST_BYTES_MAX = 1024 * 1024;
/** The check name manifest failures carry. */
export const MANIFEST_CHECK = "manifest schema";

/** One member of the cluster at the backup's index. */
export interface ManifestMember {
  readonly id: string;
  readonly address: string;
  readonly voter: boolean;
}

/** What the state file holds, as its own header says. */
export interface ManifestState {
  readonly format: typeof STATE_FORMAT;
  readonly version: number;
  readonly keys: number;
  readonly value_bytes: number;
}

/** A data file of the archive with its size and SHA-256 (lowercase hex). */
export interface ManifestFile {
  readonly name: string;
  readonly size: number;
  readonly sha256: string;
}

/** A version 1 manifest (field names as in the JSON). */
export interface BackupManifest {
  readonly format: typeof BACKUP_FORMAT;
  readonly version: number;
  readonly cluster_id: string;
  readonly node_id: string;
  readonly index: number;
  readonly term: number;
  readonly membership: { readonly members: readonly ManifestMember[] };
  readonly created_at: string;
  readonly kind: "full";
  readonly edgeraft_version: string;
  readonly state: ManifestState;
  readonly files: readonly ManifestFile[];
}

/** The facts {@linkcode buildManifest} needs. */
export interface ManifestFields {
  readonly clusterId: string;
  readonly nodeId: string;
  readonly index: number;
  readonly term: number;
  readonly membership: Membership;
  /** RFC 3339. */
  readonly createdAt: string;
  readonly edgeraftVersion: string;
  /** Key count and total value bytes of the state. */
  readonly keys: number;
  readonly valueBytes: number;
  /** Size and SHA-256 of the state file. */
  readonly stateSize: number;
  readonly stateSha256: string;
}

/** A manifest for a full backup whose state file is {@linkcode STATE_FILE}. */
export function buildManifest(fields: ManifestFields): BackupManifest {
  const manifest: BackupManifest = {
    format: BACKUP_FORMAT,
    version: BACKUP_FORMAT_VERSION,
    cluster_id: fields.clusterId,
    node_id: fields.nodeId,
    index: fields.index,
    term: fields.term,
    membership: {
      members: fields.membership.members.map((m) => ({
        id: m.id,
        address: m.address,
        voter: m.voter,
      })),
    },
    created_at: fields.createdAt,
    kind: "full",
    edgeraft_version: fields.edgeraftVersion,
    state: {
      format: STATE_FORMAT,
      version: SNAPSHOT_VERSION,
      keys: fields.keys,
      value_bytes: fields.valueBytes,
    },
    files: [{ name: STATE_FILE, size: fields.stateSize, sha256: fields.stateSha256 }],
  };
  // Writers check what they write (STYLE.md item 8): the parser is the schema.
  validateManifest(manifest);
  return manifest;
}

/** The manifest as pretty-printed JSON with keys in the fixed order, and a final newline. */
export function encodeManifest(manifest: BackupManifest): Uint8Array {
  // Rebuilt field by field so the order does not depend on how the object was made.
  const ordered = {
    format: manifest.format,
    version: manifest.version,
    cluster_id: manifest.cluster_id,
    node_id: manifest.node_id,
    index: manifest.index,
    term: manifest.term,
    membership: {
      members: manifest.membership.members.map((m) => ({
        id: m.id,
        address: m.address,
        voter: m.voter,
      })),
    },
    created_at: manifest.created_at,
    kind: manifest.kind,
    edgeraft_version: manifest.edgeraft_version,
    state: {
      format: manifest.state.format,
      version: manifest.state.version,
      keys: manifest.state.keys,
      value_bytes: manifest.state.value_bytes,
    },
    files: manifest.files.map((f) => ({ name: f.name, size: f.size, sha256: f.sha256 })),
  };
  return new TextEncoder().encode(JSON.stringify(ordered, null, 2) + "\n");
}

function corrupt(message: string): never {
  throw new BackupError(
    "ERR_BACKUP_MANIFEST_CORRUPT",
    MANIFEST_FILE,
    MANIFEST_CHECK,
    `Invalid manifest.json: ${message}`,
  );
}

function unsupported(message: string): never {
  throw new BackupError(
    "ERR_BACKUP_VERSION_UNSUPPORTED",
    MANIFEST_FILE,
    MANIFEST_CHECK,
    `Unsupported backup: ${message}`,
  );
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function exactKeys(object: Json, keys: readonly string[], where: string): void {
  for (const key of Object.keys(object)) {
    if (!keys.includes(key)) corrupt(`unknown field "${where}${key}"`);
  }
  for (const key of keys) {
    if (!Object.hasOwn(object, key)) corrupt(`missing field "${where}${key}"`);
  }
}

function text(value: unknown, field: string, max = 1024, allowEmpty = false): string {
  if (typeof value !== "string") corrupt(`"${field}" must be a string`);
  if (!allowEmpty && value.length === 0) corrupt(`"${field}" must not be empty`);
  if (value.length > max) corrupt(`"${field}" is longer than ${max} characters`);
  if (!value.isWellFormed()) corrupt(`"${field}" is not well-formed Unicode`);
  return value;
}

function count(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    corrupt(`"${field}" must be a non-negative integer`);
  }
  return value;
}

/** RFC 3339 date-time (with "T" or "t", "Z" or an offset, optional fraction). */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Milliseconds since the epoch of an RFC 3339 time, or NaN when it is not one. */
export function parseRfc3339(value: string): number {
  return RFC3339.test(value) ? Date.parse(value.toUpperCase()) : NaN;
}

/**
 * Checks a decoded manifest object against the version 1 schema and returns it typed. Throws
 * {@linkcode BackupError}: `ERR_BACKUP_VERSION_UNSUPPORTED` for a newer format, state version
 * or kind; `ERR_BACKUP_MANIFEST_CORRUPT` naming the field for anything else.
 */
export function validateManifest(value: unknown): BackupManifest {
  if (!isObject(value)) corrupt("not a JSON object");
  // Format and version first: a newer manifest may differ in every other field.
  if (value.format !== BACKUP_FORMAT) {
    corrupt(`"format" must be "${BACKUP_FORMAT}", not ${JSON.stringify(value.format)}`);
  }
  const version = value.version;
  if (typeof version !== "number" || !Number.isSafeInteger(version) || version < 1) {
    corrupt(`"version" must be a positive integer`);
  }
  if (version > BACKUP_FORMAT_VERSION) {
    unsupported(
      `archive format version ${version} is newer than this build reads (${BACKUP_FORMAT_VERSION})`,
    );
  }
  exactKeys(value, [
    "format",
    "version",
    "cluster_id",
    "node_id",
    "index",
    "term",
    "membership",
    "created_at",
    "kind",
    "edgeraft_version",
    "state",
    "files",
  ], "");
  if (value.kind !== "full") {
    if (value.kind === "incremental") unsupported(`"kind" "incremental" is not supported`);
    corrupt(`"kind" must be "full", not ${JSON.stringify(value.kind)}`);
  }
  const state = value.state;
  if (!isObject(state)) corrupt(`"state" must be an object`);
  if (state.format !== STATE_FORMAT) {
    corrupt(`"state.format" must be "${STATE_FORMAT}", not ${JSON.stringify(state.format)}`);
  }
  if (typeof state.version !== "number" || !Number.isSafeInteger(state.version)) {
    corrupt(`"state.version" must be an integer`);
  }
  if (state.version !== SNAPSHOT_VERSION) {
    unsupported(`state format version ${state.version} is not supported (this build reads 1)`);
  }
  exactKeys(state, ["format", "version", "keys", "value_bytes"], "state.");
  count(state.keys, "state.keys");
  count(state.value_bytes, "state.value_bytes");

  text(value.cluster_id, "cluster_id", 256);
  text(value.node_id, "node_id", 256);
  const index = count(value.index, "index");
  const term = count(value.term, "term");
  if (term > 0 && index === 0) corrupt(`"term" ${term} at index 0`);
  if (index > 0 && term === 0) corrupt(`"term" must be positive at index ${index}`);
  if (state.keys as number > 0 && index === 0) corrupt(`"state.keys" non-zero at index 0`);
  text(value.edgeraft_version, "edgeraft_version", 64);
  const createdAt = text(value.created_at, "created_at", 64);
  if (Number.isNaN(parseRfc3339(createdAt))) corrupt(`"created_at" is not an RFC 3339 time`);

  const membership = value.membership;
  if (!isObject(membership)) corrupt(`"membership" must be an object`);
  exactKeys(membership, ["members"], "membership.");
  const members = membership.members;
  if (!Array.isArray(members) || members.length === 0) {
    corrupt(`"membership.members" must be a non-empty array`);
  }
  if (members.length > 1000) corrupt(`"membership.members" has more than 1000 entries`);
  const ids = new Set<string>();
  members.forEach((member: unknown, i: number) => {
    const where = `membership.members[${i}]`;
    if (!isObject(member)) corrupt(`"${where}" must be an object`);
    exactKeys(member, ["id", "address", "voter"], `${where}.`);
    const id = text(member.id, `${where}.id`, 256);
    text(member.address, `${where}.address`, 1024, true);
    if (typeof member.voter !== "boolean") corrupt(`"${where}.voter" must be a boolean`);
    if (ids.has(id)) corrupt(`"${where}.id" ${JSON.stringify(id)} appears twice`);
    ids.add(id);
  });
  if (!members.some((m: Json) => m.voter === true)) {
    corrupt(`"membership.members" has no voter`);
  }

  const files = value.files;
  if (!Array.isArray(files) || files.length !== 1) {
    corrupt(`"files" must list exactly one file, "${STATE_FILE}"`);
  }
  const file: unknown = files[0];
  if (!isObject(file)) corrupt(`"files[0]" must be an object`);
  exactKeys(file, ["name", "size", "sha256"], "files[0].");
  if (file.name !== STATE_FILE) {
    corrupt(`"files[0].name" must be "${STATE_FILE}", not ${JSON.stringify(file.name)}`);
  }
  count(file.size, "files[0].size");
  if (typeof file.sha256 !== "string" || !SHA256_HEX.test(file.sha256)) {
    corrupt(`"files[0].sha256" must be 64 lowercase hex digits`);
  }
  return value as unknown as BackupManifest;
}

/**
 * Decodes and validates `manifest.json` bytes (strict UTF-8 JSON, at most
 * {@linkcode MANIFEST_BYTES_MAX}). Throws {@linkcode BackupError} as
 * {@linkcode validateManifest} does, and `ERR_BACKUP_MANIFEST_CORRUPT` for bytes that are not
 * JSON.
 */
export function parseManifest(bytes: Uint8Array): BackupManifest {
  if (bytes.length > MANIFEST_BYTES_MAX) {
    corrupt(`${bytes.length} bytes, more than the limit of ${MANIFEST_BYTES_MAX}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    corrupt(`not valid JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  return validateManifest(value);
}

/**
 * The format version a manifest claims, if the bytes are JSON with the edgeraft backup
 * format; null otherwise. Lets a verifier report "made by a newer edgeraft" even when the
 * archive's layout is one this build does not know.
 */
export function peekManifestVersion(bytes: Uint8Array): number | null {
  try {
    const value: unknown = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    if (isObject(value) && value.format === BACKUP_FORMAT && typeof value.version === "number") {
      return value.version;
    }
  } catch {
    // not JSON: no claim
  }
  return null;
}
