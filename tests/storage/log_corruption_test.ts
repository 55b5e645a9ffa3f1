/**
 * Corruption tests of the file log: flipped bytes at seeded random offsets, truncations,
 * zero-filled tails, appended garbage and a missing middle segment. Recovery must never throw,
 * never return a damaged or invented entry, keep a contiguous prefix of the original log, and
 * report what it found: damage before the tail as ERR_LOG_CORRUPT (file, offset, moved files),
 * a damaged last record as a cut.
 *
 * @module
 */

import assert from "node:assert/strict";
import { FileLogStore } from "../../src/storage/file_log_store.ts";
import { DenoFileSystem, type FileSystem } from "../../src/storage/fs.ts";
import type { LogRecovery } from "../../src/storage/types.ts";
import { createPrng, randomInt } from "../../src/util/prng.ts";
import { collector, entry, isIntact, newFaultFs, withTempDir } from "./helpers.ts";

const N = 120;
const termOf = (i: number) => 1 + Math.floor(i / 25);

async function build(fs: FileSystem, dir: string, preallocate: boolean): Promise<string[]> {
  const { store } = await FileLogStore.open(fs, dir, {
    segmentBytes: 4096,
    preallocate,
    onEvent: collector().sink,
  });
  for (let i = 1; i <= N; i += 4) {
    const batch = [0, 1, 2, 3].map((d) => entry(i + d, termOf(i + d), 90));
    await store.append(batch);
  }
  await store.close();
  return fs.readDir(`${dir}/log`).filter((e) => e.name.endsWith(".log")).map((e) => e.name);
}

/** Recovers and checks the universal properties; returns the recovery for specific checks. */
async function recoverAndCheck(fs: FileSystem, dir: string, where: string) {
  const c = collector();
  const { store, recovery } = await FileLogStore.open(fs, dir, {
    segmentBytes: 4096,
    onEvent: c.sink,
  });
  assert.equal(store.firstIndex(), 1, where);
  assert.ok(store.lastIndex() <= N, where);
  const got = store.lastIndex() >= 1 ? store.entries(1, store.lastIndex() + 1) : [];
  got.forEach((e, i) => {
    assert.equal(e.index, i + 1, `${where}: contiguous`);
    assert.equal(e.term, termOf(e.index), `${where}: entry ${e.index} term`);
    assert.ok(isIntact(e), `${where}: entry ${e.index} intact`);
  });
  if (store.lastIndex() < N) {
    assert.ok(
      recovery.corruption !== null || recovery.cuts.length > 0,
      `${where}: lost entries without a report`,
    );
  }
  if (recovery.corruption !== null) {
    assert.equal(recovery.corruption.code, "ERR_LOG_CORRUPT");
    assert.ok(recovery.corruption.movedTo.length > 0, `${where}: damaged files kept`);
    for (const p of recovery.corruption.movedTo) assert.ok(fs.stat(p) !== null, `${where}: ${p}`);
    assert.ok(c.events.some((e) => e.kind === "log_corrupt"), `${where}: corruption logged`);
    assert.equal(recovery.corruption.keptThrough, store.lastIndex());
  }
  if (recovery.cuts.length > 0) assert.ok(c.events.some((e) => e.kind === "tail_cut"), where);
  const last = store.lastIndex();
  await store.close();
  // A second recovery finds a clean log.
  const { store: again, recovery: r2 } = await FileLogStore.open(fs, dir, {
    segmentBytes: 4096,
    onEvent: collector().sink,
  });
  assert.equal(r2.corruption, null, `${where}: repaired`);
  assert.deepEqual(r2.cuts, [], `${where}: repaired`);
  assert.equal(again.lastIndex(), last, `${where}: stable`);
  await again.close();
  return { recovery, last };
}

function lastRecordOffset(bytes: Uint8Array): number {
  // Records are 32 + 90 bytes after a 32-byte segment header; find the last non-zero one.
  let at = 32;
  let last = 32;
  while (at + 122 <= bytes.length && bytes[at] === 0x45) {
    last = at;
    at += 122;
  }
  return last;
}

for (const preallocate of [true, false]) {
  Deno.test(`log: a flipped byte anywhere is cut or reported, never served (preallocate=${preallocate})`, async () => {
    let corrupt = 0;
    let cuts = 0;
    for (let seed = 0; seed < 150; seed++) {
      const fs = newFaultFs();
      const names = await build(fs, "/d", preallocate);
      const random = createPrng(seed);
      const k = randomInt(random, 0, names.length - 1);
      const path = `/d/log/${names[k]}`;
      let offset = 0;
      let tailRecord = false;
      fs.corrupt(path, (bytes) => {
        const end = lastRecordOffset(bytes) + 122;
        offset = randomInt(random, 0, end - 1);
        tailRecord = k === names.length - 1 && offset >= lastRecordOffset(bytes);
        bytes[offset]! ^= randomInt(random, 1, 255);
        return bytes;
      });
      const where = `seed=${seed} file=${names[k]} offset=${offset}`;
      const { recovery, last } = await recoverAndCheck(fs, "/d", where);
      if (tailRecord) {
        assert.equal(last, N - 1, `${where}: only the torn last record goes`);
        cuts++;
      } else {
        assert.ok(recovery.corruption !== null, `${where}: damage before the tail is corruption`);
        assert.equal(recovery.corruption.file, path);
        assert.ok(last < N);
        corrupt++;
      }
    }
    assert.ok(corrupt > 100 && cuts > 0, `${corrupt} corrupt, ${cuts} cuts`);
  });
}

Deno.test("log: truncating the last segment anywhere is a torn tail", async () => {
  for (let seed = 0; seed < 40; seed++) {
    const fs = newFaultFs();
    const names = await build(fs, "/d", false);
    const random = createPrng(seed);
    const path = `/d/log/${names[names.length - 1]}`;
    let cut = 0;
    fs.corrupt(path, (bytes) => bytes.slice(0, cut = randomInt(random, 0, bytes.length - 1)));
    const { recovery } = await recoverAndCheck(fs, "/d", `seed=${seed} cut=${cut}`);
    assert.equal(recovery.corruption, null, `seed=${seed}: a short tail is not corruption`);
  }
});

Deno.test("log: truncating a middle segment is corruption (entries missing before the tail)", async () => {
  const fs = newFaultFs();
  const names = await build(fs, "/d", true);
  fs.corrupt(`/d/log/${names[1]}`, (bytes) => bytes.slice(0, 700));
  const { recovery, last } = await recoverAndCheck(fs, "/d", "middle");
  assert.ok(recovery.corruption !== null);
  assert.equal(recovery.corruption.file, `/d/log/${names[1]}`);
  assert.equal(recovery.corruption.reason, "record extends past end of file");
  assert.ok(last < N);
});

Deno.test("log: zero-filled tails and appended garbage lose nothing acknowledged", async () => {
  for (const preallocate of [true, false]) {
    // Zeros after the last record: end of log.
    let fs = newFaultFs();
    let names = await build(fs, "/d", preallocate);
    const lastPath = `/d/log/${names[names.length - 1]}`;
    fs.corrupt(lastPath, (b) => {
      const out = new Uint8Array(b.length + 5000);
      out.set(b);
      return out;
    });
    let r = await recoverAndCheck(fs, "/d", "zeros");
    assert.equal(r.last, N);
    assert.equal(r.recovery.corruption, null);
    // Garbage after the last record: a torn tail, cut.
    fs = newFaultFs();
    names = await build(fs, "/d", preallocate);
    fs.corrupt(`/d/log/${names[names.length - 1]}`, (b) => {
      const end = lastRecordOffset(b) + 122;
      const out = new Uint8Array(Math.max(b.length, end + 300));
      out.set(b);
      for (let i = 0; i < 300; i++) out[end + i] = (i * 37 + 11) & 0xff;
      return out;
    });
    r = await recoverAndCheck(fs, "/d", "garbage");
    assert.equal(r.last, N);
    assert.equal(r.recovery.cuts.length, 1);
    // The last record zeroed (a torn write into a preallocated segment): cut, reported.
    fs = newFaultFs();
    names = await build(fs, "/d", preallocate);
    fs.corrupt(`/d/log/${names[names.length - 1]}`, (b) => {
      const at = lastRecordOffset(b);
      b.fill(0, at + 40);
      return b;
    });
    r = await recoverAndCheck(fs, "/d", "zeroed last record");
    assert.equal(r.last, N - 1);
    assert.equal(r.recovery.corruption, null);
  }
});

async function missingMiddle(fs: FileSystem, dir: string): Promise<LogRecovery> {
  const names = await build(fs, dir, true);
  assert.ok(names.length >= 4);
  fs.remove(`${dir}/log/${names[2]}`);
  const { recovery, last } = await recoverAndCheck(fs, dir, "missing segment");
  assert.ok(recovery.corruption !== null);
  assert.match(recovery.corruption.reason, /missing entries/);
  // Everything before the hole is kept; the segments after it are set aside.
  const { store } = await FileLogStore.open(fs, dir, { onEvent: collector().sink });
  assert.equal(store.lastIndex(), last);
  await store.close();
  assert.ok(fs.readDir(`${dir}/log/corrupt`).length >= names.length - 3);
  return recovery;
}

Deno.test("log: a missing middle segment keeps the prefix and sets the rest aside", async () => {
  const recovery = await missingMiddle(newFaultFs(), "/d");
  assert.ok(recovery.corruption!.highestSeen >= N);
});

Deno.test("log: real files — flipped bytes and a missing segment in a temporary directory", async () => {
  await withTempDir(async (dir) => {
    await missingMiddle(new DenoFileSystem(), `${dir}/a`);
    const fs = new DenoFileSystem();
    fs.mkdir(`${dir}/b`);
    const names = await build(fs, `${dir}/b`, true);
    const path = `${dir}/b/log/${names[0]}`;
    const bytes = Deno.readFileSync(path);
    bytes[32 + 122 * 3 + 50]! ^= 0x10; // inside the payload of entry 4
    Deno.writeFileSync(path, bytes);
    const { recovery, last } = await recoverAndCheck(fs, `${dir}/b`, "real flip");
    assert.equal(last, 3);
    assert.equal(recovery.corruption?.offset, 32 + 122 * 3);
    assert.equal(recovery.corruption?.reason, "payload checksum mismatch");
  });
});
