/**
 * The simulator's building blocks: event order, the disk model's Ready-contract semantics,
 * network cuts, and the register state machine's digest.
 */

import assert from "node:assert/strict";
import { type Entry, EntryType } from "../../src/raft/types.ts";
import { createPrng } from "../../src/util/prng.ts";
import { EventQueue } from "../../src/sim/event_queue.ts";
import { calmLinks, SimNetwork } from "../../src/sim/network.ts";
import { encodeWrite, RegisterState } from "../../src/sim/register_state.ts";
import { SimDisk } from "../../src/sim/sim_disk.ts";

function entry(index: number, term: number): Entry {
  return { index, term, type: EntryType.Normal, data: encodeWrite("k", `w${index}.${term}`) };
}

Deno.test("events run in time order, ties in scheduling order", () => {
  const queue = new EventQueue<string>();
  queue.push(5, "c");
  queue.push(1, "a");
  queue.push(5, "d");
  queue.push(1, "b");
  queue.push(3, "x");
  for (let i = 0; i < 50; i++) queue.push(9, `t${i}`);
  const order: string[] = [];
  for (let e = queue.pop(); e !== undefined; e = queue.pop()) order.push(e.value);
  assert.deepEqual(order.slice(0, 5), ["a", "b", "x", "c", "d"]);
  assert.deepEqual(order.slice(5), Array.from({ length: 50 }, (_, i) => `t${i}`));
});

Deno.test("an entry at a stored index replaces it and everything after (Ready step 3)", () => {
  const disk = new SimDisk();
  assert.equal(disk.append([entry(1, 1), entry(2, 1), entry(3, 1)]), null);
  assert.equal(disk.append([entry(2, 2)]), null);
  assert.equal(disk.lastIndex, 2);
  assert.equal(disk.termAt(2), 2);
  assert.equal(disk.termAt(3), undefined);
  assert.match(disk.append([entry(5, 2)]) ?? "", /start at 5/);
});

Deno.test("a taken snapshot keeps the suffix; an installed one replaces the log", () => {
  const state = new RegisterState().snapshot();
  const membership = { members: [{ id: "n1", address: "", voter: true }] };
  const disk = new SimDisk();
  disk.append([entry(1, 1), entry(2, 1), entry(3, 2)]);
  disk.storeSnapshot({ meta: { index: 2, term: 1, membership }, state }, true);
  assert.equal(disk.firstIndex, 3);
  assert.equal(disk.lastIndex, 3);
  assert.equal(disk.termAt(2), 1);
  assert.equal(disk.entryAt(3)?.term, 2);
  // Entries at or below the snapshot are ignored on append.
  assert.equal(disk.append([entry(2, 1), entry(3, 2), entry(4, 2)]), null);
  assert.equal(disk.lastIndex, 4);
  disk.storeSnapshot({ meta: { index: 10, term: 3, membership }, state }, false);
  assert.equal(disk.lastIndex, 10);
  assert.deepEqual(disk.entries(), []);
});

Deno.test("partitions cut links between groups, one-way cuts only one direction", () => {
  const network = new SimNetwork(createPrng(1), calmLinks(1, 2));
  network.partition([["n1"], ["n2", "n3"]]);
  assert.equal(network.route("n1", "n2").kind, "blocked");
  assert.equal(network.route("n3", "n1").kind, "blocked");
  assert.equal(network.route("n2", "n3").kind, "deliver");
  network.heal();
  network.block("n1", "n2");
  assert.equal(network.route("n1", "n2").kind, "blocked");
  assert.equal(network.route("n2", "n1").kind, "deliver");
});

Deno.test("loss and duplication follow the link quality", () => {
  const network = new SimNetwork(createPrng(7), {
    ...calmLinks(1, 5),
    lossRate: 0.5,
    duplicateRate: 0.5,
  });
  const kinds = { lost: 0, one: 0, two: 0 };
  for (let i = 0; i < 2000; i++) {
    const fate = network.route("a", "b");
    if (fate.kind === "lost") kinds.lost++;
    else if (fate.kind === "deliver") {
      for (const d of fate.delaysMs) assert.ok(d >= 1 && d <= 5);
      if (fate.delaysMs.length === 2) kinds.two++;
      else kinds.one++;
    }
  }
  assert.ok(kinds.lost > 800 && kinds.lost < 1200, JSON.stringify(kinds));
  assert.ok(kinds.two > 350 && kinds.one > 350, JSON.stringify(kinds));
});

Deno.test("replicas that apply the same entries have equal digests; a snapshot carries it", () => {
  const a = new RegisterState();
  const b = new RegisterState();
  for (const e of [entry(1, 1), entry(2, 1)]) {
    a.apply(e);
    b.apply(e);
  }
  assert.equal(a.digest, b.digest);
  assert.deepEqual(a.read("k"), ["w1.1", "w2.1"]);
  const restored = RegisterState.restore(a.snapshot());
  restored.apply(entry(3, 2));
  b.apply(entry(3, 2));
  assert.equal(restored.digest, b.digest);
  const c = new RegisterState();
  c.apply(entry(1, 1));
  c.apply(entry(2, 2));
  assert.notEqual(c.digest, a.digest);
});
