/**
 * The binary encoding of KV commands, the `data` of a Normal Raft entry (docs/FORMATS.md,
 * "KV command"). The leader encodes a command once at proposal time; every node decodes the
 * same bytes at apply time, so decoding must be strict and total: any byte string either
 * decodes to exactly one command or is rejected with a {@linkcode KvCommandError}.
 *
 * Layout (big-endian): magic 0x4B ('K'), version 1, op (1 put, 2 delete), flags (bit 0: a
 * prev-revision follows), u16 key length (1..1024), key (UTF-8), [u64 prev revision], and for
 * put a u32 value length and the value. Nothing may follow.
 *
 * @module
 */

import { decodeKeyBytes, encodeKeyInto, KEY_BYTES_MAX, keyProblem, utf8Length } from "./kv_key.ts";

/** First byte of every encoded command. */
export const KV_COMMAND_MAGIC = 0x4b;
/** The encoding version this code writes and reads. */
export const KV_COMMAND_VERSION = 1;

const OP_PUT = 1;
const OP_DELETE = 2;
const FLAG_PREV_REVISION = 0x01;
const FIXED_BYTES = 6; // magic, version, op, flags, u16 key length
const U32_MAX = 0xffffffff;

/**
 * A write to the store. `prevRevision` makes it conditional: it applies only if the key's
 * current revision equals it, where 0 means "only if the key is absent". Omitted: always.
 */
export type KvCommand =
  | {
    readonly op: "put";
    readonly key: string;
    readonly value: Uint8Array;
    readonly prevRevision?: number;
  }
  | { readonly op: "delete"; readonly key: string; readonly prevRevision?: number };

/** Why a command could not be encoded or decoded. */
export type KvCommandErrorReason =
  | "invalid_key"
  | "invalid_revision"
  | "value_too_large"
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
 * a prev-revision that is not a non-negative safe integer, or a value above the limit.
 */
export function encodeKvCommand(
  command: KvCommand,
  options: EncodeKvCommandOptions = {},
): Uint8Array {
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
  if (data[1] !== KV_COMMAND_VERSION) malformedThrow(`unsupported version ${data[1]}`);
  const op = data[2]!;
  if (op !== OP_PUT && op !== OP_DELETE) malformedThrow(`unknown op ${op}`);
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

function malformedThrow(detail: string): never {
  throw malformed(detail);
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}
