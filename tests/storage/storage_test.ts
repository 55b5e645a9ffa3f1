import assert from "node:assert/strict";
import type { SnapshotMeta } from "../../src/raft/types.ts";
import { MachineStoppedError } from "../../src/storage/fault_fs.ts";
import { Storage } from "../../src/storage/storage.ts";
import { collector, entries, newFaultFs } from "./helpers.ts";
import { createHash } from "node:crypto";

const config = { segmentBytes: 4096 };
const membership = { members: [{ id: "n1", address: "a", voter: true }] };
const bytes = (n: number) => new Uint8Array(n).map((_, i) => i & 0xff);
const streamOf = (d: Uint8Array) =>
  new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(d);
      c.close();
    },
  });

Deno.test("storage: a new data directory recovers empty", async () => {
  const fs = newFaultFs();
  const { storage, recovery } = await Storage.open(fs, "/d", { config });
  assert.equal(recovery.snapshot, null);
  assert.deepEqual(recovery.entries, []);
  assert.equal(recovery.lostAfter, 0);
  assert.deepEqual(recovery.raftHardState, { term: 0, vote: null, commit: 0 });
  assert.ok(storage.mayVote());
  await storage.close();
});

Deno.test("storage: entries lost before the tail set lostAfter and block votes until caught up", async () => {
  const fs = newFaultFs();
  const { storage } = await Storage.open(fs, "/d", { config, onEvent: collector().sink });
  await storage.log.append(entries(1, 100, 1, 100));
  await storage.saveHardState({ term: 1, vote: "n1", commit: 90 });
  await storage.close();
  const segments = fs.readDir("/d/log").filter((e) => e.name.endsWith(".log"));
  fs.corrupt(`/d/log/${segments[1]!.name}`, (b) => {
    b[200]! ^= 0xff;
    return b;
  });
  const c = collector();
  const { storage: s2, recovery } = await Storage.open(fs, "/d", { config, onEvent: c.sink });
  assert.equal(recovery.problems.length, 1);
  assert.equal(recovery.problems[0]!.code, "ERR_LOG_CORRUPT");
  assert.equal(recovery.lostAfter, 100, "the highest index ever seen");
  assert.equal(s2.hardState.load().lostAfter, 100, "persisted");
  assert.ok(recovery.raftHardState.commit <= s2.log.lastIndex(), "commit clamped");
  assert.ok(!s2.mayVote());
  const held = s2.log.lastIndex();
  await s2.close();
  // Another restart remembers the marker even though the log now looks clean.
  const { storage: s3, recovery: r3 } = await Storage.open(fs, "/d", { config });
  assert.equal(r3.lostAfter, 100);
  assert.equal(s3.log.lastIndex(), held);
  await s3.log.append(entries(held + 1, 99, 2, 10));
  assert.equal(await s3.noteCaughtUp(), false);
  await s3.log.append(entries(100, 100, 2, 10));
  assert.ok(s3.mayVote());
  assert.equal(await s3.noteCaughtUp(), true);
  assert.equal(s3.hardState.load().lostAfter, 0);
  await s3.close();
});

Deno.test("storage: a torn tail alone does not block votes", async () => {
  const fs = newFaultFs();
  const { storage } = await Storage.open(fs, "/d", { config });
  await storage.log.append(entries(1, 10, 1, 100));
  await storage.saveHardState({ term: 1, vote: null, commit: 5 });
  await storage.close();
  fs.corrupt("/d/log/00000000000000000001.log", (b) => b.slice(0, 32 + 132 * 9 + 50));
  const c = collector();
  const { storage: s2, recovery } = await Storage.open(fs, "/d", { config, onEvent: c.sink });
  assert.equal(recovery.log.cuts.length, 1);
  assert.equal(recovery.lostAfter, 0);
  assert.equal(s2.log.lastIndex(), 9);
  await s2.close();
});

Deno.test("storage: a snapshot install interrupted at any point is finished or abandoned", async () => {
  const data = bytes(5000);
  const sha256 = createHash("sha256").update(data).digest("hex");
  const snap: SnapshotMeta = { index: 50, term: 3, membership };
  for (let k = 0; k < 40; k++) {
    const fs = newFaultFs();
    const { storage } = await Storage.open(fs, "/d", { config, onEvent: collector().sink });
    await storage.log.append(entries(1, 20, 1, 100));
    fs.crashAfter(k);
    let acked = false;
    try {
      await storage.installSnapshot(snap, streamOf(data), { expectedSha256: sha256 });
      acked = true;
    } catch (error) {
      assert.ok(error instanceof MachineStoppedError || fs.stopped, String(error));
    }
    fs.crash("drop");
    const { storage: s2, recovery } = await Storage.open(fs, "/d", {
      config,
      onEvent: collector().sink,
    });
    assert.equal(recovery.hardState.installingSnapshot, false);
    assert.equal(recovery.problems.length, 0, `k=${k}: ${JSON.stringify(recovery.problems)}`);
    if (recovery.snapshot !== null) {
      assert.equal(recovery.snapshot.info.index, 50);
      assert.equal(s2.log.firstIndex(), 51, `k=${k}: log replaced by the snapshot point`);
      assert.equal(s2.log.lastIndex(), 50);
      await recovery.snapshot.stream().cancel();
    } else {
      assert.ok(!acked, `k=${k}: acknowledged install lost`);
      assert.equal(s2.log.lastIndex(), 20, `k=${k}: old log intact`);
    }
    await s2.close();
  }
});

Deno.test("storage: saveSnapshot deletes the log segments it covers", async () => {
  const fs = newFaultFs();
  const { storage } = await Storage.open(fs, "/d", { config });
  await storage.log.append(entries(1, 200, 1, 100));
  const before = fs.readDir("/d/log").length;
  await storage.saveSnapshot({ index: 150, term: 1, membership }, streamOf(bytes(10)));
  assert.ok(fs.readDir("/d/log").length < before);
  assert.equal(storage.log.firstIndex(), 151);
  await storage.close();
  const { storage: s2, recovery } = await Storage.open(fs, "/d", { config });
  assert.equal(recovery.snapshot?.info.index, 150);
  assert.equal(recovery.entries[0]?.index, 151);
  assert.equal(recovery.entries.length, 50);
  await recovery.snapshot?.stream().cancel();
  await s2.close();
});

Deno.test("storage: an invalid configuration reports every problem", async () => {
  await assert.rejects(
    Storage.open(newFaultFs(), "/d", { config: { segmentBytes: 10, snapshotsKeep: 0 } }),
    /segmentBytes.*snapshotsKeep/,
  );
});
