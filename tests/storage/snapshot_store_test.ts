import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { SnapshotMeta } from "../../src/raft/types.ts";
import { MachineStoppedError } from "../../src/storage/fault_fs.ts";
import { FileSnapshotStore } from "../../src/storage/file_snapshot_store.ts";
import { DenoFileSystem } from "../../src/storage/fs.ts";
import { MemorySnapshotStore } from "../../src/storage/memory_snapshot_store.ts";
import type { SnapshotStore } from "../../src/storage/types.ts";
import { createPrng, randomInt } from "../../src/util/prng.ts";
import { collector, newFaultFs, withTempDir } from "./helpers.ts";

const membership = { members: [{ id: "n1", address: "http://n1", voter: true }] };
const meta = (index: number, term = 1): SnapshotMeta => ({ index, term, membership });

function payload(index: number, bytes = 3000): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) out[i] = (i * 13 + index) & 0xff;
  return out;
}

function streamOf(data: Uint8Array, chunk = 700): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= data.length) return c.close();
      c.enqueue(data.slice(at, at += chunk));
    },
  });
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of stream) parts.push(chunk);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
}

const sha = (d: Uint8Array) => createHash("sha256").update(d).digest("hex");

/** The conformance suite every SnapshotStore passes. */
async function snapshotConformance(t: Deno.TestContext, factory: () => SnapshotStore) {
  await t.step("an empty store has no snapshot", async () => {
    const s = factory();
    assert.deepEqual(await s.list(), []);
    assert.equal(await s.openLatest(), null);
  });
  await t.step("a sink publishes on close with size and sha256", async () => {
    const s = factory();
    const sink = await s.create(meta(10, 2));
    const data = payload(10);
    await sink.write(data.subarray(0, 1000));
    await sink.write(data.subarray(1000));
    const info = await sink.close();
    assert.equal(info.name, "10-2");
    assert.equal(info.size, data.length);
    assert.equal(info.sha256, sha(data));
    const opened = await s.open("10-2");
    assert.deepEqual(await readAll(opened.stream()), data);
    assert.deepEqual((await s.list()).map((i) => i.name), ["10-2"]);
  });
  await t.step("cancel publishes nothing", async () => {
    const s = factory();
    const sink = await s.create(meta(5));
    await sink.write(payload(5));
    await sink.cancel();
    assert.deepEqual(await s.list(), []);
  });
  await t.step("a received stream with the wrong sha256 or size is refused", async () => {
    const s = factory();
    const data = payload(7);
    await assert.rejects(
      s.writeFromStream(meta(7), streamOf(data), { expectedSha256: sha(payload(8)) }),
      { code: "ERR_BACKUP_CHECKSUM_MISMATCH" },
    );
    await assert.rejects(
      s.writeFromStream(meta(7), streamOf(data), { expectedSize: data.length - 1 }),
      { code: "ERR_BACKUP_CHECKSUM_MISMATCH" },
    );
    assert.deepEqual(await s.list(), []);
    const info = await s.writeFromStream(meta(7), streamOf(data), {
      expectedSha256: sha(data),
      expectedSize: data.length,
    });
    assert.equal(info.sha256, sha(data));
  });
  await t.step("retention keeps the newest two and openLatest is the newest", async () => {
    const s = factory();
    for (const i of [3, 9, 6, 12]) await s.writeFromStream(meta(i), streamOf(payload(i)));
    assert.deepEqual((await s.list()).map((i) => i.index), [9, 12]);
    const latest = await s.openLatest();
    assert.equal(latest?.info.index, 12);
    assert.deepEqual(await readAll(latest!.stream()), payload(12));
    assert.deepEqual(await s.retain(1), ["9-1"]);
  });
}

Deno.test("memory snapshot store conforms", async (t) => {
  await snapshotConformance(t, () => new MemorySnapshotStore());
});

Deno.test("file snapshot store conforms on the fault-injecting file system", async (t) => {
  await snapshotConformance(t, () => FileSnapshotStore.open(newFaultFs(), "/d"));
});

Deno.test("file snapshot store conforms on the real file system", async (t) => {
  await withTempDir(async (dir) => {
    let n = 0;
    await snapshotConformance(
      t,
      () => FileSnapshotStore.open(new DenoFileSystem(), `${dir}/${n++}`),
    );
  });
});

Deno.test("snapshots: a crash during publication leaves the old or the new set, never a half one", async () => {
  const names = (s: { name: string }[]) => s.map((x) => x.name).join(",");
  for (let k = 0; k < 40; k++) {
    for (const mode of ["drop", "keep", "tear"] as const) {
      const fs = newFaultFs();
      const store = FileSnapshotStore.open(fs, "/d", { onEvent: collector().sink });
      await store.writeFromStream(meta(1), streamOf(payload(1)));
      await store.writeFromStream(meta(2), streamOf(payload(2)));
      fs.crashAfter(k);
      let acked = false;
      try {
        await store.writeFromStream(meta(3), streamOf(payload(3)));
        acked = true;
      } catch (error) {
        assert.ok(error instanceof MachineStoppedError || fs.stopped, String(error));
      }
      fs.crash(mode, createPrng(k));
      const c = collector();
      const again = FileSnapshotStore.open(fs, "/d", { onEvent: c.sink });
      const listed = await again.list();
      assert.ok(
        ["1-1,2-1", "1-1,2-1,3-1", "2-1,3-1"].includes(names(listed)),
        `k=${k} ${mode}: ${names(listed)}`,
      );
      if (acked) assert.ok(names(listed).endsWith("3-1"), `k=${k}: acknowledged snapshot lost`);
      for (const info of listed) {
        const opened = await again.open(info.name);
        assert.deepEqual(await readAll(opened.stream()), payload(info.index));
      }
      assert.ok(!fs.readDir("/d/snapshots").some((e) => /\.(tmp|del)$/.test(e.name)));
      assert.deepEqual(again.recovery().setAside, [], `k=${k} ${mode}`);
    }
  }
});

Deno.test("snapshots: damaged data or manifest is set aside and the previous one used", async () => {
  for (let seed = 0; seed < 60; seed++) {
    const fs = newFaultFs();
    const store = FileSnapshotStore.open(fs, "/d", { onEvent: collector().sink });
    await store.writeFromStream(meta(1), streamOf(payload(1)));
    await store.writeFromStream(meta(2), streamOf(payload(2)));
    const random = createPrng(seed);
    const file = seed % 3 === 0 ? "manifest" : "data";
    fs.corrupt(`/d/snapshots/2-1/${file}`, (b) => {
      if (seed % 5 === 4) return b.slice(0, randomInt(random, 0, b.length - 1));
      b[randomInt(random, 0, b.length - 1)]! ^= randomInt(random, 1, 255);
      return b;
    });
    const c = collector();
    const again = FileSnapshotStore.open(fs, "/d", { onEvent: c.sink });
    const latest = await again.openLatest();
    assert.equal(latest?.info.name, "1-1", `seed=${seed} ${file}`);
    assert.deepEqual(await readAll(latest!.stream()), payload(1));
    assert.equal(again.recovery().setAside[0]?.name, "2-1");
    assert.ok(c.events.some((e) => e.kind === "snapshot_set_aside"));
    assert.ok(fs.stat("/d/snapshots/corrupt/2-1.0") !== null, "kept for inspection");
  }
});

Deno.test("snapshots: a stream of data changed after verification errors instead of closing", async () => {
  const fs = newFaultFs();
  const store = FileSnapshotStore.open(fs, "/d", { readChunkBytes: 1024 });
  await store.writeFromStream(meta(4), streamOf(payload(4)));
  const opened = await store.open("4-1");
  fs.corrupt("/d/snapshots/4-1/data", (b) => {
    b[2000]! ^= 1;
    return b;
  });
  await assert.rejects(readAll(opened.stream()), /data changed since it was verified/);
});

Deno.test("snapshots: start-up removes stray temporary directories", async () => {
  const fs = newFaultFs();
  const store = FileSnapshotStore.open(fs, "/d");
  const sink = await store.create(meta(5));
  await sink.write(payload(5));
  fs.syncDir("/d/snapshots");
  const again = FileSnapshotStore.open(fs, "/d", { onEvent: collector().sink });
  assert.deepEqual(again.recovery().removedTemp, ["/d/snapshots/5-1.tmp"]);
  assert.deepEqual(fs.readDir("/d/snapshots"), []);
});

Deno.test("snapshots: real files — a flipped data byte falls back to the previous snapshot", async () => {
  await withTempDir(async (dir) => {
    const fs = new DenoFileSystem();
    const store = FileSnapshotStore.open(fs, dir, { onEvent: collector().sink });
    await store.writeFromStream(meta(1), streamOf(payload(1, 300_000)));
    await store.writeFromStream(meta(2), streamOf(payload(2, 300_000)));
    const path = `${dir}/snapshots/2-1/data`;
    const b = Deno.readFileSync(path);
    b[123_456]! ^= 0x40;
    Deno.writeFileSync(path, b);
    const again = FileSnapshotStore.open(fs, dir, { onEvent: collector().sink });
    const latest = await again.openLatest();
    assert.equal(latest?.info.name, "1-1");
    assert.deepEqual(await readAll(latest!.stream()), payload(1, 300_000));
    const partial = latest!.stream().getReader();
    await partial.read();
    await partial.cancel(); // closes the file (resource sanitizer)
  });
});
