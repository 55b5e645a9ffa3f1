/**
 * Flow control (STYLE.md item 13, "a limit on everything"): inflight appends, bytes per
 * append, uncommitted bytes, proposal size, bytes applied per Ready, and probing.
 */

import assert from "node:assert/strict";
import { Cluster, cmd } from "./harness.ts";
import type { AppendRequest, Message, NodeId } from "../../src/raft/types.ts";

function appendsTo(messages: readonly Message[], to: NodeId): AppendRequest[] {
  return messages.filter((m): m is AppendRequest =>
    m.type === "append" && m.to === to && m.entries.length > 0
  );
}

Deno.test("inflightAppendsMax bounds the unacknowledged appends to a follower", () => {
  const cluster = new Cluster({
    voters: ["a", "b", "c"],
    config: { inflightAppendsMax: 2, appendBytesMax: 1 },
  });
  cluster.elect("a");
  for (let i = 0; i < 5; i++) cluster.propose("a", `v${i}`);
  const a = cluster.raft("a");
  const rd = a.ready();
  assert.ok(rd !== null);
  // One entry per append (appendBytesMax 1), two in flight at most.
  const toB = appendsTo(rd.messages, "b");
  assert.deepEqual(toB.map((m) => m.entries.map((e) => e.index)), [[2], [3]]);
  cluster.handleReady("a", rd);
  assert.equal(a.ready(), null, "the window is full: nothing more goes out");
  // Acknowledgements open the window again and the rest follows.
  cluster.stabilize();
  assert.deepEqual(cluster.node("b").stateMachine, ["v0", "v1", "v2", "v3", "v4"]);
});

Deno.test("appendBytesMax bounds the bytes of one append but always sends one entry", () => {
  const cluster = new Cluster({ voters: ["a", "b"], config: { appendBytesMax: 10 } });
  cluster.elect("a");
  for (const text of ["1111", "2222", "3333", "x".repeat(50), "5555"]) cluster.propose("a", text);
  cluster.stabilize();
  const sizes = cluster.delivered
    .filter((m): m is AppendRequest => m.type === "append" && m.to === "b" && m.entries.length > 0)
    .slice(1) // the no-op
    .map((m) => m.entries.map((e) => e.data.byteLength));
  assert.deepEqual(sizes, [[4, 4], [4], [50], [4]]);
  assert.equal(cluster.node("b").stateMachine.length, 5);
});

Deno.test("uncommittedBytesMax refuses proposals as overloaded until entries commit", () => {
  const cluster = new Cluster({
    voters: ["a", "b", "c"],
    config: { uncommittedBytesMax: 10, proposalBytesMax: 10 },
  });
  cluster.elect("a");
  const undoB = cluster.isolate("b");
  const undoC = cluster.isolate("c");
  assert.ok(cluster.propose("a", "123456").ok);
  assert.deepEqual(cluster.propose("a", "123456"), {
    ok: false,
    reason: "overloaded",
    leader: "a",
  });
  assert.ok(cluster.propose("a", "1234").ok, "exactly at the limit is fine");
  undoB();
  undoC();
  cluster.tick("a", 2);
  assert.equal(cluster.raft("a").status().commit, 3);
  assert.ok(cluster.propose("a", "123456").ok, "committed bytes no longer count");
});

Deno.test("proposalBytesMax refuses an oversized proposal as too_large", () => {
  const cluster = new Cluster({ voters: ["a"], config: { proposalBytesMax: 8 } });
  cluster.elect("a");
  assert.deepEqual(cluster.raft("a").propose(new Uint8Array(9)), {
    ok: false,
    reason: "too_large",
    leader: "a",
  });
  assert.ok(cluster.raft("a").propose(new Uint8Array(8)).ok);
});

Deno.test("applyBytesMax bounds the committed entries of one Ready but hands out at least one", () => {
  const cluster = new Cluster({ voters: ["a"], config: { applyBytesMax: 10 } });
  cluster.elect("a");
  const a = cluster.raft("a");
  for (const text of ["1111", "2222", "3333", "x".repeat(30)]) a.propose(cmd(text));
  cluster.stabilize();
  const batches = cluster.node("a").readies
    .map((rd) => rd.committedEntries.filter((e) => e.data.byteLength > 0))
    .filter((entries) => entries.length > 0)
    .map((entries) => entries.map((e) => e.data.byteLength));
  assert.deepEqual(batches, [[4, 4], [4], [30]]);
});

Deno.test("reportUnreachable moves a replicating follower back to probe", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  const a = cluster.raft("a");
  const state = () => a.status().progress.find((p) => p.id === "b")?.state;
  assert.equal(state(), "replicate");
  a.reportUnreachable("b");
  assert.equal(state(), "probe");
  // A probing follower gets one append at a time until it answers.
  cluster.isolate("b");
  const mark = cluster.delivered.length;
  cluster.propose("a", "x");
  cluster.propose("a", "y");
  cluster.stabilize();
  cluster.propose("a", "z");
  cluster.stabilize();
  const toB = cluster.delivered.slice(mark).filter((m) => m.type === "append" && m.to === "b");
  assert.equal(toB.length, 0, "isolated");
  const sent = cluster.node("a").readies.flatMap((rd) => appendsTo(rd.messages, "b"));
  const afterProbe = sent.filter((m) => m.entries.some((e) => e.index >= 2));
  assert.equal(afterProbe.length, 1, "one probe in flight");
  cluster.heal();
  cluster.tick("a", 2);
  assert.equal(state(), "replicate");
  assert.deepEqual(cluster.node("b").stateMachine, ["x", "y", "z"]);
});
