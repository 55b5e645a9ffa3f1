/**
 * One simulated edgeraft process: a Raft core, its disk and its state machine, driven exactly
 * as the Ready contract in docs/ARCHITECTURE.md prescribes:
 *
 * 1. send `messages`; 2. install `snapshot`; 3. persist `entries` then `hardState`;
 * 4. send `messagesAfterPersist`; 5. apply `committedEntries` (then serve reads that are now
 * safe); 6. `advance`. After advancing, every `snapshotEntries` applied entries the driver
 * stores a snapshot (a copy of the registers) and calls `snapshotTaken`.
 *
 * A crash may be armed to strike at any of those points in a coming Ready, including halfway
 * through step 3 (a torn write: only a prefix of the batch's entries reaches the disk and the
 * hard state does not); the world may also tear a batch that moves the node to a newer term.
 * A crash forgets everything but the {@linkcode SimDisk}; a restart rebuilds the core from it,
 * as the real driver does from storage. A stopped node's log tail may be corrupted, which
 * recovers like `Storage.open` does: tail dropped, commit clamped, no-vote marker set.
 *
 * While it drives, the node reports facts to the safety checker (its role, the entries it
 * stores and sends, what it applies, its hard state and commit index) and checks what it
 * promises itself: a granted vote, a vote request or an append acknowledgement must be backed
 * by the disk when it is sent, and entries acknowledged to a term's leader are never dropped
 * or replaced within that term (the leader's `match` relies on it; Raft §7 rule 6).
 *
 * @module
 */

import { applyConfChange, decodeConfChange } from "../raft/conf_change.ts";
import { Raft } from "../raft/raft.ts";
import type {
  ConfChange,
  Entry,
  Membership,
  Message,
  NodeId,
  ProposeResult,
  RaftConfig,
  RaftStatus,
  RaftTestHooks,
  Ready,
  Role,
  SnapshotMeta,
} from "../raft/types.ts";
import { EntryType, JOINING_LOST_AFTER } from "../raft/types.ts";
import type { Random } from "../util/prng.ts";
import { RegisterState, type WriteCommand } from "./register_state.ts";
import type { SafetyChecker } from "./safety_checker.ts";
import { SimDisk, type StoredSnapshot } from "./sim_disk.ts";
import { Invariant, type Violation, violation } from "./violation.ts";

/** Where in the Ready contract an armed crash strikes. */
export const CrashStage = {
  /** Nothing of the batch happens (the core's in-memory progress is lost). */
  BeforeSend: "before_send",
  /** `messages` went out; nothing was installed or persisted. */
  AfterSend: "after_send",
  /** The snapshot (if any) was installed; entries and hard state were not persisted. */
  AfterSnapshot: "after_snapshot",
  /** Only a prefix of the entries reached the disk, without the hard state (no fsync). */
  TornPersist: "torn_persist",
  /** Entries and hard state are durable; `messagesAfterPersist` were not sent. */
  AfterPersist: "after_persist",
  /** Some committed entries were applied, the rest were not. */
  MidApply: "mid_apply",
  /** Everything but `advance`. */
  BeforeAdvance: "before_advance",
} as const;
export type CrashStage = typeof CrashStage[keyof typeof CrashStage];

/** Every crash stage, for random choice. */
export const CRASH_STAGES: readonly CrashStage[] = Object.values(CrashStage);

/** What became of a proposal. */
export type ProposalOutcome = "acknowledged" | "lost" | "unknown";

/** The rest of the simulated world, as one node sees it. */
export interface NodeWorld {
  readonly checker: SafetyChecker;
  /** A uniform number in [0, 1) from the run's one seeded generator. */
  random(): number;
  /** Records a trace line for this node. */
  trace(node: NodeId, text: string): void;
  /** Reports a broken invariant (the run stops at the first). */
  fail(problem: Violation): void;
  /**
   * Probability that a batch carrying entries of a term newer than the persisted one (with the
   * hard state moving to that term) is torn: the entries reach the disk, the hard state does
   * not (a crash before the fsync finished).
   */
  readonly tornTermChangeRate: number;
  /** Restarts `node` (crashed by the world, not by the nemesis) after a short downtime. */
  restartLater(node: SimNode): void;
  /** Hands a message (and, for snapshot messages, the stored snapshot) to the network. */
  send(from: SimNode, message: Message, snapshot: StoredSnapshot | null): void;
  /** `node` applied `entry` (decoded as `write` for client writes). */
  applied(node: SimNode, entry: Entry, write: WriteCommand | null): void;
  /** `node` just won `term`; called before its first Ready as leader sends anything. */
  becameLeader(node: SimNode, term: number): void;
  /**
   * `node`, leading `term`, advanced its commit index to `commit`, whose entry has term
   * `commitTerm` (undefined when compacted); `first` marks its first advance in the term.
   */
  leaderCommitted(
    node: SimNode,
    term: number,
    commit: number,
    commitTerm: number | undefined,
    first: boolean,
  ): void;
}

/** How a node is built. */
export interface SimNodeOptions {
  readonly config: RaftConfig;
  /** The membership every node boots with when its disk holds no snapshot. */
  readonly bootstrap: Membership;
  /** Take a snapshot every this many applied entries. */
  readonly snapshotEntries: number;
  readonly testHooks?: RaftTestHooks;
}

interface PendingProposal {
  readonly term: number;
  readonly data: Uint8Array;
  readonly onDone: (outcome: ProposalOutcome, index: number) => void;
}

interface PendingRead {
  readonly key: string;
  /** The read index once the core released the read, -1 before. */
  index: number;
  readonly onDone: (result: string[] | null) => void;
}

/** Counters a node accumulates over a run. */
export interface NodeCounters {
  snapshotsTaken: number;
  snapshotsInstalled: number;
  entriesApplied: number;
  crashes: number;
  restarts: number;
  /** Times this node, started on a wiped disk with `--join`, caught up and voted again. */
  joins: number;
}

/** A simulated node process. */
export class SimNode {
  readonly id: NodeId;
  readonly disk = new SimDisk();
  readonly counters: NodeCounters = {
    snapshotsTaken: 0,
    snapshotsInstalled: 0,
    entriesApplied: 0,
    crashes: 0,
    restarts: 0,
    joins: 0,
  };
  readonly #world: NodeWorld;
  readonly #options: SimNodeOptions;
  #raft: Raft | null = null;
  #incarnation = 0;
  #state = new RegisterState();
  /** The membership in force at the applied index (what a snapshot taken now records). */
  #membership: Membership;
  #received = new Map<string, StoredSnapshot>();
  #proposals = new Map<number, PendingProposal>();
  #reads = new Map<string, PendingRead>();
  #crashStage: CrashStage | null = null;
  #commit = 0;
  #role: Role = "follower";
  #term = 0;
  #leader: NodeId | null = null;
  /** The term of the Ready being handled (what the node knew when it applied). */
  #readyTerm = 0;
  /**
   * The highest index this node acknowledged to the leader of `#ackTerm` (kept across
   * crashes: it is about what the disk promised). Within that term the leader counts on it.
   */
  #ackTerm = 0;
  #ackIndex = 0;
  /** The last term this node was announced leader of, and whether it committed in it. */
  #leaderTerm = 0;
  #leaderCommitted = false;

  constructor(world: NodeWorld, options: SimNodeOptions) {
    this.id = options.config.id;
    this.#world = world;
    this.#options = options;
    this.#membership = options.bootstrap;
  }

  /** Whether the process is running. */
  get alive(): boolean {
    return this.#raft !== null;
  }

  /** Increments on every start; events addressed to an older incarnation are stale. */
  get incarnation(): number {
    return this.#incarnation;
  }

  /** The role and term seen after the last Ready (follower/0 when down). */
  get role(): Role {
    return this.#raft === null ? "follower" : this.#role;
  }

  get term(): number {
    return this.#term;
  }

  /** The leader this node knows of, or null. */
  get leader(): NodeId | null {
    return this.#raft === null ? null : this.#leader;
  }

  /** The index the state machine has applied. */
  get applied(): number {
    return this.#state.index;
  }

  /** The state machine's history digest at {@linkcode applied}. */
  get digest(): number {
    return this.#state.digest;
  }

  /** Whether the state machine holds `token` under `key`. */
  has(key: string, token: string): boolean {
    return this.#state.has(key, token);
  }

  /**
   * The configuration in force for this node: the core's when running, otherwise what its
   * disk would give it at the next start (the snapshot's or bootstrap membership with every
   * stored conf change applied, in force as soon as appended).
   */
  latestMembership(): Membership {
    if (this.#raft !== null) return this.#raft.status().membership;
    let membership = this.disk.snapshot?.meta.membership ?? this.#options.bootstrap;
    for (const entry of this.disk.entries()) {
      if (entry.type !== EntryType.ConfChange) continue;
      const change = decodeConfChange(entry.data);
      const next = change === null ? null : applyConfChange(membership, change);
      if (next !== null && typeof next !== "string") membership = next;
    }
    return membership;
  }

  /** The core's status, or null when down. */
  status(): RaftStatus | null {
    return this.#raft?.status() ?? null;
  }

  /** Starts (or restarts) the process from its disk; `random` feeds the core's jitter. */
  start(random: Random): void {
    if (this.#raft !== null) return;
    this.#incarnation++;
    if (this.#incarnation > 1) this.counters.restarts++;
    const snap = this.disk.snapshot;
    const hardState = this.disk.hardState;
    this.#state = snap ? RegisterState.restore(snap.state) : new RegisterState();
    this.#membership = snap ? snap.meta.membership : this.#options.bootstrap;
    this.#crashStage = null;
    this.#world.trace(
      this.id,
      `start #${this.#incarnation}: term ${hardState.term} vote ${hardState.vote ?? "-"} ` +
        `commit ${hardState.commit} snapshot ${snap?.meta.index ?? 0} log ${this.disk.lastIndex}` +
        (this.disk.lostAfter > 0 ? ` lostAfter ${this.disk.lostAfter}` : ""),
    );
    try {
      this.#raft = new Raft(this.#options.config, {
        hardState,
        snapshot: snap?.meta ?? null,
        entries: this.disk.entries(),
        membership: this.#options.bootstrap,
        applied: snap?.meta.index ?? 0,
        lostAfter: this.disk.lostAfter,
      }, { random, testHooks: this.#options.testHooks });
    } catch (error) {
      this.#world.fail(coreError(this.id, "start", error));
      return;
    }
    const status = this.#raft.status();
    this.#role = status.role;
    this.#term = status.term;
    this.#leader = status.leader;
    this.#commit = status.commit;
    this.#check(
      this.#world.checker.observeCommitIndex(
        this.id,
        hardState.commit,
        status.commit,
        "after restart, against the persisted commit",
      ),
    );
    this.#drain("start");
  }

  /** Kills the process at once: everything but the disk is lost. */
  crash(why: string): void {
    if (this.#raft === null) return;
    this.#world.trace(this.id, `crash (${why})`);
    this.counters.crashes++;
    this.#raft = null;
    this.#received.clear();
    for (const [index, proposal] of this.#proposals) proposal.onDone("unknown", index);
    this.#proposals.clear();
    for (const read of this.#reads.values()) read.onDone(null);
    this.#reads.clear();
    this.#crashStage = null;
  }

  /**
   * Corrupts the log of this stopped node: on its next start, storage recovery will have
   * dropped every entry after `keep` (acknowledged and committed ones too) and set the
   * no-vote marker. What it promised before is void: it no longer has it.
   */
  corruptLogAfter(keep: number): void {
    if (this.#raft !== null) return;
    const before = this.disk.lastIndex;
    this.disk.loseEntriesAfter(keep);
    this.#ackTerm = 0;
    this.#ackIndex = 0;
    this.#world.trace(
      this.id,
      `disk corrupted: log cut from ${before} to ${this.disk.lastIndex}, commit ` +
        `${this.disk.hardState.commit}, lostAfter ${this.disk.lostAfter}`,
    );
  }

  /**
   * Replaces the disk of this stopped node by an empty one started with `--join` (node
   * replacement): term, vote, log and snapshots are gone. What it promised before is void.
   */
  wipeDisk(): void {
    if (this.#raft !== null) return;
    this.disk.wipe();
    this.#ackTerm = 0;
    this.#ackIndex = 0;
    this.#world.trace(this.id, "disk wiped: restarts empty with --join");
  }

  /** Arms a crash to strike at `stage` of the next Ready this node handles where it can. */
  armCrash(stage: CrashStage): void {
    if (this.#raft !== null) this.#crashStage = stage;
  }

  /** Cancels an armed crash (the faulty phase is over). */
  disarmCrash(): void {
    this.#crashStage = null;
  }

  /** Whether a crash is armed. */
  get crashArmed(): boolean {
    return this.#crashStage !== null;
  }

  /** One logical clock tick. */
  tick(): void {
    this.#input("tick", (raft) => raft.tick());
  }

  /** Steps a peer message in; a snapshot message carries the transferred snapshot. */
  receive(message: Message, snapshot: StoredSnapshot | null): void {
    if (snapshot !== null) {
      // The driver stores the streamed snapshot before stepping the message in (types.ts).
      this.#received.set(snapshotKey(snapshot.meta), snapshot);
    }
    this.#input(message.type, (raft) => raft.step(message));
  }

  /** Proposes a client write or other data; `onDone` learns whether it was acknowledged. */
  propose(
    data: Uint8Array,
    onDone: (outcome: ProposalOutcome, index: number) => void,
  ): ProposeResult | null {
    return this.#proposeWith((raft) => raft.propose(data), data, onDone);
  }

  /** Proposes a membership change. */
  proposeConfChange(
    change: ConfChange,
    data: Uint8Array,
    onDone: (outcome: ProposalOutcome, index: number) => void,
  ): ProposeResult | null {
    return this.#proposeWith((raft) => raft.proposeConfChange(change), data, onDone);
  }

  #proposeWith(
    call: (raft: Raft) => ProposeResult,
    data: Uint8Array,
    onDone: (outcome: ProposalOutcome, index: number) => void,
  ): ProposeResult | null {
    let result: ProposeResult | null = null;
    this.#input("propose", (raft) => {
      result = call(raft);
      if (result.ok) this.#proposals.set(result.index, { term: result.term, data, onDone });
    });
    return result;
  }

  /** Starts a ReadIndex read of `key`; `onDone` gets the registers, or null when it failed. */
  readIndex(requestId: string, key: string, onDone: (result: string[] | null) => void): boolean {
    if (this.#raft === null) return false;
    this.#reads.set(requestId, { key, index: -1, onDone });
    this.#input("read_index", (raft) => raft.readIndex(requestId));
    return true;
  }

  /** Asks the leader to hand over to `to`. */
  transferLeadership(to: NodeId): boolean {
    let ok = false;
    this.#input("transfer", (raft) => {
      ok = raft.transferLeadership(to);
    });
    return ok;
  }

  /** The transport could not deliver to `to`. */
  reportUnreachable(to: NodeId): void {
    this.#input("unreachable", (raft) => raft.reportUnreachable(to));
  }

  /** Streaming a snapshot to `to` finished. */
  reportSnapshot(to: NodeId, ok: boolean): void {
    this.#input("snapshot_report", (raft) => raft.reportSnapshot(to, ok));
  }

  /** Runs one input on the core, then drives every Ready it produced. */
  #input(what: string, call: (raft: Raft) => void): void {
    const raft = this.#raft;
    if (raft === null) return;
    try {
      call(raft);
    } catch (error) {
      this.#world.fail(coreError(this.id, what, error));
      return;
    }
    this.#drain(what);
  }

  #drain(what: string): void {
    let batches = 0;
    while (this.#raft !== null) {
      const raft = this.#raft;
      let ready: Ready | null;
      try {
        ready = raft.ready();
      } catch (error) {
        this.#world.fail(coreError(this.id, `${what}/ready`, error));
        return;
      }
      if (ready === null) break;
      if (++batches > 1000) {
        this.#fail(Invariant.DriverContract, "ready() keeps returning batches (1000 in a row)");
        return;
      }
      try {
        if (!this.#handle(raft, ready)) return;
      } catch (error) {
        this.#world.fail(coreError(this.id, `${what}/advance`, error));
        return;
      }
    }
    if (batches > 0 && this.#raft !== null) this.#afterBatches();
  }

  /** Drives one Ready through the contract. Returns false when the node crashed. */
  #handle(raft: Raft, ready: Ready): boolean {
    const world = this.#world;
    const checker = world.checker;
    const stage = this.#crashStage !== null && strikes(this.#crashStage, ready)
      ? this.#crashStage
      : null;
    const soft = ready.softState;
    if (soft.role !== this.#role || soft.term !== this.#term || soft.leader !== this.#leader) {
      world.trace(this.id, `${soft.role} term ${soft.term} leader ${soft.leader ?? "-"}`);
      this.#leader = soft.leader;
    }
    this.#readyTerm = soft.term;
    if (!this.#check(checker.observeRole(this.id, soft.role, soft.term))) return false;
    if (soft.role === "leader" && this.#leaderTerm !== soft.term) {
      this.#leaderTerm = soft.term;
      this.#leaderCommitted = false;
      world.becameLeader(this, soft.term);
    }
    if (stage === CrashStage.BeforeSend) return this.#crashAt(stage);

    // 1. Messages that do not depend on this batch being durable.
    for (const message of ready.messages) {
      if (!this.#send(message, "messages")) return false;
    }
    if (stage === CrashStage.AfterSend) return this.#crashAt(stage);

    // 2. Install a snapshot received from the leader.
    if (ready.snapshot !== null && !this.#install(ready.snapshot)) return false;
    if (stage === CrashStage.AfterSnapshot) return this.#crashAt(stage);

    // 3. Persist entries, then the hard state ("fsync").
    const lastEntry = ready.entries[ready.entries.length - 1];
    const tornTermChange = lastEntry !== undefined && ready.hardState !== null &&
      lastEntry.term > this.disk.hardState.term && world.tornTermChangeRate > 0 &&
      world.random() < world.tornTermChangeRate;
    if (tornTermChange) {
      this.#persistEntries(ready.entries);
      world.restartLater(this);
      return this.#crashAt(
        `a torn write: entries up to ${lastEntry.index}/${lastEntry.term} written, hard state ` +
          `(term ${this.disk.hardState.term} on disk) not`,
      );
    }
    if (stage === CrashStage.TornPersist) {
      const keep = Math.floor(world.random() * (ready.entries.length + 1));
      if (keep > 0) this.#persistEntries(ready.entries.slice(0, keep));
      return this.#crashAt(`${stage}, ${keep} of ${ready.entries.length} entries written`);
    }
    if (ready.entries.length > 0 && !this.#persistEntries(ready.entries)) return false;
    if (ready.hardState !== null) {
      const next = ready.hardState;
      if (!this.#check(checker.observeHardState(this.id, this.disk.hardState, next))) return false;
      this.disk.hardState = next;
      if (next.commit > this.disk.lastIndex) {
        return this.#fail(
          Invariant.DriverContract,
          `hard state commit ${next.commit} is beyond the stored log (last ${this.disk.lastIndex})`,
        );
      }
    }
    if (this.disk.lostAfter === JOINING_LOST_AFTER && !raft.status().joining) {
      // A replacement node caught up (src/node/raft_node.ts clears its marker the same way).
      this.disk.lostAfter = 0;
      this.counters.joins++;
      this.#world.trace(this.id, "joined: may vote again");
    }
    if (stage === CrashStage.AfterPersist) return this.#crashAt(stage);

    // 4. Messages that promise durability (votes, append acknowledgements).
    for (const message of ready.messagesAfterPersist) {
      if (!this.#send(message, "messagesAfterPersist")) return false;
    }

    // 5. Apply, then answer reads that are now safe.
    const cut = stage === CrashStage.MidApply
      ? Math.floor(world.random() * (ready.committedEntries.length + 1))
      : -1;
    for (let i = 0; i < ready.committedEntries.length; i++) {
      if (i === cut) return this.#crashAt(`${stage}, after ${i} entries`);
      if (!this.#apply(ready.committedEntries[i]!)) return false;
    }
    if (cut === ready.committedEntries.length) return this.#crashAt(`${stage}, after all`);
    for (const state of ready.readStates) {
      const read = this.#reads.get(state.requestId);
      if (read !== undefined) read.index = state.index;
    }
    for (const dropped of ready.droppedReads) {
      const read = this.#reads.get(dropped.requestId);
      if (read === undefined) continue;
      this.#reads.delete(dropped.requestId);
      read.onDone(null);
    }
    this.#serveReads();
    if (stage === CrashStage.BeforeAdvance) return this.#crashAt(stage);

    // 6. Advance, then compact if the log since the last snapshot is long enough.
    raft.advance(ready);
    if (this.#state.index - this.disk.snapshotIndex >= this.#options.snapshotEntries) {
      this.#takeSnapshot(raft);
    }
    return true;
  }

  /** Checks made once the core has nothing more to hand out (disk ⊇ the core's log). */
  #afterBatches(): void {
    const raft = this.#raft!;
    const checker = this.#world.checker;
    const status = raft.status();
    const disk = this.disk;
    const termAt = (index: number) => disk.termAt(index);
    if (!this.#check(checker.observeRole(this.id, status.role, status.term))) return;
    if (
      !this.#check(checker.observeCommitIndex(this.id, this.#commit, status.commit, "in memory"))
    ) return;
    if (
      !this.#check(checker.observeCommit(this.id, status.term, this.#commit, status.commit, termAt))
    ) return;
    const advanced = status.commit > this.#commit;
    this.#commit = status.commit;
    const newLeader = status.role === "leader" &&
      !(this.#role === "leader" && this.#term === status.term);
    this.#role = status.role;
    this.#term = status.term;
    this.#leader = status.leader;
    if (newLeader) {
      const v = checker.observeNewLeader(
        this.id,
        status.term,
        disk.snapshotIndex,
        disk.lastIndex,
        termAt,
      );
      if (!this.#check(v)) return;
    }
    if (advanced && status.role === "leader" && this.#leaderTerm === status.term) {
      const first = !this.#leaderCommitted;
      this.#leaderCommitted = true;
      this.#world.leaderCommitted(this, status.term, status.commit, termAt(status.commit), first);
    }
  }

  #send(message: Message, phase: string): boolean {
    const hs = this.disk.hardState;
    switch (message.type) {
      case "vote":
        // Raft §5.2: a candidate votes for itself durably before asking for votes.
        if (!message.preVote && (hs.term !== message.term || hs.vote !== this.id)) {
          return this.#fail(
            Invariant.Durability,
            `sent a term ${message.term} vote request (${phase}) with persisted term ${hs.term} ` +
              `vote ${hs.vote ?? "-"}`,
          );
        }
        break;
      case "vote_response":
        if (!message.preVote && message.granted) {
          if (hs.term !== message.term || hs.vote !== message.to) {
            return this.#fail(
              Invariant.Durability,
              `granted its term ${message.term} vote to ${message.to} (${phase}) with persisted ` +
                `term ${hs.term} vote ${hs.vote ?? "-"}`,
            );
          }
        }
        break;
      case "append_response":
        if (!message.success) break;
        if (message.index > this.disk.lastIndex) {
          return this.#fail(
            Invariant.Durability,
            `acknowledged entries up to ${message.index} (${phase}) with only ` +
              `${this.disk.lastIndex} on disk`,
          );
        }
        if (message.term > this.#ackTerm) {
          this.#ackTerm = message.term;
          this.#ackIndex = message.index;
        } else if (message.term === this.#ackTerm && message.index > this.#ackIndex) {
          this.#ackIndex = message.index;
        }
        break;
      case "append": {
        const v = this.#world.checker.observeLogEntries(
          this.id,
          `append to ${message.to}`,
          message.prevIndex,
          message.prevTerm,
          message.entries,
        );
        if (!this.#check(v)) return false;
        break;
      }
      case "snapshot": {
        const stored = this.disk.snapshot;
        const meta = message.snapshot;
        if (stored === null || snapshotKey(stored.meta) !== snapshotKey(meta)) {
          return this.#fail(
            Invariant.DriverContract,
            `sends snapshot ${snapshotKey(meta)} to ${message.to} but stored ` +
              `${stored === null ? "none" : snapshotKey(stored.meta)}`,
          );
        }
        this.#world.send(this, message, stored);
        return true;
      }
    }
    this.#world.send(this, message, null);
    return true;
  }

  #install(meta: SnapshotMeta): boolean {
    const received = this.#received.get(snapshotKey(meta));
    if (received === undefined) {
      return this.#fail(
        Invariant.DriverContract,
        `Ready.snapshot ${snapshotKey(meta)} was never received`,
      );
    }
    if (meta.index <= this.#state.index) {
      return this.#fail(
        Invariant.DriverContract,
        `asked to install snapshot ${snapshotKey(meta)} at or below applied ${this.#state.index}`,
      );
    }
    this.#received.clear();
    if (this.#readyTerm === this.#ackTerm && meta.index < this.#ackIndex) {
      // Raft §7: a snapshot whose last entry the log already holds keeps the entries after it.
      return this.#fail(
        Invariant.Durability,
        `installs snapshot ${snapshotKey(meta)}, discarding entries up to ${this.#ackIndex} it ` +
          `acknowledged to the leader of term ${this.#ackTerm} (its log held ` +
          `${meta.index}/${this.disk.termAt(meta.index) ?? "?"}, last ${this.disk.lastIndex})`,
      );
    }
    this.disk.storeSnapshot(received, false);
    this.#state = RegisterState.restore(received.state);
    this.#membership = meta.membership;
    this.counters.snapshotsInstalled++;
    this.#world.trace(this.id, `install snapshot ${snapshotKey(meta)}`);
    for (const [index, proposal] of this.#proposals) {
      if (index > meta.index) continue;
      this.#proposals.delete(index);
      proposal.onDone("unknown", index);
    }
    return this.#check(
      this.#world.checker.observeState(this.id, meta.index, received.state.digest, "snapshot"),
    );
  }

  #persistEntries(entries: readonly Entry[]): boolean {
    const disk = this.disk;
    const first = entries[0]!.index;
    // Raft §5.3: replacing a stored entry is only legal for uncommitted entries.
    const durableCommit = Math.max(disk.hardState.commit, this.#commit);
    for (const entry of entries) {
      if (entry.index > disk.lastIndex || entry.index > durableCommit) break;
      const old = disk.termAt(entry.index);
      if (old !== undefined && old !== entry.term) {
        return this.#fail(
          Invariant.StateMachineSafety,
          `overwrites committed entry ${entry.index} (term ${old}, commit ${durableCommit}) ` +
            `with term ${entry.term}`,
        );
      }
    }
    if (this.#readyTerm === this.#ackTerm && first <= this.#ackIndex) {
      for (const entry of entries) {
        if (entry.index > this.#ackIndex) break;
        const old = disk.termAt(entry.index);
        if (old !== undefined && old !== entry.term) {
          return this.#fail(
            Invariant.Durability,
            `replaces entry ${entry.index}/${old}, acknowledged to the leader of term ` +
              `${this.#ackTerm}, with term ${entry.term}`,
          );
        }
      }
    }
    const v = this.#world.checker.observeLogEntries(
      this.id,
      "persisted",
      first - 1,
      disk.termAt(first - 1),
      entries,
    );
    if (!this.#check(v)) return false;
    const problem = disk.append(entries);
    if (problem !== null) return this.#fail(Invariant.DriverContract, problem);
    return true;
  }

  #apply(entry: Entry): boolean {
    const state = this.#state;
    if (entry.index !== state.index + 1) {
      return this.#fail(
        Invariant.DriverContract,
        `committedEntries hands out index ${entry.index} after applied ${state.index}`,
      );
    }
    if (entry.index > this.disk.hardState.commit) {
      return this.#fail(
        Invariant.Durability,
        `applies ${entry.index} beyond its durable commit ${this.disk.hardState.commit}`,
      );
    }
    const write = state.apply(entry);
    this.counters.entriesApplied++;
    if (entry.type === EntryType.ConfChange) {
      const change = decodeConfChange(entry.data);
      if (change !== null) {
        const next = applyConfChange(this.#membership, change);
        if (typeof next !== "string") this.#membership = next;
      }
    }
    if (
      !this.#check(this.#world.checker.observeApply(this.id, this.#readyTerm, entry, state.digest))
    ) {
      return false;
    }
    const proposal = this.#proposals.get(entry.index);
    if (proposal !== undefined) {
      this.#proposals.delete(entry.index);
      if (proposal.term !== entry.term) proposal.onDone("lost", entry.index);
      else if (!sameBytes(proposal.data, entry.data)) {
        return this.#fail(
          Invariant.StateMachineSafety,
          `applied a different entry at ${entry.index}/${entry.term} than it proposed there`,
        );
      } else proposal.onDone("acknowledged", entry.index);
    }
    this.#world.applied(this, entry, write);
    return this.#raft !== null;
  }

  #serveReads(): void {
    for (const [id, read] of this.#reads) {
      if (read.index < 0 || read.index > this.#state.index) continue;
      this.#reads.delete(id);
      read.onDone(this.#state.read(read.key));
    }
  }

  #takeSnapshot(raft: Raft): void {
    const state = this.#state;
    const meta: SnapshotMeta = {
      index: state.index,
      term: state.term,
      membership: this.#membership,
    };
    this.disk.storeSnapshot({ meta, state: state.snapshot() }, true);
    this.counters.snapshotsTaken++;
    this.#world.trace(this.id, `snapshot taken at ${snapshotKey(meta)}`);
    raft.snapshotTaken(meta);
  }

  #crashAt(stage: string): false {
    this.crash(`armed crash at ${stage}`);
    return false;
  }

  /** Reports `problem` if set; returns whether the run may go on. */
  #check(problem: Violation | null): boolean {
    if (problem === null) return true;
    this.#world.fail(problem);
    this.#raft = null;
    return false;
  }

  #fail(invariant: Invariant, detail: string): false {
    this.#check(violation(invariant, `${this.id} ${detail}`));
    return false;
  }
}

/**
 * Whether an armed crash at `stage` strikes in `ready`: a torn write waits for a batch with
 * entries, a mid-apply crash for one with entries to apply, a crash after installing a
 * snapshot for one with a snapshot (the nemesis crashes the node anyway if none comes).
 */
function strikes(stage: CrashStage, ready: Ready): boolean {
  switch (stage) {
    case CrashStage.TornPersist:
      return ready.entries.length > 0;
    case CrashStage.MidApply:
      return ready.committedEntries.length > 0;
    case CrashStage.AfterSnapshot:
      return ready.snapshot !== null;
    default:
      return true;
  }
}

function snapshotKey(meta: SnapshotMeta): string {
  return `${meta.index}/${meta.term}`;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function coreError(node: NodeId, what: string, error: unknown): Violation {
  const text = error instanceof Error
    ? `${error.name}: ${error.message}\n${(error.stack ?? "").split("\n").slice(1, 6).join("\n")}`
    : String(error);
  return violation(Invariant.CoreError, `${node} threw while handling ${what}: ${text}`);
}
