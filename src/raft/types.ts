/**
 * The data the pure Raft core exchanges with its driver: log entries, hard state, snapshot
 * metadata, membership, peer messages and the `Ready` batch of outputs.
 *
 * Everything here is plain data (no classes, no I/O), so the simulator, the storage layer and
 * the peer wire codec can all depend on it without depending on the core's logic.
 *
 * Invariants the types cannot express, checked by the core with `assert`:
 * - entry indexes are contiguous and start at 1; index 0 / term 0 is the empty log's sentinel;
 * - terms never decrease along the log;
 * - `HardState.commit` never decreases.
 *
 * @module
 */

/** A node's identity: the `--id` given on the command line. Non-empty, no "=" or ",". */
export type NodeId = string;

/** What a log entry carries. The numbers are stable: they are written to disk and the wire. */
export const EntryType = {
  /** Application data (a KV command), opaque to the core. */
  Normal: 0,
  /** A membership change: `data` is an encoded {@linkcode ConfChange}. */
  ConfChange: 1,
  /** The empty entry a new leader appends to commit an entry of its own term (Raft §8). */
  Noop: 2,
} as const;
export type EntryType = typeof EntryType[keyof typeof EntryType];

/** One Raft log entry. */
export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/**
 * What must be on disk before a node answers a vote or an append (Raft Figure 2, "persistent
 * state on all servers"), plus the commit index so a restart does not re-apply from zero.
 */
export interface HardState {
  readonly term: number;
  /** The candidate voted for in `term`, or null. */
  readonly vote: NodeId | null;
  readonly commit: number;
}

/** A cluster member. `address` is opaque to the core (the node layer keeps peer URLs in it). */
export interface Member {
  readonly id: NodeId;
  readonly address: string;
  /** Voters count toward elections and commit; learners only receive the log. */
  readonly voter: boolean;
}

/** The cluster configuration, members sorted by id. */
export interface Membership {
  readonly members: readonly Member[];
}

/** A membership change, one server at a time (Raft thesis §4.1). */
export type ConfChange =
  | { readonly kind: "add_learner"; readonly id: NodeId; readonly address: string }
  | { readonly kind: "add_voter"; readonly id: NodeId; readonly address: string }
  | { readonly kind: "promote"; readonly id: NodeId }
  | { readonly kind: "remove"; readonly id: NodeId };

/** Identifies a snapshot: the state machine's state after applying every entry up to `index`. */
export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  /** The membership in force at `index`. */
  readonly membership: Membership;
}

/** The role a node plays in its current term. */
export type Role = "follower" | "pre_candidate" | "candidate" | "leader";

/** Fields every peer message has. `term` 0 means "not term-scoped" (never used today). */
interface MessageBase {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

/**
 * A vote request. `preVote` requests use `term` = the sender's term + 1 without the sender
 * having adopted it (Raft thesis §9.6). `transfer` marks a campaign started by TimeoutNow,
 * which receivers honour even inside their leader lease (thesis §3.10).
 */
export interface VoteRequest extends MessageBase {
  readonly type: "vote";
  readonly preVote: boolean;
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
  readonly transfer: boolean;
}

export interface VoteResponse extends MessageBase {
  readonly type: "vote_response";
  readonly preVote: boolean;
  readonly granted: boolean;
}

/** AppendEntries (Raft §5.3). An empty `entries` still carries `commit`. */
export interface AppendRequest extends MessageBase {
  readonly type: "append";
  readonly prevIndex: number;
  readonly prevTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

/**
 * The answer to an append. On success `index` is the last index now known to match the
 * leader's log. On rejection `index` is the rejected `prevIndex` and the hint lets the leader
 * skip a whole conflicting term at once (thesis §5.3 "fast back-off"): `hintIndex` is the
 * follower's last index at or below `prevIndex` whose term is ≤ `hintTerm`.
 */
export interface AppendResponse extends MessageBase {
  readonly type: "append_response";
  readonly success: boolean;
  readonly index: number;
  readonly hintIndex: number;
  readonly hintTerm: number;
}

/**
 * A leader heartbeat. `commit` is min(leader commit, follower's match) so a follower never
 * commits past what it is known to hold. `readSeq` > 0 asks for an acknowledgement that
 * confirms leadership for ReadIndex requests up to that sequence number (Raft §8).
 */
export interface HeartbeatRequest extends MessageBase {
  readonly type: "heartbeat";
  readonly commit: number;
  readonly readSeq: number;
}

export interface HeartbeatResponse extends MessageBase {
  readonly type: "heartbeat_response";
  readonly readSeq: number;
}

/**
 * InstallSnapshot (Raft §7). From the core's point of view this message only names the
 * snapshot; the driver streams the snapshot's bytes beside it. On the leader it is an output
 * ("send this follower the snapshot `snapshot`"); on the follower the driver steps it in only
 * after the bytes are received, verified and stored, and the core then decides whether to
 * install it (output `Ready.snapshot`) or ignore it (stale term or already covered).
 */
export interface SnapshotRequest extends MessageBase {
  readonly type: "snapshot";
  readonly snapshot: SnapshotMeta;
}

/** Leadership transfer: the receiver starts an election at once (thesis §3.10). */
export interface TimeoutNowRequest extends MessageBase {
  readonly type: "timeout_now";
}

/** A follower forwards a client's ReadIndex request to its leader. */
export interface ReadIndexRequest extends MessageBase {
  readonly type: "read_index";
  readonly requestId: string;
}

/** The leader's answer: `index` is safe to read at once the requester has applied it. */
export interface ReadIndexResponse extends MessageBase {
  readonly type: "read_index_response";
  readonly requestId: string;
  /** 0 when the leader could not serve it (it is stepping down or transferring). */
  readonly index: number;
}

export type Message =
  | VoteRequest
  | VoteResponse
  | AppendRequest
  | AppendResponse
  | HeartbeatRequest
  | HeartbeatResponse
  | SnapshotRequest
  | TimeoutNowRequest
  | ReadIndexRequest
  | ReadIndexResponse;

export type MessageType = Message["type"];

/** A read that is now linearizable once the local applied index reaches `index`. */
export interface ReadState {
  readonly requestId: string;
  readonly index: number;
}

/** A read the core could not serve (no leader known, leader lost, transfer in progress). */
export interface DroppedRead {
  readonly requestId: string;
  readonly reason: "no_leader" | "not_leader" | "transferring";
}

/** Volatile state the driver reports (status page, metrics, forwarding). */
export interface SoftState {
  readonly role: Role;
  readonly leader: NodeId | null;
  readonly term: number;
}

/**
 * One batch of work for the driver (etcd-io/raft's Ready). The driver must, in order:
 *
 * 1. send `messages` (they do not depend on this batch being durable: a leader's appends,
 *    heartbeats and snapshots may go out while its own disk write runs);
 * 2. if `snapshot` is set, install it: the state machine restores from it and the stored log
 *    is replaced by the snapshot point (entries ≤ `snapshot.index` dropped);
 * 3. persist `entries` (an entry at an index already stored replaces that entry and every
 *    later one) and then `hardState` when set, and fsync;
 * 4. only then send `messagesAfterPersist` (votes and append acknowledgements promise
 *    durability);
 * 5. apply `committedEntries` in order (all are ≤ the durable commit);
 * 6. call `advance(ready)`.
 *
 * `ready()` returns null when there is nothing to do. Two batches never overlap: the driver
 * calls `advance` before asking for the next one.
 */
export interface Ready {
  readonly softState: SoftState;
  readonly hardState: HardState | null;
  readonly entries: readonly Entry[];
  readonly snapshot: SnapshotMeta | null;
  readonly messages: readonly Message[];
  readonly messagesAfterPersist: readonly Message[];
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
  readonly droppedReads: readonly DroppedRead[];
}

/** The outcome of a proposal. An accepted proposal is acknowledged once the entry at
 * `index` is applied with the same `term`; a different term there means it was lost. */
export type ProposeResult =
  | { readonly ok: true; readonly index: number; readonly term: number }
  | {
    readonly ok: false;
    readonly reason:
      | "not_leader"
      | "transferring"
      | "too_large"
      | "overloaded"
      | "conf_change_pending"
      | "invalid_conf_change";
    /** The known leader, for forwarding, or null. */
    readonly leader: NodeId | null;
  };

/** The core's tunables, in ticks and bytes (a limit on everything, STYLE.md item 13). */
export interface RaftConfig {
  /** This node's id; must appear in the membership unless it is joining as a new member. */
  readonly id: NodeId;
  /** A follower campaigns after a random timeout in [electionTicks, 2 × electionTicks). */
  readonly electionTicks: number;
  /** The leader sends heartbeats every `heartbeatTicks`; must be < electionTicks. */
  readonly heartbeatTicks: number;
  /** Pre-vote phase before a real election (thesis §9.6). */
  readonly preVote: boolean;
  /** A leader that has not heard from a quorum within electionTicks steps down. */
  readonly checkQuorum: boolean;
  /** Appends in flight per follower before the leader waits for acknowledgements. */
  readonly inflightAppendsMax: number;
  /** Upper bound on the entry bytes in one append message (at least one entry is sent). */
  readonly appendBytesMax: number;
  /** Bytes of proposed but uncommitted entries the leader accepts before refusing. */
  readonly uncommittedBytesMax: number;
  /** Upper bound on one proposal's data. */
  readonly proposalBytesMax: number;
  /** Upper bound on bytes handed out as `committedEntries` in one Ready. */
  readonly applyBytesMax: number;
}

/** What a node starts from: what its storage recovered (all empty for a brand-new node). */
export interface RaftBootState {
  readonly hardState: HardState;
  /** The newest snapshot, or null. Its membership is the base configuration. */
  readonly snapshot: SnapshotMeta | null;
  /** The stored entries after the snapshot, contiguous. */
  readonly entries: readonly Entry[];
  /** The membership to start with when there is neither a snapshot nor a config entry. */
  readonly membership: Membership;
  /** Entries ≤ this index are known applied (usually the snapshot index). */
  readonly applied: number;
  /**
   * 0, or an index storage recovery had to drop entries below (corruption, not a torn tail).
   * Until the log again reaches it, this node neither votes nor campaigns: a quorum may have
   * counted it for entries it no longer has, and its vote could elect a leader missing them
   * (docs/STORAGE.md, "Lost entries and the no-vote rule").
   */
  readonly lostAfter?: number;
  /**
   * This node replaces a member whose state was lost (an empty data directory started with
   * `--join`): it may have voted in some term before, and acknowledged entries, that it no
   * longer remembers. It neither votes, grants pre-votes nor campaigns until it has heard from
   * a leader and holds what that leader had committed (see {@linkcode RaftStatus.joining}).
   * The same as `lostAfter: JOINING_LOST_AFTER`, which is how the driver persists it.
   */
  readonly joining?: boolean;
}

/**
 * The `lostAfter` value of a joining node that has not heard from a leader yet: "everything
 * may be lost, the bound is not known". The driver persists it in the hard state when it
 * bootstraps an empty data directory with `--join`, so a crash before the node caught up
 * restarts it still joining (docs/ARCHITECTURE.md, "Replacing a node").
 */
export const JOINING_LOST_AFTER = Number.MAX_SAFE_INTEGER;

/** How the leader sees one follower's replication (etcd-io/raft's Progress). */
export interface ProgressStatus {
  readonly id: NodeId;
  /** Highest index known to be in the follower's log. */
  readonly match: number;
  /** Next index the leader will send. */
  readonly next: number;
  readonly state: "probe" | "replicate" | "snapshot";
  /** Heard from within the last election timeout (check-quorum). */
  readonly recentActive: boolean;
}

/** A point-in-time view of the core, for status pages, metrics and test checkers. */
export interface RaftStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly vote: NodeId | null;
  readonly leader: NodeId | null;
  readonly commit: number;
  readonly applied: number;
  /** First index still held in the core's log (snapshot index + 1 when compacted). */
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly lastTerm: number;
  readonly snapshot: SnapshotMeta | null;
  readonly membership: Membership;
  /** Per-follower replication state; empty unless leader. */
  readonly progress: readonly ProgressStatus[];
  /** The target of a leadership transfer in progress, or null. */
  readonly transferee: NodeId | null;
  /**
   * The no-vote bound in force: 0 when this node may vote; otherwise it neither votes nor
   * campaigns until its log reaches this index ({@linkcode JOINING_LOST_AFTER} while joining
   * and no leader has been heard from yet).
   */
  readonly lostAfter: number;
  /**
   * True while this node replaces a member that lost its state (`RaftBootState.joining`). It
   * ends once this node follows a leader of its current term and durably holds a committed
   * entry of that term at an index ≥ `lostAfter` (the commit index the first leader it heard
   * from reported). The driver then clears the persisted marker.
   */
  readonly joining: boolean;
}

/** Deliberately broken rules, switched on only by tests that prove the simulator catches
 * them. Never set in production code. */
export interface RaftTestHooks {
  /** Commit an old-term entry by counting replicas (violates Raft §5.4.2, Figure 8). */
  readonly commitOldTermEntries?: boolean;
  /** Grant votes without the up-to-date check (violates Raft §5.4.1). */
  readonly grantVotesToStaleLogs?: boolean;
}

/** Options of the {@linkcode Raft} constructor besides config and boot state. */
export interface RaftOptions {
  /** Uniform numbers in [0, 1); the only source of chance in the core. */
  readonly random: () => number;
  readonly testHooks?: RaftTestHooks;
}
