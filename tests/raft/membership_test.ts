/**
 * Membership changes one server at a time (Raft §6, thesis §4.1–§4.2): learners, promotion,
 * removal, the single-pending-change rule, and rollback of an uncommitted configuration.
 */

import assert from "node:assert/strict";
import { Cluster } from "./harness.ts";
import type { Membership } from "../../src/raft/types.ts";

function ids(membership: Membership): string[] {
  return membership.members.map((m) => `${m.id}${m.voter ? "" : "(learner)"}`);
}

Deno.test("thesis §4.1: a learner receives the log but does not count toward commit", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"], learners: ["l"] });
  cluster.elect("a");
  cluster.isolate("b");
  cluster.isolate("c");
  cluster.propose("a", "x");
  cluster.stabilize();
  assert.equal(cluster.raft("l").status().lastIndex, 2, "the learner holds the entry");
  assert.equal(cluster.raft("a").status().commit, 1, "a and the learner are no quorum");
  cluster.heal();
  cluster.tick("a", 2);
  assert.equal(cluster.raft("a").status().commit, 2);
  assert.deepEqual(cluster.node("l").stateMachine, ["x"]);
});

Deno.test("thesis §4.1: a configuration is in force as soon as it is appended", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"], outsiders: ["d"] });
  cluster.elect("a");
  cluster.isolate("b");
  cluster.isolate("c");
  const result = cluster.raft("a").proposeConfChange({
    kind: "add_voter",
    id: "d",
    address: "http://d",
  });
  assert.ok(result.ok);
  const status = cluster.raft("a").status();
  assert.ok(status.commit < result.index, "not committed");
  assert.deepEqual(ids(status.membership), ["a", "b", "c", "d"]);
  assert.ok(status.progress.some((p) => p.id === "d"), "the leader replicates to d at once");
  cluster.stabilize();
  // d received the log, including its own addition, and now counts: quorum is 3 of 4.
  assert.deepEqual(ids(cluster.raft("d").status().membership), ["a", "b", "c", "d"]);
  assert.equal(cluster.raft("a").status().commit, 1, "a and d are not 3 of 4");
});

Deno.test("thesis §4.1: at most one membership change is uncommitted", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  cluster.isolate("b");
  cluster.isolate("c");
  const a = cluster.raft("a");
  assert.ok(a.proposeConfChange({ kind: "add_learner", id: "l", address: "http://l" }).ok);
  assert.deepEqual(a.proposeConfChange({ kind: "promote", id: "l" }), {
    ok: false,
    reason: "conf_change_pending",
    leader: "a",
  });
  cluster.heal();
  cluster.tick("a", 2);
  assert.ok(a.proposeConfChange({ kind: "promote", id: "l" }).ok, "accepted once committed");
});

Deno.test("thesis §4.1: invalid membership changes are refused", () => {
  const cluster = new Cluster({ voters: ["a", "b"], learners: ["l"] });
  cluster.elect("a");
  const a = cluster.raft("a");
  const invalid = [
    { kind: "remove", id: "zz" },
    { kind: "promote", id: "b" },
    { kind: "promote", id: "zz" },
    { kind: "add_voter", id: "b", address: "http://b" },
    { kind: "add_learner", id: "l", address: "http://l" },
  ] as const;
  for (const change of invalid) {
    assert.deepEqual(
      a.proposeConfChange(change),
      { ok: false, reason: "invalid_conf_change", leader: "a" },
      JSON.stringify(change),
    );
  }
  assert.deepEqual(cluster.raft("b").proposeConfChange({ kind: "remove", id: "l" }), {
    ok: false,
    reason: "not_leader",
    leader: "a",
  });
});

Deno.test("thesis §4.1: a learner is promoted and then counts toward commit", () => {
  const cluster = new Cluster({ voters: ["a", "b"], learners: ["l"] });
  cluster.elect("a");
  assert.ok(cluster.raft("a").proposeConfChange({ kind: "promote", id: "l" }).ok);
  cluster.stabilize();
  assert.deepEqual(ids(cluster.raft("l").status().membership), ["a", "b", "l"]);
  // With b gone, a and l are a quorum of three.
  cluster.isolate("b");
  cluster.propose("a", "x");
  cluster.stabilize();
  assert.deepEqual(cluster.node("l").stateMachine, ["x"]);
  assert.equal(cluster.raft("a").status().commit, cluster.raft("a").status().lastIndex);
});

Deno.test("thesis §4.1: a new server joins as a learner, catches up and is promoted", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"], outsiders: ["d"] });
  cluster.elect("a");
  for (let i = 0; i < 5; i++) cluster.propose("a", `v${i}`);
  cluster.stabilize();
  const a = cluster.raft("a");
  assert.ok(a.proposeConfChange({ kind: "add_learner", id: "d", address: "http://d" }).ok);
  cluster.stabilize();
  assert.deepEqual(cluster.node("d").stateMachine, ["v0", "v1", "v2", "v3", "v4"]);
  assert.ok(a.proposeConfChange({ kind: "promote", id: "d" }).ok);
  cluster.stabilize();
  assert.deepEqual(ids(cluster.raft("d").status().membership), ["a", "b", "c", "d"]);
  assert.equal(cluster.raft("d").status().commit, a.status().commit);
});

Deno.test("thesis §4.1: an uncommitted configuration rolls back when its entry is truncated", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  const undo = cluster.isolate("a");
  assert.ok(cluster.raft("a").proposeConfChange({ kind: "remove", id: "c" }).ok);
  cluster.stabilize();
  assert.deepEqual(ids(cluster.raft("a").status().membership), ["a", "b"]);
  // b and c elect a leader; a's uncommitted entry is overwritten when it rejoins.
  cluster.tickAll(40);
  const [leader] = cluster.leaders().filter((id) => id !== "a");
  assert.ok(leader !== undefined);
  undo();
  cluster.tick(leader, 3);
  const a = cluster.raft("a").status();
  assert.equal(a.role, "follower");
  assert.deepEqual(ids(a.membership), ["a", "b", "c"]);
  assert.equal(a.lastTerm, cluster.raft(leader).status().term);
});

Deno.test("thesis §4.2.2: a removed leader leads until the removal commits, then steps down", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  const a = cluster.raft("a");
  cluster.isolate("b");
  cluster.isolate("c");
  assert.ok(a.proposeConfChange({ kind: "remove", id: "a" }).ok);
  cluster.stabilize();
  assert.equal(a.status().role, "leader", "the removal is not committed yet");
  cluster.heal();
  cluster.tick("a", 2);
  assert.equal(a.status().role, "follower");
  for (const id of ["b", "c"]) {
    assert.deepEqual(ids(cluster.raft(id).status().membership), ["b", "c"], id);
  }
  // The remaining voters elect a leader; the removed node never campaigns again.
  cluster.tickAll(60);
  assert.equal(cluster.leaders().length, 1);
  assert.notEqual(cluster.leaders()[0], "a");
  const term = a.status().term;
  cluster.isolate("a");
  cluster.tick("a", 100);
  assert.equal(a.status().role, "follower");
  assert.equal(a.status().term, term);
});

Deno.test("thesis §4.2.3: a removed follower stops receiving the log and cannot disrupt the cluster", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  assert.ok(cluster.raft("a").proposeConfChange({ kind: "remove", id: "c" }).ok);
  cluster.stabilize();
  cluster.propose("a", "after");
  cluster.stabilize();
  assert.ok(!cluster.raft("a").status().progress.some((p) => p.id === "c"));
  assert.equal(cluster.node("c").stateMachine.includes("after"), false);
  const term = cluster.raft("a").status().term;
  // Whatever c does alone (it may still believe its removal uncommitted and pre-campaign,
  // thesis §4.2.2), pre-vote keeps it from raising the term, so it cannot depose the leader.
  cluster.isolate("c");
  cluster.tick("c", 100);
  assert.equal(cluster.raft("c").status().term, term);
  cluster.heal();
  for (let i = 0; i < 20; i++) {
    cluster.tick("c", 5);
    cluster.tick("a", 1);
    cluster.tick("b", 1);
    cluster.stabilize();
  }
  assert.equal(cluster.raft("a").status().role, "leader");
  assert.equal(cluster.raft("a").status().term, term);
  assert.equal(cluster.raft("b").status().term, term);
});
