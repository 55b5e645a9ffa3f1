import assert from "node:assert/strict";
import type { Entry, Message } from "../../src/raft/types.ts";
import { crc32c } from "../../src/util/crc32c.ts";
import {
  decodeBatch,
  decodeMessage,
  encodeBatch,
  encodeMessage,
  FRAME_HEADER_BYTES,
  frameBytes,
  WireDecodeError,
  type WireDecodeReason,
} from "../../src/transport/wire_codec.ts";
import { AssertionError } from "../../src/util/assert.ts";
import { createPrng, randomInt } from "../../src/util/prng.ts";

const CLUSTER = "cluster-7f3a";

function entries(prevIndex: number, terms: number[], size = 3): Entry[] {
  return terms.map((term, i) => ({
    index: prevIndex + 1 + i,
    term,
    type: i === 0 ? 2 : 0,
    data: new Uint8Array(i === 0 ? 0 : size).fill(i),
  }));
}

const MAX = Number.MAX_SAFE_INTEGER;

const SAMPLES: Message[] = [
  {
    type: "vote",
    from: "n1",
    to: "n2",
    term: 5,
    preVote: true,
    lastLogIndex: 10,
    lastLogTerm: 4,
    transfer: false,
  },
  {
    type: "vote",
    from: "nœud-ü",
    to: "节点2",
    term: MAX,
    preVote: false,
    lastLogIndex: MAX,
    lastLogTerm: 0,
    transfer: true,
  },
  { type: "vote_response", from: "n2", to: "n1", term: 5, preVote: true, granted: false },
  { type: "vote_response", from: "n2", to: "n1", term: 6, preVote: false, granted: true },
  {
    type: "append",
    from: "n1",
    to: "n3",
    term: 7,
    prevIndex: 0,
    prevTerm: 0,
    entries: [],
    commit: 0,
  },
  {
    type: "append",
    from: "n1",
    to: "n3",
    term: 7,
    prevIndex: 99,
    prevTerm: 5,
    entries: entries(99, [5, 6, 6, 7]),
    commit: 101,
  },
  {
    type: "append",
    from: "n1",
    to: "n3",
    term: 9,
    prevIndex: 1000,
    prevTerm: 9,
    entries: [{ index: 1001, term: 9, type: 1, data: new Uint8Array(1 << 20).fill(0xab) }],
    commit: 1000,
  },
  {
    type: "append_response",
    from: "n3",
    to: "n1",
    term: 7,
    success: false,
    index: 99,
    hintIndex: 42,
    hintTerm: 3,
  },
  {
    type: "append_response",
    from: "n3",
    to: "n1",
    term: 7,
    success: true,
    index: 103,
    hintIndex: 0,
    hintTerm: 0,
  },
  { type: "heartbeat", from: "n1", to: "n2", term: 7, commit: 100, readSeq: 12 },
  { type: "heartbeat_response", from: "n2", to: "n1", term: 7, readSeq: 12 },
  {
    type: "snapshot",
    from: "n1",
    to: "n4",
    term: 8,
    snapshot: {
      index: 5000,
      term: 8,
      membership: {
        members: [
          { id: "n1", address: "https://10.0.0.1:7070", voter: true },
          { id: "n2", address: "", voter: true },
          { id: "n4", address: "https://[::1]:7070/ünï", voter: false },
        ],
      },
    },
  },
  {
    type: "snapshot",
    from: "n1",
    to: "n4",
    term: 8,
    snapshot: { index: 0, term: 0, membership: { members: [] } },
  },
  { type: "timeout_now", from: "n1", to: "n2", term: 9 },
  { type: "read_index", from: "n2", to: "n1", term: 9, requestId: "req-😀-1" },
  { type: "read_index", from: "n2", to: "n1", term: 9, requestId: "" },
  {
    type: "read_index_response",
    from: "n1",
    to: "n2",
    term: 9,
    requestId: "req-😀-1",
    index: 4711,
  },
];

function expectError(fn: () => unknown, reason: WireDecodeReason, pattern?: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof WireDecodeError, `not a WireDecodeError: ${error}`);
    assert.equal(error.reason, reason, error.message);
    assert.match(error.message, /^Cannot decode peer message: /);
    if (pattern) assert.match(error.message, pattern);
    return true;
  });
}

/** Recomputes a frame's checksum after a deliberate edit, so deeper checks are reached. */
function reseal(frame: Uint8Array): Uint8Array {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const end = frame.length - 4;
  view.setUint32(end, crc32c(frame.subarray(0, end)));
  return frame;
}

/** A frame with a hand-written body, correctly framed and checksummed. */
function frameWithBody(type: number, body: number[]): Uint8Array {
  const frame = new Uint8Array(FRAME_HEADER_BYTES + body.length + 4);
  frame.set([0x52, 0x4d, 1, type], 0);
  new DataView(frame.buffer).setUint32(4, body.length);
  frame.set(body, FRAME_HEADER_BYTES);
  return reseal(frame);
}

const str = (s: string): number[] => {
  const b = new TextEncoder().encode(s);
  return [b.length >> 8, b.length & 0xff, ...b];
};
const u64 = (n: number): number[] => {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return [...out];
};
const u32 = (n: number): number[] => [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];

Deno.test("every message variant survives a frame round trip", () => {
  for (const message of SAMPLES) {
    const frame = encodeMessage(message);
    assert.equal(frame.length, frameBytes(message));
    assert.deepEqual(decodeMessage(frame), message);
  }
});

Deno.test("a batch of every variant round trips and reports its cluster id", () => {
  const batch = encodeBatch(SAMPLES, { clusterId: CLUSTER });
  const decoded = decodeBatch(batch, { clusterId: CLUSTER });
  assert.equal(decoded.clusterId, CLUSTER);
  assert.deepEqual(decoded.messages, SAMPLES);
  assert.deepEqual(decodeBatch(batch).clusterId, CLUSTER);
  const empty = decodeBatch(encodeBatch([], { clusterId: "" }));
  assert.deepEqual(empty, { clusterId: "", messages: [] });
});

Deno.test("decoded entry data is a copy that does not pin the request body", () => {
  const batch = encodeBatch([SAMPLES[5]!], { clusterId: CLUSTER });
  const message = decodeBatch(batch).messages[0]!;
  assert.equal(message.type, "append");
  if (message.type !== "append") return;
  for (const entry of message.entries) assert.notEqual(entry.data.buffer, batch.buffer);
});

Deno.test("a batch from another cluster is rejected", () => {
  const batch = encodeBatch(SAMPLES.slice(0, 2), { clusterId: "other" });
  expectError(() => decodeBatch(batch, { clusterId: CLUSTER }), "cluster_mismatch", /"other"/);
});

Deno.test("framing damage is rejected with the right reason", () => {
  const frame = encodeMessage(SAMPLES[5]!);
  const edit = (at: number, value: number, seal = false): Uint8Array => {
    const copy = frame.slice();
    copy[at] = value;
    return seal ? reseal(copy) : copy;
  };
  expectError(() => decodeMessage(edit(0, 0x00)), "bad_magic");
  expectError(() => decodeMessage(edit(1, 0x00)), "bad_magic");
  expectError(() => decodeMessage(edit(2, 2)), "unsupported_version", /version 2/);
  expectError(() => decodeMessage(edit(3, 11, true)), "unknown_type", /type 11/);
  expectError(() => decodeMessage(edit(3, 0, true)), "unknown_type", /type 0/);
  expectError(() => decodeMessage(edit(3, 9)), "checksum_mismatch");
  expectError(() => decodeMessage(edit(40, frame[40]! ^ 1)), "checksum_mismatch");
  expectError(() => decodeMessage(edit(frame.length - 1, frame.at(-1)! ^ 1)), "checksum_mismatch");
  expectError(() => decodeMessage(frame.subarray(0, 5)), "truncated");
  expectError(() => decodeMessage(frame.subarray(0, frame.length - 1)), "truncated");
  expectError(() => decodeMessage(new Uint8Array([...frame, 0])), "trailing_bytes");
  // Body length larger than the limit: rejected before reading (or allocating) anything.
  expectError(() => decodeMessage(edit(4, 0x7f)), "too_large");
  expectError(() => decodeMessage(frame, { frameBytesMax: 10 }), "too_large");
});

Deno.test("a body that disagrees with its declared length is rejected", () => {
  const common = [...str("n1"), ...str("n2"), ...u64(3)];
  // A heartbeat body one field short, and one with a spare byte.
  expectError(() => decodeMessage(frameWithBody(5, [...common, ...u64(1)])), "bad_length");
  expectError(
    () => decodeMessage(frameWithBody(5, [...common, ...u64(1), ...u64(2), 0])),
    "bad_length",
    /1 bytes after the fields/,
  );
  // A string length running past the body.
  expectError(() => decodeMessage(frameWithBody(8, [0, 50, 0x61])), "bad_length");
  // An append declaring a billion entries in a tiny body.
  expectError(
    () =>
      decodeMessage(
        frameWithBody(3, [...common, ...u64(0), ...u64(0), ...u64(0), ...u32(1e9)]),
      ),
    "bad_length",
  );
  // An entry whose data length runs past the body.
  expectError(
    () =>
      decodeMessage(
        frameWithBody(3, [
          ...common,
          ...u64(0),
          ...u64(0),
          ...u64(0),
          ...u32(1),
          ...u64(1),
          ...u64(3),
          0,
          ...u32(1000),
          1,
          2,
        ]),
      ),
    "bad_length",
  );
});

Deno.test("invalid field values are rejected", () => {
  const common = (from = "n1", to = "n2", term = 3): number[] => [
    ...str(from),
    ...str(to),
    ...u64(term),
  ];
  const vote = (preVote: number, transfer: number): Uint8Array =>
    frameWithBody(1, [...common(), preVote, ...u64(1), ...u64(1), transfer]);
  expectError(() => decodeMessage(vote(2, 0)), "invalid_field", /preVote is 2/);
  expectError(() => decodeMessage(vote(0, 255)), "invalid_field", /transfer is 255/);
  const timeoutNow = (from: string, to: string): Uint8Array => frameWithBody(8, common(from, to));
  expectError(() => decodeMessage(timeoutNow("", "n2")), "invalid_field", /from "" is not/);
  expectError(() => decodeMessage(timeoutNow("a=b", "n2")), "invalid_field");
  expectError(() => decodeMessage(timeoutNow("n1", "a,b")), "invalid_field");
  // Invalid UTF-8 in a string.
  expectError(
    () => decodeMessage(frameWithBody(8, [0, 2, 0xc3, 0x28, ...str("n2"), ...u64(3)])),
    "invalid_field",
    /not valid UTF-8/,
  );
  // A u64 above 2^53 - 1.
  const big = [0x00, 0x20, 0, 0, 0, 0, 0, 0];
  expectError(
    () => decodeMessage(frameWithBody(8, [...str("n1"), ...str("n2"), ...big])),
    "invalid_field",
    /term exceeds 2\^53/,
  );
  const append = (prevIndex: number, prevTerm: number, list: [number, number, number][]) =>
    frameWithBody(3, [
      ...common("n1", "n2", 5),
      ...u64(prevIndex),
      ...u64(prevTerm),
      ...u64(0),
      ...u32(list.length),
      ...list.flatMap(([index, term, type]) => [...u64(index), ...u64(term), type, ...u32(0)]),
    ]);
  decodeMessage(append(10, 2, [[11, 2, 0], [12, 5, 1]])); // valid
  expectError(() => decodeMessage(append(10, 2, [[12, 2, 0]])), "invalid_field", /expected 11/);
  expectError(() => decodeMessage(append(10, 2, [[11, 2, 0], [13, 2, 0]])), "invalid_field");
  expectError(() => decodeMessage(append(10, 3, [[11, 2, 0]])), "invalid_field", /term 2/);
  expectError(() => decodeMessage(append(10, 2, [[11, 6, 0]])), "invalid_field", /term 6/);
  expectError(() => decodeMessage(append(10, 2, [[11, 3, 0], [12, 2, 0]])), "invalid_field");
  expectError(() => decodeMessage(append(10, 2, [[11, 2, 3]])), "invalid_field", /type 3/);
  const snapshot = (ids: string[]) =>
    frameWithBody(7, [
      ...common(),
      ...u64(10),
      ...u64(2),
      0,
      ids.length,
      ...ids.flatMap((id) => [...str(id), ...str("addr"), 1]),
    ]);
  decodeMessage(snapshot(["a", "b"]));
  expectError(() => decodeMessage(snapshot(["a", "a"])), "invalid_field", /appears twice/);
  expectError(() => decodeMessage(snapshot(["a", ""])), "invalid_field");
});

Deno.test("batch framing damage is rejected with the right reason", () => {
  const batch = encodeBatch(SAMPLES.slice(0, 4), { clusterId: CLUSTER });
  const edit = (at: number, value: number): Uint8Array => {
    const copy = batch.slice();
    copy[at] = value;
    return copy;
  };
  const headerEnd = 10 + CLUSTER.length;
  const resealHeader = (copy: Uint8Array): Uint8Array => {
    new DataView(copy.buffer).setUint32(headerEnd, crc32c(copy.subarray(0, headerEnd)));
    return copy;
  };
  expectError(() => decodeBatch(new Uint8Array(3)), "truncated");
  expectError(() => decodeBatch(edit(1, 0x4d)), "bad_magic");
  expectError(() => decodeBatch(edit(2, 9)), "unsupported_version");
  expectError(() => decodeBatch(edit(12, 0x41)), "checksum_mismatch");
  expectError(() => decodeBatch(resealHeader(edit(3, 1))), "invalid_field", /flags/);
  expectError(() => decodeBatch(resealHeader(edit(7, 5))), "truncated"); // count 4 → 5
  expectError(() => decodeBatch(resealHeader(edit(4, 0x7f))), "too_large");
  expectError(() => decodeBatch(batch, { batchMessagesMax: 3 }), "too_large");
  expectError(() => decodeBatch(resealHeader(edit(7, 3))), "trailing_bytes");
  expectError(() => decodeBatch(batch.subarray(0, batch.length - 1)), "truncated");
  expectError(() => decodeBatch(batch.subarray(0, headerEnd + 2)), "truncated");
  expectError(() => decodeBatch(new Uint8Array([...batch, 1, 2, 3])), "trailing_bytes");
  const invalidUtf8 = batch.slice();
  invalidUtf8[10] = 0xff;
  expectError(() => decodeBatch(resealHeader(invalidUtf8)), "invalid_field", /cluster id/);
});

Deno.test("the encoder refuses messages that break the rules, as bugs", () => {
  const bad: Message[] = [
    { type: "timeout_now", from: "", to: "n2", term: 1 },
    { type: "timeout_now", from: "n1", to: "n2", term: -1 },
    { type: "timeout_now", from: "n1", to: "n2", term: 2 ** 53 },
    { type: "read_index", from: "n1", to: "n2", term: 1, requestId: "\uD800" },
    {
      type: "append",
      from: "n1",
      to: "n2",
      term: 3,
      prevIndex: 5,
      prevTerm: 1,
      commit: 0,
      entries: entries(6, [1]),
    },
  ];
  for (const message of bad) assert.throws(() => encodeMessage(message), AssertionError);
});

Deno.test("seeded mutations of valid frames only ever raise WireDecodeError", () => {
  const seed = 0x5eed;
  const random = createPrng(seed);
  const small: Message[] = SAMPLES.filter((m) => frameBytes(m) < 4096);
  const corpus = [
    ...small.map((m) => ({ batch: false, bytes: encodeMessage(m) })),
    { batch: true, bytes: encodeBatch(small, { clusterId: CLUSTER }) },
    { batch: true, bytes: encodeBatch(small.slice(0, 3), { clusterId: "c" }) },
  ];
  const reasons = new Map<string, number>();
  let accepted = 0;
  for (let i = 0; i < 20_000; i++) {
    const sample = corpus[randomInt(random, 0, corpus.length - 1)]!;
    let bytes: Uint8Array = sample.bytes.slice();
    const mutations = randomInt(random, 1, 3);
    for (let m = 0; m < mutations; m++) {
      const kind = randomInt(random, 0, 5);
      if (kind <= 2 && bytes.length > 0) {
        bytes[randomInt(random, 0, bytes.length - 1)]! ^= 1 << randomInt(random, 0, 7);
      } else if (kind === 3) {
        bytes = bytes.subarray(0, randomInt(random, 0, bytes.length));
      } else if (kind === 4) {
        const extra = new Uint8Array(randomInt(random, 1, 16)).map(() => randomInt(random, 0, 255));
        bytes = new Uint8Array([...bytes, ...extra]);
      } else if (bytes.length > 0) {
        bytes[randomInt(random, 0, bytes.length - 1)] = randomInt(random, 0, 255);
      }
    }
    // With the checksum resealed half the time, mutations reach the field checks too.
    if (!sample.batch && random() < 0.5 && bytes.length >= FRAME_HEADER_BYTES + 4) {
      bytes = reseal(bytes.slice());
    }
    try {
      if (sample.batch) decodeBatch(bytes, { clusterId: CLUSTER });
      else decodeMessage(bytes);
      accepted++;
    } catch (error) {
      if (!(error instanceof WireDecodeError)) {
        throw new Error(`seed ${seed} iteration ${i}: ${error}`, { cause: error });
      }
      reasons.set(error.reason, (reasons.get(error.reason) ?? 0) + 1);
    }
  }
  for (const reason of ["checksum_mismatch", "truncated", "trailing_bytes", "invalid_field"]) {
    assert.ok((reasons.get(reason) ?? 0) > 0, `fuzzing never reached ${reason}`);
  }
  assert.ok(accepted < 20_000);
});
