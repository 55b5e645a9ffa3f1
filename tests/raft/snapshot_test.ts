/**
 * Log compaction and InstallSnapshot (Raft §7).
 */

import assert from "node:assert/strict";
import { bootRaft, Cluster, entriesFromTerms, membershipOf, readyAndAdvance } from "./harness.ts";
import type { AppendResponse, SnapshotMeta } from "../../src/raft/types.ts";

function snapshotAt(index: number, term: number): SnapshotMeta {
  return { index, term, membership: membershipOf(["a", "b", "c"]) };
}

Deno.test("§7: snapshotTaken drops in-memory entries up to the snapshot", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  for (let i = 0; i < 10; i++) cluster.propose("a", `v${i}`);
  cluster.stabilize();
  const meta = cluster.takeSnapshot("a");
  assert.equal(meta.index, 11);
  const status = cluster.raft("a").status();
  assert.equal(status.firstIndex, 12);
  assert.equal(status.lastIndex, 11);
  assert.equal(status.lastTerm, 1, "the snapshot's term stands for the compacted log");
  assert.deepEqual(status.snapshot, meta);
  // Replication continues from the snapshot point.
  cluster.propose("a", "after");
  cluster.stabilize();
  assert.equal(cluster.node("b").stateMachine.at(-1), "after");
});

Deno.test("§7: snapshotTaken past the applied index is a bug", () => {
  const raft = bootRaft("a", { entries: entriesFromTerms([1, 1, 1]), term: 1, commit: 3 });
  assert.throws(() => raft.snapshotTaken(snapshotAt(2, 1)), /past applied/);
});

Deno.test("§7: a follower behind the leader's first index gets a snapshot and catches up", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  cluster.crash("c");
  for (let i = 0; i < 10; i++) cluster.propose("a", `v${i}`);
  cluster.stabilize();
  const meta = cluster.takeSnapshot("a");
  cluster.propose("a", "tail");
  cluster.stabilize();
  let stateWhenSent: string | undefined;
  cluster.filters.push((m) => {
    if (m.type === "snapshot") {
      stateWhenSent = cluster.raft("a").status().progress.find((p) => p.id === "c")?.state;
    }
    return m;
  });
  cluster.restart("c");
  cluster.tick("a", 3);
  assert.equal(stateWhenSent, "snapshot");
  const snapshots = cluster.delivered.filter((m) => m.type === "snapshot");
  assert.equal(snapshots.length, 1);
  assert.deepEqual(snapshots[0]?.type === "snapshot" && snapshots[0].snapshot, meta);
  const installed = cluster.node("c").readies.filter((rd) => rd.snapshot !== null);
  assert.equal(installed.length, 1);
  assert.deepEqual(cluster.node("c").stateMachine, cluster.node("a").stateMachine);
  assert.equal(cluster.node("c").stateMachine.at(-1), "tail");
  const status = cluster.raft("c").status();
  assert.equal(status.firstIndex, meta.index + 1);
  assert.equal(status.applied, 12);
  assert.equal(
    cluster.raft("a").status().progress.find((p) => p.id === "c")?.state,
    "replicate",
  );
});

Deno.test("§7: a follower installs a newer snapshot and acknowledges it after persisting", () => {
  const raft = bootRaft("b", { entries: entriesFromTerms([1, 1]), term: 1, commit: 1 });
  const meta = snapshotAt(10, 2);
  raft.step({ type: "snapshot", from: "a", to: "b", term: 2, snapshot: meta });
  const rd = readyAndAdvance(raft);
  assert.deepEqual(rd.snapshot, meta);
  assert.deepEqual(rd.committedEntries, []);
  assert.deepEqual(rd.hardState, { term: 2, vote: null, commit: 10 });
  assert.deepEqual(rd.messages, []);
  const [response] = rd.messagesAfterPersist as AppendResponse[];
  assert.deepEqual([response?.type, response?.success, response?.index], [
    "append_response",
    true,
    10,
  ]);
  const status = raft.status();
  assert.deepEqual([status.firstIndex, status.lastIndex, status.commit, status.applied], [
    11,
    10,
    10,
    10,
  ]);
  assert.equal(status.lastTerm, 2);
});

Deno.test("§7: a follower ignores a stale snapshot but answers with its commit index", () => {
  const raft = bootRaft("b", { entries: entriesFromTerms([1, 1, 1, 1, 1]), term: 1, commit: 5 });
  readyAndAdvance(raft); // applies 1..5
  raft.step({ type: "snapshot", from: "a", to: "b", term: 1, snapshot: snapshotAt(3, 1) });
  const rd = readyAndAdvance(raft);
  assert.equal(rd.snapshot, null);
  const [response] = rd.messagesAfterPersist as AppendResponse[];
  assert.deepEqual([response?.success, response?.index], [true, 5]);
  assert.equal(raft.status().lastIndex, 5);
});

Deno.test("§7: a node restarts from its snapshot and the entries after it", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  for (let i = 0; i < 5; i++) cluster.propose("a", `v${i}`);
  cluster.stabilize();
  cluster.takeSnapshot("b");
  cluster.propose("a", "v5");
  cluster.stabilize();
  cluster.crash("b");
  cluster.restart("b");
  const status = cluster.raft("b").status();
  assert.equal(status.firstIndex, 7);
  assert.equal(status.lastIndex, 7);
  assert.equal(status.commit, 7);
  cluster.stabilize();
  assert.deepEqual(cluster.node("b").stateMachine, ["v0", "v1", "v2", "v3", "v4", "v5"]);
});

Deno.test("§7: a failed snapshot transfer sends the follower back to probing", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  cluster.crash("c");
  cluster.propose("a", "x");
  cluster.stabilize();
  cluster.takeSnapshot("a");
  cluster.restart("c");
  const a = cluster.raft("a");
  const state = () => a.status().progress.find((p) => p.id === "c")?.state;
  // The snapshot never arrives: the harness, like the driver, reports the failed stream.
  const seen: Array<string | undefined> = [];
  cluster.filters.push((m) => {
    if (m.type !== "snapshot") return m;
    seen.push(state());
    return null;
  });
  cluster.tick("a");
  assert.deepEqual(seen, ["snapshot"]);
  assert.equal(state(), "probe");
  cluster.heal();
  cluster.tick("a", 3);
  assert.equal(state(), "replicate");
  assert.deepEqual(cluster.node("c").stateMachine, ["x"]);
});
