import assert from "node:assert/strict";
import { FaultFileSystem } from "../../src/storage/fault_fs.ts";
import { FileLogStore } from "../../src/storage/file_log_store.ts";
import { TimedFileSystem } from "../../src/storage/timed_fs.ts";
import { EntryType } from "../../src/raft/types.ts";

Deno.test("the timed file system reports every sync the log store makes and changes nothing else", async () => {
  const syncs: string[] = [];
  const fs = new TimedFileSystem(new FaultFileSystem(), (seconds, kind) => {
    assert.ok(seconds >= 0);
    syncs.push(kind);
  });
  const { store } = await FileLogStore.open(fs, "/data", { segmentBytes: 64 * 1024 });
  const before = syncs.length;
  const data = new TextEncoder().encode("x");
  await store.append([{ index: 1, term: 1, type: EntryType.Normal, data }]);
  await store.append([{ index: 2, term: 1, type: EntryType.Normal, data }]);
  // Each append is one data sync (the first one also created the segment).
  assert.ok(syncs.slice(before).filter((k) => k === "data").length >= 2);
  assert.deepEqual(store.entries(1, 3).map((e) => e.index), [1, 2]);
  await store.close();
});
