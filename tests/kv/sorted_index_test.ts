import assert from "node:assert/strict";
import { type KvRecord, type Leaf, SortedIndex } from "../../src/kv/sorted_index.ts";
import { createPrng, randomInt } from "../../src/util/prng.ts";

function record(revision: number): KvRecord {
  return { value: new Uint8Array(0), revision, keyBytes: 1 };
}

function flatten(leaves: readonly (Leaf | undefined)[]): [string, number][] {
  return leaves.flatMap((leaf) =>
    leaf!.keys.map((k, i): [string, number] => [k, leaf!.records[i]!.revision])
  );
}

function modelEntries(model: Map<string, number>): [string, number][] {
  return [...model].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

Deno.test("the index matches a sorted model and frozen views never change", () => {
  const random = createPrng(31337);
  const index = new SortedIndex();
  const model = new Map<string, number>();
  const views: { leaves: Leaf[]; expected: [string, number][] }[] = [];
  for (let step = 1; step <= 60_000; step++) {
    // Phases of growth and shrinkage exercise splits, merges and emptied leaves.
    const growing = Math.floor(step / 15_000) % 2 === 0;
    const key = `k${randomInt(random, 0, 5000).toString(36)}`;
    if (random() < (growing ? 0.8 : 0.15)) {
      index.set(key, record(step));
      model.set(key, step);
    } else {
      assert.equal(index.delete(key), model.delete(key));
    }
    if (step % 5000 === 0) views.push({ leaves: index.freeze(), expected: modelEntries(model) });
  }
  assert.equal(index.size, model.size);
  const all: [string, number][] = [];
  index.scanFrom("", (key, rec) => {
    all.push([key, rec.revision]);
    return true;
  });
  assert.deepEqual(all, modelEntries(model));
  for (const [key, revision] of model) assert.equal(index.get(key)?.revision, revision);
  for (const view of views) assert.deepEqual(flatten(view.leaves), view.expected);
  for (const view of views) {
    for (const leaf of view.leaves) assert.ok(leaf.keys.length > 0, "no empty leaf");
  }
});
