/**
 * The Raft consensus core: a pure, deterministic state machine in the style of etcd-io/raft.
 *
 * Inputs are ticks, peer messages, proposals and read requests; outputs are collected into a
 * {@linkcode Ready} batch that the driver persists, sends and applies before calling
 * `advance`. Nothing here touches the disk, the network, the clock or a random source other
 * than the injected `random`, so a seeded simulator replays it exactly.
 *
 * Invariants kept here (the log keeps its own, see raft_log.ts):
 * - the term never decreases, and a vote is cast at most once per term;
 * - a leader exists only in a term it won, and counts its own entries as replicated only
 *   once a Ready that persisted them was advanced;
 * - only an entry of the current term is committed by counting replicas (Raft §5.4.2);
 * - vote grants and append acknowledgements go out only after the state they promise is
 *   durable (they travel in `messagesAfterPersist`);
 * - batches never overlap: `ready()` is not called again before `advance()`.
 *
 * @module
 */

import { assert } from "../util/assert.ts";
import {
  applyConfChange,
  encodeConfChange,
  isVoter,
  sameMembership,
  voterIds,
} from "./conf_change.ts";
import { validateRaftConfig } from "./config.ts";
import { Progress } from "./progress.ts";
import { majorityValue, voteResult } from "./quorum.ts";
import { RaftLog } from "./raft_log.ts";
import { ReadOnly } from "./read_only.ts";
import {
  type AppendRequest,
  type AppendResponse,
  type ConfChange,
  type DroppedRead,
  type Entry,
  EntryType,
  type HardState,
  type HeartbeatResponse,
  JOINING_LOST_AFTER,
  type Membership,
  type Message,
  type NodeId,
  type ProgressStatus,
  type ProposeResult,
  type RaftBootState,
  type RaftConfig,
  type RaftOptions,
  type RaftStatus,
  type RaftTestHooks,
  type ReadIndexResponse,
  type ReadState,
  type Ready,
  type Role,
  type SnapshotMeta,
  type SnapshotRequest,
  type SoftState,
  type VoteRequest,
  type VoteResponse,
} from "./types.ts";

type CampaignKind = "pre_vote" | "election" | "transfer";

/** One Raft node's consensus state. See docs/ARCHITECTURE.md, "The Raft core". */
export class Raft {
  readonly #id: NodeId;
  readonly #config: RaftConfig;
  readonly #random: () => number;
  readonly #hooks: RaftTestHooks;
  readonly #log: RaftLog;

  #term: number;
  #vote: NodeId | null;
  #leader: NodeId | null = null;
  #role: Role = "follower";

  /** Ticks since the last election timeout reset (followers) or check-quorum round (leader). */
  #electionElapsed = 0;
  #heartbeatElapsed = 0;
  /** This term's randomized election timeout, in [electionTicks, 2 × electionTicks). */
  #electionTimeout: number;
  /** Logical time, for expiring forwarded reads. */
  #ticks = 0;
  #votes = new Map<NodeId, boolean>();
  /**
   * Storage recovery dropped acknowledged entries up to here (0: nothing lost). Until the
   * durable log reaches it again this node neither votes nor campaigns: a quorum may have
   * counted it for entries it no longer holds (docs/STORAGE.md, "the no-vote rule").
   */
  #lostAfter: number;
  /**
   * This node replaces a member that lost its state (`--join`): it may have voted in a term
   * and acknowledged entries it no longer remembers. Until it follows a leader and holds what
   * that leader committed, it neither votes nor campaigns (see #refreshJoining). `#lostAfter`
   * is JOINING_LOST_AFTER until the leader message that sets the bound.
   */
  #joining: boolean;
  /** While joining: the highest commit index a leader reported since this node started. */
  #joinCommitSeen = 0;
  #votersOf: Membership | null = null;
  #voterCache: readonly NodeId[] = [];

  // Leader state.
  #progress = new Map<NodeId, Progress>();
  #transferee: NodeId | null = null;
  #uncommittedBytes = 0;
  #readOnly = new ReadOnly();

  /** Follower state: reads forwarded to the leader, by request id, with the tick sent. */
  #forwardedReads = new Map<string, number>();

  // Outputs collected for the next Ready.
  #messages: Message[] = [];
  #messagesAfterPersist: Message[] = [];
  #readStates: ReadState[] = [];
  #droppedReads: DroppedRead[] = [];
  #prevSoft: SoftState;
  #prevHard: HardState;
  #readyOutstanding = false;

  /**
   * Builds a node from what its storage recovered. It starts as a follower with the
   * persisted term, vote and commit index. `config` must pass `validateRaftConfig`.
   */
  constructor(config: RaftConfig, boot: RaftBootState, options: RaftOptions) {
    const problems = validateRaftConfig(config);
    assert(problems.length === 0, `Invalid Raft config: ${problems.join("; ")}`);
    this.#id = config.id;
    this.#config = config;
    this.#random = options.random;
    this.#hooks = options.testHooks ?? {};
    this.#log = new RaftLog({
      snapshot: boot.snapshot,
      entries: boot.entries,
      membership: boot.membership,
      committed: boot.hardState.commit,
      applied: boot.applied,
    });
    this.#term = boot.hardState.term;
    this.#vote = boot.hardState.vote;
    this.#joining = boot.joining === true || boot.lostAfter === JOINING_LOST_AFTER;
    this.#lostAfter = this.#joining ? JOINING_LOST_AFTER : boot.lostAfter ?? 0;
    if (this.#log.lastTerm > this.#term) {
      // Entries of a later term reached the disk but the hard state did not (a crash between
      // the two writes). The node had entered that term; it cast no vote in it that anyone
      // saw, since votes are sent only after the hard state is durable.
      this.#term = this.#log.lastTerm;
      this.#vote = null;
    }
    this.#electionTimeout = this.#randomElectionTimeout();
    this.#prevSoft = this.#softState();
    this.#prevHard = boot.hardState;
  }

  // ---------------------------------------------------------------------------------------
  // Inputs

  /** Advances logical time by one tick: election timeouts, heartbeats, check-quorum. */
  tick(): void {
    this.#ticks++;
    if (this.#role === "leader") this.#tickLeader();
    else this.#tickElection();
    this.#expireForwardedReads();
  }

  /** Handles one message from a peer. Messages addressed to another node are ignored. */
  step(m: Message): void {
    if (m.to !== this.#id || m.from === this.#id) return;
    if (m.term > this.#term) {
      if (m.type === "vote") {
        // Thesis §6.2 / §4.2.3: while a follower hears from a leader it ignores candidates,
        // so a partitioned or removed server cannot depose a healthy leader. A transfer
        // (thesis §3.10) is sanctioned by the leader and passes.
        const inLease = this.#config.checkQuorum && this.#leader !== null &&
          this.#electionElapsed < this.#config.electionTicks;
        if (inLease && !m.transfer) return;
        // Thesis §9.6: a pre-vote asks about a term nobody has entered yet; do not adopt it.
        // Figure 2: only granting a vote resets the election timer, so a candidate whose log
        // is stale cannot keep up-to-date nodes from campaigning by starting elections.
        if (!m.preVote) this.#becomeFollower(m.term, null, { keepTimer: true });
      } else if (m.type === "vote_response" && m.preVote && m.granted) {
        // A granted pre-vote carries the term the pre-candidate would campaign in.
      } else {
        const fromLeader = m.type === "append" || m.type === "heartbeat" ||
          m.type === "snapshot" || m.type === "timeout_now";
        this.#becomeFollower(m.term, fromLeader ? m.from : null);
      }
    } else if (m.term < this.#term) {
      this.#stepStale(m);
      return;
    }

    switch (m.type) {
      case "vote":
        this.#handleVote(m);
        break;
      case "vote_response":
        this.#handleVoteResponse(m);
        break;
      case "append":
        this.#followLeader(m.from, m.commit);
        this.#handleAppend(m);
        break;
      case "heartbeat":
        this.#followLeader(m.from, m.commit);
        this.#log.commitTo(Math.min(m.commit, this.#log.lastIndex));
        this.#send({
          type: "heartbeat_response",
          from: this.#id,
          to: m.from,
          term: this.#term,
          readSeq: m.readSeq,
        });
        if (m.commit > this.#log.lastIndex && (this.#joining || this.#lostAfter > 0)) {
          // The leader believes we hold entries (up to its commit, as far as we acknowledged)
          // that this node lost with its state: reject at that index with our last index as
          // the hint, so it lowers our match and re-sends (or sends a snapshot) even when no
          // new write would make it probe us.
          this.#sendAppendResponse(
            m.from,
            false,
            m.commit,
            this.#log.lastIndex,
            this.#log.lastTerm,
          );
        }
        break;
      case "snapshot":
        // The snapshot's index is committed at the leader: a lower bound of its commit.
        this.#followLeader(m.from, m.snapshot.index);
        this.#handleSnapshot(m);
        break;
      case "append_response":
        this.#handleAppendResponse(m);
        break;
      case "heartbeat_response":
        this.#handleHeartbeatResponse(m);
        break;
      case "timeout_now":
        // Thesis §3.10: campaign at once, skipping pre-vote; learners and strangers cannot.
        if (this.#role !== "leader") this.#campaign("transfer");
        break;
      case "read_index":
        if (this.#role === "leader") this.#leaderRead(m.requestId, m.from);
        else this.#answerRead(m.from, m.requestId, 0);
        break;
      case "read_index_response":
        if (this.#forwardedReads.delete(m.requestId)) {
          if (m.index > 0) this.#readStates.push({ requestId: m.requestId, index: m.index });
          else this.#droppedReads.push({ requestId: m.requestId, reason: "not_leader" });
        }
        break;
    }
  }

  /**
   * Proposes application data. Only a leader accepts; the entry is acknowledged once it is
   * applied at the returned index with the returned term.
   */
  propose(data: Uint8Array): ProposeResult {
    return this.#propose(EntryType.Normal, data);
  }

  /**
   * Proposes a membership change (thesis §4.1, one server at a time). It is in force as soon
   * as it is appended; another change is refused until it commits.
   */
  proposeConfChange(change: ConfChange): ProposeResult {
    const refused = this.#refuseProposal();
    if (refused !== null) return refused;
    if (this.#log.membershipIndex > this.#log.committed) {
      return { ok: false, reason: "conf_change_pending", leader: this.#leader };
    }
    if (typeof applyConfChange(this.#log.membership, change) === "string") {
      return { ok: false, reason: "invalid_conf_change", leader: this.#leader };
    }
    const result = this.#propose(EntryType.ConfChange, encodeConfChange(change));
    if (result.ok) this.#membershipChanged();
    return result;
  }

  /**
   * Asks for a linearizable read point (Raft §8). The answer arrives as a
   * `Ready.readStates` entry, or as a `Ready.droppedReads` entry when it cannot be served.
   */
  readIndex(requestId: string): void {
    if (this.#role === "leader") {
      this.#leaderRead(requestId, this.#id);
    } else if (this.#role === "follower" && this.#leader !== null) {
      // Re-inserted so that the map stays in send order (see #expireForwardedReads).
      this.#forwardedReads.delete(requestId);
      this.#forwardedReads.set(requestId, this.#ticks);
      this.#send({
        type: "read_index",
        from: this.#id,
        to: this.#leader,
        term: this.#term,
        requestId,
      });
    } else {
      this.#droppedReads.push({ requestId, reason: "no_leader" });
    }
  }

  /**
   * Starts a leadership transfer to the voter `to` (thesis §3.10). Returns false when this
   * node is not leader or `to` is not another voter. Proposals are refused until the transfer
   * completes or is aborted an election timeout later.
   */
  transferLeadership(to: NodeId): boolean {
    if (this.#role !== "leader" || to === this.#id || !isVoter(this.#log.membership, to)) {
      return false;
    }
    if (this.#transferee === to) return true;
    this.#transferee = to;
    // The transfer gets one election timeout to complete (measured on the leader's clock).
    this.#electionElapsed = 0;
    const pr = this.#progress.get(to);
    if (pr === undefined) return true;
    if (pr.match === this.#log.lastIndex) this.#sendTimeoutNow(to);
    // Catch the target up now rather than at the next heartbeat; an empty append makes a
    // follower whose pipelined appends were lost reject, so the leader probes it.
    else this.#sendAppend(to, pr, true);
    return true;
  }

  /** The transport could not deliver to `to`: stop pipelining and probe it again. */
  reportUnreachable(to: NodeId): void {
    const pr = this.#progress.get(to);
    if (this.#role === "leader" && pr !== undefined && pr.state === "replicate") {
      pr.becomeProbe();
    }
  }

  /** Streaming the snapshot to `to` finished, successfully or not. */
  reportSnapshot(to: NodeId, ok: boolean): void {
    const pr = this.#progress.get(to);
    if (this.#role === "leader" && pr !== undefined && pr.state === "snapshot") {
      pr.snapshotDone(ok);
    }
  }

  /**
   * The driver stored a snapshot at `meta.index` (≤ applied); the in-memory entries up to it
   * are dropped. `meta.membership` must be the configuration in force at `meta.index` (see
   * {@linkcode Raft.membershipAt}).
   */
  snapshotTaken(meta: SnapshotMeta): void {
    if (meta.index <= this.#log.snapshotIndex) return;
    assert(
      meta.index <= this.#log.applied,
      `snapshot ${meta.index} is past applied ${this.#log.applied}`,
    );
    assert(
      sameMembership(meta.membership, this.#log.membershipAt(meta.index)),
      `snapshot ${meta.index} names a membership not in force at that index`,
    );
    this.#log.compact(meta);
  }

  /** The configuration in force at `index` (between the snapshot index and the last index). */
  membershipAt(index: number): Membership {
    return this.#log.membershipAt(index);
  }

  // ---------------------------------------------------------------------------------------
  // Outputs

  /** The next batch of work for the driver, or null when there is none. */
  ready(): Ready | null {
    assert(!this.#readyOutstanding, "ready() called again before advance()");
    this.#flushLeader();
    const soft = this.#softState();
    const softChanged = soft.role !== this.#prevSoft.role ||
      soft.leader !== this.#prevSoft.leader || soft.term !== this.#prevSoft.term;
    const hard: HardState = { term: this.#term, vote: this.#vote, commit: this.#log.committed };
    const hardChanged = hard.term !== this.#prevHard.term || hard.vote !== this.#prevHard.vote ||
      hard.commit !== this.#prevHard.commit;
    if (
      !softChanged && !hardChanged && !this.#log.hasUnstable &&
      this.#log.pendingSnapshot === null && this.#messages.length === 0 &&
      this.#messagesAfterPersist.length === 0 && !this.#log.hasNextCommitted &&
      this.#readStates.length === 0 && this.#droppedReads.length === 0
    ) {
      return null;
    }
    assert(hard.commit >= this.#prevHard.commit, "commit index moved back");
    const ready: Ready = {
      softState: soft,
      hardState: hardChanged ? hard : null,
      entries: this.#log.unstableEntries(),
      snapshot: this.#log.pendingSnapshot,
      messages: this.#messages,
      messagesAfterPersist: this.#messagesAfterPersist,
      committedEntries: this.#log.nextCommittedEntries(this.#config.applyBytesMax),
      readStates: this.#readStates,
      droppedReads: this.#droppedReads,
    };
    this.#messages = [];
    this.#messagesAfterPersist = [];
    this.#readStates = [];
    this.#droppedReads = [];
    this.#prevSoft = soft;
    if (hardChanged) this.#prevHard = hard;
    this.#readyOutstanding = true;
    return ready;
  }

  /** The driver finished `ready`: its entries are durable and its committed entries applied. */
  advance(ready: Ready): void {
    assert(this.#readyOutstanding, "advance() without an outstanding ready()");
    this.#readyOutstanding = false;
    if (ready.snapshot !== null) this.#log.snapshotInstalled(ready.snapshot);
    const last = ready.entries[ready.entries.length - 1];
    if (last !== undefined) this.#log.stableTo(last.index, last.term);
    const applied = ready.committedEntries[ready.committedEntries.length - 1];
    if (applied !== undefined) this.#log.appliedTo(applied.index);
    // The leader's own match index is its persisted index: it may complete a quorum now.
    if (this.#role === "leader" && last !== undefined) this.#maybeCommit();
    this.#refreshJoining();
  }

  /** A point-in-time view of this node. */
  status(): RaftStatus {
    const progress: ProgressStatus[] = [];
    for (const [id, pr] of this.#progress) {
      progress.push({
        id,
        match: pr.match,
        next: pr.next,
        state: pr.state,
        recentActive: pr.recentActive,
      });
    }
    progress.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return {
      id: this.#id,
      role: this.#role,
      term: this.#term,
      vote: this.#vote,
      leader: this.#leader,
      commit: this.#log.committed,
      applied: this.#log.applied,
      firstIndex: this.#log.firstIndex,
      lastIndex: this.#log.lastIndex,
      lastTerm: this.#log.lastTerm,
      snapshot: this.#log.snapshot,
      membership: this.#log.membership,
      progress,
      transferee: this.#transferee,
      lostAfter: !this.#joining && this.#log.persisted >= this.#lostAfter ? 0 : this.#lostAfter,
      joining: this.#joining,
    };
  }

  // ---------------------------------------------------------------------------------------
  // Roles

  #softState(): SoftState {
    return { role: this.#role, leader: this.#leader, term: this.#term };
  }

  #randomElectionTimeout(): number {
    const ticks = this.#config.electionTicks;
    return ticks + Math.min(ticks - 1, Math.floor(this.#random() * ticks));
  }

  /** The voters of the configuration in force (cached: the hot path asks on every ack). */
  #voters(): readonly NodeId[] {
    const membership = this.#log.membership;
    if (this.#votersOf !== membership) {
      this.#votersOf = membership;
      this.#voterCache = voterIds(membership);
    }
    return this.#voterCache;
  }

  /** Voters of the configuration in force; a non-voter never campaigns. */
  #promotable(): boolean {
    if (isVoter(this.#log.membership, this.#id)) return true;
    // Thesis §4.2.2: a server that its latest configuration removes keeps campaigning (without
    // counting its own vote) until that configuration commits. Otherwise a cluster whose only
    // up-to-date voters are being removed could never elect a leader to commit the change.
    return this.#log.membershipIndex > this.#log.committed &&
      isVoter(this.#log.membershipAt(this.#log.committed), this.#id);
  }

  /**
   * The no-vote rule: false while the durable log is below what recovery lost, and while
   * joining (see #refreshJoining).
   */
  #mayVote(): boolean {
    if (this.#joining) {
      this.#refreshJoining();
      return !this.#joining;
    }
    if (this.#lostAfter > 0 && this.#log.persisted >= this.#lostAfter) this.#lostAfter = 0;
    return this.#lostAfter === 0;
  }

  /**
   * Ends joining once voting is safe again. A node that lost its state may have voted in some
   * term T and may have been counted in a quorum for entries it no longer holds; Raft §5.2 (one
   * vote per term) and §5.4.1 (a vote only for a log at least as up to date) both rest on the
   * voter's memory. So, as the Raft thesis asks of a server that lost its storage, it stays
   * out of elections until all of these hold:
   *
   * 1. it has been up for three election timeouts (`#joinHoldOffTicks`) when it hears from a
   *    leader. Within two election timeouts of this node's last vote, any leader of a term
   *    older than T has stepped down (check-quorum: the voters that elected T's winner reject
   *    it, and this node voted in T), and a candidate of T that did not win has given up T;
   *    the third one lets their last messages arrive. So the leader it hears from now leads T
   *    or a later term;
   * 2. it follows that leader (or a later one) in its current term. When joining ends it
   *    records its vote in that term for that leader (durable with the next hard state), so
   *    it grants no other vote in that term, even after it lost track of the leader; every
   *    later term is newer than any term it voted in before;
   * 3. its durable log holds a committed entry of its current term at an index ≥ `#lostAfter`:
   *    the highest commit index leaders reported from its start to the first leader message of
   *    step 1. A leader commits an entry of its own term only after every entry committed in
   *    earlier terms (they precede it in its log), which covers those; an entry the leader
   *    committed in its own term counting the lost node's acknowledgement is at most the
   *    commit index of its first message to the new node (a heartbeat's `min(commit, match)`
   *    included: the match index still counts that acknowledgement then). So this node then
   *    holds everything a quorum may have counted it for.
   *
   * Step 1 assumes check-quorum (edgeraft always runs with it) and messages that arrive
   * within an election timeout (docs/ARCHITECTURE.md, "Replacing a node").
   */
  #refreshJoining(): void {
    if (!this.#joining || this.#lostAfter === JOINING_LOST_AFTER) return;
    if (this.#role !== "follower" || this.#leader === null) return;
    const log = this.#log;
    const held = Math.min(log.committed, log.persisted);
    if (held >= this.#lostAfter && log.term(held) === this.#term) {
      this.#joining = false;
      this.#lostAfter = 0;
      // A vote for the leader of the term cannot help anyone else win it.
      if (this.#vote === null) this.#vote = this.#leader;
    }
  }

  /** Step 1 of #refreshJoining: ticks since boot before a leader's commit index is trusted. */
  #joinHoldOffTicks(): number {
    return 3 * this.#config.electionTicks;
  }

  #becomeFollower(
    term: number,
    leader: NodeId | null,
    options: { keepTimer?: boolean } = {},
  ): void {
    const keepTimer = options.keepTimer === true && this.#role !== "leader";
    if (this.#role === "leader") this.#stopLeading();
    if (term !== this.#term) {
      assert(term > this.#term, `term moves back from ${this.#term} to ${term}`);
      this.#term = term;
      this.#vote = null;
    }
    this.#role = "follower";
    this.#setLeader(leader);
    if (!keepTimer) this.#resetTimers();
    this.#votes.clear();
  }

  #becomeLeader(): void {
    assert(this.#role === "candidate", "only a candidate becomes leader");
    this.#role = "leader";
    this.#setLeader(this.#id);
    this.#resetTimers();
    this.#transferee = null;
    this.#uncommittedBytes = 0;
    this.#readOnly = new ReadOnly();
    this.#progress.clear();
    const next = this.#log.lastIndex + 1;
    for (const member of this.#log.membership.members) {
      if (member.id !== this.#id) {
        this.#progress.set(member.id, new Progress(next, this.#config.inflightAppendsMax));
      }
    }
    // Raft §8: an entry of the new term, so that earlier entries can be committed (§5.4.2)
    // and reads know the commit index is current.
    this.#log.append([{
      index: next,
      term: this.#term,
      type: EntryType.Noop,
      data: new Uint8Array(0),
    }]);
  }

  /** Leaves leadership: pending reads are refused, replication state is dropped. */
  #stopLeading(): void {
    for (const read of this.#readOnly.drain()) {
      this.#rejectRead(read.requestId, read.from, "not_leader");
    }
    this.#readOnly = new ReadOnly();
    this.#progress.clear();
    this.#transferee = null;
    this.#uncommittedBytes = 0;
  }

  #setLeader(leader: NodeId | null): void {
    if (leader === this.#leader) return;
    this.#leader = leader;
    // Reads forwarded to the previous leader may never be answered.
    for (const requestId of this.#forwardedReads.keys()) {
      this.#droppedReads.push({ requestId, reason: "not_leader" });
    }
    this.#forwardedReads.clear();
  }

  #resetTimers(): void {
    this.#electionElapsed = 0;
    this.#heartbeatElapsed = 0;
    this.#electionTimeout = this.#randomElectionTimeout();
  }

  /**
   * A message from the leader of the current term arrived; `commit` is a commit index it
   * reported (a lower bound of its own), which a joining node's no-vote bound takes in.
   */
  #followLeader(from: NodeId, commit: number): void {
    assert(this.#role !== "leader", `two leaders in term ${this.#term}`);
    if (this.#role !== "follower") this.#becomeFollower(this.#term, from);
    else this.#setLeader(from);
    this.#electionElapsed = 0;
    if (this.#joining && this.#lostAfter === JOINING_LOST_AFTER) {
      this.#joinCommitSeen = Math.max(this.#joinCommitSeen, commit);
      if (this.#ticks >= this.#joinHoldOffTicks()) {
        this.#lostAfter = Math.max(1, this.#joinCommitSeen);
      }
    }
  }

  // ---------------------------------------------------------------------------------------
  // Elections (Raft §5.2, pre-vote thesis §9.6)

  #tickElection(): void {
    this.#electionElapsed++;
    if (
      this.#promotable() && this.#electionElapsed >= this.#electionTimeout && this.#mayVote()
    ) {
      this.#campaign(this.#config.preVote ? "pre_vote" : "election");
    }
  }

  #campaign(kind: CampaignKind): void {
    if (!this.#promotable() || !this.#mayVote() || this.#role === "leader") return;
    let term: number;
    if (kind === "pre_vote") {
      // Neither the term nor the vote changes: a losing pre-candidate disturbs nobody.
      this.#role = "pre_candidate";
      term = this.#term + 1;
    } else {
      this.#role = "candidate";
      this.#term++;
      this.#vote = this.#id;
      term = this.#term;
    }
    this.#setLeader(null);
    this.#resetTimers();
    this.#votes.clear();
    const voters = this.#voters();
    // A candidate that its own latest configuration removes does not count itself.
    if (voters.includes(this.#id)) this.#votes.set(this.#id, true);
    if (voteResult(voters, this.#votes) === "won") {
      if (kind === "pre_vote") this.#campaign("election");
      else this.#becomeLeader();
      return;
    }
    for (const id of voters) {
      if (id === this.#id) continue;
      const request: VoteRequest = {
        type: "vote",
        from: this.#id,
        to: id,
        term,
        preVote: kind === "pre_vote",
        lastLogIndex: this.#log.lastIndex,
        lastLogTerm: this.#log.lastTerm,
        transfer: kind === "transfer",
      };
      // A real vote request goes out after our own vote for ourselves is durable.
      this.#send(request, kind !== "pre_vote");
    }
  }

  #handleVote(m: VoteRequest): void {
    // Raft §5.2: one vote per term (repeating it to the same candidate is fine). A pre-vote
    // for a later term binds nothing, so it is granted whenever the log is up to date.
    const canVote = this.#vote === m.from ||
      (this.#vote === null && this.#leader === null) ||
      (m.preVote && m.term > this.#term);
    // Raft §5.4.1: only for a candidate whose log is at least as up to date as ours.
    const upToDate = this.#hooks.grantVotesToStaleLogs === true ||
      this.#log.isUpToDate(m.lastLogIndex, m.lastLogTerm);
    const granted = canVote && upToDate && this.#mayVote();
    if (granted && !m.preVote) {
      this.#vote = m.from;
      this.#electionElapsed = 0;
    }
    const response: VoteResponse = {
      type: "vote_response",
      from: this.#id,
      to: m.from,
      term: granted ? m.term : this.#term,
      preVote: m.preVote,
      granted,
    };
    this.#send(response, !m.preVote);
  }

  #handleVoteResponse(m: VoteResponse): void {
    if (m.preVote) {
      if (this.#role !== "pre_candidate") return;
      if (m.granted && m.term !== this.#term + 1) return;
    } else if (this.#role !== "candidate") {
      return;
    }
    this.#votes.set(m.from, m.granted);
    const result = voteResult(this.#voters(), this.#votes);
    if (result === "won") {
      if (m.preVote) this.#campaign("election");
      else this.#becomeLeader();
    } else if (result === "lost") {
      this.#becomeFollower(this.#term, null);
    }
  }

  /** A message from an older term. */
  #stepStale(m: Message): void {
    if (m.type === "append" || m.type === "heartbeat" || m.type === "snapshot") {
      // A deposed leader (perhaps one partitioned while we moved on, which check-quorum or
      // pre-vote kept from learning our term by votes) learns the newer term and steps down.
      this.#send({
        type: "append_response",
        from: this.#id,
        to: m.from,
        term: this.#term,
        success: false,
        index: m.type === "append" ? m.prevIndex : 0,
        hintIndex: 0,
        hintTerm: 0,
      }, true);
    } else if (m.type === "vote" && m.preVote) {
      // Lets a pre-candidate that fell behind learn the current term.
      this.#send({
        type: "vote_response",
        from: this.#id,
        to: m.from,
        term: this.#term,
        preVote: true,
        granted: false,
      });
    }
  }

  // ---------------------------------------------------------------------------------------
  // Follower side of replication (Raft §5.3, §7)

  #handleAppend(m: AppendRequest): void {
    const log = this.#log;
    if (m.prevIndex < log.committed) {
      // Everything up to our commit already matches the leader (§5.4 leader completeness).
      this.#sendAppendResponse(m.from, true, log.committed, 0, 0);
      return;
    }
    const lastNew = log.maybeAppend(m.prevIndex, m.prevTerm, m.commit, m.entries);
    if (lastNew !== null) {
      this.#sendAppendResponse(m.from, true, lastNew, 0, 0);
      return;
    }
    // Fast back-off: point the leader at our last entry that can match its prevTerm.
    const hintIndex = log.findConflictByTerm(Math.min(m.prevIndex, log.lastIndex), m.prevTerm);
    this.#sendAppendResponse(m.from, false, m.prevIndex, hintIndex, log.term(hintIndex) ?? 0);
  }

  #sendAppendResponse(
    to: NodeId,
    success: boolean,
    index: number,
    hintIndex: number,
    hintTerm: number,
  ): void {
    const response: AppendResponse = {
      type: "append_response",
      from: this.#id,
      to,
      term: this.#term,
      success,
      index,
      hintIndex,
      hintTerm,
    };
    this.#send(response, true);
  }

  #handleSnapshot(m: SnapshotRequest): void {
    const meta = m.snapshot;
    if (meta.index <= this.#log.committed) {
      // Stale: we already hold (and committed) everything it covers.
      this.#sendAppendResponse(m.from, true, this.#log.committed, 0, 0);
      return;
    }
    if (this.#log.term(meta.index) === meta.term) {
      // Raft §7 (InstallSnapshot rule 6): the log already holds the snapshot point, so by log
      // matching everything up to it agrees with the leader. Keep what follows it: those
      // entries may have been acknowledged to this leader, which counted them for commit.
      this.#log.commitTo(meta.index);
      this.#sendAppendResponse(m.from, true, meta.index, 0, 0);
      return;
    }
    this.#log.restore(meta);
    this.#sendAppendResponse(m.from, true, meta.index, 0, 0);
  }

  // ---------------------------------------------------------------------------------------
  // Leader side

  #tickLeader(): void {
    this.#heartbeatElapsed++;
    this.#electionElapsed++;
    if (this.#electionElapsed >= this.#config.electionTicks) {
      this.#electionElapsed = 0;
      if (this.#config.checkQuorum) {
        // Thesis §6.2: a leader cut off from a quorum stops serving (and its lease ends).
        if (!this.#quorumActive()) {
          this.#becomeFollower(this.#term, null);
          return;
        }
        for (const pr of this.#progress.values()) pr.recentActive = false;
      }
      // Thesis §3.10: a transfer that did not finish within an election timeout is aborted.
      this.#transferee = null;
    }
    if (this.#heartbeatElapsed >= this.#config.heartbeatTicks) {
      this.#heartbeatElapsed = 0;
      this.#broadcastHeartbeat(this.#readOnly.activeSeq);
    }
  }

  #quorumActive(): boolean {
    const voters = this.#voters();
    const votes = new Map<NodeId, boolean>();
    for (const id of voters) {
      votes.set(id, id === this.#id || this.#progress.get(id)?.recentActive === true);
    }
    return voteResult(voters, votes) === "won";
  }

  #refuseProposal(): ProposeResult | null {
    if (this.#role !== "leader") return { ok: false, reason: "not_leader", leader: this.#leader };
    if (this.#transferee !== null) {
      return { ok: false, reason: "transferring", leader: this.#leader };
    }
    return null;
  }

  #propose(type: EntryType, data: Uint8Array): ProposeResult {
    const refused = this.#refuseProposal();
    if (refused !== null) return refused;
    const size = data.byteLength;
    if (size > this.#config.proposalBytesMax) {
      return { ok: false, reason: "too_large", leader: this.#leader };
    }
    // One proposal is always admitted when nothing is pending, so progress is possible.
    if (
      this.#uncommittedBytes > 0 && this.#uncommittedBytes + size > this.#config.uncommittedBytesMax
    ) {
      return { ok: false, reason: "overloaded", leader: this.#leader };
    }
    const entry: Entry = { index: this.#log.lastIndex + 1, term: this.#term, type, data };
    this.#log.append([entry]);
    this.#uncommittedBytes += size;
    // Appends go out from ready(): proposals made before it share one message per follower.
    return { ok: true, index: entry.index, term: entry.term };
  }

  /** Keeps the leader's replication state in line with the configuration in force. */
  #membershipChanged(): void {
    const members = this.#log.membership.members;
    for (const member of members) {
      if (member.id !== this.#id && !this.#progress.has(member.id)) {
        this.#progress.set(
          member.id,
          new Progress(this.#log.lastIndex + 1, this.#config.inflightAppendsMax),
        );
      }
    }
    if (this.#transferee !== null && !isVoter(this.#log.membership, this.#transferee)) {
      this.#transferee = null;
    }
    // A removed member keeps receiving the log until its removal commits, so it most likely
    // learns it was removed and stays quiet (thesis §4.2.3); it no longer counts for anything.
    this.#pruneProgress();
    // The quorum may have shrunk.
    this.#maybeCommit();
    if (this.#role === "leader") this.#releaseReads();
  }

  /** Drops the replication state of servers removed by a committed configuration. */
  #pruneProgress(): void {
    if (this.#log.membershipIndex > this.#log.committed) return;
    const members = this.#log.membership.members;
    for (const [id, pr] of [...this.#progress]) {
      if (members.some((member) => member.id === id)) continue;
      if (this.#role === "leader") {
        // One last heartbeat carries the commit index (as far as the server holds the log),
        // so a removed server learns its removal committed and stops campaigning for good
        // (thesis §4.2.3).
        const commit = Math.min(this.#log.committed, pr.match);
        this.#send({
          type: "heartbeat",
          from: this.#id,
          to: id,
          term: this.#term,
          commit,
          readSeq: 0,
        });
      }
      this.#progress.delete(id);
    }
  }

  /** Sends what each follower is missing and tells followers about a newer commit index. */
  #flushLeader(): void {
    if (this.#role !== "leader") return;
    const seq = this.#readOnly.takeBroadcast();
    if (seq > 0) this.#broadcastHeartbeat(seq);
    const lastIndex = this.#log.lastIndex;
    for (const [id, pr] of this.#progress) {
      // A probing follower that is behind gets a probe even when it is only missing entries
      // before `next` (a new member starts probing at the end of the log).
      let sendIfEmpty = pr.state === "probe" && pr.match < lastIndex;
      while (this.#sendAppend(id, pr, sendIfEmpty)) {
        // Pipelines in replicate state until the window is full or the follower caught up.
        sendIfEmpty = false;
      }
      this.#maybeSendCommit(id, pr);
    }
  }

  /**
   * Sends `to` the entries from its next index (or the snapshot if they are compacted).
   * Returns whether a message went out.
   */
  #sendAppend(to: NodeId, pr: Progress, sendIfEmpty: boolean): boolean {
    if (pr.paused) return false;
    const log = this.#log;
    const prevIndex = pr.next - 1;
    const prevTerm = log.term(prevIndex);
    if (prevTerm === undefined) {
      assert(prevIndex < log.snapshotIndex, `next index ${pr.next} of ${to} is past the log`);
      return this.#sendSnapshot(to, pr);
    }
    const entries = log.slice(pr.next, this.#config.appendBytesMax);
    if (entries.length === 0 && !sendIfEmpty) return false;
    const request: AppendRequest = {
      type: "append",
      from: this.#id,
      to,
      term: this.#term,
      prevIndex,
      prevTerm,
      entries,
      commit: log.committed,
    };
    this.#send(request);
    pr.sentAppend(entries[entries.length - 1]?.index ?? null);
    pr.sentCommit = Math.max(
      pr.sentCommit,
      Math.min(log.committed, prevIndex + entries.length),
    );
    return true;
  }

  /** Raft §7: the follower needs compacted entries; name our latest snapshot. */
  #sendSnapshot(to: NodeId, pr: Progress): boolean {
    const meta = this.#log.snapshot;
    assert(meta !== null, "entries are compacted only behind a snapshot");
    pr.becomeSnapshot(meta.index);
    this.#send({ type: "snapshot", from: this.#id, to, term: this.#term, snapshot: meta });
    return true;
  }

  /**
   * Tells a follower that entries it holds are committed, without waiting for the next
   * heartbeat, so followers apply (and serve reads) promptly. The empty append names the
   * follower's match index, which it is known to hold, so it can never be rejected.
   */
  #maybeSendCommit(to: NodeId, pr: Progress): void {
    const known = Math.min(this.#log.committed, pr.match);
    if (pr.state === "snapshot" || known <= pr.sentCommit) return;
    const prevTerm = this.#log.term(pr.match);
    if (prevTerm === undefined) return;
    this.#send({
      type: "append",
      from: this.#id,
      to,
      term: this.#term,
      prevIndex: pr.match,
      prevTerm,
      entries: [],
      commit: this.#log.committed,
    });
    pr.sentCommit = known;
  }

  #broadcastHeartbeat(readSeq: number): void {
    for (const [to, pr] of this.#progress) {
      // A follower is only told to commit what it is known to hold.
      const commit = Math.min(this.#log.committed, pr.match);
      pr.sentCommit = Math.max(pr.sentCommit, commit);
      this.#send({ type: "heartbeat", from: this.#id, to, term: this.#term, commit, readSeq });
    }
  }

  #handleAppendResponse(m: AppendResponse): void {
    if (this.#role !== "leader") return;
    const pr = this.#progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    if (!m.success) {
      // Fast back-off: skip the follower's whole conflicting term at once.
      const hint = m.hintTerm > 0
        ? this.#log.findConflictByTerm(m.hintIndex, m.hintTerm)
        : m.hintIndex;
      pr.maybeDecrTo(m.index, hint, m.hintIndex);
      return;
    }
    // Clamped: a follower cannot hold more of this leader's log than the leader has.
    if (!pr.maybeUpdate(Math.min(m.index, this.#log.lastIndex))) return;
    if (pr.state === "probe") {
      pr.becomeReplicate();
    } else if (pr.state === "snapshot" && pr.match + 1 >= this.#log.firstIndex) {
      // The follower installed a snapshot (or caught up otherwise): replicate from the log.
      pr.becomeReplicate();
    }
    this.#maybeCommit();
    if (
      this.#role === "leader" && m.from === this.#transferee && pr.match === this.#log.lastIndex
    ) {
      this.#sendTimeoutNow(m.from);
    }
  }

  #handleHeartbeatResponse(m: HeartbeatResponse): void {
    if (this.#role !== "leader") return;
    const pr = this.#progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    pr.resumeProbe();
    // An append in the pipeline may have been lost: free a slot and probe with an empty
    // append, which the follower rejects if it misses entries (etcd-io/raft does the same).
    if (pr.state === "replicate" && pr.paused) pr.freeFirstInflight();
    if (pr.state !== "snapshot" && pr.match < this.#log.lastIndex) {
      this.#sendAppend(m.from, pr, true);
    }
    if (m.readSeq > 0) {
      this.#readOnly.ack(m.from, m.readSeq);
      this.#releaseReads();
    }
  }

  /** Raft §5.3/§5.4.2: commits the highest index a quorum holds, if it is of this term. */
  #maybeCommit(): void {
    if (this.#role !== "leader") return;
    const voters = this.#voters();
    const matches = voters.map((id) =>
      id === this.#id ? this.#log.persisted : this.#progress.get(id)?.match ?? 0
    );
    const index = majorityValue(matches);
    const old = this.#log.committed;
    if (index <= old) return;
    // Figure 8: an old-term entry replicated on a majority can still be overwritten; it is
    // committed only indirectly, by an entry of the current term after it.
    if (this.#hooks.commitOldTermEntries !== true && this.#log.term(index) !== this.#term) return;
    const wasCommittedInTerm = this.#committedInTerm();
    this.#log.commitTo(index);
    for (let i = old + 1; i <= index; i++) {
      const entry = this.#log.entry(i);
      if (entry !== undefined && entry.term === this.#term) {
        this.#uncommittedBytes -= entry.data.byteLength;
      }
    }
    if (this.#uncommittedBytes < 0) this.#uncommittedBytes = 0;
    this.#pruneProgress();
    if (!wasCommittedInTerm && this.#committedInTerm()) {
      for (const read of this.#readOnly.takeAwaiting()) this.#leaderRead(read.requestId, read.from);
    }
    // Thesis §4.2.2: a leader that removed itself leads until the removal commits.
    if (!this.#promotable() && this.#log.membershipIndex <= this.#log.committed) {
      this.#flushLeader();
      this.#becomeFollower(this.#term, null);
    }
  }

  #committedInTerm(): boolean {
    return this.#log.term(this.#log.committed) === this.#term;
  }

  #sendTimeoutNow(to: NodeId): void {
    this.#send({ type: "timeout_now", from: this.#id, to, term: this.#term });
  }

  // ---------------------------------------------------------------------------------------
  // ReadIndex (Raft §8, thesis §6.4)

  #leaderRead(requestId: string, from: NodeId): void {
    if (this.#transferee !== null) {
      this.#rejectRead(requestId, from, "transferring");
      return;
    }
    // Until an entry of this term commits, our commit index may lag the previous leader's.
    if (!this.#committedInTerm()) {
      this.#readOnly.park(requestId, from);
      return;
    }
    const voters = this.#voters();
    if (voters.length === 1 && voters[0] === this.#id) {
      // Nobody else can have been elected: the commit index is safe to read at once.
      this.#releaseRead(requestId, from, this.#log.committed);
      return;
    }
    this.#readOnly.add(requestId, from, this.#log.committed);
  }

  /** Releases the reads whose heartbeat round a quorum acknowledged. */
  #releaseReads(): void {
    const acked = this.#voters().map((id) => this.#readOnly.acked(id, this.#id));
    for (const read of this.#readOnly.release(majorityValue(acked))) {
      this.#releaseRead(read.requestId, read.from, read.index);
    }
  }

  #releaseRead(requestId: string, from: NodeId, index: number): void {
    if (from === this.#id) this.#readStates.push({ requestId, index });
    else this.#answerRead(from, requestId, index);
  }

  #rejectRead(requestId: string, from: NodeId, reason: DroppedRead["reason"]): void {
    if (from === this.#id) this.#droppedReads.push({ requestId, reason });
    else this.#answerRead(from, requestId, 0);
  }

  #answerRead(to: NodeId, requestId: string, index: number): void {
    const response: ReadIndexResponse = {
      type: "read_index_response",
      from: this.#id,
      to,
      term: this.#term,
      requestId,
      index,
    };
    this.#send(response);
  }

  /** Forwarded reads unanswered for an election timeout are dropped (the answer was lost). */
  #expireForwardedReads(): void {
    if (this.#forwardedReads.size === 0) return;
    const horizon = this.#ticks - this.#config.electionTicks;
    for (const [requestId, sentAt] of this.#forwardedReads) {
      if (sentAt > horizon) break; // insertion order is send order
      this.#forwardedReads.delete(requestId);
      this.#droppedReads.push({ requestId, reason: "not_leader" });
    }
  }

  // ---------------------------------------------------------------------------------------

  #send(m: Message, afterPersist = false): void {
    if (afterPersist) this.#messagesAfterPersist.push(m);
    else this.#messages.push(m);
  }
}
