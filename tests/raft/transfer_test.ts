/**
 * Leadership transfer (thesis §3.10): the leader stops accepting proposals, catches the
 * target up, sends TimeoutNow, and gives up after an election timeout.
 */

import assert from "node:assert/strict";
import { Cluster } from "./harness.ts";

Deno.test("§3.10: a transfer to an up-to-date follower makes it leader despite the lease", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"], config: { checkQuorum: true } });
  cluster.elect("a");
  assert.equal(cluster.raft("a").transferLeadership("b"), true);
  assert.equal(cluster.raft("a").status().transferee, "b");
  cluster.stabilize();
  assert.deepEqual(cluster.leaders(), ["b"]);
  assert.equal(cluster.raft("b").status().term, 2);
  assert.equal(cluster.raft("a").status().transferee, null);
  assert.ok(cluster.delivered.some((m) => m.type === "timeout_now" && m.to === "b"));
});

Deno.test("§3.10: a lagging target is caught up before it gets TimeoutNow", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  const undo = cluster.isolate("b");
  for (let i = 0; i < 5; i++) cluster.propose("a", `v${i}`);
  cluster.stabilize();
  undo();
  let targetLastIndex = -1;
  cluster.filters.push((m) => {
    if (m.type === "timeout_now") targetLastIndex = cluster.raft("b").status().lastIndex;
    return m;
  });
  assert.equal(cluster.raft("a").transferLeadership("b"), true);
  cluster.stabilize();
  assert.equal(targetLastIndex, 6, "b held the leader's whole log when told to campaign");
  assert.deepEqual(cluster.leaders(), ["b"]);
  assert.deepEqual(cluster.node("b").stateMachine, ["v0", "v1", "v2", "v3", "v4"]);
});

Deno.test("§3.10: proposals and reads are refused while a transfer is in progress", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  cluster.isolate("b");
  const a = cluster.raft("a");
  assert.equal(a.transferLeadership("b"), true);
  assert.deepEqual(cluster.propose("a", "x"), { ok: false, reason: "transferring", leader: "a" });
  assert.deepEqual(a.proposeConfChange({ kind: "remove", id: "c" }), {
    ok: false,
    reason: "transferring",
    leader: "a",
  });
  a.readIndex("r1");
  cluster.stabilize();
  assert.deepEqual(cluster.node("a").droppedReads, [{ requestId: "r1", reason: "transferring" }]);
});

Deno.test("§3.10: a transfer that does not finish within an election timeout is aborted", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  cluster.isolate("b");
  const a = cluster.raft("a");
  assert.equal(a.transferLeadership("b"), true);
  cluster.tick("a", 9);
  assert.equal(a.status().transferee, "b");
  cluster.tick("a", 1);
  assert.equal(a.status().transferee, null);
  assert.equal(a.status().role, "leader");
  assert.ok(cluster.propose("a", "x").ok);
});

Deno.test("§3.10: transferLeadership is refused when not leader or the target is no voter", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"], learners: ["l"] });
  cluster.elect("a");
  assert.equal(cluster.raft("b").transferLeadership("c"), false, "b is not leader");
  assert.equal(cluster.raft("a").transferLeadership("l"), false, "learner");
  assert.equal(cluster.raft("a").transferLeadership("zz"), false, "unknown");
  assert.equal(cluster.raft("a").transferLeadership("a"), false, "itself");
  assert.equal(cluster.raft("a").status().transferee, null);
});
