import assert from "node:assert/strict";
import { encodeKvCommand } from "../../src/kv/kv_command.ts";
import { KvStateMachine } from "../../src/kv/kv_state_machine.ts";
import { scanSnapshot } from "../../src/kv/scan_snapshot.ts";
import { SnapshotDecoder } from "../../src/kv/snapshot_decoder.ts";
import {
  SNAPSHOT_CHUNK_BYTES,
  SNAPSHOT_HEADER_BYTES,
  SNAPSHOT_TRAILER_BYTES,
  SnapshotFormatError,
} from "../../src/kv/snapshot_format.ts";
import { createPrng, type Random, randomInt } from "../../src/util/prng.ts";

const enc = new TextEncoder();

/** A machine with `count` keys "key/<i>" and values of `valueBytes` bytes. */
function filled(count: number, valueBytes = 16, firstIndex = 1): KvStateMachine {
  const kv = new KvStateMachine();
  const value = new Uint8Array(valueBytes);
  for (let i = 0; i < count; i++) {
    value.fill(i & 0xff);
    kv.apply(firstIndex + i, encodeKvCommand({ op: "put", key: `key/${i}`, value }));
  }
  return kv;
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

async function snapshotBytes(kv: KvStateMachine): Promise<Uint8Array> {
  return concat(await collect(kv.snapshot().stream));
}

/** A stream of `bytes` cut into pieces whose sizes `cut` picks. */
function streamOf(bytes: Uint8Array, cut: () => number = () => bytes.length): ReadableStream<
  Uint8Array
> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      const n = Math.max(1, cut());
      controller.enqueue(bytes.slice(offset, offset + n));
      offset += n;
    },
  });
}

function randomCut(random: Random, max: number): () => number {
  return () => randomInt(random, 1, max);
}

/** Every key, revision and value, for comparing states. */
function dump(kv: KvStateMachine): [string, number, string][] {
  return kv.list({ limit: 1_000_000, values: true }).items.map((i) => [
    i.key,
    i.revision,
    Array.from(i.value!).join(","),
  ]);
}

async function assertRejected(
  kv: KvStateMachine,
  bytes: Uint8Array,
  reason?: string,
  cut?: () => number,
): Promise<void> {
  const before = dump(kv);
  const statsBefore = kv.stats();
  await assert.rejects(
    () => kv.restore(streamOf(bytes, cut)),
    (error: unknown) => {
      assert.ok(error instanceof SnapshotFormatError, `not a SnapshotFormatError: ${error}`);
      assert.match(error.message, /^Cannot decode snapshot: /);
      if (reason !== undefined) assert.equal(error.reason, reason, error.message);
      return true;
    },
  );
  assert.deepEqual(kv.stats(), statsBefore, "state changed by a rejected restore");
  assert.deepEqual(dump(kv), before);
}

Deno.test("a snapshot restores to an identical state", async () => {
  const source = filled(1000);
  source.apply(1001, encodeKvCommand({ op: "put", key: "ünï/😀", value: enc.encode("x") }));
  source.apply(1002, encodeKvCommand({ op: "delete", key: "key/7" }));
  source.markApplied(1003);
  const target = filled(3, 4, 1);
  const summary = await target.restore(source.snapshot().stream);
  assert.equal(summary.appliedIndex, 1003);
  assert.equal(summary.records, 1000);
  assert.deepEqual(target.stats(), source.stats());
  assert.deepEqual(dump(target), dump(source));
  // The restored machine keeps applying from there.
  target.apply(1004, encodeKvCommand({ op: "put", key: "key/7", value: enc.encode("back") }));
  assert.equal(target.get("key/7")?.revision, 1004);
});

Deno.test("the empty state has a snapshot too", async () => {
  const empty = new KvStateMachine();
  const bytes = await snapshotBytes(empty);
  assert.equal(bytes.length, SNAPSHOT_HEADER_BYTES + SNAPSHOT_TRAILER_BYTES);
  const target = filled(10);
  await target.restore(streamOf(bytes));
  assert.deepEqual(target.stats(), { appliedIndex: 0, keys: 0, keyBytes: 0, valueBytes: 0 });
  const scan = await scanSnapshot(streamOf(bytes));
  assert.equal(scan.keys, 0);
  assert.equal(scan.blocks, 0);
});

Deno.test("decoding accepts any chunking, down to one byte at a time", async () => {
  const source = filled(300, 100);
  source.apply(
    301,
    encodeKvCommand({ op: "put", key: "big", value: new Uint8Array(200_000).fill(3) }),
  );
  const bytes = await snapshotBytes(source);
  const expected = dump(source);
  const oneByte = new KvStateMachine();
  await oneByte.restore(streamOf(bytes, () => 1));
  assert.deepEqual(dump(oneByte), expected);
  const random = createPrng(99);
  for (let trial = 0; trial < 20; trial++) {
    const target = new KvStateMachine();
    await target.restore(streamOf(bytes, randomCut(random, trial < 10 ? 50 : 100_000)));
    assert.deepEqual(dump(target), expected);
  }
});

Deno.test("large values of 1 MiB stream in bounded chunks and restore intact", async () => {
  const kv = new KvStateMachine();
  const random = createPrng(5);
  const values: Uint8Array[] = [];
  for (let i = 0; i < 4; i++) {
    const value = new Uint8Array(1024 * 1024 + i);
    for (let j = 0; j < value.length; j += 997) value[j] = randomInt(random, 0, 255);
    values.push(value);
    kv.apply(i + 1, encodeKvCommand({ op: "put", key: `blob/${i}`, value }));
  }
  kv.apply(5, encodeKvCommand({ op: "put", key: "small", value: new Uint8Array(3) }));
  const chunks = await collect(kv.snapshot().stream);
  for (const chunk of chunks) assert.ok(chunk.length <= SNAPSHOT_CHUNK_BYTES, `${chunk.length}`);
  const target = new KvStateMachine();
  await target.restore(streamOf(concat(chunks), randomCut(random, 300_000)));
  for (let i = 0; i < 4; i++) assert.deepEqual(target.get(`blob/${i}`)?.value, values[i]);
  assert.equal(target.stats().valueBytes, kv.stats().valueBytes);
});

Deno.test("100k keys round trip, and chunks stay within 64 KiB", async () => {
  const kv = filled(100_000, 32);
  const snapshot = kv.snapshot();
  assert.equal(snapshot.keys, 100_000);
  let chunks = 0;
  let total = 0;
  const pieces: Uint8Array[] = [];
  for await (const chunk of snapshot.stream) {
    assert.ok(chunk.length <= SNAPSHOT_CHUNK_BYTES);
    chunks++;
    total += chunk.length;
    pieces.push(chunk);
  }
  assert.ok(chunks > total / SNAPSHOT_CHUNK_BYTES, "stream is chunked, not one buffer");
  const target = new KvStateMachine();
  await target.restore(streamOf(concat(pieces), () => 65536));
  assert.deepEqual(target.stats(), kv.stats());
  assert.deepEqual(
    target.list({ prefix: "key/9999", limit: 20 }),
    kv.list({ prefix: "key/9999", limit: 20 }),
  );
});

Deno.test("a reader can take a few chunks and cancel the rest", async () => {
  const kv = filled(50_000, 64);
  const reader = kv.snapshot().stream.getReader();
  const first = await reader.read();
  const second = await reader.read();
  assert.equal(first.value?.length, SNAPSHOT_HEADER_BYTES);
  assert.ok(second.value !== undefined && second.value.length <= SNAPSHOT_CHUNK_BYTES);
  await reader.cancel();
});

Deno.test("applies after snapshot() do not change what the snapshot streams", async () => {
  const random = createPrng(4242);
  const kv = filled(5000, 8);
  const expected = await snapshotBytes(kv);
  const snapshot = kv.snapshot();
  const reader = snapshot.stream.getReader();
  const chunks: Uint8Array[] = [];
  let index = kv.appliedIndex;
  for (;;) {
    // Between every pull: overwrite, delete and insert keys all over the key space.
    for (let i = 0; i < 50; i++) {
      const key = `key/${randomInt(random, 0, 6000)}`;
      const roll = random();
      const data = roll < 0.4
        ? encodeKvCommand({ op: "put", key, value: new Uint8Array([9, 9, 9]) })
        : roll < 0.7
        ? encodeKvCommand({ op: "delete", key })
        : encodeKvCommand({ op: "put", key: `${key}/new`, value: new Uint8Array(1) });
      kv.apply(++index, data);
    }
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
  }
  assert.deepEqual(concat(chunks), expected);
  assert.notDeepEqual(await snapshotBytes(kv), expected, "the live state did change");
});

Deno.test("a restore replaces state even while an older snapshot is being read", async () => {
  const kv = filled(2000);
  const expected = await snapshotBytes(kv);
  const reader = kv.snapshot().stream.getReader();
  const chunks: Uint8Array[] = [(await reader.read()).value!];
  await kv.restore(filled(10, 4, 1).snapshot().stream);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
  }
  assert.deepEqual(concat(chunks), expected);
  assert.equal(kv.stats().keys, 10);
});

Deno.test("a flipped byte anywhere is rejected and the old state kept", async () => {
  const kv = filled(2000, 24);
  const bytes = await snapshotBytes(kv);
  const target = filled(50, 3);
  const random = createPrng(1234);
  const offsets = [0, 9, 10, 11, 12, 14, 30, 41, 42, 45, 50, 58, 100, bytes.length - 1];
  for (let i = 0; i < 150; i++) offsets.push(randomInt(random, 0, bytes.length - 1));
  for (const offset of offsets) {
    const damaged = bytes.slice();
    damaged[offset]! ^= 1 << randomInt(random, 0, 7);
    await assertRejected(target, damaged, undefined, randomCut(random, 9000));
  }
});

Deno.test("damage is reported with a reason and where it is", async () => {
  const bytes = await snapshotBytes(filled(3000, 24));
  const flip = (offset: number): Uint8Array => {
    const copy = bytes.slice();
    copy[offset]! ^= 0x40;
    return copy;
  };
  const target = new KvStateMachine();
  await assertRejected(target, flip(0), "bad_magic");
  await assertRejected(target, flip(11), "unsupported_version");
  await assertRejected(target, flip(20), "checksum_mismatch");
  // Byte 100 is inside block 1's payload; find block 3's payload too.
  await assert.rejects(
    () => target.restore(streamOf(flip(100))),
    /checksum mismatch in block 1$/,
  );
  const blockLength = new DataView(bytes.buffer).getUint32(SNAPSHOT_HEADER_BYTES + 4) + 20;
  await assert.rejects(
    () => target.restore(streamOf(flip(SNAPSHOT_HEADER_BYTES + 2 * blockLength + 100))),
    /Cannot decode snapshot: checksum mismatch in block 3$/,
  );
  await assertRejected(target, flip(bytes.length - 10), "checksum_mismatch");
});

Deno.test("truncation in every region is rejected as truncated", async () => {
  const bytes = await snapshotBytes(filled(3000, 24));
  const target = filled(5);
  const blockLength = new DataView(bytes.buffer).getUint32(SNAPSHOT_HEADER_BYTES + 4) + 20;
  const cuts = [
    0,
    1,
    SNAPSHOT_HEADER_BYTES - 1,
    SNAPSHOT_HEADER_BYTES, // header only
    SNAPSHOT_HEADER_BYTES + 8, // inside a block header
    SNAPSHOT_HEADER_BYTES + 500, // inside a block payload
    SNAPSHOT_HEADER_BYTES + blockLength - 2, // inside a block checksum
    SNAPSHOT_HEADER_BYTES + blockLength, // exactly at a block boundary
    bytes.length - SNAPSHOT_TRAILER_BYTES, // every block, no trailer
    bytes.length - SNAPSHOT_TRAILER_BYTES + 10, // inside the trailer
    bytes.length - 1,
  ];
  for (const cut of cuts) await assertRejected(target, bytes.subarray(0, cut), "truncated");
  const random = createPrng(77);
  for (let i = 0; i < 40; i++) {
    const cut = randomInt(random, 0, bytes.length - 1);
    await assertRejected(target, bytes.subarray(0, cut), "truncated", randomCut(random, 5000));
  }
});

Deno.test("garbage after the trailer is rejected", async () => {
  const bytes = await snapshotBytes(filled(100));
  const target = filled(5);
  await assertRejected(target, concat([bytes, new Uint8Array([0])]), "trailing_bytes");
  await assertRejected(target, concat([bytes, bytes]), "trailing_bytes");
});

Deno.test("dropped or repeated blocks are rejected even with intact checksums", async () => {
  const bytes = await snapshotBytes(filled(3000, 24));
  const view = new DataView(bytes.buffer);
  const blockLength = view.getUint32(SNAPSHOT_HEADER_BYTES + 4) + 20;
  const head = bytes.subarray(0, SNAPSHOT_HEADER_BYTES);
  const block1 = bytes.subarray(SNAPSHOT_HEADER_BYTES, SNAPSHOT_HEADER_BYTES + blockLength);
  const rest = bytes.subarray(SNAPSHOT_HEADER_BYTES + blockLength);
  const target = filled(5);
  await assertRejected(target, concat([head, rest]), "malformed"); // block 1 dropped
  await assertRejected(target, concat([head, block1, block1, rest]), "malformed"); // repeated
});

Deno.test("restore can insist on the Raft snapshot's index", async () => {
  const kv = filled(10);
  const bytes = await snapshotBytes(kv);
  const target = new KvStateMachine();
  await assert.rejects(
    () => target.restore(streamOf(bytes), { expectedAppliedIndex: 11 }),
    (e: unknown) => e instanceof SnapshotFormatError && e.reason === "index_mismatch",
  );
  await target.restore(streamOf(bytes), { expectedAppliedIndex: 10 });
  assert.equal(target.appliedIndex, 10);
});

Deno.test("a stream error during restore propagates and leaves the state alone", async () => {
  const target = filled(5);
  const bytes = await snapshotBytes(filled(1000));
  let sent = false;
  const failing = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!sent) {
        controller.enqueue(bytes.slice(0, 5000));
        sent = true;
      } else controller.error(new Error("connection reset"));
    },
  });
  await assert.rejects(() => target.restore(failing), /connection reset/);
  assert.equal(target.stats().keys, 5);
});

Deno.test("scanSnapshot verifies and summarizes without building state", async () => {
  const kv = new KvStateMachine();
  const puts: [string, number][] = [["users/a", 10], ["users/b", 5], ["jobs/1", 100], ["x", 1]];
  puts.forEach(([key, size], i) =>
    kv.apply(i + 1, encodeKvCommand({ op: "put", key, value: new Uint8Array(size) }))
  );
  const bytes = await snapshotBytes(kv);
  const scan = await scanSnapshot(streamOf(bytes, () => 7));
  assert.equal(scan.appliedIndex, 4);
  assert.equal(scan.keys, 4);
  assert.equal(scan.valueBytes, 116);
  assert.equal(scan.keyBytes, 7 + 7 + 6 + 1);
  assert.equal(scan.largestValue, 100);
  assert.equal(scan.maxRevision, 4);
  assert.equal(scan.streamBytes, bytes.length);
  assert.deepEqual(scan.prefixes, [
    { prefix: "", keys: 1, valueBytes: 1 },
    { prefix: "jobs/", keys: 1, valueBytes: 100 },
    { prefix: "users/", keys: 2, valueBytes: 15 },
  ]);
  const damaged = bytes.slice();
  damaged[60]! ^= 1;
  await assert.rejects(() => scanSnapshot(streamOf(damaged)), SnapshotFormatError);
});

Deno.test("the push decoder rejects bytes after the trailer within one chunk", async () => {
  const bytes = await snapshotBytes(filled(3));
  const decoder = new SnapshotDecoder({ record() {} });
  assert.throws(
    () => decoder.push(concat([bytes, new Uint8Array([1, 2])])),
    /2 unexpected bytes after the trailer/,
  );
});
