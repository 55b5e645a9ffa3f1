/**
 * Linearizable reads with ReadIndex (Raft §8, thesis §6.4): the leader records its commit
 * index, confirms it is still leader with a heartbeat round, and only then releases the read.
 */

import assert from "node:assert/strict";
import { bootRaft, Cluster, readyAndAdvance } from "./harness.ts";
import type { HeartbeatRequest } from "../../src/raft/types.ts";

Deno.test("§8: the leader releases a read once a quorum acknowledged a heartbeat round", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  cluster.propose("a", "x");
  cluster.stabilize();
  const a = cluster.raft("a");
  a.readIndex("r1");
  a.readIndex("r2");
  const rd = a.ready();
  assert.ok(rd !== null);
  assert.deepEqual(rd.readStates, [], "not before leadership is confirmed");
  const rounds = rd.messages.filter((m): m is HeartbeatRequest => m.type === "heartbeat");
  // One round serves every read that arrived before it was sent.
  assert.deepEqual(rounds.map((m) => [m.to, m.readSeq]), [["b", 1], ["c", 1]]);
  cluster.handleReady("a", rd);
  cluster.stabilize();
  assert.deepEqual(cluster.node("a").readStates, [
    { requestId: "r1", index: 2 },
    { requestId: "r2", index: 2 },
  ]);
});

Deno.test("§8: a leader that cannot reach a quorum never releases a read", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  cluster.isolate("b");
  cluster.isolate("c");
  cluster.raft("a").readIndex("r1");
  cluster.tick("a", 5);
  assert.deepEqual(cluster.node("a").readStates, []);
  // One acknowledgement besides the leader's own is a quorum of three.
  cluster.heal();
  cluster.isolate("c");
  cluster.tick("a");
  assert.deepEqual(cluster.node("a").readStates, [{ requestId: "r1", index: 1 }]);
});

Deno.test("§8: a new leader holds reads until an entry of its term commits", () => {
  // Without check-quorum c grants its vote although it heard from a moments ago.
  const cluster = new Cluster({ voters: ["a", "b", "c"], config: { checkQuorum: false } });
  cluster.elect("a");
  cluster.propose("a", "x");
  cluster.stabilize();
  cluster.crash("a");
  // b wins c's vote, but its no-op (index 3) does not reach c yet.
  cluster.filters.push((m) => (m.type === "append" && m.from === "b" ? null : m));
  cluster.elect("b");
  const b = cluster.raft("b");
  assert.equal(b.status().commit, 2);
  b.readIndex("r1");
  // The read is parked: no heartbeat round starts, nothing is released.
  assert.equal(b.ready(), null);
  cluster.heal();
  cluster.tick("b", 2);
  // The read point is the new leader's commit index, which includes its no-op.
  assert.deepEqual(cluster.node("b").readStates, [{ requestId: "r1", index: 3 }]);
});

Deno.test("§8: a single-voter leader answers reads at once", () => {
  const raft = bootRaft("a", { voters: ["a"] });
  while (raft.status().role !== "leader") raft.tick();
  readyAndAdvance(raft);
  readyAndAdvance(raft); // the no-op commits
  raft.readIndex("r1");
  const rd = readyAndAdvance(raft);
  assert.deepEqual(rd.readStates, [{ requestId: "r1", index: 1 }]);
  assert.deepEqual(rd.messages, []);
});

Deno.test("§8: a follower forwards a read to the leader and reports the leader's index", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  cluster.propose("a", "x");
  cluster.stabilize();
  cluster.raft("b").readIndex("r1");
  cluster.stabilize();
  assert.deepEqual(cluster.node("b").readStates, [{ requestId: "r1", index: 2 }]);
  const kinds = cluster.delivered.filter((m) => m.type.startsWith("read_index"));
  assert.deepEqual(kinds.map((m) => [m.type, m.from, m.to]), [
    ["read_index", "b", "a"],
    ["read_index_response", "a", "b"],
  ]);
});

Deno.test("§8: a node that knows no leader drops a read with no_leader", () => {
  const raft = bootRaft("a");
  raft.readIndex("r1");
  assert.deepEqual(readyAndAdvance(raft).droppedReads, [{ requestId: "r1", reason: "no_leader" }]);
});

Deno.test("§8: reads pending when the leader steps down are dropped with not_leader", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"], config: { checkQuorum: true } });
  cluster.elect("a");
  cluster.isolate("a");
  cluster.raft("a").readIndex("r1");
  cluster.tick("a", 25);
  assert.equal(cluster.raft("a").status().role, "follower");
  assert.deepEqual(cluster.node("a").readStates, []);
  assert.deepEqual(cluster.node("a").droppedReads, [{ requestId: "r1", reason: "not_leader" }]);
});

Deno.test("§8: a read forwarded to a leader that is replaced is dropped", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  const undo = cluster.isolate("a");
  cluster.raft("b").readIndex("r1");
  cluster.stabilize();
  cluster.tick("b", 25); // the lease runs out, b and c elect a new leader
  undo();
  cluster.stabilize();
  assert.notEqual(cluster.raft("b").status().leader, "a");
  assert.deepEqual(cluster.node("b").droppedReads, [{ requestId: "r1", reason: "not_leader" }]);
  assert.deepEqual(cluster.node("b").readStates, []);
});
