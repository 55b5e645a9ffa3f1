/**
 * The binary encoding of KV commands, the `data` of a Normal Raft entry (docs/FORMATS.md,
 * "KV command"). The leader encodes a command once at proposal time; every node decodes the
 * same bytes at apply time, so decoding must be strict and total: any byte string either
 * decodes to exactly one command or is rejected with a {@linkcode KvCommandError}.
 *
 * Every command starts with magic 0x4B ('K'), a version, an op and a flags byte. Each op has
 * exactly one encoding, under the version that introduced it:
 *
 * - version 1, ops 1 put and 2 delete: flags (bit 0: a prev-revision follows), u16 key length
 *   (1..1024), key (UTF-8), [u64 prev revision], and for put a u32 value length and the value;
 * - version 2, the online-restore ops (flags 0): 3 `restore_begin`, 4 `restore_chunk`,
 *   5 `restore_end`, 6 `restore_abort`, each starting with a u8 restore-id length and the id
 *   (1..64 of `A-Z a-z 0-9 _ -`); begin adds u64 size, 32-byte SHA-256, u64 source index, u16
 *   source-cluster-id length and the id (UTF-8, 1..1024 bytes); chunk adds u32 sequence number
 *   and u32 length and the bytes.
 *
 * Big-endian throughout; nothing may follow. A reader that knows only version 1 rejects
 * every version-2 command as malformed ("unsupported version 2"), which it applies as a no-op:
 * so every node must run a build that knows version 2 before an online restore is started
 * (docs/FORMATS.md, "Compatibility").
 *
 * @module
 */

import { decodeKeyBytes, encodeKeyInto, KEY_BYTES_MAX, keyProblem, utf8Length } from "./kv_key.ts";

/** First byte of every encoded command. */
export const KV_COMMAND_MAGIC = 0x4b;
/** The encoding version of put and delete (written and read). */
export const KV_COMMAND_VERSION = 1;
/** The encoding version of the online-restore ops (written and read). */
export const KV_COMMAND_RESTORE_VERSION = 2;

const OP_PUT = 1;
const OP_DELETE = 2;
const OP_RESTORE_BEGIN = 3;
const OP_RESTORE_CHUNK = 4;
const OP_RESTORE_END = 5;
const OP_RESTORE_ABORT = 6;
const FLAG_PREV_REVISION = 0x01;
const FIXED_BYTES = 6; // magic, version, op, flags, u16 key length
const HEAD_BYTES = 4; // magic, version, op, flags
const U32_MAX = 0xffffffff;

/** The longest restore id, in bytes (ASCII). */
export const RESTORE_ID_BYTES_MAX = 64;
/** The longest source cluster id of a `restore_begin`, in UTF-8 bytes. */
export const RESTORE_CLUSTER_ID_BYTES_MAX = 1024;
const RESTORE_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * The bytes a `restore_chunk` command adds to its payload at most (header, the longest id,
 * sequence number and length): a chunk of `n` bytes encodes to at most `n` + this.
 */
export const RESTORE_CHUNK_OVERHEAD_BYTES = HEAD_BYTES + 1 + RESTORE_ID_BYTES_MAX + 4 + 4;

/**
 * A write to the store. `prevRevision` makes it conditional: it applies only if the key's
 * current revision equals it, where 0 means "only if the key is absent". Omitted: always.
 */
export type KvWriteCommand =
  | {
    readonly op: "put";
    readonly key: string;
    readonly value: Uint8Array;
    readonly prevRevision?: number;
  }
  | { readonly op: "delete"; readonly key: string; readonly prevRevision?: number };

/**
 * The steps of an online restore (src/kv/kv_restore.ts): `restore_begin` announces a KV
 * snapshot of `size` bytes with SHA-256 `sha256` (lowercase hex), taken from cluster
 * `sourceClusterId` at `sourceIndex`; `restore_chunk`s carry its bytes in order (`seq` 0, 1,
 * ...); `restore_end` replaces the state with it; `restore_abort` drops it.
 */
export type KvRestoreCommand =
  | {
    readonly op: "restore_begin";
    readonly restoreId: string;
    readonly size: number;
    readonly sha256: string;
    readonly sourceClusterId: string;
    readonly sourceIndex: number;
  }
  | {
    readonly op: "restore_chunk";
    readonly restoreId: string;
    readonly seq: number;
    /** Decoded: a view into the entry's data (not a copy); consumers must not keep it. */
    readonly bytes: Uint8Array;
  }
  | { readonly op: "restore_end"; readonly restoreId: string }
  | { readonly op: "restore_abort"; readonly restoreId: string };

/** Any command. */
export type KvCommand = KvWriteCommand | KvRestoreCommand;

/** Why a command could not be encoded or decoded. */
export type KvCommandErrorReason =
  | "invalid_key"
  | "invalid_revision"
  | "value_too_large"
  | "invalid_restore"
  | "malformed";

/** A command that cannot be encoded (bad input) or bytes that are not a command. */
export class KvCommandError extends Error {
  override name = "KvCommandError";
  /** A stable, machine-readable reason. */
  readonly reason: KvCommandErrorReason;

  constructor(reason: KvCommandErrorReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** Options of {@linkcode encodeKvCommand}. */
export interface EncodeKvCommandOptions {
  /**
   * The configured value limit in bytes (DESIGN.md default 1 MiB). Enforced here, at proposal
   * time, and not at apply time: nodes with different limits must still apply the same log
   * identically.
   */
  readonly valueBytesMax?: number;
}

function isRevision(n: unknown): n is number {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
}

/**
 * Encodes a command for a Raft proposal. Throws {@linkcode KvCommandError} for an invalid key,
 * a prev-revision that is not a non-negative safe integer, a value above the limit, or a
 * restore command with an invalid field ("invalid_restore").
 */
export function encodeKvCommand(
  command: KvCommand,
  options: EncodeKvCommandOptions = {},
): Uint8Array {
  if (command.op === "put" || command.op === "delete") return encodeWrite(command, options);
  return encodeRestore(command);
}

function encodeWrite(command: KvWriteCommand, options: EncodeKvCommandOptions): Uint8Array {
  const problem = keyProblem(command.key);
  if (problem !== null) {
    throw new KvCommandError("invalid_key", `Cannot encode KV command: ${problem}`);
  }
  const prev = command.prevRevision;
  if (prev !== undefined && !isRevision(prev)) {
    throw new KvCommandError(
      "invalid_revision",
      `Cannot encode KV command: prev revision must be a non-negative integer, got ${prev}`,
    );
  }
  const valueMax = Math.min(options.valueBytesMax ?? U32_MAX, U32_MAX);
  if (command.op === "put" && command.value.length > valueMax) {
    throw new KvCommandError(
      "value_too_large",
      `Cannot encode KV command: value of ${command.value.length} bytes exceeds ${valueMax}`,
    );
  }
  const keyBytes = utf8Length(command.key);
  const size = FIXED_BYTES + keyBytes + (prev === undefined ? 0 : 8) +
    (command.op === "put" ? 4 + command.value.length : 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out[0] = KV_COMMAND_MAGIC;
  out[1] = KV_COMMAND_VERSION;
  out[2] = command.op === "put" ? OP_PUT : OP_DELETE;
  out[3] = prev === undefined ? 0 : FLAG_PREV_REVISION;
  view.setUint16(4, keyBytes);
  encodeKeyInto(command.key, out, FIXED_BYTES);
  let offset = FIXED_BYTES + keyBytes;
  if (prev !== undefined) {
    view.setUint32(offset, Math.floor(prev / 0x1_0000_0000));
    view.setUint32(offset + 4, prev >>> 0);
    offset += 8;
  }
  if (command.op === "put") {
    view.setUint32(offset, command.value.length);
    out.set(command.value, offset + 4);
  }
  return out;
}

function invalidRestore(detail: string): never {
  throw new KvCommandError("invalid_restore", `Cannot encode KV restore command: ${detail}`);
}

const textEncoder = new TextEncoder();

function encodeRestore(command: KvRestoreCommand): Uint8Array {
  if (typeof command.restoreId !== "string" || !RESTORE_ID_PATTERN.test(command.restoreId)) {
    invalidRestore(`restore id must be 1..64 of A-Z a-z 0-9 _ -, got ${command.restoreId}`);
  }
  const id = command.restoreId;
  let bodyBytes = 1 + id.length;
  let cluster: Uint8Array | null = null;
  switch (command.op) {
    case "restore_begin":
      if (!isRevision(command.size)) invalidRestore(`size must be a safe integer ≥ 0`);
      if (!isRevision(command.sourceIndex)) {
        invalidRestore(`source index must be a safe integer ≥ 0`);
      }
      if (typeof command.sha256 !== "string" || !SHA256_HEX.test(command.sha256)) {
        invalidRestore("sha256 must be 64 lowercase hex digits");
      }
      if (
        typeof command.sourceClusterId !== "string" || command.sourceClusterId === "" ||
        !command.sourceClusterId.isWellFormed()
      ) {
        invalidRestore("source cluster id must be a non-empty, well-formed string");
      }
      cluster = textEncoder.encode(command.sourceClusterId);
      if (cluster.length > RESTORE_CLUSTER_ID_BYTES_MAX) {
        invalidRestore(`source cluster id exceeds ${RESTORE_CLUSTER_ID_BYTES_MAX} bytes`);
      }
      bodyBytes += 8 + 32 + 8 + 2 + cluster.length;
      break;
    case "restore_chunk":
      if (!Number.isSafeInteger(command.seq) || command.seq < 0 || command.seq > U32_MAX) {
        invalidRestore(`chunk sequence number must be 0..${U32_MAX}, got ${command.seq}`);
      }
      if (command.bytes.length === 0 || command.bytes.length > U32_MAX) {
        invalidRestore(`a chunk holds 1..${U32_MAX} bytes, got ${command.bytes.length}`);
      }
      bodyBytes += 8 + command.bytes.length;
      break;
    case "restore_end":
    case "restore_abort":
      break;
    default:
      invalidRestore(`unknown op ${(command as { op: unknown }).op}`);
  }
  const out = new Uint8Array(HEAD_BYTES + bodyBytes);
  const view = new DataView(out.buffer);
  out[0] = KV_COMMAND_MAGIC;
  out[1] = KV_COMMAND_RESTORE_VERSION;
  out[3] = 0;
  out[4] = id.length;
  for (let i = 0; i < id.length; i++) out[5 + i] = id.charCodeAt(i);
  let offset = 5 + id.length;
  switch (command.op) {
    case "restore_begin":
      out[2] = OP_RESTORE_BEGIN;
      setU64(view, offset, command.size);
      offset += 8;
      for (let i = 0; i < 32; i++) {
        out[offset + i] = parseInt(command.sha256.slice(2 * i, 2 * i + 2), 16);
      }
      offset += 32;
      setU64(view, offset, command.sourceIndex);
      offset += 8;
      view.setUint16(offset, cluster!.length);
      out.set(cluster!, offset + 2);
      break;
    case "restore_chunk":
      out[2] = OP_RESTORE_CHUNK;
      view.setUint32(offset, command.seq);
      view.setUint32(offset + 4, command.bytes.length);
      out.set(command.bytes, offset + 8);
      break;
    case "restore_end":
      out[2] = OP_RESTORE_END;
      break;
    case "restore_abort":
      out[2] = OP_RESTORE_ABORT;
      break;
  }
  return out;
}

function setU64(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, Math.floor(value / 0x1_0000_0000));
  view.setUint32(offset + 4, value >>> 0);
}

function getU64(view: DataView, offset: number, what: string): number {
  const high = view.getUint32(offset);
  if (high > 0x1fffff) malformedThrow(`${what} exceeds 2^53 - 1`);
  return high * 0x1_0000_0000 + view.getUint32(offset + 4);
}

function malformed(detail: string): KvCommandError {
  return new KvCommandError("malformed", `Cannot decode KV command: ${detail}`);
}

/**
 * Decodes the data of a Normal entry. The value is copied, so the command does not keep the
 * (possibly much larger) buffer `data` lives in alive. Throws {@linkcode KvCommandError} with
 * reason "malformed" for anything but a well-formed command of this version.
 */
export function decodeKvCommand(data: Uint8Array): KvCommand {
  if (data.length < FIXED_BYTES) malformedThrow(`${data.length} bytes is too short`);
  if (data[0] !== KV_COMMAND_MAGIC) malformedThrow(`bad magic byte 0x${hex(data[0]!)}`);
  const version = data[1]!;
  if (version === KV_COMMAND_RESTORE_VERSION) return decodeRestore(data);
  if (version !== KV_COMMAND_VERSION) malformedThrow(`unsupported version ${version}`);
  const op = data[2]!;
  if (op !== OP_PUT && op !== OP_DELETE) malformedThrow(`unknown op ${op} in version 1`);
  const flags = data[3]!;
  if ((flags & ~FLAG_PREV_REVISION) !== 0) malformedThrow(`unknown flags 0x${hex(flags)}`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const keyLength = view.getUint16(4);
  if (keyLength === 0 || keyLength > KEY_BYTES_MAX) {
    malformedThrow(`key length ${keyLength} outside 1..${KEY_BYTES_MAX}`);
  }
  let offset = FIXED_BYTES;
  if (data.length < offset + keyLength) malformedThrow("truncated key");
  const key = decodeKeyBytes(data.subarray(offset, offset + keyLength));
  if (key === null) malformedThrow("key is not valid UTF-8");
  offset += keyLength;
  let prevRevision: number | undefined;
  if (flags & FLAG_PREV_REVISION) {
    if (data.length < offset + 8) malformedThrow("truncated prev revision");
    const high = view.getUint32(offset);
    if (high > 0x1fffff) malformedThrow("prev revision exceeds 2^53 - 1");
    prevRevision = high * 0x1_0000_0000 + view.getUint32(offset + 4);
    offset += 8;
  }
  if (op === OP_DELETE) {
    if (offset !== data.length) malformedThrow(`${data.length - offset} trailing bytes`);
    return prevRevision === undefined ? { op: "delete", key } : { op: "delete", key, prevRevision };
  }
  if (data.length < offset + 4) malformedThrow("truncated value length");
  const valueLength = view.getUint32(offset);
  offset += 4;
  if (data.length - offset < valueLength) malformedThrow("truncated value");
  if (data.length - offset > valueLength) {
    malformedThrow(`${data.length - offset - valueLength} trailing bytes`);
  }
  const value = data.slice(offset, offset + valueLength);
  return prevRevision === undefined
    ? { op: "put", key, value }
    : { op: "put", key, value, prevRevision };
}

const RESTORE_OPS: Record<number, KvRestoreCommand["op"]> = {
  [OP_RESTORE_BEGIN]: "restore_begin",
  [OP_RESTORE_CHUNK]: "restore_chunk",
  [OP_RESTORE_END]: "restore_end",
  [OP_RESTORE_ABORT]: "restore_abort",
};

/** Decodes a version-2 (restore) command; `data` is at least FIXED_BYTES long. */
function decodeRestore(data: Uint8Array): KvRestoreCommand {
  const opCode = data[2]!;
  const op = RESTORE_OPS[opCode];
  if (op === undefined) malformedThrow(`unknown op ${opCode} in version 2`);
  if (data[3] !== 0) malformedThrow(`unknown flags 0x${hex(data[3]!)}`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const idLength = data[4]!;
  if (idLength === 0 || idLength > RESTORE_ID_BYTES_MAX) {
    malformedThrow(`restore id length ${idLength} outside 1..${RESTORE_ID_BYTES_MAX}`);
  }
  if (data.length < 5 + idLength) malformedThrow("truncated restore id");
  let restoreId = "";
  for (let i = 0; i < idLength; i++) restoreId += String.fromCharCode(data[5 + i]!);
  if (!RESTORE_ID_PATTERN.test(restoreId)) malformedThrow("restore id has invalid characters");
  let offset = 5 + idLength;
  const trailing = (end: number): void => {
    if (data.length !== end) malformedThrow(`${data.length - end} trailing bytes`);
  };
  switch (op) {
    case "restore_begin": {
      if (data.length < offset + 8 + 32 + 8 + 2) malformedThrow("truncated restore_begin");
      const size = getU64(view, offset, "size");
      offset += 8;
      let sha256 = "";
      for (let i = 0; i < 32; i++) sha256 += hex(data[offset + i]!);
      offset += 32;
      const sourceIndex = getU64(view, offset, "source index");
      offset += 8;
      const clusterLength = view.getUint16(offset);
      offset += 2;
      if (clusterLength === 0 || clusterLength > RESTORE_CLUSTER_ID_BYTES_MAX) {
        malformedThrow(
          `source cluster id length ${clusterLength} outside 1..${RESTORE_CLUSTER_ID_BYTES_MAX}`,
        );
      }
      if (data.length < offset + clusterLength) malformedThrow("truncated source cluster id");
      const sourceClusterId = decodeKeyBytes(data.subarray(offset, offset + clusterLength));
      if (sourceClusterId === null) malformedThrow("source cluster id is not valid UTF-8");
      trailing(offset + clusterLength);
      return { op, restoreId, size, sha256, sourceClusterId, sourceIndex };
    }
    case "restore_chunk": {
      if (data.length < offset + 8) malformedThrow("truncated restore_chunk");
      const seq = view.getUint32(offset);
      const length = view.getUint32(offset + 4);
      offset += 8;
      if (length === 0) malformedThrow("empty restore chunk");
      if (data.length - offset < length) malformedThrow("truncated chunk bytes");
      trailing(offset + length);
      return { op, restoreId, seq, bytes: data.subarray(offset, offset + length) };
    }
    default:
      trailing(offset);
      return { op, restoreId };
  }
}

function malformedThrow(detail: string): never {
  throw malformed(detail);
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}
