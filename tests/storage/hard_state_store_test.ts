import assert from "node:assert/strict";
import { MachineStoppedError } from "../../src/storage/fault_fs.ts";
import { FileHardStateStore } from "../../src/storage/file_hard_state_store.ts";
import { DenoFileSystem } from "../../src/storage/fs.ts";
import { MemoryHardStateStore } from "../../src/storage/memory_hard_state_store.ts";
import {
  type HardStateStore,
  INITIAL_HARD_STATE,
  type StoredHardState,
} from "../../src/storage/types.ts";
import { createPrng, randomInt } from "../../src/util/prng.ts";
import { newFaultFs, withTempDir } from "./helpers.ts";

const A: StoredHardState = { ...INITIAL_HARD_STATE, term: 3, vote: "n2", commit: 17 };
const B: StoredHardState = {
  term: 4,
  vote: null,
  commit: 20,
  firstIndex: 11,
  installingSnapshot: true,
  lostAfter: 25,
};

/** The conformance suite every HardStateStore passes. */
async function hardStateConformance(
  t: Deno.TestContext,
  factory: () => { store: HardStateStore; reopen: () => HardStateStore },
) {
  await t.step("a new store loads the initial state", () => {
    const { store } = factory();
    assert.deepEqual(store.load(), INITIAL_HARD_STATE);
    store.close();
  });
  await t.step("a saved state is loaded back, also after reopening", async () => {
    const { store, reopen } = factory();
    await store.save(A);
    await store.save(B);
    assert.deepEqual(store.load(), B);
    store.close();
    const again = reopen();
    assert.deepEqual(again.load(), B);
    again.close();
  });
  await t.step("a malformed state is refused before it is written", () => {
    const { store } = factory();
    assert.throws(() => store.save({ ...A, term: -1 }), /bad hard state/);
    assert.throws(() => store.save({ ...A, firstIndex: 0 }), /bad hard state/);
    store.close();
  });
}

Deno.test("memory hard state store conforms", async (t) => {
  await hardStateConformance(t, () => {
    const store = new MemoryHardStateStore();
    return { store, reopen: () => store };
  });
});

Deno.test("file hard state store conforms on the fault-injecting file system", async (t) => {
  await hardStateConformance(t, () => {
    const fs = newFaultFs();
    return {
      store: FileHardStateStore.open(fs, "/d"),
      reopen: () => {
        fs.crash("drop");
        return FileHardStateStore.open(fs, "/d");
      },
    };
  });
});

Deno.test("file hard state store conforms on the real file system", async (t) => {
  await withTempDir(async (dir) => {
    let n = 0;
    await hardStateConformance(t, () => {
      const sub = `${dir}/${n++}`;
      return {
        store: FileHardStateStore.open(new DenoFileSystem(), sub),
        reopen: () => FileHardStateStore.open(new DenoFileSystem(), sub),
      };
    });
  });
});

Deno.test("hard state: a crash at any point leaves the old or the new state", async () => {
  for (let k = 0; k < 12; k++) {
    for (const mode of ["drop", "keep", "tear"] as const) {
      const fs = newFaultFs();
      const store = FileHardStateStore.open(fs, "/d");
      await store.save(A);
      fs.crashAfter(k);
      let acked = false;
      try {
        await store.save(B);
        acked = true;
      } catch (error) {
        assert.ok(error instanceof MachineStoppedError);
      }
      fs.crash(mode, createPrng(k));
      const loaded = FileHardStateStore.open(fs, "/d").load();
      if (acked) assert.deepEqual(loaded, B, `k=${k} ${mode}: acknowledged save lost`);
      else assert.ok([A, B].some((s) => JSON.stringify(s) === JSON.stringify(loaded)), `k=${k}`);
      assert.equal(fs.stat("/d/hardstate.tmp"), null, "stray temporary removed");
    }
  }
});

Deno.test("hard state: one damaged copy is survived, both damaged refuses to start", async () => {
  let survived = 0;
  for (let seed = 0; seed < 100; seed++) {
    const fs = newFaultFs();
    const store = FileHardStateStore.open(fs, "/d");
    await store.save(B);
    const random = createPrng(seed);
    fs.corrupt("/d/hardstate", (b) => {
      b[randomInt(random, 0, b.length - 1)]! ^= randomInt(random, 1, 255);
      return b;
    });
    const again = FileHardStateStore.open(fs, "/d");
    assert.deepEqual(again.load(), B, `seed=${seed}`);
    if (again.damagedCopy) survived++;
  }
  assert.ok(survived > 40);
  const fs = newFaultFs();
  await FileHardStateStore.open(fs, "/d").save(B);
  fs.corrupt("/d/hardstate", (b) => {
    b[5]! ^= 1;
    b[b.length - 5]! ^= 1;
    return b;
  });
  assert.throws(() => FileHardStateStore.open(fs, "/d"), { code: "ERR_LOG_CORRUPT" });
  fs.corrupt("/d/hardstate", (b) => b.slice(0, 7));
  assert.throws(() => FileHardStateStore.open(fs, "/d"), /Corrupt hard state/);
});

Deno.test("hard state: a missing file beside an existing log refuses to start", () => {
  const fs = newFaultFs();
  FileHardStateStore.open(fs, "/d");
  fs.mkdir("/d/log");
  fs.remove("/d/hardstate");
  assert.throws(() => FileHardStateStore.open(fs, "/d"), /file missing/);
});
