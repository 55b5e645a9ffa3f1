/**
 * What a checker reports when a run breaks a rule: which invariant, and the evidence.
 *
 * @module
 */

/** The invariants the simulator checks (docs/ARCHITECTURE.md, "Invariants"). */
export const Invariant = {
  /** At most one leader per term (Raft §5.2, Figure 3 "Election Safety"). */
  ElectionSafety: "election_safety",
  /** Same index and term ⇒ same entry and same prefix (Raft §5.3, "Log Matching"). */
  LogMatching: "log_matching",
  /** A committed entry is in the log of every later leader (Raft §5.4, "Leader Completeness"). */
  LeaderCompleteness: "leader_completeness",
  /** No two nodes apply different entries at one index (Raft §5.4.3, "State Machine Safety"). */
  StateMachineSafety: "state_machine_safety",
  /** A node's commit index never decreases, also across restarts against what it persisted. */
  CommitMonotonic: "commit_monotonic",
  /** What a node promised (a vote, an acknowledged append) was durable first. */
  Durability: "durability",
  /** An acknowledged write is in every replica's state once the cluster converges. */
  AcknowledgedWriteLost: "acknowledged_write_lost",
  /** Every read returns a result consistent with a linearizable history (Raft §8). */
  LinearizableRead: "linearizable_read",
  /** After the faults end the cluster elects a leader, commits and converges in bounded time. */
  Liveness: "liveness",
  /** The core's outputs broke the Ready contract the driver relies on. */
  DriverContract: "driver_contract",
  /** The core threw (an assertion inside it failed). */
  CoreError: "core_error",
} as const;
export type Invariant = typeof Invariant[keyof typeof Invariant];

/** One broken invariant with a human-readable explanation. */
export interface Violation {
  readonly invariant: Invariant;
  readonly detail: string;
}

/** Builds a {@linkcode Violation}. */
export function violation(invariant: Invariant, detail: string): Violation {
  return { invariant, detail };
}
