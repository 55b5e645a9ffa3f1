/**
 * Unit tests of the core's building blocks: quorum arithmetic (§5.2/§5.3), the log (§5.3,
 * §7), per-follower progress, the ReadIndex queue (§8) and membership changes (thesis §4.1).
 */

import assert from "node:assert/strict";
import { majorityValue, quorumSize, voteResult } from "../../src/raft/quorum.ts";
import { RaftLog } from "../../src/raft/raft_log.ts";
import { Progress } from "../../src/raft/progress.ts";
import { ReadOnly } from "../../src/raft/read_only.ts";
import { applyConfChange, decodeConfChange, encodeConfChange } from "../../src/raft/conf_change.ts";
import { EntryType } from "../../src/raft/types.ts";
import type { Entry, Membership } from "../../src/raft/types.ts";
import { entriesFromTerms, membershipOf } from "./harness.ts";

function confEntry(
  index: number,
  term: number,
  membershipChange: Parameters<
    typeof encodeConfChange
  >[0],
): Entry {
  return { index, term, type: EntryType.ConfChange, data: encodeConfChange(membershipChange) };
}

function newLog(terms: number[], committed = 0, membership: Membership = membershipOf(["a"])) {
  return new RaftLog({
    snapshot: null,
    entries: entriesFromTerms(terms),
    membership,
    committed,
    applied: 0,
  });
}

Deno.test("quorum: a majority is more than half of the voters", () => {
  assert.deepEqual([1, 2, 3, 4, 5].map(quorumSize), [1, 2, 2, 3, 3]);
  assert.equal(majorityValue([5, 1, 3]), 3);
  assert.equal(majorityValue([5, 5, 1, 1]), 1);
  assert.equal(majorityValue([7]), 7);
  assert.equal(majorityValue([]), 0);
});

Deno.test("quorum: a tally is won, lost or pending, counting voters only", () => {
  const voters = ["a", "b", "c"];
  assert.equal(voteResult(voters, new Map([["a", true]])), "pending");
  assert.equal(voteResult(voters, new Map([["a", true], ["b", true]])), "won");
  assert.equal(voteResult(voters, new Map([["a", true], ["b", false], ["c", false]])), "lost");
  assert.equal(voteResult(voters, new Map([["a", true], ["x", true]])), "pending", "x no voter");
});

Deno.test("log §5.3: maybeAppend keeps matching entries and truncates from a conflict", () => {
  const log = newLog([1, 1, 2, 2], 1);
  // A duplicate append changes nothing and does not make anything unstable again.
  assert.equal(log.maybeAppend(1, 1, 1, entriesFromTerms([1, 2], 2)), 3);
  assert.equal(log.lastIndex, 4);
  assert.equal(log.hasUnstable, false);
  assert.equal(log.maybeAppend(2, 1, 3, entriesFromTerms([3], 3)), 3);
  assert.deepEqual([log.lastIndex, log.lastTerm, log.committed, log.persisted], [3, 3, 3, 2]);
  assert.deepEqual(log.unstableEntries().map((e) => e.index), [3]);
  assert.equal(log.maybeAppend(3, 2, 3, []), null, "prev term mismatch");
});

Deno.test("log §5.4: a conflict at or below the commit index is a bug", () => {
  const log = newLog([1, 1, 2], 3);
  assert.throws(() => log.maybeAppend(1, 1, 3, entriesFromTerms([3], 2)), /below commit/);
});

Deno.test("log: findConflictByTerm finds the last index at or below with a term ≤ the hint", () => {
  const log = newLog([1, 1, 2, 2, 5, 5]);
  assert.equal(log.findConflictByTerm(6, 4), 4);
  assert.equal(log.findConflictByTerm(6, 1), 2);
  assert.equal(log.findConflictByTerm(9, 9), 6);
  assert.equal(log.findConflictByTerm(6, 0), 0);
});

Deno.test("log: stableTo ignores an entry replaced since the Ready was handed out", () => {
  const log = newLog([1, 1]);
  log.maybeAppend(2, 1, 0, entriesFromTerms([1, 1], 3));
  const unstable = log.unstableEntries();
  log.maybeAppend(3, 1, 0, entriesFromTerms([2], 4)); // replaces index 4 meanwhile
  const last = unstable[unstable.length - 1]!;
  log.stableTo(last.index, last.term);
  // Conservative: nothing counts as durable; the next Ready writes 3 again along with 4.
  assert.equal(log.persisted, 2);
  assert.deepEqual(log.unstableEntries().map((e) => [e.index, e.term]), [[3, 1], [4, 2]]);
  log.stableTo(4, 2);
  assert.equal(log.persisted, 4);
});

Deno.test("log: committed entries are limited by bytes but include at least one", () => {
  const log = newLog([1, 1, 1], 3);
  assert.deepEqual(log.nextCommittedEntries(1).map((e) => e.index), [1]);
  assert.deepEqual(log.nextCommittedEntries(1000).map((e) => e.index), [1, 2, 3]);
  log.appliedTo(2);
  assert.deepEqual(log.nextCommittedEntries(1000).map((e) => e.index), [3]);
  assert.throws(() => log.appliedTo(4), /past commit/);
});

Deno.test("log §7: compaction keeps terms and membership at the snapshot point", () => {
  const log = newLog([1, 1, 2, 2], 0, membershipOf(["a"]));
  log.maybeAppend(4, 2, 5, [confEntry(5, 2, { kind: "add_voter", id: "b", address: "b" })]);
  log.appliedTo(5);
  const meta = { index: 5, term: 2, membership: log.membershipAt(5) };
  log.compact(meta);
  assert.deepEqual([log.firstIndex, log.lastIndex, log.lastTerm], [6, 5, 2]);
  assert.equal(log.term(5), 2);
  assert.equal(log.term(4), undefined);
  assert.deepEqual(log.membership.members.map((m) => m.id), ["a", "b"]);
  assert.throws(() => log.slice(5, 100), /compacted/);
});

Deno.test("log thesis §4.1: a truncated configuration entry rolls the membership back", () => {
  const log = newLog([1], 0, membershipOf(["a"]));
  log.maybeAppend(1, 1, 0, [confEntry(2, 1, { kind: "add_learner", id: "l", address: "l" })]);
  assert.deepEqual(log.membership.members.map((m) => m.id), ["a", "l"]);
  assert.equal(log.membershipIndex, 2);
  log.maybeAppend(1, 1, 0, entriesFromTerms([2], 2));
  assert.deepEqual(log.membership.members.map((m) => m.id), ["a"]);
  assert.equal(log.membershipIndex, 0);
});

Deno.test("progress: probe sends one append, replicate pipelines up to the window", () => {
  const pr = new Progress(5, 2);
  assert.equal(pr.paused, false);
  pr.sentAppend(6);
  assert.equal(pr.paused, true, "one probe at a time");
  assert.equal(pr.maybeUpdate(6), true);
  pr.becomeReplicate();
  assert.equal(pr.next, 7);
  pr.sentAppend(8);
  pr.sentAppend(10);
  assert.deepEqual([pr.next, pr.paused], [11, true]);
  pr.maybeUpdate(8);
  assert.deepEqual([pr.inflightCount, pr.paused], [1, false]);
});

Deno.test("progress: stale rejections are ignored, fresh ones move next back", () => {
  const pr = new Progress(11, 4);
  pr.maybeUpdate(5);
  pr.becomeReplicate();
  pr.sentAppend(10);
  assert.equal(pr.maybeDecrTo(4, 0), false, "below match: an old append");
  assert.equal(pr.maybeDecrTo(8, 7), true);
  assert.deepEqual([pr.state, pr.next], ["probe", 8]);
  assert.equal(pr.maybeDecrTo(3, 0), false, "not the latest probe");
  assert.equal(pr.maybeDecrTo(7, 2), true);
  assert.equal(pr.next, 6, "never below match + 1");
});

Deno.test("read only §8: rounds release reads in order once a quorum acknowledged", () => {
  const ro = new ReadOnly();
  ro.add("r1", "a", 5);
  ro.add("r2", "a", 5);
  assert.equal(ro.takeBroadcast(), 1);
  assert.equal(ro.takeBroadcast(), 0, "one round per burst");
  ro.add("r3", "b", 6);
  assert.equal(ro.takeBroadcast(), 2);
  assert.deepEqual(ro.release(0), []);
  assert.deepEqual(ro.release(1).map((r) => r.requestId), ["r1", "r2"]);
  assert.deepEqual(ro.release(2).map((r) => [r.requestId, r.from, r.index]), [["r3", "b", 6]]);
  assert.equal(ro.size, 0);
});

Deno.test("conf change thesis §4.1: changes encode, decode and apply one server at a time", () => {
  const base = membershipOf(["a", "b"]);
  for (
    const change of [
      { kind: "add_learner", id: "l", address: "http://l" },
      { kind: "add_voter", id: "c", address: "http://c" },
      { kind: "promote", id: "l" },
      { kind: "remove", id: "b" },
    ] as const
  ) {
    assert.deepEqual(decodeConfChange(encodeConfChange(change)), change);
  }
  assert.equal(decodeConfChange(new TextEncoder().encode('{"kind":"explode"}')), null);
  assert.equal(decodeConfChange(new Uint8Array([0xff])), null);
  const added = applyConfChange(base, { kind: "add_learner", id: "0", address: "x" });
  assert.ok(typeof added !== "string");
  assert.deepEqual(added.members.map((m) => [m.id, m.voter]), [["0", false], ["a", true], [
    "b",
    true,
  ]]);
  assert.equal(typeof applyConfChange(base, { kind: "promote", id: "a" }), "string");
  assert.equal(
    typeof applyConfChange(membershipOf(["a"]), { kind: "remove", id: "a" }),
    "string",
    "the last voter stays",
  );
});
