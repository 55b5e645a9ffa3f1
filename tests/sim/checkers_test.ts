/**
 * Self-tests of the simulator's checkers: hand-made histories that break each rule must be
 * flagged, and legal ones must not, so a green simulator run means something.
 */

import assert from "node:assert/strict";
import { type Entry, EntryType, type HardState } from "../../src/raft/types.ts";
import { ReadChecker } from "../../src/sim/linearizability.ts";
import { findLostWrite, SafetyChecker } from "../../src/sim/safety_checker.ts";
import { Invariant, type Violation } from "../../src/sim/violation.ts";

const encoder = new TextEncoder();

function entry(index: number, term: number, text = `e${index}`): Entry {
  return { index, term, type: EntryType.Normal, data: encoder.encode(text) };
}

function termsOf(entries: readonly Entry[]): (index: number) => number | undefined {
  return (index) => (index === 0 ? 0 : entries.find((e) => e.index === index)?.term);
}

function assertFlags(v: Violation | null, invariant: Invariant): void {
  assert.ok(v !== null, `expected a ${invariant} violation, got none`);
  assert.equal(v.invariant, invariant, v.detail);
}

// ---- Election safety ------------------------------------------------------------------

Deno.test("two leaders in one term are flagged (Raft §5.2 election safety)", () => {
  const checker = new SafetyChecker();
  assert.equal(checker.observeRole("n1", "leader", 3), null);
  assert.equal(checker.observeRole("n1", "leader", 3), null);
  assert.equal(checker.observeRole("n2", "follower", 3), null);
  assert.equal(checker.observeRole("n2", "leader", 4), null);
  assertFlags(checker.observeRole("n3", "leader", 3), Invariant.ElectionSafety);
});

// ---- Log matching ---------------------------------------------------------------------

Deno.test("two different entries with the same index and term are flagged (Raft §5.3)", () => {
  const checker = new SafetyChecker();
  assert.equal(checker.observeLogEntries("n1", "persisted", 0, 0, [entry(1, 1, "a")]), null);
  assert.equal(checker.observeLogEntries("n2", "persisted", 0, 0, [entry(1, 1, "a")]), null);
  assertFlags(
    checker.observeLogEntries("n3", "persisted", 0, 0, [entry(1, 1, "b")]),
    Invariant.LogMatching,
  );
});

Deno.test("the same entry after different predecessors is flagged (log matching by induction)", () => {
  const checker = new SafetyChecker();
  assert.equal(
    checker.observeLogEntries("n1", "persisted", 0, 0, [entry(1, 1), entry(2, 2)]),
    null,
  );
  // n2 claims (2, 2) follows an entry of term 2 at index 1: its prefix differs.
  assertFlags(
    checker.observeLogEntries("n2", "append to n3", 1, 2, [entry(2, 2)]),
    Invariant.LogMatching,
  );
});

Deno.test("terms decreasing along a log and gaps are flagged", () => {
  const checker = new SafetyChecker();
  assertFlags(
    checker.observeLogEntries("n1", "persisted", 0, 0, [entry(1, 2), entry(2, 1)]),
    Invariant.LogMatching,
  );
  assertFlags(
    new SafetyChecker().observeLogEntries("n1", "persisted", 0, 0, [entry(2, 1)]),
    Invariant.LogMatching,
  );
});

// ---- Commit index and committed entries -----------------------------------------------

Deno.test("a commit index that moves back is flagged, in memory and on disk", () => {
  const checker = new SafetyChecker();
  assert.equal(checker.observeCommitIndex("n1", 5, 7, "in memory"), null);
  assertFlags(checker.observeCommitIndex("n1", 7, 6, "in memory"), Invariant.CommitMonotonic);
  const hs = (term: number, vote: string | null, commit: number): HardState => ({
    term,
    vote,
    commit,
  });
  assertFlags(
    checker.observeHardState("n1", hs(3, "n1", 9), hs(3, "n1", 8)),
    Invariant.CommitMonotonic,
  );
});

Deno.test("a committed index whose term changes is flagged (Raft §5.4.3)", () => {
  const checker = new SafetyChecker();
  const log1 = [entry(1, 1), entry(2, 1)];
  assert.equal(checker.observeCommit("n1", 1, 0, 2, termsOf(log1)), null);
  const log2 = [entry(1, 1), entry(2, 2)];
  assertFlags(checker.observeCommit("n2", 2, 0, 2, termsOf(log2)), Invariant.StateMachineSafety);
});

// ---- Leader completeness --------------------------------------------------------------

Deno.test("a new leader missing an entry committed in an earlier term is flagged (§5.4.1)", () => {
  const checker = new SafetyChecker();
  const log = [entry(1, 1), entry(2, 1), entry(3, 2)];
  assert.equal(checker.observeCommit("n1", 2, 0, 3, termsOf(log)), null);
  // n2's log lacks index 3: it may not lead term 3.
  const short = [entry(1, 1), entry(2, 1)];
  assertFlags(
    checker.observeNewLeader("n2", 3, 0, 2, termsOf(short)),
    Invariant.LeaderCompleteness,
  );
  // A different term at a committed index is as bad as a missing entry.
  const other = [entry(1, 1), entry(2, 1), entry(3, 3)];
  assertFlags(
    checker.observeNewLeader("n2", 4, 0, 3, termsOf(other)),
    Invariant.LeaderCompleteness,
  );
  // The full log passes.
  assert.equal(checker.observeNewLeader("n3", 3, 0, 3, termsOf(log)), null);
});

Deno.test("entries known committed only in or after a term do not bind that term's leader", () => {
  const checker = new SafetyChecker();
  const log = [entry(1, 4)];
  // n1 learned in term 5 that index 1 is committed; a leader of term 5 that won earlier with a
  // shorter log is not required to hold it (it may have been committed by that very term).
  assert.equal(checker.observeCommit("n1", 5, 0, 1, termsOf(log)), null);
  assert.equal(checker.observeNewLeader("n2", 5, 0, 0, termsOf([])), null);
  assertFlags(checker.observeNewLeader("n2", 6, 0, 0, termsOf([])), Invariant.LeaderCompleteness);
});

// ---- State machine safety -------------------------------------------------------------

Deno.test("two nodes applying different entries at one index are flagged (§5.4.3)", () => {
  const checker = new SafetyChecker();
  assert.equal(checker.observeApply("n1", 1, entry(1, 1, "a"), 11), null);
  assert.equal(checker.observeApply("n2", 1, entry(1, 1, "a"), 11), null);
  assertFlags(checker.observeApply("n3", 2, entry(1, 2, "b"), 12), Invariant.StateMachineSafety);
});

Deno.test("a replica whose history differs at an index (snapshot or apply) is flagged", () => {
  const checker = new SafetyChecker();
  assert.equal(checker.observeApply("n1", 1, entry(1, 1), 0xaaaa), null);
  assertFlags(checker.observeState("n2", 1, 0xbbbb, "snapshot"), Invariant.StateMachineSafety);
});

// ---- Durability -----------------------------------------------------------------------

Deno.test("a persisted vote that changes within a term, or a term that goes back, is flagged", () => {
  const checker = new SafetyChecker();
  assert.equal(
    checker.observeHardState("n1", { term: 2, vote: null, commit: 0 }, {
      term: 2,
      vote: "n2",
      commit: 0,
    }),
    null,
  );
  assertFlags(
    checker.observeHardState("n1", { term: 2, vote: "n2", commit: 0 }, {
      term: 2,
      vote: "n3",
      commit: 0,
    }),
    Invariant.Durability,
  );
  assertFlags(
    checker.observeHardState("n1", { term: 3, vote: null, commit: 0 }, {
      term: 2,
      vote: null,
      commit: 0,
    }),
    Invariant.Durability,
  );
});

Deno.test("an acknowledged write missing from a converged replica is flagged", () => {
  const write = { key: "k", token: "w1", index: 4 };
  const replica = (id: string, applied: number, tokens: string[]) => ({
    id,
    applied,
    has: (_key: string, token: string) => tokens.includes(token),
  });
  assert.equal(findLostWrite([write], [replica("n1", 4, ["w1"]), replica("n2", 9, ["w1"])]), null);
  assertFlags(
    findLostWrite([write], [replica("n1", 4, ["w1"]), replica("n2", 9, [])]),
    Invariant.AcknowledgedWriteLost,
  );
  assertFlags(
    findLostWrite([write], [replica("n1", 3, ["w1"])]),
    Invariant.AcknowledgedWriteLost,
  );
});

// ---- Linearizable reads ---------------------------------------------------------------

/** A tiny history builder: every call is one step of a logical clock. */
function history() {
  const checker = new ReadChecker();
  let now = 0;
  return {
    write(token: string, key = "k") {
      checker.writeProposed(token, key, ++now);
    },
    ack(token: string) {
      checker.writeAcknowledged(token, ++now);
    },
    start(id: string, key = "k") {
      checker.readStarted(id, key, ++now);
    },
    finish(id: string, result: string[]): Violation | null {
      return checker.readFinished(id, result, ++now);
    },
  };
}

Deno.test("a read that misses a write acknowledged before it started is flagged", () => {
  const h = history();
  h.write("w1");
  h.ack("w1");
  h.start("r1");
  assertFlags(h.finish("r1", []), Invariant.LinearizableRead);
});

Deno.test("a write concurrent with a read may or may not be seen", () => {
  const h = history();
  h.write("w1");
  h.start("r1");
  h.start("r2");
  h.ack("w1");
  assert.equal(h.finish("r1", []), null);
  assert.equal(h.finish("r2", ["w1"]), null);
});

Deno.test("a read returning a value never written, proposed later, or twice is flagged", () => {
  const a = history();
  a.start("r1");
  assertFlags(a.finish("r1", ["ghost"]), Invariant.LinearizableRead);

  const b = history();
  b.write("w1");
  b.start("r1");
  assert.equal(b.finish("r1", ["w1"]), null);
  b.start("r2");
  assertFlags(b.finish("r2", ["w1", "w1"]), Invariant.LinearizableRead);

  // A write to another key is not a value of this one.
  const c = history();
  c.write("w1", "other");
  c.start("r1");
  assertFlags(c.finish("r1", ["w1"]), Invariant.LinearizableRead);
});

Deno.test("a write proposed after the read answered cannot be in its result", () => {
  const checker = new ReadChecker();
  checker.readStarted("r1", "k", 1);
  checker.writeProposed("w1", "k", 5);
  assertFlags(checker.readFinished("r1", ["w1"], 3), Invariant.LinearizableRead);
});

Deno.test("a read that goes back in time after an earlier read finished is flagged", () => {
  const h = history();
  h.write("w1");
  h.write("w2");
  h.start("r1");
  assert.equal(h.finish("r1", ["w1", "w2"]), null);
  h.start("r2");
  // r1 finished before r2 started: r2 must see at least [w1 w2].
  assertFlags(h.finish("r2", ["w1"]), Invariant.LinearizableRead);
});

Deno.test("two reads that observe different orders of the same writes are flagged", () => {
  const h = history();
  h.write("w1");
  h.write("w2");
  h.start("r1");
  h.start("r2");
  assert.equal(h.finish("r1", ["w1", "w2"]), null);
  assertFlags(h.finish("r2", ["w2", "w1"]), Invariant.LinearizableRead);
});

Deno.test("overlapping reads may return different prefixes of one history", () => {
  const h = history();
  h.write("w1");
  h.write("w2");
  h.start("r1");
  h.start("r2");
  assert.equal(h.finish("r2", ["w1", "w2"]), null);
  assert.equal(h.finish("r1", ["w1"]), null);
  h.start("r3");
  assert.equal(h.finish("r3", ["w1", "w2"]), null);
});
