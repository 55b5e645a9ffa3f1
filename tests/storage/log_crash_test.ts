/**
 * Crash-point tests of the file log: the fault-injecting file system stops the machine after
 * the k-th mutating operation of a workload, for every k, and reboots dropping (or keeping, or
 * tearing) whatever was not synced. Recovery must then hold:
 * - no acknowledged entry lost (unless the workload itself superseded it);
 * - no entry invented: every entry read back was written by the workload, intact;
 * - a crash alone is never reported as corruption (only torn tails are cut);
 * - the recovered log accepts appends and survives another restart.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Entry } from "../../src/raft/types.ts";
import {
  type CrashMode,
  type FaultFileSystem,
  MachineStoppedError,
} from "../../src/storage/fault_fs.ts";
import { FileLogStore, type FileLogStoreOptions } from "../../src/storage/file_log_store.ts";
import { createPrng } from "../../src/util/prng.ts";
import { collector, entries, entry, isIntact, newFaultFs } from "./helpers.ts";

interface Model {
  /** Acknowledged and not superseded: must survive. */
  mustHave: Map<number, number>;
  /** Every (index, term) ever handed to the store. */
  written: Set<string>;
  /** First index recovery must hold (snapshot index + 1). */
  hint: number;
}

async function workload(store: FileLogStore, m: Model): Promise<void> {
  const append = async (batch: Entry[]) => {
    const head = batch[0]!;
    for (const i of [...m.mustHave.keys()]) if (i >= head.index) m.mustHave.delete(i);
    for (const e of batch) m.written.add(`${e.index}/${e.term}`);
    await store.append(batch);
    for (const e of batch) m.mustHave.set(e.index, e.term);
  };
  // Group commit: three appends in one tick.
  await Promise.all([
    append(entries(1, 3, 1, 40)),
    append(entries(4, 4, 1, 40)),
    append(entries(5, 9, 2, 40)),
  ]);
  for (let i = 10; i <= 60; i += 5) await append(entries(i, i + 4, 2, 90)); // rolls segments
  await append(entries(50, 55, 3, 30)); // overwrite a suffix
  for (const i of [...m.mustHave.keys()]) if (i >= 40) m.mustHave.delete(i);
  await store.truncateSuffix(40);
  await append(entries(40, 70, 4, 60));
  m.hint = 31;
  for (const i of [...m.mustHave.keys()]) if (i <= 30) m.mustHave.delete(i);
  await store.compactPrefix(30);
  await append([entry(71, 5, 500)]);
  m.hint = 200;
  m.mustHave.clear();
  await store.reset(200);
  await append(entries(200, 210, 6, 100));
}

const OPTIONS: FileLogStoreOptions = { segmentBytes: 4096 };

async function runOnce(
  k: number,
  mode: CrashMode,
  seed: number,
  preallocate: boolean,
): Promise<{ crashed: boolean; ops: number }> {
  const fs: FaultFileSystem = newFaultFs();
  const model: Model = { mustHave: new Map(), written: new Set(), hint: 1 };
  const c = collector();
  const opts = { ...OPTIONS, preallocate, onEvent: c.sink };
  const { store } = await FileLogStore.open(fs, "/d", opts);
  const baseline = fs.opCount;
  fs.crashAfter(k);
  let crashed = false;
  try {
    await workload(store, model);
    await store.close();
  } catch (error) {
    if (!(error instanceof MachineStoppedError) && !fs.stopped) throw error;
    crashed = true;
  }
  const ops = fs.opCount - baseline;
  fs.crash(mode, createPrng(seed));
  const where = `k=${k} mode=${mode} seed=${seed} preallocate=${preallocate}`;
  const { store: again, recovery } = await FileLogStore.open(fs, "/d", {
    ...opts,
    firstIndex: model.hint,
  });
  assert.equal(recovery.corruption, null, `${where}: a crash is not corruption`);
  for (const [index, term] of model.mustHave) {
    assert.ok(index <= again.lastIndex(), `${where}: acknowledged entry ${index} lost`);
    assert.equal(again.term(index), term, `${where}: acknowledged entry ${index} changed`);
  }
  const got = again.lastIndex() >= again.firstIndex()
    ? again.entries(again.firstIndex(), again.lastIndex() + 1)
    : [];
  for (const e of got) {
    assert.ok(isIntact(e), `${where}: entry ${e.index} damaged`);
    assert.ok(model.written.has(`${e.index}/${e.term}`), `${where}: entry ${e.index} invented`);
  }
  // The recovered log keeps working.
  const next = again.lastIndex() + 1;
  const lastTerm = again.term(again.lastIndex()) ?? 1;
  await again.append(entries(next, next + 2, Math.max(lastTerm, 7), 50));
  await again.close();
  const { store: third, recovery: r3 } = await FileLogStore.open(fs, "/d", {
    ...opts,
    firstIndex: model.hint,
  });
  assert.equal(r3.corruption, null, `${where}: second recovery`);
  assert.deepEqual(r3.cuts, [], `${where}: nothing to cut after a clean close`);
  assert.equal(third.lastIndex(), next + 2, `${where}: appends after recovery kept`);
  await third.close();
  return { crashed, ops };
}

for (const preallocate of [true, false]) {
  Deno.test(`log: a crash after any operation loses no acknowledged entry (preallocate=${preallocate})`, async () => {
    const total = (await runOnce(Number.MAX_SAFE_INTEGER, "drop", 1, preallocate)).ops;
    assert.ok(total > 50, `workload has ${total} operations`);
    let crashes = 0;
    for (let k = 0; k <= total; k++) {
      for (const mode of ["drop", "keep"] as const) {
        if ((await runOnce(k, mode, k, preallocate)).crashed) crashes++;
      }
      for (let seed = 0; seed < 3; seed++) await runOnce(k, "tear", k * 101 + seed, preallocate);
    }
    assert.ok(crashes >= 2 * total, `${crashes} crash points`);
  });
}
