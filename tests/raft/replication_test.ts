/**
 * Log replication (Raft §5.3), commitment and safety (§5.4.2, Figure 8), the Figure 7 follower
 * logs, fast back-off, and the Ready contract around persistence.
 */

import assert from "node:assert/strict";
import { bootRaft, Cluster, cmd, entriesFromTerms, readyAndAdvance } from "./harness.ts";
import type {
  AppendRequest,
  AppendResponse,
  Entry,
  Message,
  NodeId,
} from "../../src/raft/types.ts";
import { EntryType } from "../../src/raft/types.ts";

function appendsTo(messages: readonly Message[], to: NodeId): AppendRequest[] {
  return messages.filter((m): m is AppendRequest => m.type === "append" && m.to === to);
}

function terms(entries: readonly Entry[]): number[] {
  return entries.map((e) => e.term);
}

Deno.test("§5.3: the leader replicates entries and every node applies them in order", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  for (let i = 0; i < 20; i++) {
    const result = cluster.propose("a", `k=${i}`);
    assert.ok(result.ok);
    assert.equal(result.term, 1);
    if (i % 3 === 0) cluster.stabilize();
  }
  cluster.stabilize();
  const expected = Array.from({ length: 20 }, (_, i) => `k=${i}`);
  for (const id of ["a", "b", "c"]) {
    assert.deepEqual(cluster.node(id).stateMachine, expected, id);
    assert.equal(cluster.raft(id).status().commit, 21);
    assert.equal(cluster.raft(id).status().applied, 21);
  }
});

Deno.test("§5.3: a proposal on a follower is refused with the leader's id", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  assert.deepEqual(cluster.propose("b", "x"), { ok: false, reason: "not_leader", leader: "a" });
});

Deno.test("appends go out as soon as proposals arrive, one batch per follower per Ready", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  for (const text of ["x", "y", "z"]) cluster.propose("a", text);
  const rd = cluster.raft("a").ready();
  assert.ok(rd !== null);
  // The leader's appends do not wait for its own disk write (they are in `messages`).
  for (const to of ["b", "c"]) {
    const appends = appendsTo(rd.messages, to);
    assert.equal(appends.length, 1, to);
    assert.deepEqual(appends[0]?.entries.map((e) => e.index), [2, 3, 4]);
  }
  assert.deepEqual(rd.entries.map((e) => e.index), [2, 3, 4]);
  assert.equal(rd.messagesAfterPersist.length, 0);
  cluster.handleReady("a", rd);
  cluster.stabilize();
  assert.deepEqual(cluster.node("c").stateMachine, ["x", "y", "z"]);
});

Deno.test("the leader counts its own entries as replicated only after advance", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  cluster.cut("a", "c");
  cluster.propose("a", "x");
  const a = cluster.raft("a");
  const rd = a.ready();
  assert.ok(rd !== null);
  // b persists and acknowledges before the leader's own write finished.
  for (const m of rd.messages) cluster.deliver(m);
  cluster.process("b");
  for (const m of cluster.queue.splice(0)) cluster.deliver(m);
  assert.equal(a.status().commit, 1, "b alone is not a quorum of three");
  cluster.handleReady("a", rd, { send: false });
  assert.equal(a.status().commit, 2, "a's own durable copy completes the quorum");
});

Deno.test("§5.3: a follower rejects an append whose previous entry mismatches, with a hint", () => {
  const raft = bootRaft("b", { entries: entriesFromTerms([1, 1, 2, 2, 2]), term: 3 });
  raft.step({
    type: "append",
    from: "a",
    to: "b",
    term: 3,
    prevIndex: 5,
    prevTerm: 3,
    entries: [],
    commit: 0,
  });
  const rd = readyAndAdvance(raft);
  const [response] = rd.messagesAfterPersist as AppendResponse[];
  assert.equal(response?.success, false);
  assert.equal(response?.index, 5);
  // The last entry with a term ≤ 3 is 5 (term 2): the leader can skip term 2 at once.
  assert.equal(response?.hintIndex, 5);
  assert.equal(response?.hintTerm, 2);
  assert.equal(rd.messages.length, 0, "append responses wait for persistence");
});

Deno.test("§5.3: a follower replaces a conflicting suffix and persists the replacement", () => {
  const raft = bootRaft("b", { entries: entriesFromTerms([1, 1, 2, 2]), term: 2 });
  const replacement = entriesFromTerms([3], 3);
  raft.step({
    type: "append",
    from: "a",
    to: "b",
    term: 3,
    prevIndex: 2,
    prevTerm: 1,
    entries: replacement,
    commit: 3,
  });
  const rd = readyAndAdvance(raft);
  assert.deepEqual(rd.entries.map((e) => [e.index, e.term]), [[3, 3]]);
  // Entries are applied only in the Ready that persists them, after the write.
  assert.deepEqual(rd.committedEntries.map((e) => e.index), [1, 2, 3]);
  assert.deepEqual(rd.hardState, { term: 3, vote: null, commit: 3 });
  const status = raft.status();
  assert.equal(status.lastIndex, 3);
  assert.equal(status.lastTerm, 3);
  const [response] = rd.messagesAfterPersist as AppendResponse[];
  assert.deepEqual([response?.success, response?.index], [true, 3]);
});

Deno.test("a follower's commit is bounded by the entries the append carried", () => {
  const raft = bootRaft("b", { entries: entriesFromTerms([1, 1, 1, 1]), term: 1 });
  // The leader's commit is 10 but this append only vouches for entries up to 2.
  raft.step({
    type: "append",
    from: "a",
    to: "b",
    term: 2,
    prevIndex: 1,
    prevTerm: 1,
    entries: entriesFromTerms([1], 2),
    commit: 10,
  });
  assert.equal(raft.status().commit, 2);
});

// Raft Figure 7: the leader for term 8 and six possible follower logs (a)-(f).
const figure7Leader = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
const figure7Followers: Record<string, number[]> = {
  a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
  b: [1, 1, 1, 4],
  c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
  d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
  e: [1, 1, 1, 4, 4, 4, 4],
  f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
};

for (const [name, followerTerms] of Object.entries(figure7Followers)) {
  Deno.test(`Figure 7 (${name}): the term-8 leader brings the follower's log into agreement`, () => {
    const cluster = new Cluster({
      voters: ["leader", "follower", "other"],
      logs: {
        leader: { entries: entriesFromTerms(figure7Leader), term: 7 },
        other: { entries: entriesFromTerms(figure7Leader), term: 7 },
        follower: { entries: entriesFromTerms(followerTerms), term: 7 },
      },
    });
    cluster.elect("leader");
    assert.equal(cluster.raft("leader").status().term, 8);
    cluster.stabilize();
    const expected = [...figure7Leader, 8];
    assert.deepEqual(terms(cluster.node("leader").storage.entries), expected);
    assert.deepEqual(terms(cluster.node("follower").storage.entries), expected);
    assert.equal(cluster.raft("follower").status().commit, 11);
    // Missing entries were fetched and extraneous ones (c, d, f) removed.
    assert.deepEqual(
      cluster.node("follower").stateMachine,
      cluster.node("leader").stateMachine,
    );
  });
}

Deno.test("fast back-off: a long conflicting suffix costs one rejection, not one per entry", () => {
  const cluster = new Cluster({
    voters: ["a", "b", "c"],
    logs: {
      a: { entries: entriesFromTerms([1, ...Array(50).fill(3)]), term: 3 },
      c: { entries: entriesFromTerms([1, ...Array(50).fill(3)]), term: 3 },
      b: { entries: entriesFromTerms([1, ...Array(60).fill(2)]), term: 3 },
    },
  });
  cluster.elect("a");
  const rejections = cluster.delivered.filter((m) =>
    m.type === "append_response" && m.from === "b" && !m.success
  );
  assert.ok(rejections.length <= 1, `${rejections.length} rejections`);
  assert.deepEqual(
    terms(cluster.node("b").storage.entries),
    terms(cluster.node("a").storage.entries),
  );
});

/**
 * Raft Figure 8. (a) S1 leads term 2 and replicates index 2 to S2; (b) S5 leads term 3 with a
 * different index 2; (c) S1 leads term 4 and gets its index 2 onto a majority (S1, S2, S3)
 * while its own term-4 entry stays on S1 alone; (d) S1 crashes and S5 is elected with votes
 * from S2, S3, S4 and overwrites index 2. Committing index 2 in (c) by counting would lose it.
 */
function figure8(commitOldTermEntries: boolean): Cluster {
  const cluster = new Cluster({
    voters: ["s1", "s2", "s3", "s4", "s5"],
    config: { checkQuorum: false },
    hooks: { commitOldTermEntries },
    recordViolations: true,
    logs: {
      s1: { entries: entriesFromTerms([1, 2]), term: 3, commit: 1 },
      s2: { entries: entriesFromTerms([1, 2]), term: 3, commit: 1 },
      s3: { entries: entriesFromTerms([1]), term: 3, commit: 1 },
      s4: { entries: entriesFromTerms([1]), term: 3, commit: 1 },
      s5: { entries: entriesFromTerms([1, 3]), term: 3, commit: 1 },
    },
  });
  // (c): S5 is down; S1's term-4 no-op reaches nobody, S4 gets no entries, and no follower
  // learns a commit index beyond 1 (so only S1 could apply index 2).
  cluster.crash("s5");
  cluster.filters.push((m) => {
    if (m.from !== "s1") return m;
    if (m.type === "heartbeat") return null;
    if (m.type !== "append") return m;
    if (m.to === "s4") return null;
    return { ...m, entries: m.entries.filter((e) => e.index <= 2), commit: 1 };
  });
  cluster.elect("s1");
  assert.equal(cluster.raft("s1").status().term, 4);
  assert.equal(cluster.raft("s3").status().lastIndex, 2, "index 2 is on S1, S2, S3");
  return cluster;
}

function figure8Continue(cluster: Cluster): void {
  // (d): S1 crashes; S5 returns and is elected by S2, S3, S4 (its last term 3 beats 2).
  cluster.crash("s1");
  cluster.heal();
  cluster.restart("s5");
  cluster.elect("s5");
  cluster.stabilize();
}

Deno.test("§5.4.2 Figure 8: a leader never commits an earlier term's entry by counting", () => {
  const cluster = figure8(false);
  assert.equal(cluster.raft("s1").status().commit, 1, "index 2 is on a majority, uncommitted");
  figure8Continue(cluster);
  assert.deepEqual(cluster.violations, []);
  for (const id of ["s2", "s3", "s4", "s5"]) {
    assert.equal(cluster.node(id).applied.get(2)?.term, 3, id);
  }
  // S1 returns and its index 2 is overwritten, never applied with term 2.
  cluster.restart("s1");
  cluster.tick("s5", 3);
  assert.equal(cluster.node("s1").applied.get(2)?.term, 3);
});

Deno.test("§5.4.2 test hook: commitOldTermEntries commits by counting and loses an entry", () => {
  const cluster = figure8(true);
  assert.equal(cluster.raft("s1").status().commit, 2, "the hook commits index 2 of term 2");
  assert.equal(cluster.node("s1").applied.get(2)?.term, 2);
  figure8Continue(cluster);
  assert.ok(cluster.violations.length > 0, "state machine safety is violated");
});

Deno.test("heartbeats carry a commit index capped at the follower's match", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  cluster.isolate("c");
  cluster.propose("a", "x");
  cluster.stabilize();
  cluster.tick("a");
  const heartbeats = cluster.delivered.filter((m) => m.type === "heartbeat");
  assert.ok(heartbeats.length > 0);
  // c is isolated, so its heartbeats never arrive; b's carry the full commit index 2.
  const last = heartbeats[heartbeats.length - 1];
  assert.equal(last?.type === "heartbeat" && last.commit, 2);
  const a = cluster.raft("a");
  const cProgress = a.status().progress.find((p) => p.id === "c");
  assert.equal(cProgress?.match, 1);
  a.tick();
  const rd = a.ready();
  assert.ok(rd !== null);
  const toC = rd.messages.find((m) => m.type === "heartbeat" && m.to === "c");
  assert.equal(toC?.type === "heartbeat" && toC.commit, 1);
  cluster.handleReady("a", rd);
});

Deno.test("ready() is null when idle and reports the hard state only when it changed", () => {
  const raft = bootRaft("a", { voters: ["a"], config: { preVote: false } });
  assert.equal(raft.ready(), null);
  while (raft.status().role !== "leader") raft.tick();
  const first = readyAndAdvance(raft);
  assert.deepEqual(first.hardState, { term: 1, vote: "a", commit: 0 });
  assert.deepEqual(first.softState, { role: "leader", leader: "a", term: 1 });
  assert.deepEqual(first.entries.map((e) => e.type), [EntryType.Noop]);
  assert.equal(first.committedEntries.length, 0, "not durable yet");
  const second = readyAndAdvance(raft);
  assert.deepEqual(second.hardState, { term: 1, vote: "a", commit: 1 });
  assert.deepEqual(second.committedEntries.map((e) => e.index), [1]);
  assert.equal(second.entries.length, 0);
  assert.equal(raft.ready(), null);
  raft.propose(cmd("x"));
  const third = readyAndAdvance(raft);
  assert.equal(third.hardState, null, "term, vote and commit are unchanged");
  assert.equal(third.entries.length, 1);
});

Deno.test("ready() must not be called again before advance()", () => {
  const raft = bootRaft("a", { voters: ["a"] });
  while (raft.status().role !== "leader") raft.tick();
  assert.ok(raft.ready() !== null);
  assert.throws(() => raft.ready(), /before advance/);
});

Deno.test("§5.3: a lost append in the pipeline is detected and resent after a heartbeat", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  let dropped = 0;
  cluster.filters.push((m) => {
    if (m.type === "append" && m.to === "b" && m.entries.length > 0 && dropped === 0) {
      dropped++;
      return null;
    }
    return m;
  });
  cluster.propose("a", "x");
  cluster.stabilize();
  assert.equal(dropped, 1);
  assert.equal(cluster.raft("b").status().lastIndex, 1);
  cluster.tick("a", 2);
  assert.equal(cluster.raft("b").status().lastIndex, 2);
  assert.deepEqual(cluster.node("b").stateMachine, ["x"]);
});

Deno.test("followers learn a new commit index without waiting for a heartbeat", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  cluster.propose("a", "x");
  cluster.stabilize();
  for (const id of ["b", "c"]) assert.deepEqual(cluster.node(id).stateMachine, ["x"], id);
  const beforeTicks = cluster.delivered.filter((m) => m.type === "heartbeat");
  assert.equal(beforeTicks.length, 0);
});
