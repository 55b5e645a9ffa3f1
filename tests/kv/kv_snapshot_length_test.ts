import assert from "node:assert/strict";
import { encodeKvCommand } from "../../src/kv/kv_command.ts";
import { KvStateMachine } from "../../src/kv/kv_state_machine.ts";
import { SNAPSHOT_CHUNK_BYTES } from "../../src/kv/snapshot_format.ts";
import { createPrng, randomInt } from "../../src/util/prng.ts";

// KvSnapshot.byteLength is what a backup archive writes into the tar header of state.kvsnap
// before a byte of the state streams: it must equal the streamed length exactly, whatever the
// mix of record sizes (block boundaries, records larger than a block).

async function streamedLength(stream: ReadableStream<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const chunk of stream) n += chunk.length;
  return n;
}

function put(kv: KvStateMachine, index: number, key: string, value: Uint8Array): void {
  assert.equal(kv.apply(index, encodeKvCommand({ op: "put", key, value })).ok, true);
}

async function assertLengthExact(kv: KvStateMachine): Promise<number> {
  const snapshot = kv.snapshot();
  assert.equal(await streamedLength(snapshot.stream), snapshot.byteLength);
  return snapshot.byteLength;
}

Deno.test("byteLength of an empty state is header plus trailer", async () => {
  assert.equal(await assertLengthExact(new KvStateMachine()), 42 + 44);
});

Deno.test("byteLength equals the streamed length of a small state", async () => {
  const kv = new KvStateMachine();
  for (let i = 1; i <= 10; i++) put(kv, i, `small/${i}`, new Uint8Array(i * 3));
  await assertLengthExact(kv);
});

Deno.test("byteLength equals the streamed length of 100k keys", async () => {
  const kv = new KvStateMachine();
  const value = new Uint8Array(24);
  for (let i = 1; i <= 100_000; i++) put(kv, i, `user:${i.toString(36)}/profile`, value);
  const length = await assertLengthExact(kv);
  assert.ok(length > 100_000 * 24);
});

Deno.test("byteLength equals the streamed length with 1 MiB values", async () => {
  const kv = new KvStateMachine();
  put(kv, 1, "a", new Uint8Array(10));
  put(kv, 2, "big/1", new Uint8Array(1024 * 1024));
  put(kv, 3, "big/2", new Uint8Array(1024 * 1024).fill(7));
  put(kv, 4, "z", new Uint8Array(5));
  const length = await assertLengthExact(kv);
  assert.ok(length > 2 * 1024 * 1024);
});

Deno.test("byteLength equals the streamed length at block boundaries (seeded sizes)", async () => {
  // Records sized around the block payload target exercise the "fits / does not fit / fills
  // the block exactly" branches of the writer's plan.
  const seed = 0x5eed_0001;
  const random = createPrng(seed);
  for (let round = 0; round < 20; round++) {
    const kv = new KvStateMachine();
    const count = randomInt(random, 1, 60);
    for (let i = 1; i <= count; i++) {
      const size = random() < 0.3
        ? randomInt(random, SNAPSHOT_CHUNK_BYTES - 200, SNAPSHOT_CHUNK_BYTES + 200)
        : randomInt(random, 0, 20_000);
      put(kv, i, `k/${String(i).padStart(4, "0")}`, new Uint8Array(size));
    }
    const snapshot = kv.snapshot();
    assert.equal(
      await streamedLength(snapshot.stream),
      snapshot.byteLength,
      `seed ${seed} round ${round}`,
    );
  }
});

Deno.test("byteLength is fixed at snapshot time while applies continue", async () => {
  const kv = new KvStateMachine();
  for (let i = 1; i <= 5000; i++) put(kv, i, `key/${i}`, new Uint8Array(100));
  const snapshot = kv.snapshot();
  let index = 5000;
  let n = 0;
  for await (const chunk of snapshot.stream) {
    n += chunk.length;
    put(kv, ++index, `key/${index % 7000}`, new Uint8Array(300));
  }
  assert.equal(n, snapshot.byteLength);
});
