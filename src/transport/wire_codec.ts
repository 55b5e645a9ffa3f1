/**
 * The binary encoding of Raft peer messages (docs/FORMATS.md, "Peer wire frame"): one frame
 * per {@linkcode Message}, and a batch (several frames under one header that names the
 * cluster) per HTTP request body.
 *
 * ```
 * frame   u8[2] "RM"  u8 version=1  u8 type  u32 body_len  body  u32 crc32c(header + body)
 * batch   u8[2] "RB"  u8 version=1  u8 flags=0  u32 count  u16 cluster_len  cluster_id
 *         u32 crc32c(previous batch header bytes)  frame * count
 * ```
 *
 * Integers are big-endian; u64 fields must be ≤ 2^53 - 1; strings are u16 length + UTF-8;
 * booleans one byte, 0 or 1. Body layouts per type are in docs/FORMATS.md.
 *
 * Invariants: decoding is total: any byte string yields messages or a {@linkcode
 * WireDecodeError} with a reason code, never another exception (a fuzz test holds this); a
 * decoded message satisfies what the core relies on (entries contiguous after `prevIndex`,
 * entry terms non-decreasing and within [prevTerm, term], node ids non-empty without "=" or
 * ","), so a buggy or hostile peer cannot put an impossible message into the core. The encoder
 * checks the same rules with `assert`: sending a message that breaks them is our bug.
 * Encoding computes the exact size first and writes into a single buffer.
 *
 * @module
 */

import type { Entry, EntryType, Member, Message, NodeId } from "../raft/types.ts";
import { crc32c } from "../util/crc32c.ts";
import { assert } from "../util/assert.ts";

/** The wire format version this code writes and reads. */
export const WIRE_VERSION = 1;
/** Bytes of a frame header (magic, version, type, body length). */
export const FRAME_HEADER_BYTES = 8;
/** Bytes of framing around a body: header and trailing checksum. */
export const FRAME_OVERHEAD_BYTES = FRAME_HEADER_BYTES + 4;

const FRAME_MAGIC_0 = 0x52; // 'R'
const FRAME_MAGIC_1 = 0x4d; // 'M'
const BATCH_MAGIC_0 = 0x52; // 'R'
const BATCH_MAGIC_1 = 0x42; // 'B'
const BATCH_FIXED_BYTES = 10; // magic, version, flags, u32 count, u16 cluster length
const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;
const U64_HIGH_MAX = 0x1fffff;
const TWO_32 = 0x1_0000_0000;
const ENTRY_FIXED_BYTES = 21; // u64 index, u64 term, u8 type, u32 data length

/** Wire type codes. Stable: they are part of the format. */
const TYPE_CODES = {
  vote: 1,
  vote_response: 2,
  append: 3,
  append_response: 4,
  heartbeat: 5,
  heartbeat_response: 6,
  snapshot: 7,
  timeout_now: 8,
  read_index: 9,
  read_index_response: 10,
} as const satisfies Record<Message["type"], number>;
const TYPE_MAX = 10;

/** Why bytes were rejected. Stable, for metrics and logs. */
export type WireDecodeReason =
  | "bad_magic"
  | "unsupported_version"
  | "unknown_type"
  | "bad_length"
  | "truncated"
  | "too_large"
  | "checksum_mismatch"
  | "trailing_bytes"
  | "invalid_field"
  | "cluster_mismatch";

/** Bytes from a peer that are not a valid frame or batch of this version. */
export class WireDecodeError extends Error {
  override name = "WireDecodeError";
  /** A stable, machine-readable reason. */
  readonly reason: WireDecodeReason;

  constructor(reason: WireDecodeReason, detail: string) {
    super(`Cannot decode peer message: ${detail}`);
    this.reason = reason;
  }
}

/** Limits for decoding (a limit on everything, STYLE.md item 13). */
export interface WireDecodeOptions {
  /** Largest frame body accepted, in bytes (default 64 MiB). */
  readonly frameBytesMax?: number;
  /** Most messages accepted in one batch (default 65536). */
  readonly batchMessagesMax?: number;
}

/** Options of {@linkcode decodeBatch}. */
export interface DecodeBatchOptions extends WireDecodeOptions {
  /** When set, a batch from any other cluster is rejected with reason "cluster_mismatch". */
  readonly clusterId?: string;
}

/** A decoded batch. */
export interface DecodedBatch {
  readonly clusterId: string;
  readonly messages: Message[];
}

const FRAME_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;
const BATCH_MESSAGES_MAX_DEFAULT = 65536;

const textEncoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

// ---------------------------------------------------------------------------------------------
// Encoding

/** UTF-8 length of a string (lone surrogates would be replaced by 3-byte U+FFFD). */
function stringBytes(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

function isU64(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

function isNodeId(id: string): boolean {
  return id.length > 0 && !id.includes("=") && !id.includes(",");
}

/** A cursor over one output buffer. */
class Writer {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  offset = 0;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }

  u8(n: number): void {
    this.bytes[this.offset++] = n;
  }

  u16(n: number): void {
    this.view.setUint16(this.offset, n);
    this.offset += 2;
  }

  u32(n: number): void {
    this.view.setUint32(this.offset, n);
    this.offset += 4;
  }

  u64(n: number): void {
    assert(isU64(n), `wire codec: ${n} is not a u64 below 2^53`);
    this.view.setUint32(this.offset, Math.floor(n / TWO_32));
    this.view.setUint32(this.offset + 4, n >>> 0);
    this.offset += 8;
  }

  bool(b: boolean): void {
    this.bytes[this.offset++] = b ? 1 : 0;
  }

  /** Writes u16 length + UTF-8; `length` is the precomputed UTF-8 length. */
  str(text: string, length: number): void {
    assert(length <= U16_MAX, "wire codec: string longer than 65535 bytes");
    assert(text.isWellFormed(), "wire codec: string is not well-formed Unicode");
    this.u16(length);
    const start = this.offset;
    let ascii = true;
    for (let i = 0; i < text.length; i++) {
      const unit = text.charCodeAt(i);
      if (unit >= 0x80) {
        ascii = false;
        break;
      }
      this.bytes[start + i] = unit;
    }
    if (!ascii) textEncoder.encodeInto(text, this.bytes.subarray(start, start + length));
    this.offset = start + length;
  }
}

function checkEntries(m: Extract<Message, { type: "append" }>): void {
  let prevTerm = m.prevTerm;
  for (let i = 0; i < m.entries.length; i++) {
    const e = m.entries[i]!;
    assert(e.index === m.prevIndex + 1 + i, "wire codec: append entries are not contiguous");
    assert(e.term >= prevTerm && e.term <= m.term, "wire codec: append entry term out of order");
    assert(e.type === 0 || e.type === 1 || e.type === 2, `wire codec: entry type ${e.type}`);
    assert(e.data.length <= U32_MAX, "wire codec: entry data too large");
    prevTerm = e.term;
  }
}

/** The body size of `m` in bytes. */
function bodyBytes(m: Message): number {
  let size = 2 + stringBytes(m.from) + 2 + stringBytes(m.to) + 8;
  switch (m.type) {
    case "vote":
      return size + 1 + 8 + 8 + 1;
    case "vote_response":
      return size + 2;
    case "append":
      size += 8 + 8 + 8 + 4;
      for (const e of m.entries) size += ENTRY_FIXED_BYTES + e.data.length;
      return size;
    case "append_response":
      return size + 1 + 8 + 8 + 8;
    case "heartbeat":
      return size + 16;
    case "heartbeat_response":
      return size + 8;
    case "snapshot":
      size += 8 + 8 + 2;
      for (const member of m.snapshot.membership.members) {
        size += 2 + stringBytes(member.id) + 2 + stringBytes(member.address) + 1;
      }
      return size;
    case "timeout_now":
      return size;
    case "read_index":
      return size + 2 + stringBytes(m.requestId);
    case "read_index_response":
      return size + 2 + stringBytes(m.requestId) + 8;
  }
}

function writeFrame(w: Writer, m: Message, body: number): void {
  assert(isNodeId(m.from) && isNodeId(m.to), "wire codec: invalid node id");
  const start = w.offset;
  w.u8(FRAME_MAGIC_0);
  w.u8(FRAME_MAGIC_1);
  w.u8(WIRE_VERSION);
  w.u8(TYPE_CODES[m.type]);
  w.u32(body);
  w.str(m.from, stringBytes(m.from));
  w.str(m.to, stringBytes(m.to));
  w.u64(m.term);
  switch (m.type) {
    case "vote":
      w.bool(m.preVote);
      w.u64(m.lastLogIndex);
      w.u64(m.lastLogTerm);
      w.bool(m.transfer);
      break;
    case "vote_response":
      w.bool(m.preVote);
      w.bool(m.granted);
      break;
    case "append": {
      checkEntries(m);
      w.u64(m.prevIndex);
      w.u64(m.prevTerm);
      w.u64(m.commit);
      w.u32(m.entries.length);
      for (const e of m.entries) {
        w.u64(e.index);
        w.u64(e.term);
        w.u8(e.type);
        w.u32(e.data.length);
        w.bytes.set(e.data, w.offset);
        w.offset += e.data.length;
      }
      break;
    }
    case "append_response":
      w.bool(m.success);
      w.u64(m.index);
      w.u64(m.hintIndex);
      w.u64(m.hintTerm);
      break;
    case "heartbeat":
      w.u64(m.commit);
      w.u64(m.readSeq);
      break;
    case "heartbeat_response":
      w.u64(m.readSeq);
      break;
    case "snapshot": {
      const members = m.snapshot.membership.members;
      assert(members.length <= U16_MAX, "wire codec: too many members");
      w.u64(m.snapshot.index);
      w.u64(m.snapshot.term);
      w.u16(members.length);
      const seen = new Set<string>();
      for (const member of members) {
        assert(isNodeId(member.id) && !seen.has(member.id), "wire codec: invalid member id");
        seen.add(member.id);
        w.str(member.id, stringBytes(member.id));
        w.str(member.address, stringBytes(member.address));
        w.bool(member.voter);
      }
      break;
    }
    case "timeout_now":
      break;
    case "read_index":
      w.str(m.requestId, stringBytes(m.requestId));
      break;
    case "read_index_response":
      w.str(m.requestId, stringBytes(m.requestId));
      w.u64(m.index);
      break;
  }
  assert(w.offset === start + FRAME_HEADER_BYTES + body, "wire codec: body size mismatch");
  w.u32(crc32c(w.bytes, start, w.offset));
}

/** The encoded size of `message` as a frame, for packing batches under a byte limit. */
export function frameBytes(message: Message): number {
  return FRAME_OVERHEAD_BYTES + bodyBytes(message);
}

/** Encodes one message as a frame. */
export function encodeMessage(message: Message): Uint8Array {
  const body = bodyBytes(message);
  assert(body <= U32_MAX, "wire codec: message too large");
  const w = new Writer(FRAME_OVERHEAD_BYTES + body);
  writeFrame(w, message, body);
  return w.bytes;
}

/** Options of {@linkcode encodeBatch}. */
export interface EncodeBatchOptions {
  /** The sender's cluster id; receivers reject batches from another cluster. */
  readonly clusterId: string;
}

/** Encodes `messages` as one batch: the body of one peer HTTP request. */
export function encodeBatch(
  messages: readonly Message[],
  options: EncodeBatchOptions,
): Uint8Array {
  const clusterBytes = stringBytes(options.clusterId);
  assert(messages.length <= U32_MAX, "wire codec: too many messages");
  const bodies = new Array<number>(messages.length);
  let size = BATCH_FIXED_BYTES + clusterBytes + 4;
  for (let i = 0; i < messages.length; i++) {
    const body = bodyBytes(messages[i]!);
    assert(body <= U32_MAX, "wire codec: message too large");
    bodies[i] = body;
    size += FRAME_OVERHEAD_BYTES + body;
  }
  const w = new Writer(size);
  w.u8(BATCH_MAGIC_0);
  w.u8(BATCH_MAGIC_1);
  w.u8(WIRE_VERSION);
  w.u8(0);
  w.u32(messages.length);
  w.str(options.clusterId, clusterBytes);
  w.u32(crc32c(w.bytes, 0, w.offset));
  for (let i = 0; i < messages.length; i++) writeFrame(w, messages[i]!, bodies[i]!);
  assert(w.offset === size, "wire codec: batch size mismatch");
  return w.bytes;
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** A bounds-checked cursor over one frame body; overruns are "bad_length" errors. */
class BodyReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #offset: number;
  readonly #end: number;
  readonly #what: string;

  constructor(bytes: Uint8Array, view: DataView, start: number, end: number, what: string) {
    this.#bytes = bytes;
    this.#view = view;
    this.#offset = start;
    this.#end = end;
    this.#what = what;
  }

  #need(n: number): number {
    const at = this.#offset;
    if (this.#end - at < n) {
      throw new WireDecodeError("bad_length", `${this.#what}: body too short for its fields`);
    }
    this.#offset = at + n;
    return at;
  }

  invalid(detail: string): WireDecodeError {
    return new WireDecodeError("invalid_field", `${this.#what}: ${detail}`);
  }

  u8(): number {
    return this.#bytes[this.#need(1)]!;
  }

  u16(): number {
    return this.#view.getUint16(this.#need(2));
  }

  u32(): number {
    return this.#view.getUint32(this.#need(4));
  }

  u64(field: string): number {
    const at = this.#need(8);
    const high = this.#view.getUint32(at);
    if (high > U64_HIGH_MAX) throw this.invalid(`${field} exceeds 2^53 - 1`);
    return high * TWO_32 + this.#view.getUint32(at + 4);
  }

  bool(field: string): boolean {
    const b = this.u8();
    if (b > 1) throw this.invalid(`${field} is ${b}, not a boolean`);
    return b === 1;
  }

  str(field: string): string {
    const length = this.u16();
    const at = this.#need(length);
    let ascii = true;
    for (let i = at; i < at + length; i++) {
      if (this.#bytes[i]! >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) {
      return String.fromCharCode.apply(
        null,
        this.#bytes.subarray(at, at + length) as unknown as number[],
      );
    }
    try {
      return strictDecoder.decode(this.#bytes.subarray(at, at + length));
    } catch {
      throw this.invalid(`${field} is not valid UTF-8`);
    }
  }

  nodeId(field: string): NodeId {
    const id = this.str(field);
    if (!isNodeId(id)) throw this.invalid(`${field} ${JSON.stringify(id)} is not a node id`);
    return id;
  }

  /** A copy of the next `n` bytes: decoded entries must not pin the whole request body. */
  copy(n: number): Uint8Array {
    const at = this.#need(n);
    return this.#bytes.slice(at, at + n);
  }

  remaining(): number {
    return this.#end - this.#offset;
  }
}

/**
 * Decodes the frame at `offset` in `bytes`; returns the message and the offset after it.
 * `what` names the frame in error messages.
 */
function decodeFrameAt(
  bytes: Uint8Array,
  view: DataView,
  offset: number,
  frameBytesMax: number,
  what: string,
): [Message, number] {
  if (bytes.length - offset < FRAME_HEADER_BYTES) {
    throw new WireDecodeError("truncated", `${what}: ${bytes.length - offset} bytes, no header`);
  }
  if (bytes[offset] !== FRAME_MAGIC_0 || bytes[offset + 1] !== FRAME_MAGIC_1) {
    throw new WireDecodeError("bad_magic", `${what}: bad frame magic`);
  }
  const version = bytes[offset + 2]!;
  if (version !== WIRE_VERSION) {
    throw new WireDecodeError(
      "unsupported_version",
      `${what}: wire version ${version} (this build speaks ${WIRE_VERSION})`,
    );
  }
  const code = bytes[offset + 3]!;
  const body = view.getUint32(offset + 4);
  if (body > frameBytesMax) {
    throw new WireDecodeError(
      "too_large",
      `${what}: body of ${body} bytes exceeds ${frameBytesMax}`,
    );
  }
  const end = offset + FRAME_HEADER_BYTES + body;
  if (bytes.length - 4 < end) {
    throw new WireDecodeError("truncated", `${what}: body of ${body} bytes is cut short`);
  }
  if (view.getUint32(end) !== crc32c(bytes, offset, end)) {
    throw new WireDecodeError("checksum_mismatch", `${what}: checksum mismatch`);
  }
  if (code < 1 || code > TYPE_MAX) {
    throw new WireDecodeError("unknown_type", `${what}: unknown message type ${code}`);
  }
  const r = new BodyReader(bytes, view, offset + FRAME_HEADER_BYTES, end, what);
  const message = decodeBody(r, code);
  if (r.remaining() !== 0) {
    throw new WireDecodeError("bad_length", `${what}: ${r.remaining()} bytes after the fields`);
  }
  return [message, end + 4];
}

function decodeBody(r: BodyReader, code: number): Message {
  const from = r.nodeId("from");
  const to = r.nodeId("to");
  const term = r.u64("term");
  switch (code) {
    case TYPE_CODES.vote: {
      const preVote = r.bool("preVote");
      const lastLogIndex = r.u64("lastLogIndex");
      const lastLogTerm = r.u64("lastLogTerm");
      const transfer = r.bool("transfer");
      return { type: "vote", from, to, term, preVote, lastLogIndex, lastLogTerm, transfer };
    }
    case TYPE_CODES.vote_response: {
      const preVote = r.bool("preVote");
      const granted = r.bool("granted");
      return { type: "vote_response", from, to, term, preVote, granted };
    }
    case TYPE_CODES.append: {
      const prevIndex = r.u64("prevIndex");
      const prevTerm = r.u64("prevTerm");
      const commit = r.u64("commit");
      const count = r.u32();
      // Each entry takes at least ENTRY_FIXED_BYTES: reject an absurd count before allocating.
      if (count * ENTRY_FIXED_BYTES > r.remaining()) {
        throw new WireDecodeError("bad_length", "append: entry count exceeds the body");
      }
      const entries: Entry[] = new Array(count);
      let lastTerm = prevTerm;
      for (let i = 0; i < count; i++) {
        const index = r.u64("entry index");
        const entryTerm = r.u64("entry term");
        const type = r.u8();
        const length = r.u32();
        if (index !== prevIndex + 1 + i) {
          throw r.invalid(`entry ${i} has index ${index}, expected ${prevIndex + 1 + i}`);
        }
        if (entryTerm < lastTerm || entryTerm > term) {
          throw r.invalid(`entry ${index} has term ${entryTerm} out of order`);
        }
        if (type > 2) throw r.invalid(`entry ${index} has unknown type ${type}`);
        entries[i] = { index, term: entryTerm, type: type as EntryType, data: r.copy(length) };
        lastTerm = entryTerm;
      }
      return { type: "append", from, to, term, prevIndex, prevTerm, entries, commit };
    }
    case TYPE_CODES.append_response: {
      const success = r.bool("success");
      const index = r.u64("index");
      const hintIndex = r.u64("hintIndex");
      const hintTerm = r.u64("hintTerm");
      return { type: "append_response", from, to, term, success, index, hintIndex, hintTerm };
    }
    case TYPE_CODES.heartbeat: {
      const commit = r.u64("commit");
      const readSeq = r.u64("readSeq");
      return { type: "heartbeat", from, to, term, commit, readSeq };
    }
    case TYPE_CODES.heartbeat_response:
      return { type: "heartbeat_response", from, to, term, readSeq: r.u64("readSeq") };
    case TYPE_CODES.snapshot: {
      const index = r.u64("snapshot index");
      const snapshotTerm = r.u64("snapshot term");
      const count = r.u16();
      const members: Member[] = [];
      const seen = new Set<string>();
      for (let i = 0; i < count; i++) {
        const id = r.nodeId("member id");
        if (seen.has(id)) throw r.invalid(`member ${JSON.stringify(id)} appears twice`);
        seen.add(id);
        const address = r.str("member address");
        const voter = r.bool("member voter");
        members.push({ id, address, voter });
      }
      return {
        type: "snapshot",
        from,
        to,
        term,
        snapshot: { index, term: snapshotTerm, membership: { members } },
      };
    }
    case TYPE_CODES.timeout_now:
      return { type: "timeout_now", from, to, term };
    case TYPE_CODES.read_index:
      return { type: "read_index", from, to, term, requestId: r.str("requestId") };
    case TYPE_CODES.read_index_response: {
      const requestId = r.str("requestId");
      const index = r.u64("index");
      return { type: "read_index_response", from, to, term, requestId, index };
    }
    default:
      // decodeFrameAt checked the code range; a gap in TYPE_CODES would land here.
      throw new WireDecodeError("unknown_type", `unknown message type ${code}`);
  }
}

/** Decodes exactly one frame: `bytes` must hold nothing else. Throws {@linkcode WireDecodeError}. */
export function decodeMessage(bytes: Uint8Array, options: WireDecodeOptions = {}): Message {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [message, end] = decodeFrameAt(
    bytes,
    view,
    0,
    options.frameBytesMax ?? FRAME_BYTES_MAX_DEFAULT,
    "frame",
  );
  if (end !== bytes.length) {
    throw new WireDecodeError("trailing_bytes", `${bytes.length - end} bytes after the frame`);
  }
  return message;
}

/**
 * Decodes a batch (the body of a peer request). With `options.clusterId` set, a batch from
 * another cluster is rejected before any frame is decoded. Throws {@linkcode WireDecodeError}.
 */
export function decodeBatch(bytes: Uint8Array, options: DecodeBatchOptions = {}): DecodedBatch {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < BATCH_FIXED_BYTES) {
    throw new WireDecodeError("truncated", `batch of ${bytes.length} bytes has no header`);
  }
  if (bytes[0] !== BATCH_MAGIC_0 || bytes[1] !== BATCH_MAGIC_1) {
    throw new WireDecodeError("bad_magic", "bad batch magic");
  }
  if (bytes[2] !== WIRE_VERSION) {
    throw new WireDecodeError(
      "unsupported_version",
      `batch wire version ${bytes[2]} (this build speaks ${WIRE_VERSION})`,
    );
  }
  const count = view.getUint32(4);
  const clusterLength = view.getUint16(8);
  const headerEnd = BATCH_FIXED_BYTES + clusterLength;
  if (bytes.length < headerEnd + 4) {
    throw new WireDecodeError("truncated", "batch header is cut short");
  }
  if (view.getUint32(headerEnd) !== crc32c(bytes, 0, headerEnd)) {
    throw new WireDecodeError("checksum_mismatch", "batch header checksum mismatch");
  }
  if (bytes[3] !== 0) {
    throw new WireDecodeError("invalid_field", `batch flags ${bytes[3]} are not known`);
  }
  const max = options.batchMessagesMax ?? BATCH_MESSAGES_MAX_DEFAULT;
  if (count > max) {
    throw new WireDecodeError("too_large", `batch of ${count} messages exceeds ${max}`);
  }
  let clusterId: string;
  try {
    clusterId = strictDecoder.decode(bytes.subarray(BATCH_FIXED_BYTES, headerEnd));
  } catch {
    throw new WireDecodeError("invalid_field", "batch cluster id is not valid UTF-8");
  }
  if (options.clusterId !== undefined && clusterId !== options.clusterId) {
    throw new WireDecodeError(
      "cluster_mismatch",
      `batch is from cluster ${JSON.stringify(clusterId)}, this is ${
        JSON.stringify(options.clusterId)
      }`,
    );
  }
  const frameBytesMax = options.frameBytesMax ?? FRAME_BYTES_MAX_DEFAULT;
  // A frame is at least FRAME_OVERHEAD_BYTES long: reject an absurd count before allocating.
  if (count * FRAME_OVERHEAD_BYTES > bytes.length - headerEnd - 4) {
    throw new WireDecodeError("truncated", `batch declares ${count} messages, too few bytes`);
  }
  const messages: Message[] = new Array(count);
  let offset = headerEnd + 4;
  for (let i = 0; i < count; i++) {
    const [message, next] = decodeFrameAt(bytes, view, offset, frameBytesMax, `frame ${i + 1}`);
    messages[i] = message;
    offset = next;
  }
  if (offset !== bytes.length) {
    throw new WireDecodeError("trailing_bytes", `${bytes.length - offset} bytes after the batch`);
  }
  return { clusterId, messages };
}
