/**
 * Leader election (Raft §5.2), the vote restriction (§5.4.1), pre-vote (thesis §9.6),
 * check-quorum and the leader lease (thesis §6.2), restart from persisted state, and the
 * no-vote rule after storage lost acknowledged entries.
 */

import assert from "node:assert/strict";
import {
  allMessages,
  bootRaft,
  Cluster,
  entriesFromTerms,
  membershipOf,
  readyAndAdvance,
  testConfig,
} from "./harness.ts";
import { Raft } from "../../src/raft/raft.ts";
import { createPrng } from "../../src/util/prng.ts";
import type { Message, VoteRequest, VoteResponse } from "../../src/raft/types.ts";
import { EntryType } from "../../src/raft/types.ts";

function voteRequest(from: string, to: string, fields: Partial<VoteRequest> = {}): VoteRequest {
  return {
    type: "vote",
    from,
    to,
    term: 2,
    preVote: false,
    lastLogIndex: 0,
    lastLogTerm: 0,
    transfer: false,
    ...fields,
  };
}

function voteResponses(messages: readonly Message[]): VoteResponse[] {
  return messages.filter((m): m is VoteResponse => m.type === "vote_response");
}

Deno.test("§5.2: a follower campaigns after a random timeout in [electionTicks, 2·electionTicks)", () => {
  const seen = new Set<number>();
  for (let seed = 1; seed <= 40; seed++) {
    const raft = bootRaft("a", { seed, config: { preVote: false } });
    let ticks = 0;
    while (raft.status().role === "follower") {
      raft.tick();
      ticks++;
      assert.ok(ticks < 20, `seed ${seed}: no campaign after ${ticks} ticks`);
    }
    assert.equal(raft.status().role, "candidate");
    assert.ok(ticks >= 10, `seed ${seed}: campaigned after only ${ticks} ticks`);
    seen.add(ticks);
  }
  // The timeout is randomized, so that split votes do not repeat forever.
  assert.ok(seen.size >= 5, `only ${seen.size} distinct timeouts`);
});

Deno.test("§5.2: a candidate with a majority becomes leader and appends a no-op of its term", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  const status = cluster.raft("a").status();
  assert.equal(status.role, "leader");
  assert.equal(status.term, 1);
  assert.deepEqual(cluster.leaders(), ["a"]);
  for (const id of ["b", "c"]) {
    assert.equal(cluster.raft(id).status().leader, "a");
    assert.equal(cluster.raft(id).status().term, 1);
  }
  // Raft §8: the no-op commits the new term.
  const noop = cluster.node("b").applied.get(1);
  assert.equal(noop?.type, EntryType.Noop);
  assert.equal(noop?.term, 1);
});

Deno.test("§5.2: a node votes for at most one candidate per term", () => {
  const raft = bootRaft("a", { term: 1 });
  raft.step(voteRequest("b", "a"));
  raft.step(voteRequest("c", "a"));
  raft.step(voteRequest("b", "a"));
  const rd = readyAndAdvance(raft);
  const responses = voteResponses(rd.messagesAfterPersist);
  assert.deepEqual(responses.map((r) => [r.to, r.granted]), [["b", true], ["c", false], [
    "b",
    true,
  ]]);
  assert.deepEqual(rd.hardState, { term: 2, vote: "b", commit: 0 });
  // Votes promise durability: none travels before the hard state is persisted.
  assert.equal(voteResponses(rd.messages).length, 0);
});

Deno.test("§5.4.1: a voter rejects a candidate whose log is less up to date", () => {
  const entries = entriesFromTerms([1, 1, 2]);
  const cases: Array<[number, number, boolean]> = [
    [5, 1, false], // longer log, older last term
    [2, 2, false], // same last term, shorter log
    [3, 2, true], // identical
    [1, 3, true], // newer last term wins even if shorter
  ];
  for (const [lastLogIndex, lastLogTerm, granted] of cases) {
    const raft = bootRaft("a", { entries, term: 2 });
    raft.step(voteRequest("b", "a", { term: 3, lastLogIndex, lastLogTerm }));
    const [response] = voteResponses(readyAndAdvance(raft).messagesAfterPersist);
    assert.equal(response?.granted, granted, `candidate log (${lastLogIndex}, ${lastLogTerm})`);
  }
});

Deno.test("§5.4.1 test hook: grantVotesToStaleLogs skips the up-to-date check", () => {
  const raft = bootRaft("a", {
    entries: entriesFromTerms([1, 1, 2]),
    term: 2,
    hooks: { grantVotesToStaleLogs: true },
  });
  raft.step(voteRequest("b", "a", { term: 3, lastLogIndex: 1, lastLogTerm: 1 }));
  const [response] = voteResponses(readyAndAdvance(raft).messagesAfterPersist);
  assert.equal(response?.granted, true);
});

Deno.test("§5.4.1: a node with a stale log cannot become leader", () => {
  const cluster = new Cluster({
    voters: ["a", "b", "c"],
    config: { preVote: false },
    logs: {
      a: { entries: entriesFromTerms([1]), term: 2 },
      b: { entries: entriesFromTerms([1, 2]), term: 2 },
      c: { entries: entriesFromTerms([1, 2]), term: 2 },
    },
  });
  // a times out first, but b and c refuse it; it returns to follower when it learns it lost.
  for (let i = 0; i < 60; i++) cluster.tick("a");
  assert.notEqual(cluster.raft("a").status().role, "leader");
  cluster.elect("b");
  assert.deepEqual(cluster.leaders(), ["b"]);
});

Deno.test("§5.2: a candidate refused by a majority returns to follower", () => {
  const raft = bootRaft("a", { config: { preVote: false } });
  while (raft.status().role !== "candidate") raft.tick();
  const term = raft.status().term;
  for (const from of ["b", "c"]) {
    raft.step({ type: "vote_response", from, to: "a", term, preVote: false, granted: false });
  }
  assert.equal(raft.status().role, "follower");
  assert.equal(raft.status().term, term);
});

Deno.test("vote requests travel after the candidate's own vote is persisted; pre-votes before", () => {
  const real = bootRaft("a", { config: { preVote: false } });
  while (real.status().role !== "candidate") real.tick();
  const rd = readyAndAdvance(real);
  assert.deepEqual(rd.hardState, { term: 1, vote: "a", commit: 0 });
  assert.equal(rd.messages.length, 0);
  assert.deepEqual(rd.messagesAfterPersist.map((m) => [m.type, m.to, m.term]), [
    ["vote", "b", 1],
    ["vote", "c", 1],
  ]);

  const pre = bootRaft("a", { config: { preVote: true } });
  while (pre.status().role !== "pre_candidate") pre.tick();
  const preRd = readyAndAdvance(pre);
  // Thesis §9.6: the pre-candidate asks about term + 1 without entering it.
  assert.equal(pre.status().term, 0);
  assert.equal(preRd.hardState, null);
  assert.deepEqual(
    preRd.messages.map((m) => [m.type, m.to, m.term, (m as VoteRequest).preVote]),
    [["vote", "b", 1, true], ["vote", "c", 1, true]],
  );
});

Deno.test("pre-vote: a pre-vote request does not change the receiver's term or vote", () => {
  const raft = bootRaft("a", { term: 1, config: { checkQuorum: false } });
  raft.step(voteRequest("b", "a", { term: 5, preVote: true }));
  const rd = readyAndAdvance(raft);
  assert.equal(raft.status().term, 1);
  assert.equal(raft.status().vote, null);
  assert.equal(rd.hardState, null);
  // The grant names the term asked about and promises nothing durable.
  assert.deepEqual(voteResponses(rd.messages).map((r) => [r.granted, r.term, r.preVote]), [[
    true,
    5,
    true,
  ]]);
});

Deno.test("pre-vote: a partitioned node does not increase its term and cannot disrupt", () => {
  for (const preVote of [true, false]) {
    const cluster = new Cluster({ voters: ["a", "b", "c"], config: { preVote } });
    cluster.elect("a");
    const undo = cluster.isolate("c");
    for (let i = 0; i < 100; i++) cluster.tick("c");
    const cTerm = cluster.raft("c").status().term;
    if (preVote) {
      assert.equal(cTerm, 1, "pre-vote keeps the isolated node's term");
      assert.equal(cluster.raft("c").status().role, "pre_candidate");
    } else {
      assert.ok(cTerm > 1, "without pre-vote the isolated node's term grows");
    }
    undo();
    cluster.tickAll(30);
    if (preVote) {
      // The returning node rejoins without deposing the leader.
      assert.deepEqual(cluster.leaders(), ["a"]);
      assert.equal(cluster.raft("a").status().term, 1);
    }
    assert.equal(cluster.leaders().length, 1);
  }
});

Deno.test("check-quorum: a leader steps down without a quorum", () => {
  for (const checkQuorum of [true, false]) {
    const cluster = new Cluster({ voters: ["a", "b", "c"], config: { checkQuorum } });
    cluster.elect("a");
    cluster.isolate("a");
    cluster.tick("a", 25);
    assert.equal(
      cluster.raft("a").status().role,
      checkQuorum ? "follower" : "leader",
      `checkQuorum=${checkQuorum}`,
    );
  }
});

Deno.test("check-quorum: a leader with an active quorum keeps leading", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"], config: { checkQuorum: true } });
  cluster.elect("a");
  cluster.isolate("c");
  cluster.tick("a", 50);
  assert.equal(cluster.raft("a").status().role, "leader");
});

Deno.test("check-quorum: a follower in the leader lease ignores vote requests unless transfer", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"], config: { checkQuorum: true } });
  cluster.elect("a");
  const b = cluster.raft("b");
  for (const preVote of [true, false]) {
    b.step(voteRequest("c", "b", { term: 7, preVote, lastLogIndex: 100, lastLogTerm: 9 }));
    assert.equal(b.status().term, 1);
    assert.equal(b.ready(), null, "no answer, no state change");
  }
  b.step(voteRequest("c", "b", { term: 7, transfer: true, lastLogIndex: 100, lastLogTerm: 9 }));
  assert.equal(b.status().term, 7);
  const [response] = voteResponses(readyAndAdvance(b).messagesAfterPersist);
  assert.equal(response?.granted, true);
});

Deno.test("learners never campaign", () => {
  const cluster = new Cluster({ voters: ["a", "b"], learners: ["l"] });
  cluster.isolate("a");
  cluster.isolate("b");
  cluster.tick("l", 100);
  assert.equal(cluster.raft("l").status().role, "follower");
  assert.equal(cluster.raft("l").status().term, 0);
  // A TimeoutNow cannot make a learner campaign either.
  cluster.raft("l").step({ type: "timeout_now", from: "a", to: "l", term: 0 });
  assert.equal(cluster.raft("l").status().role, "follower");
});

Deno.test("a node outside the configuration never campaigns", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"], outsiders: ["z"] });
  cluster.tick("z", 100);
  assert.equal(cluster.raft("z").status().role, "follower");
  assert.equal(cluster.raft("z").status().term, 0);
});

Deno.test("a restarted node resumes as follower with its persisted term, vote and commit", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("b");
  cluster.propose("b", "x=1");
  cluster.stabilize();
  const before = cluster.raft("b").status();
  cluster.crash("b");
  cluster.restart("b");
  const after = cluster.raft("b").status();
  assert.equal(after.role, "follower");
  assert.equal(after.leader, null);
  assert.equal(after.term, before.term);
  assert.equal(after.vote, "b");
  assert.equal(after.commit, before.commit);
  assert.equal(after.lastIndex, before.lastIndex);
  // Nothing changed, so the first Ready does not rewrite the hard state; the committed
  // entries are applied again (the harness state machine restarts empty).
  const seen = cluster.node("b").readies.length;
  cluster.process("b");
  const rd = cluster.node("b").readies[seen];
  assert.equal(rd?.hardState, null);
  assert.deepEqual(rd?.committedEntries.map((e) => e.index), [1, 2]);
  assert.deepEqual(cluster.node("b").stateMachine, ["x=1"]);
  // The cluster elects a leader again and the restarted node's commit never moves back.
  cluster.tickAll(40);
  assert.equal(cluster.leaders().length, 1);
  assert.ok(cluster.raft("b").status().commit >= before.commit);
});

Deno.test("elections converge with all nodes ticking (split votes resolve)", () => {
  for (let seed = 1; seed <= 20; seed++) {
    const cluster = new Cluster({ voters: ["a", "b", "c", "d", "e"], seed });
    cluster.tickAll(60);
    const leaders = cluster.leaders();
    assert.equal(leaders.length, 1, `seed ${seed}: leaders ${leaders}`);
    const term = cluster.raft(leaders[0]!).status().term;
    for (const node of cluster.nodes.values()) {
      assert.equal(node.raft.status().leader, leaders[0], `seed ${seed}: ${node.id}`);
      assert.equal(node.raft.status().term, term);
    }
  }
});

Deno.test("a stale-term append makes the old leader learn the new term", () => {
  const raft = bootRaft("a", { term: 5 });
  raft.step({
    type: "append",
    from: "b",
    to: "a",
    term: 3,
    prevIndex: 0,
    prevTerm: 0,
    entries: [],
    commit: 0,
  });
  const messages = allMessages(readyAndAdvance(raft));
  assert.deepEqual(messages.map((m) => [m.type, m.to, m.term]), [["append_response", "b", 5]]);
  assert.equal(raft.status().term, 5);
});

Deno.test("a node whose entries are newer than its hard state boots in their term without a vote", () => {
  const raft = bootRaft("a", { entries: entriesFromTerms([1, 3]), term: 2, vote: "b", commit: 1 });
  const status = raft.status();
  assert.deepEqual([status.term, status.vote, status.role], [3, null, "follower"]);
  assert.deepEqual(readyAndAdvance(raft).hardState, { term: 3, vote: null, commit: 1 });
});

Deno.test("a node that lost acknowledged entries neither votes nor campaigns until it has them again", () => {
  // Recovery dropped entries 4..6 that this node had acknowledged (docs/STORAGE.md).
  const raft = new Raft(testConfig("a", { preVote: false, checkQuorum: false }), {
    hardState: { term: 2, vote: null, commit: 3 },
    snapshot: null,
    entries: entriesFromTerms([1, 1, 2]),
    membership: membershipOf(["a", "b", "c"]),
    applied: 0,
    lostAfter: 6,
  }, { random: createPrng(3) });
  for (let i = 0; i < 50; i++) raft.tick();
  assert.equal(raft.status().role, "follower", "no campaign");
  raft.step(voteRequest("b", "a", { term: 3, lastLogIndex: 3, lastLogTerm: 2 }));
  const [refused] = voteResponses(readyAndAdvance(raft).messagesAfterPersist);
  assert.equal(refused?.granted, false, "an up-to-date candidate is still refused");
  // The leader re-replicates the lost entries; once they are durable the rule lifts.
  raft.step({
    type: "append",
    from: "b",
    to: "a",
    term: 3,
    prevIndex: 3,
    prevTerm: 2,
    entries: entriesFromTerms([2, 2, 3], 4),
    commit: 6,
  });
  const rd = readyAndAdvance(raft);
  assert.deepEqual(rd.entries.map((e) => e.index), [4, 5, 6]);
  raft.step(voteRequest("c", "a", { term: 4, lastLogIndex: 6, lastLogTerm: 3 }));
  const [granted] = voteResponses(readyAndAdvance(raft).messagesAfterPersist);
  assert.equal(granted?.granted, true);
});
