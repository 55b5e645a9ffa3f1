import assert from "node:assert/strict";
import { FileLogStore } from "../../src/storage/file_log_store.ts";
import { DenoFileSystem } from "../../src/storage/fs.ts";
import { MemoryLogStore } from "../../src/storage/memory_log_store.ts";
import { collector, entries, isIntact, newFaultFs } from "./helpers.ts";
import { logStoreConformance } from "./log_store_conformance.ts";

Deno.test("memory log store conforms", async (t) => {
  await logStoreConformance(
    t,
    () => Promise.resolve({ store: new MemoryLogStore(), done: () => Promise.resolve() }),
  );
});

Deno.test("file log store conforms on the fault-injecting file system", async (t) => {
  await logStoreConformance(t, async () => {
    const fs = newFaultFs();
    const { store } = await FileLogStore.open(fs, "/d", {
      segmentBytes: 4096,
      onEvent: collector().sink,
    });
    return { store, done: () => Promise.resolve() };
  });
});

Deno.test("file log store conforms on the real file system", async (t) => {
  const dirs: string[] = [];
  await logStoreConformance(t, async () => {
    const dir = await Deno.makeTempDir({ prefix: "edgeraft-log-" });
    dirs.push(dir);
    const { store } = await FileLogStore.open(new DenoFileSystem(), dir, {
      segmentBytes: 4096,
      onEvent: collector().sink,
    });
    return { store, done: () => Deno.remove(dir, { recursive: true }) };
  });
});

for (const preallocate of [true, false]) {
  Deno.test(`file log reopens with every entry across rolled segments (preallocate=${preallocate})`, async () => {
    const fs = newFaultFs();
    const c = collector();
    const opts = { segmentBytes: 4096, preallocate, onEvent: c.sink };
    const { store } = await FileLogStore.open(fs, "/d", opts);
    for (let i = 1; i <= 200; i += 10) await store.append(entries(i, i + 9, 1 + (i >> 6), 100));
    await store.truncateSuffix(150);
    await store.append(entries(150, 160, 9, 50));
    await store.compactPrefix(40);
    await store.close();
    const segments = fs.readDir("/d/log").filter((e) => e.name.endsWith(".log"));
    assert.ok(segments.length > 3, "the log rolled");
    fs.crash("drop");
    // After compaction the caller names the first index it needs (snapshot index + 1).
    const { store: again, recovery } = await FileLogStore.open(fs, "/d", {
      ...opts,
      firstIndex: 41,
    });
    assert.equal(recovery.corruption, null);
    assert.deepEqual(recovery.cuts, []);
    assert.equal(again.lastIndex(), 160);
    assert.equal(again.firstIndex(), 41);
    const got = again.entries(41, 161);
    assert.ok(got.every(isIntact));
    assert.equal(got[got.length - 1]!.term, 9);
    assert.deepEqual(c.events, []);
    await again.close();
  });
}

Deno.test("file log store reports a full disk as ERR_DISK_FULL and then refuses work", async () => {
  const fs = newFaultFs();
  const { store } = await FileLogStore.open(fs, "/d", { segmentBytes: 4096, preallocate: false });
  await store.append(entries(1, 2, 1));
  fs.setDiskFull(true);
  await assert.rejects(store.append(entries(3, 4, 1)), { code: "ERR_DISK_FULL" });
  await assert.rejects(store.truncateSuffix(2), { code: "ERR_LOG_CORRUPT" });
  fs.setDiskFull(false);
  await store.close().catch(() => {});
  const { store: again } = await FileLogStore.open(fs, "/d", { segmentBytes: 4096 });
  assert.equal(again.lastIndex(), 2);
  await again.close();
});
