/**
 * Node replacement (`edgeraft serve --join`): a node whose data directory was wiped starts
 * again with the same id. It forgot its term, its vote and its log, so it may have voted in a
 * term it no longer remembers (Raft §5.2 allows one vote per term) and may have been counted
 * in a quorum for entries it no longer holds (§5.4.1 lets a vote go only to a log at least as
 * up to date as the voter's). As the Raft thesis asks of a server that lost its storage, it
 * neither votes, grants pre-votes nor campaigns until it follows a leader and holds what that
 * leader had committed (docs/ARCHITECTURE.md, "Replacing a node").
 */

import assert from "node:assert/strict";
import { Raft } from "../../src/raft/raft.ts";
import {
  type AppendRequest,
  type Entry,
  EntryType,
  type HeartbeatRequest,
  JOINING_LOST_AFTER,
  type Message,
  type RaftBootState,
  type RaftConfig,
  type VoteRequest,
  type VoteResponse,
} from "../../src/raft/types.ts";
import { createPrng } from "../../src/util/prng.ts";
import { allMessages, Cluster, entriesFromTerms, membershipOf, testConfig } from "./harness.ts";

/** electionTicks of testConfig (10): a joining node trusts a leader's commit after 3×. */
const HOLD_OFF_TICKS = 30;

function joiningRaft(
  id: string,
  config: Partial<RaftConfig> = {},
  boot: Partial<RaftBootState> = {},
): Raft {
  return new Raft(testConfig(id, config), {
    hardState: { term: 0, vote: null, commit: 0 },
    snapshot: null,
    entries: [],
    membership: membershipOf(["a", "b", "c"]),
    applied: 0,
    joining: true,
    ...boot,
  }, { random: createPrng(11) });
}

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

function append(from: string, to: string, fields: Partial<AppendRequest> = {}): AppendRequest {
  return {
    type: "append",
    from,
    to,
    term: 2,
    prevIndex: 0,
    prevTerm: 0,
    entries: [],
    commit: 0,
    ...fields,
  };
}

function heartbeat(from: string, to: string, term: number, commit: number): HeartbeatRequest {
  return { type: "heartbeat", from, to, term, commit, readSeq: 0 };
}

/** Runs every pending Ready of `raft` (as a driver whose disk never fails) and returns the
 * messages they sent. */
function drain(raft: Raft): Message[] {
  const out: Message[] = [];
  for (let rd = raft.ready(); rd !== null; rd = raft.ready()) {
    out.push(...allMessages(rd));
    raft.advance(rd);
  }
  return out;
}

function votesIn(messages: readonly Message[]): VoteResponse[] {
  return messages.filter((m): m is VoteResponse => m.type === "vote_response");
}

/** Asks `raft` for a vote (or pre-vote) and returns its answer. */
function ask(raft: Raft, request: VoteRequest): VoteResponse {
  raft.step(request);
  const [answer] = votesIn(drain(raft));
  assert.ok(answer !== undefined, `no answer to ${JSON.stringify(request)}`);
  return answer;
}

function tick(raft: Raft, n: number): Message[] {
  const out: Message[] = [];
  for (let i = 0; i < n; i++) {
    raft.tick();
    out.push(...drain(raft));
  }
  return out;
}

const NO_LEASE = { checkQuorum: false, preVote: false };

Deno.test("a joining node neither grants votes or pre-votes nor campaigns before it hears from a leader", () => {
  const raft = joiningRaft("c", { checkQuorum: false });
  assert.equal(raft.status().joining, true);
  assert.equal(raft.status().lostAfter, JOINING_LOST_AFTER);
  // Far beyond any election timeout: a normal node would have campaigned long ago.
  const sent = tick(raft, 200);
  assert.deepEqual(sent.filter((m) => m.type === "vote"), [], "no (pre-)vote requests");
  assert.equal(raft.status().role, "follower");
  assert.equal(raft.status().term, 0);

  const preVote = ask(raft, voteRequest("a", "c", { term: 1, preVote: true }));
  assert.equal(preVote.granted, false, "pre-vote refused to an up-to-date candidate");
  const vote = ask(raft, voteRequest("a", "c", { term: 1 }));
  assert.equal(vote.granted, false, "vote refused to an up-to-date candidate");
  assert.equal(raft.status().vote, null);
  assert.equal(raft.status().term, 1, "it still learns the term");

  // TimeoutNow (a leadership transfer) does not make it campaign either.
  raft.step({ type: "timeout_now", from: "a", to: "c", term: 1 });
  assert.deepEqual(drain(raft).filter((m) => m.type === "vote"), []);
  assert.equal(raft.status().role, "follower");
  assert.equal(raft.status().joining, true);
});

Deno.test("after hearing from a leader with commit C a joining node refuses votes until its durable log holds C", () => {
  const raft = joiningRaft("c", NO_LEASE);
  tick(raft, HOLD_OFF_TICKS);
  // First contact: the leader b of term 2 reports commit 5; c holds nothing yet.
  raft.step(append("b", "c", { prevIndex: 5, prevTerm: 2, commit: 5 }));
  const [rejected] = drain(raft).filter((m) => m.type === "append_response");
  assert.equal(rejected?.type === "append_response" && rejected.success, false);
  assert.deepEqual(
    [raft.status().leader, raft.status().lostAfter, raft.status().joining],
    ["b", 5, true],
  );
  const upToDate = { term: 3, lastLogIndex: 9, lastLogTerm: 2, preVote: true };

  // Part of the log arrives: 1..3 durable and committed, still below 5.
  raft.step(append("b", "c", { entries: entriesFromTerms([1, 1, 2]), commit: 5 }));
  drain(raft);
  assert.deepEqual([raft.status().lastIndex, raft.status().commit], [3, 3]);
  assert.equal(raft.status().joining, true);
  assert.equal(ask(raft, voteRequest("a", "c", upToDate)).granted, false);

  // The rest: 4..6, committed up to 6, an entry of the leader's term 2.
  raft.step(
    append("b", "c", {
      prevIndex: 3,
      prevTerm: 2,
      entries: entriesFromTerms([2, 2, 2], 4),
      commit: 6,
    }),
  );
  // Not before the entries are durable: the Ready that persists them is not done yet.
  const rd = raft.ready()!;
  assert.deepEqual(rd.entries.map((e) => e.index), [4, 5, 6]);
  assert.equal(raft.status().joining, true, "entries not yet durable");
  raft.step(voteRequest("a", "c", upToDate));
  raft.advance(rd);
  assert.deepEqual(votesIn(drain(raft)).map((v) => v.granted), [false]);
  assert.deepEqual([raft.status().joining, raft.status().lostAfter], [false, 0]);

  // Now it votes normally: a pre-vote, then a vote in a later term, for an up-to-date log...
  assert.equal(ask(raft, voteRequest("a", "c", upToDate)).granted, true);
  assert.equal(
    ask(raft, voteRequest("a", "c", { term: 3, lastLogIndex: 6, lastLogTerm: 2 })).granted,
    true,
  );
  // ...and still refuses a stale log (§5.4.1).
  assert.equal(
    ask(raft, voteRequest("b", "c", { term: 4, lastLogIndex: 5, lastLogTerm: 2 })).granted,
    false,
  );
});

Deno.test("a joining node waits for a committed entry of the leader's own term, which covers every earlier commit", () => {
  const raft = joiningRaft("c", NO_LEASE);
  tick(raft, HOLD_OFF_TICKS);
  // The new leader b of term 3 knows commit 3 (term 1 entries) and has not committed its
  // no-op (index 4) yet: entries of term 2 at 4.. that an earlier quorum (with the old c)
  // committed may exist beyond 3 in its log. c must not stop at 3.
  raft.step(
    append("b", "c", { term: 3, entries: entriesFromTerms([1, 1, 1, 3]), commit: 3 }),
  );
  drain(raft);
  assert.deepEqual(
    [raft.status().commit, raft.status().lostAfter, raft.status().joining],
    [3, 3, true],
  );
  assert.equal(
    ask(raft, voteRequest("a", "c", { term: 4, lastLogIndex: 4, lastLogTerm: 3 })).granted,
    false,
    "its log reaches the bound, but no entry of term 3 is committed",
  );
  // The vote request moved c to term 4 (no leader known there yet): b's heartbeat of term 3 is
  // stale now. A leader of term 4 must commit in its term first.
  raft.step(heartbeat("b", "c", 3, 4));
  drain(raft);
  assert.deepEqual([raft.status().term, raft.status().leader], [4, null]);
  assert.equal(raft.status().joining, true);
  raft.step(
    append("a", "c", {
      term: 4,
      prevIndex: 4,
      prevTerm: 3,
      entries: entriesFromTerms([4], 5),
      commit: 5,
    }),
  );
  drain(raft);
  assert.deepEqual([raft.status().leader, raft.status().commit, raft.status().joining], [
    "a",
    5,
    false,
  ]);
});

Deno.test("a leader heard within three election timeouts of the start does not set the bound", () => {
  // A leader of a term older than one the lost node voted in may still be in office for up to
  // two election timeouts after that vote (check-quorum steps it down at the latest then), and
  // its messages take a while to arrive.
  const raft = joiningRaft("c", NO_LEASE);
  tick(raft, HOLD_OFF_TICKS - 2);
  raft.step(append("b", "c", { entries: entriesFromTerms([2]), commit: 1 }));
  drain(raft);
  assert.deepEqual([raft.status().leader, raft.status().commit], ["b", 1]);
  assert.equal(raft.status().lostAfter, JOINING_LOST_AFTER, "replicates, but sets no bound");
  assert.equal(raft.status().joining, true);
  tick(raft, 2);
  raft.step(heartbeat("b", "c", 2, 1));
  drain(raft);
  assert.deepEqual([raft.status().lostAfter, raft.status().joining], [0, false]);
});

Deno.test("a joining node restarted before it caught up (boot with the marker) still refuses to vote", () => {
  // It had received entries 1..3 from the leader of term 2, then crashed: the persisted marker
  // is still JOINING_LOST_AFTER, so it boots joining, whatever its log holds.
  const boot = {
    hardState: { term: 2, vote: null, commit: 3 },
    entries: entriesFromTerms([1, 2, 2]),
    joining: undefined,
    lostAfter: JOINING_LOST_AFTER,
  };
  const raft = joiningRaft("c", NO_LEASE, boot);
  assert.deepEqual([raft.status().joining, raft.status().lostAfter], [true, JOINING_LOST_AFTER]);
  const sent = tick(raft, 100);
  assert.deepEqual(sent.filter((m) => m.type === "vote"), [], "no campaign");
  assert.equal(
    ask(raft, voteRequest("a", "c", { term: 3, lastLogIndex: 3, lastLogTerm: 2 })).granted,
    false,
  );
  assert.equal(
    ask(raft, voteRequest("a", "c", { term: 4, lastLogIndex: 3, lastLogTerm: 2, preVote: true }))
      .granted,
    false,
  );
  // The leader of term 3 (which it already holds up to) catches it up: then it may vote.
  raft.step(
    append("a", "c", {
      term: 3,
      prevIndex: 3,
      prevTerm: 2,
      entries: entriesFromTerms([3], 4),
      commit: 4,
    }),
  );
  drain(raft);
  assert.equal(raft.status().joining, false);
  assert.equal(
    ask(raft, voteRequest("b", "c", { term: 4, lastLogIndex: 4, lastLogTerm: 3 })).granted,
    true,
  );
});

Deno.test("§5.2: a node that voted in term T, was wiped and rejoins while T's election runs does not vote in T again", () => {
  const cfg = NO_LEASE;
  // c grants its term-1 vote to a...
  const before = new Raft(testConfig("c", cfg), {
    hardState: { term: 0, vote: null, commit: 0 },
    snapshot: null,
    entries: [],
    membership: membershipOf(["a", "b", "c"]),
    applied: 0,
  }, { random: createPrng(5) });
  assert.equal(ask(before, voteRequest("a", "c", { term: 1 })).granted, true);
  // ...is wiped and starts again with --join, while b campaigns in the same term 1.
  const after = joiningRaft("c", cfg);
  assert.equal(ask(after, voteRequest("b", "c", { term: 1 })).granted, false);
  tick(after, HOLD_OFF_TICKS);
  assert.equal(ask(after, voteRequest("b", "c", { term: 1 })).granted, false);
  // a won term 1 with the old c's vote; its appends catch the new c up (a no-op of term 1).
  const noop: Entry = { index: 1, term: 1, type: EntryType.Noop, data: new Uint8Array(0) };
  after.step(append("a", "c", { term: 1, entries: [noop], commit: 1 }));
  drain(after);
  assert.deepEqual([after.status().joining, after.status().leader], [false, "a"]);
  // Joining is over, and c knows term 1's leader: b still gets no vote in term 1.
  assert.equal(
    ask(after, voteRequest("b", "c", { term: 1, lastLogIndex: 1, lastLogTerm: 1 })).granted,
    false,
  );
  assert.equal(after.status().vote, "a", "its term-1 vote is recorded for term 1's leader");
});

/**
 * The scenario of the previous test in a cluster: a wins term 1 with c's vote; c is wiped;
 * b, which was cut off and never saw term 1, campaigns in term 1 and asks the new c.
 */
function wipedVoterScenario(joining: boolean): Cluster {
  const cluster = new Cluster({ voters: ["a", "b", "c"], config: NO_LEASE, seed: 3 });
  const healB = cluster.isolate("b");
  cluster.elect("a");
  assert.equal(cluster.raft("a").status().term, 1);
  assert.equal(cluster.raft("c").status().vote, "a");
  // c loses its disk and starts again; a (still leader of term 1 in its own view) is cut off.
  cluster.isolate("a");
  cluster.wipe("c", { joining });
  healB();
  for (let i = 0; i < 100; i++) {
    cluster.tick("b");
    cluster.tick("c");
  }
  return cluster;
}

Deno.test("without --join a wiped voter can elect a second leader in a term (the hazard --join prevents)", () => {
  const cluster = wipedVoterScenario(false);
  const b = cluster.raft("b").status();
  assert.equal(b.role, "leader");
  assert.equal(b.term, 1, "b won term 1 with the wiped c's second vote");
  assert.equal(cluster.raft("a").status().term, 1);
  assert.equal(cluster.raft("a").status().role, "leader", "two leaders in term 1");
});

Deno.test("with --join a wiped voter elects nobody until it heard from a leader, then the cluster recovers", () => {
  const cluster = wipedVoterScenario(true);
  assert.deepEqual(cluster.leaders(), ["a"], "b never won: c refused every (pre-)vote");
  assert.equal(cluster.raft("c").status().joining, true);
  // The partition heals: c hears from a leader, catches up, and b and c elect a leader
  // together once a is gone.
  cluster.heal();
  cluster.tickAll(3 * HOLD_OFF_TICKS);
  const leaders = cluster.leaders();
  assert.equal(leaders.length, 1);
  for (const id of ["a", "b", "c"]) {
    assert.equal(cluster.raft(id).status().leader, leaders[0]);
  }
  assert.equal(cluster.raft("c").status().joining, false);
  assert.equal(cluster.node("c").storage.lostAfter, 0, "the marker was cleared durably");
  const leader = leaders[0]!;
  cluster.crash(leader);
  const rest = ["a", "b", "c"].filter((id) => id !== leader);
  for (let i = 0; i < 4 * HOLD_OFF_TICKS && cluster.leaders().length === 0; i++) {
    for (const id of rest) cluster.raft(id).tick();
    cluster.stabilize();
  }
  assert.equal(cluster.leaders().length, 1);
  assert.ok(rest.includes(cluster.leaders()[0]!));
});

Deno.test("a wiped follower rejoins through a snapshot of the leader's compacted log, then counts as a voter", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"], seed: 9 });
  cluster.elect("a");
  for (let i = 0; i < 30; i++) cluster.propose("a", `x${i}`);
  cluster.stabilize();
  for (const id of ["a", "b", "c"]) cluster.takeSnapshot(id);
  for (let i = 30; i < 40; i++) cluster.propose("a", `x${i}`);
  cluster.stabilize();
  const commit = cluster.raft("a").status().commit;

  cluster.wipe("c");
  assert.equal(cluster.raft("c").status().joining, true);
  cluster.tickAll(HOLD_OFF_TICKS + 5);
  const c = cluster.node("c");
  assert.ok(c.storage.snapshot !== null, "caught up through InstallSnapshot");
  assert.equal(c.appliedIndex, cluster.raft("a").status().commit);
  assert.ok(c.appliedIndex >= commit);
  assert.deepEqual(c.stateMachine, cluster.node("a").stateMachine);
  assert.equal(cluster.raft("c").status().joining, false);
  assert.equal(c.storage.lostAfter, 0);

  // The leader goes; b and the replaced c elect a new one and take writes.
  cluster.crash("a");
  for (let i = 0; i < 4 * HOLD_OFF_TICKS && cluster.leaders().length === 0; i++) {
    for (const id of ["b", "c"]) cluster.raft(id).tick();
    cluster.stabilize();
  }
  const [leader] = cluster.leaders();
  assert.ok(leader === "b" || leader === "c", `leader ${leader}`);
  assert.equal(cluster.propose(leader, "after").ok, true);
  cluster.stabilize();
  assert.equal(cluster.node("b").stateMachine.at(-1), "after");
  assert.equal(cluster.node("c").stateMachine.at(-1), "after");
});

Deno.test("§5.2: when joining ends, the node's vote in the current term goes to its leader", () => {
  // The old c may have voted in the term of the leader it now follows (for that leader). A
  // follower whose election timer fires clears the leader it knows (pre-vote); a node that
  // has not voted in its term may then grant a vote in it. The joined node records a vote for
  // the leader, so no second candidate gets its vote in that term.
  const raft = joiningRaft("c", { checkQuorum: false, preVote: true });
  tick(raft, HOLD_OFF_TICKS);
  const noop: Entry = { index: 1, term: 1, type: EntryType.Noop, data: new Uint8Array(0) };
  raft.step(append("a", "c", { term: 1, entries: [noop], commit: 1 }));
  const rd = raft.ready()!;
  raft.advance(rd);
  const after = raft.ready()!;
  assert.deepEqual(after.hardState, { term: 1, vote: "a", commit: 1 }, "persisted with the vote");
  raft.advance(after);
  drain(raft);
  assert.deepEqual([raft.status().joining, raft.status().vote], [false, "a"]);
  // a falls silent: c's timer fires, it becomes a pre-candidate and forgets the leader.
  tick(raft, 2 * HOLD_OFF_TICKS);
  assert.equal(raft.status().role, "pre_candidate");
  assert.deepEqual([raft.status().term, raft.status().leader], [1, null]);
  assert.equal(
    ask(raft, voteRequest("b", "c", { term: 1, lastLogIndex: 1, lastLogTerm: 1 })).granted,
    false,
    "no second vote in term 1",
  );
  // A later term is one the old c never saw while a led term 1: a normal vote.
  assert.equal(
    ask(raft, voteRequest("b", "c", { term: 2, lastLogIndex: 1, lastLogTerm: 1 })).granted,
    true,
  );
});

Deno.test("the bound takes in commit indexes leaders reported before the hold-off ended", () => {
  // The leader's first heartbeat still counts the lost node's acknowledgements in its match
  // index (commit 7); once it learned the log is empty, its heartbeats report min(commit, 0).
  const raft = joiningRaft("c", NO_LEASE);
  raft.step(heartbeat("b", "c", 2, 7));
  const sent = drain(raft);
  const rejection = sent.find((m) => m.type === "append_response");
  assert.ok(rejection?.type === "append_response" && !rejection.success);
  assert.deepEqual([rejection.index, rejection.hintIndex], [7, 0], "tells the leader it lost 1..7");
  tick(raft, HOLD_OFF_TICKS);
  raft.step(heartbeat("b", "c", 2, 0));
  drain(raft);
  assert.equal(raft.status().lostAfter, 7);
  raft.step(append("b", "c", { entries: entriesFromTerms([1, 1, 2, 2, 2]), commit: 5 }));
  drain(raft);
  assert.equal(raft.status().joining, true, "5 < 7, even though entry 5 is of term 2");
  raft.step(
    append("b", "c", {
      prevIndex: 5,
      prevTerm: 2,
      entries: entriesFromTerms([2, 2], 6),
      commit: 7,
    }),
  );
  drain(raft);
  assert.deepEqual([raft.status().joining, raft.status().lostAfter], [false, 0]);
});
