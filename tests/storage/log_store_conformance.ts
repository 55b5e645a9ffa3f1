/**
 * One conformance suite for every {@linkcode LogStore} implementation (STYLE.md item 4):
 * `logStoreConformance(t, factory)` runs the same steps against the file store (on the
 * fault-injecting and on the real file system) and the in-memory twin.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { LogStore } from "../../src/storage/types.ts";
import { entries, entry, isIntact } from "./helpers.ts";

/** Makes a fresh, empty store; `done` releases what it used. */
export type LogStoreFactory = () => Promise<{ store: LogStore; done: () => Promise<void> }>;

async function withStore(factory: LogStoreFactory, fn: (s: LogStore) => Promise<void>) {
  const { store, done } = await factory();
  try {
    await fn(store);
  } finally {
    await store.close();
    await done();
  }
}

/** Runs the suite as steps of `t`. */
export async function logStoreConformance(t: Deno.TestContext, factory: LogStoreFactory) {
  await t.step("a new log is empty at index 1", () =>
    withStore(factory, (s) => {
      assert.equal(s.firstIndex(), 1);
      assert.equal(s.lastIndex(), 0);
      assert.equal(s.term(0), undefined);
      assert.deepEqual(s.entries(1, 1), []);
      return Promise.resolve();
    }));

  await t.step(
    "appended entries read back and become durable",
    () =>
      withStore(factory, async (s) => {
        const durable = await s.append(entries(1, 5, 1, 20));
        assert.equal(durable, 5);
        assert.equal(s.durableIndex(), 5);
        assert.equal(s.lastIndex(), 5);
        const got = s.entries(1, 6);
        assert.equal(got.length, 5);
        got.forEach((e, i) => {
          assert.equal(e.index, i + 1);
          assert.ok(isIntact(e));
        });
        assert.equal(s.term(3), 1);
      }),
  );

  await t.step("appends in one tick share one group commit", () =>
    withStore(factory, async (s) => {
      const a = s.append([entry(1, 1)]);
      const b = s.append([entry(2, 1)]);
      const c = s.append([entry(3, 2)]);
      assert.equal(s.lastIndex(), 3);
      assert.deepEqual(s.entries(2, 4).map((e) => e.index), [2, 3]); // readable before sync
      assert.deepEqual(await Promise.all([a, b, c]), [3, 3, 3]);
    }));

  await t.step(
    "an append at a stored index replaces it and every later one (Raft §5.3)",
    () =>
      withStore(factory, async (s) => {
        await s.append(entries(1, 6, 1));
        await s.append([entry(4, 2), entry(5, 2)]);
        assert.equal(s.lastIndex(), 5);
        assert.deepEqual(s.entries(1, 6).map((e) => e.term), [1, 1, 1, 2, 2]);
        assert.ok(s.entries(1, 6).every(isIntact));
      }),
  );

  await t.step(
    "truncateSuffix drops the conflicting suffix",
    () =>
      withStore(factory, async (s) => {
        await s.append(entries(1, 10, 1));
        await s.truncateSuffix(7);
        assert.equal(s.lastIndex(), 6);
        assert.equal(s.term(7), undefined);
        await s.truncateSuffix(20); // past the end: nothing
        assert.equal(s.lastIndex(), 6);
        await s.append(entries(7, 8, 3));
        assert.deepEqual(s.entries(5, 9).map((e) => [e.index, e.term]), [[5, 1], [6, 1], [7, 3], [
          8,
          3,
        ]]);
      }),
  );

  await t.step(
    "compactPrefix moves the first index past a snapshot",
    () =>
      withStore(factory, async (s) => {
        await s.append(entries(1, 50, 1, 64));
        await s.compactPrefix(30);
        assert.equal(s.firstIndex(), 31);
        assert.equal(s.term(30), undefined);
        assert.equal(s.entries(31, 51).length, 20);
        await s.append([entry(51, 2)]);
        assert.equal(s.lastIndex(), 51);
        await s.compactPrefix(10); // already compacted: nothing
        assert.equal(s.firstIndex(), 31);
        await s.compactPrefix(60); // past the end: the log restarts after it
        assert.equal(s.firstIndex(), 61);
        assert.equal(s.lastIndex(), 60);
      }),
  );

  await t.step("reset restarts the log at a snapshot point", () =>
    withStore(factory, async (s) => {
      await s.append(entries(1, 5, 1));
      await s.reset(100);
      assert.equal(s.firstIndex(), 100);
      assert.equal(s.lastIndex(), 99);
      await s.append(entries(100, 102, 4));
      assert.deepEqual(s.entries(100, 103).map((e) => e.index), [100, 101, 102]);
    }));

  await t.step(
    "entries stops at maxBytes but returns at least one",
    () =>
      withStore(factory, async (s) => {
        await s.append(entries(1, 10, 1, 100));
        assert.equal(s.entries(1, 11, 1).length, 1);
        assert.equal(s.entries(1, 11, 3 * 132).length, 3);
      }),
  );

  await t.step(
    "appends that would leave a gap or lower the term are bugs",
    () =>
      withStore(factory, async (s) => {
        await s.append(entries(1, 3, 2));
        assert.throws(() => s.append([entry(5, 2)]), /gap/);
        assert.throws(() => s.append([entry(4, 1)]), /term goes down/);
      }),
  );
}
