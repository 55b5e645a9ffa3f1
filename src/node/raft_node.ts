/**
 * The node driver: the one place with I/O and timers. It owns the Raft core, the storage, the
 * KV state machine and the peer transport, and runs the Ready loop.
 *
 * The loop, one `Ready` at a time (docs/ARCHITECTURE.md, "The node driver"):
 *
 * 1. send `messages` (leader appends and heartbeats go out while this node's own write runs);
 *    snapshot requests start a streamed transfer to that follower;
 * 2. install `snapshot` if set: mark "installing" in the hard state, restore the state
 *    machine from the stored (already verified) snapshot, reset the log to the snapshot point;
 * 3. append `entries` and write the hard state when term or vote changed (one fsync covers the
 *    whole batch: proposals that arrive while a write runs wait for the next Ready, which is
 *    the group commit);
 * 4. send `messagesAfterPersist` (vote grants and append acknowledgements promise durability);
 * 5. apply `committedEntries`, answer the proposals they carry, release reads whose index is
 *    now applied;
 * 6. `advance`, then any snapshot compaction that finished meanwhile.
 *
 * Peer messages, proposals and ticks step the core synchronously between batches and wake
 * the loop; the core accumulates their outputs into the next Ready.
 *
 * Invariants: applied ≤ commit ≤ durable last index; a write's promise resolves only after its
 * entry (same index and term) is applied here; every request has a deadline.
 *
 * @module
 */

import {
  EdgeraftError,
  KeyNotFoundError,
  NoLeaderError,
  NotLeaderError,
  RevisionMismatchError,
  ShuttingDownError,
  TimeoutError,
  ValueTooLargeError,
} from "../errors.ts";
import {
  encodeKvCommand,
  type KvRestoreCommand,
  RESTORE_CHUNK_OVERHEAD_BYTES,
} from "../kv/kv_command.ts";
import type { OpenRestore } from "../kv/kv_restore.ts";
import { type ApplyResult, type KvSnapshot, KvStateMachine } from "../kv/kv_state_machine.ts";
import { Raft } from "../raft/raft.ts";
import {
  type Entry,
  EntryType,
  type HardState,
  JOINING_LOST_AFTER,
  type Membership,
  type Message,
  type NodeId,
  type ProposeResult,
  type RaftConfig,
  type Ready,
  type SnapshotMeta,
  type SnapshotRequest,
} from "../raft/types.ts";
import type { Storage } from "../storage/storage.ts";
import type { LogStore, SnapshotInfo, StoredHardState } from "../storage/types.ts";
import { snapshotDue, type SnapshotPolicyConfig } from "../storage/snapshot_policy.ts";
import { assert } from "../util/assert.ts";
import type { Logger } from "../util/logger.ts";
import { VERSION } from "../version.ts";
import type { NodeMetrics } from "./metrics.ts";
import type {
  KvListOptions,
  KvListResult,
  KvValue,
  NodeApi,
  NodeStatus,
  ReadConsistency,
  WriteResult,
} from "./node_api.ts";
import type { PeerInbox, PeerTransport } from "./peer_transport.ts";

function isConfChange(entry: Entry): boolean {
  return entry.type === EntryType.ConfChange;
}

/** How often, at most, an advancing commit index alone is written to the hard state. */
const COMMIT_SAVE_INTERVAL_MS = 1000;

/** How long a leader defers its post-restore snapshot for followers to catch up. */
const POST_RESTORE_SNAPSHOT_WAIT_MS = 30_000;

/** The largest chunk of an online restore (smaller when `proposalBytesMax` demands it). */
export const RESTORE_CHUNK_BYTES_MAX = 512 * 1024;

/** A restore command the core accepted: where it sits and its outcome once applied here. */
export type RestoreProposal =
  | { readonly ok: false; readonly reason: "overloaded" }
  | {
    readonly ok: true;
    readonly index: number;
    readonly term: number;
    /** Resolves with the apply result (same index and term), rejects at the deadline or when
     * the entry was lost in a leader change. */
    readonly applied: Promise<ApplyResult>;
  };

/** What a backup is taken from: see {@linkcode RaftNode.backupView}. */
export interface BackupView {
  readonly clusterId: string;
  readonly nodeId: NodeId;
  /** The log index the state reflects (every entry ≤ index applied, none after). */
  readonly index: number;
  /** The term of the entry at `index`. */
  readonly term: number;
  readonly membership: Membership;
  /** The state machine's point-in-time snapshot stream (read it once). */
  readonly snapshot: KvSnapshot;
  /** Milliseconds since this node heard from a leader (0 on the leader), or null. */
  readonly lastContactMs: number | null;
}

/** Everything a node runs with; built by `openNode` (src/node/open_node.ts). */
export interface RaftNodeOptions {
  readonly id: NodeId;
  readonly clusterId: string;
  readonly raftConfig: RaftConfig;
  /** Wall-clock length of one core tick. */
  readonly tickMs: number;
  /** The recovered storage (log, hard state, snapshots). */
  readonly storage: Storage;
  readonly stateMachine: KvStateMachine;
  /** The core, already built from what storage recovered. */
  readonly raft: Raft;
  readonly snapshotPolicy: SnapshotPolicyConfig & { readonly snapshotsKeep: number };
  /** Entries kept in the log below a new snapshot, so slow followers need no snapshot. */
  readonly compactionMarginEntries: number;
  readonly requestTimeoutMs: number;
  readonly valueBytesMax: number;
  readonly logger: Logger;
  readonly metrics?: NodeMetrics;
  /** Problems storage recovery reported (shown in status). */
  readonly storageErrors?: readonly { readonly code: string; readonly message: string }[];
  /** The latest stored snapshot, when there is one. */
  readonly latestSnapshot?: SnapshotInfo | null;
  readonly now?: () => number;
}

interface PendingWrite {
  readonly term: number;
  readonly key: string;
  readonly prevRevision: number | undefined;
  readonly resolve: (result: ApplyResult) => void;
  readonly reject: (error: unknown) => void;
}

interface PendingRead {
  readonly resolve: (index: number) => void;
  readonly reject: (error: unknown) => void;
}

interface AppliedWaiter {
  readonly index: number;
  readonly resolve: () => void;
}

/** A running Raft node serving the {@linkcode NodeApi}. */
export class RaftNode implements NodeApi, PeerInbox {
  readonly id: NodeId;
  readonly clusterId: string;
  #options: RaftNodeOptions;
  #raft: Raft;
  #storage: Storage;
  #log: LogStore;
  #kv: KvStateMachine;
  #transport: PeerTransport | null = null;
  #logger: Logger;
  #now: () => number;

  #pendingWrites = new Map<number, PendingWrite>();
  #pendingReads = new Map<string, PendingRead>();
  #appliedWaiters: AppliedWaiter[] = [];
  #readSeq = 0;

  #wake: (() => void) | null = null;
  #wakeRequested = false;
  #loopDone: Promise<void> | null = null;
  #tickTimer: ReturnType<typeof setInterval> | undefined;
  #closing = false;
  /** Set once the loop should exit at its next idle point (after leadership hand-off). */
  #stopLoop = false;
  #closed = false;
  #fatal: unknown = null;

  #lastSnapshot: SnapshotInfo | null;
  #lastSnapshotAtMs: number;
  #snapshotRunning = false;
  #pendingCompaction: SnapshotMeta | null = null;
  #snapshotsInFlight = new Set<NodeId>();
  #membershipKey = "";
  #lastLeaderContactMs: number | null = null;
  #lastBackup: { index: number; createdAt: string } | null = null;
  #lostAfter: number;
  #lastCommitSaveMs = 0;
  /** A restore replaced the state at `index`: snapshot it soon (drops its chunks from the
   * log); see #maybeStartSnapshot. */
  #snapshotWanted: { readonly index: number; readonly sinceMs: number } | null = null;

  constructor(options: RaftNodeOptions) {
    this.id = options.id;
    this.clusterId = options.clusterId;
    this.#options = options;
    this.#raft = options.raft;
    this.#storage = options.storage;
    this.#log = options.storage.log;
    this.#kv = options.stateMachine;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    this.#lastSnapshot = options.latestSnapshot ?? null;
    this.#lostAfter = options.storage.hardState.load().lostAfter;
    this.#lastSnapshotAtMs = this.#now();
  }

  /** Connects the transport and starts ticking and the Ready loop. */
  start(transport: PeerTransport): void {
    assert(this.#loopDone === null, "RaftNode.start called twice");
    this.#transport = transport;
    this.#syncMembers();
    this.#tickTimer = setInterval(() => this.#onTick(), this.#options.tickMs);
    this.#loopDone = this.#runLoop();
  }

  // ---- NodeApi -------------------------------------------------------------------------

  async put(
    key: string,
    value: Uint8Array,
    options: { prevRevision?: number } = {},
  ): Promise<WriteResult> {
    if (value.length > this.#options.valueBytesMax) {
      throw new ValueTooLargeError(this.#options.valueBytesMax, value.length);
    }
    const data = encodeKvCommand({ op: "put", key, value, prevRevision: options.prevRevision });
    const result = await this.#proposeWrite(key, data, options.prevRevision);
    return { key, revision: result };
  }

  async delete(key: string, options: { prevRevision?: number } = {}): Promise<WriteResult> {
    const data = encodeKvCommand({ op: "delete", key, prevRevision: options.prevRevision });
    const result = await this.#proposeWrite(key, data, options.prevRevision);
    return { key, revision: result };
  }

  async get(key: string, consistency: ReadConsistency): Promise<KvValue | null> {
    if (consistency === "linearizable") await this.#linearizableBarrier();
    const found = this.#kv.get(key);
    return found === null ? null : { value: found.value, revision: found.revision };
  }

  async list(options: KvListOptions, consistency: ReadConsistency): Promise<KvListResult> {
    if (consistency === "linearizable") await this.#linearizableBarrier();
    return this.#kv.list({
      prefix: options.prefix,
      after: options.after,
      limit: options.limit,
      values: options.values,
    });
  }

  status(): NodeStatus {
    const s = this.#raft.status();
    const leaderUrl = s.leader === null ? null : this.#addressOf(s.leader);
    return {
      id: this.id,
      clusterId: this.clusterId,
      role: s.role,
      voting: s.lostAfter === 0 && s.membership.members.some((m) => m.id === this.id && m.voter),
      term: s.term,
      leader: s.leader,
      leaderUrl,
      commitIndex: s.commit,
      appliedIndex: this.#kv.appliedIndex,
      lastLogIndex: s.lastIndex,
      lastSnapshot: this.#lastSnapshot === null ? null : {
        index: this.#lastSnapshot.index,
        term: this.#lastSnapshot.term,
        createdAt: this.#lastSnapshot.createdAt,
      },
      lastBackup: this.#lastBackup,
      lastContactMs: s.role === "leader"
        ? 0
        : this.#lastLeaderContactMs === null
        ? null
        : this.#now() - this.#lastLeaderContactMs,
      storageErrors: this.#options.storageErrors ?? [],
      version: VERSION,
    };
  }

  membership(): Membership {
    return this.#raft.status().membership;
  }

  ready(): boolean {
    const s = this.#raft.status();
    return !this.#closing && this.#fatal === null && s.leader !== null &&
      this.#kv.appliedIndex >= s.commit;
  }

  metricsText(): string {
    const metrics = this.#options.metrics;
    if (metrics === undefined) return "";
    const s = this.#raft.status();
    metrics.setRole(s.role);
    metrics.term.set(s.term);
    metrics.commitIndex.set(s.commit);
    metrics.appliedIndex.set(this.#kv.appliedIndex);
    return metrics.registry.text();
  }

  /**
   * A point-in-time view of the state for a backup. Linearizable by default: only the leader
   * serves it, after confirming leadership with a quorum (ReadIndex), so the view holds every
   * write acknowledged before the call; its `index` is exact. With `stale`, any node serves
   * its own applied state at once (for when quorum is lost), refusing when it last heard from
   * a leader more than `maxLagMs` ago.
   */
  async backupView(options: { stale: boolean; maxLagMs?: number }): Promise<BackupView> {
    this.#checkServing();
    if (!options.stale) {
      const s = this.#raft.status();
      if (s.role !== "leader") throw this.#notLeaderError(false, s.leader);
      await this.#linearizableBarrier();
    } else if (options.maxLagMs !== undefined) {
      const lag = this.status().lastContactMs;
      if (lag === null || lag > options.maxLagMs) {
        throw new NoLeaderError(
          `This node last heard from a leader ${lag === null ? "never" : `${lag} ms ago`}, ` +
            `more than max_lag_ms=${options.maxLagMs}`,
        );
      }
    }
    // Taken synchronously after the barrier: the view is the state at `snapshot.appliedIndex`.
    const snapshot = this.#kv.snapshot();
    const index = snapshot.appliedIndex;
    return {
      clusterId: this.clusterId,
      nodeId: this.id,
      index,
      term: this.#termAt(index),
      membership: this.#raft.membershipAt(index),
      snapshot,
      lastContactMs: this.status().lastContactMs,
    };
  }

  #termAt(index: number): number {
    if (index === 0) return 0;
    if (this.#lastSnapshot !== null && index === this.#lastSnapshot.index) {
      return this.#lastSnapshot.term;
    }
    const term = this.#log.term(index);
    assert(term !== undefined, `no term known for applied index ${index}`);
    return term;
  }

  /** Records a finished backup for the status page. */
  noteBackup(index: number, createdAt: string): void {
    this.#lastBackup = { index, createdAt };
  }

  /** The KV state machine (read-only use: snapshots for backups). */
  get stateMachine(): KvStateMachine {
    return this.#kv;
  }

  /** Resolves once this node has applied at least `index` (or rejects at the deadline). */
  waitApplied(index: number): Promise<void> {
    if (this.#kv.appliedIndex >= index) return Promise.resolve();
    return this.#withDeadline(
      new Promise<void>((resolve) => this.#appliedWaiters.push({ index, resolve })),
      "waiting for the state machine to catch up",
    );
  }

  /** A linearizable read point: resolves with an index this node has applied, at which every
   * write acknowledged before the call is visible (Raft §8 ReadIndex). */
  async readBarrier(): Promise<number> {
    return await this.#linearizableBarrier();
  }

  // ---- online restore (src/node/online_restore.ts drives it) -----------------------------

  /** The chunk size an online restore proposes: fits `proposalBytesMax` with its framing. */
  restoreChunkBytes(): number {
    const fit = this.#options.raftConfig.proposalBytesMax - RESTORE_CHUNK_OVERHEAD_BYTES;
    return Math.max(1, Math.min(RESTORE_CHUNK_BYTES_MAX, fit));
  }

  /** How many restore chunks may be in flight at once: at most 8, and together at most a
   * quarter of `uncommittedBytesMax`, so client writes keep room beside a restore. */
  restoreChunksInFlightMax(): number {
    const quarter = Math.floor(
      this.#options.raftConfig.uncommittedBytesMax / 4 / this.restoreChunkBytes(),
    );
    return Math.max(1, Math.min(8, quarter));
  }

  /** The online restore this node's state machine has open, or null. */
  openRestore(): OpenRestore | null {
    return this.#kv.openRestore;
  }

  /**
   * Proposes one online-restore command (leader only). Throws like a write when the core
   * refuses it (not leader, transferring, too large), except when the leader has too many
   * uncommitted bytes: then `{ ok: false, reason: "overloaded" }`, and the caller waits for
   * earlier proposals to apply before trying again.
   */
  proposeRestoreCommand(command: KvRestoreCommand): RestoreProposal {
    this.#checkServing();
    const data = encodeKvCommand(command);
    const proposed = this.#raft.propose(data);
    if (!proposed.ok) {
      if (proposed.reason === "overloaded") return { ok: false, reason: "overloaded" };
      throw this.#proposeError(proposed);
    }
    const applied = new Promise<ApplyResult>((resolve, reject) => {
      this.#pendingWrites.set(proposed.index, {
        term: proposed.term,
        key: "",
        prevRevision: undefined,
        resolve,
        reject,
      });
    });
    this.#signal();
    const deadline = this.#withDeadline(applied, `waiting for ${command.op} to commit`).finally(
      () => this.#pendingWrites.delete(proposed.index),
    );
    deadline.catch(() => {}); // the caller may stop listening after an earlier failure
    return { ok: true, index: proposed.index, term: proposed.term, applied: deadline };
  }

  // ---- PeerInbox -------------------------------------------------------------------------

  receive(messages: readonly Message[]): void {
    if (this.#closed) return;
    for (const message of messages) {
      if (message.to !== this.id) continue;
      this.#raft.step(message);
      if (
        message.type === "append" || message.type === "heartbeat" ||
        message.type === "snapshot"
      ) {
        this.#lastLeaderContactMs = this.#now();
      }
    }
    this.#signal();
  }

  async receiveSnapshot(
    request: SnapshotRequest,
    data: ReadableStream<Uint8Array>,
    expected: { readonly sha256: string; readonly size: number },
  ): Promise<void> {
    if (this.#closing) {
      await data.cancel();
      throw new ShuttingDownError();
    }
    const status = this.#raft.status();
    if (request.term < status.term || request.snapshot.index <= status.commit) {
      // Stale or already covered: do not spend a disk write; the core answers with our state.
      await data.cancel();
      this.#raft.step(request);
      this.#signal();
      return;
    }
    const info = await this.#storage.snapshots.writeFromStream(request.snapshot, data, {
      expectedSha256: expected.sha256,
      expectedSize: expected.size,
    });
    this.#logger.info("snapshot received", {
      from: request.from,
      index: info.index,
      term: info.term,
      size: info.size,
    });
    this.#raft.step(request);
    this.#lastLeaderContactMs = this.#now();
    this.#signal();
  }

  onUnreachable(peer: NodeId): void {
    this.#raft.reportUnreachable(peer);
  }

  // ---- shutdown --------------------------------------------------------------------------

  /**
   * Stops the node cleanly: refuses new requests, hands leadership to the most caught-up
   * follower when leader, takes a snapshot when `snapshotOnClose`, syncs and closes storage.
   */
  async close(options: { transferLeadership?: boolean } = {}): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    if (options.transferLeadership !== false) await this.#handOffLeadership();
    clearInterval(this.#tickTimer);
    this.#stopLoop = true;
    this.#signal();
    await this.#loopDone;
    if (this.#options.snapshotPolicy.snapshotOnClose && this.#fatal === null) {
      try {
        await this.#takeSnapshot();
        this.#compactIfPending();
        await this.#finishCompaction();
      } catch (error) {
        this.#logger.warn("snapshot on close failed", { error: String(error) });
      }
    }
    this.#failAll(new ShuttingDownError());
    await this.#transport?.close();
    await this.#saveHardState(this.#raft.status(), { force: true }).catch(() => {});
    await this.#log.close();
    this.#storage.hardState.close();
    this.#closed = true;
  }

  async #handOffLeadership(): Promise<void> {
    const s = this.#raft.status();
    if (s.role !== "leader") return;
    const candidates = s.progress.filter((p) =>
      p.id !== this.id && s.membership.members.some((m) => m.id === p.id && m.voter)
    ).sort((a, b) => b.match - a.match);
    const target = candidates[0];
    if (target === undefined) return;
    if (!this.#raft.transferLeadership(target.id)) return;
    this.#signal();
    const deadline = this.#now() + this.#options.tickMs * this.#options.raftConfig.electionTicks;
    while (this.#now() < deadline && this.#raft.status().role === "leader") {
      await new Promise((resolve) => setTimeout(resolve, this.#options.tickMs));
    }
    this.#logger.info("leadership handed off", {
      to: target.id,
      role: this.#raft.status().role,
    });
  }

  // ---- the Ready loop --------------------------------------------------------------------

  #onTick(): void {
    this.#raft.tick();
    this.#signal();
    this.#maybeStartSnapshot();
  }

  #signal(): void {
    this.#wakeRequested = true;
    const wake = this.#wake;
    if (wake !== null) {
      this.#wake = null;
      wake();
    }
  }

  async #runLoop(): Promise<void> {
    try {
      for (;;) {
        const ready = this.#raft.ready();
        if (ready !== null) {
          await this.#handleReady(ready);
          continue;
        }
        // Idle: nothing to persist, send or apply. Stop here once closing, else sleep until
        // a message, proposal or tick arrives.
        this.#compactIfPending();
        if (this.#stopLoop) break;
        if (!this.#wakeRequested) {
          await new Promise<void>((resolve) => (this.#wake = resolve));
        }
        this.#wakeRequested = false;
      }
      await this.#finishCompaction();
    } catch (error) {
      // A failed disk write leaves the node unable to promise durability: stop serving.
      this.#fatal = error;
      this.#logger.error("node stopped", { error: String(error) });
      this.#failAll(
        error instanceof EdgeraftError ? error : new NoLeaderError("This node stopped"),
      );
      clearInterval(this.#tickTimer);
    }
  }

  async #handleReady(ready: Ready): Promise<void> {
    const transport = this.#transport;
    assert(transport !== null, "Ready loop without a transport");

    // 1. Messages that do not wait for our disk.
    this.#sendAll(ready.messages);

    // 2. A snapshot from the leader, already stored and verified by receiveSnapshot.
    if (ready.snapshot !== null) await this.#installSnapshot(ready.snapshot);

    // 3. Entries and hard state, one sync for the batch.
    const started = performance.now();
    if (ready.entries.length > 0) {
      await this.#log.append(ready.entries);
      this.#options.metrics?.appendSeconds.observe((performance.now() - started) / 1000);
    }
    if (ready.hardState !== null) await this.#saveHardState(ready.hardState);
    if (this.#lostAfter > 0 && this.#log.lastIndex() >= this.#lostAfter) {
      // The log holds again everything recovery had to drop: clear the no-vote marker.
      if (await this.#storage.noteCaughtUp()) this.#lostAfter = 0;
    }
    if (this.#lostAfter === JOINING_LOST_AFTER && !this.#raft.status().joining) {
      // A replacement node (--join) caught up from the leader (raft.ts, #refreshJoining):
      // clear its no-vote marker durably, before any vote it grants goes out (step 4).
      await this.#storage.hardState.save({ ...this.#storage.hardState.load(), lostAfter: 0 });
      this.#lostAfter = 0;
      this.#logger.info("caught up from the leader: voting again", {
        lastIndex: this.#log.lastIndex(),
      });
    }

    // 4. Messages that promise what we just made durable.
    this.#sendAll(ready.messagesAfterPersist);

    // 5. Apply.
    for (const entry of ready.committedEntries) this.#apply(entry);
    for (const read of ready.readStates) {
      this.#pendingReads.get(read.requestId)?.resolve(read.index);
    }
    for (const dropped of ready.droppedReads) {
      const pending = this.#pendingReads.get(dropped.requestId);
      if (pending === undefined) continue;
      pending.reject(this.#notLeaderError(dropped.reason === "transferring"));
    }
    if (ready.softState.role === "leader") this.#lastLeaderContactMs = this.#now();
    this.#releaseAppliedWaiters();
    // Membership changes only through configuration entries and snapshots.
    if (
      ready.snapshot !== null || ready.entries.some(isConfChange) ||
      ready.committedEntries.some(isConfChange)
    ) {
      this.#syncMembers();
    }

    // 6. Advance.
    this.#raft.advance(ready);
    this.#compactIfPending();
  }

  #sendAll(messages: readonly Message[]): void {
    if (messages.length === 0) return;
    const plain: Message[] = [];
    for (const message of messages) {
      if (message.type === "snapshot") this.#startSnapshotTransfer(message);
      else plain.push(message);
    }
    if (plain.length > 0) this.#transport?.send(plain);
  }

  #startSnapshotTransfer(request: SnapshotRequest): void {
    if (this.#snapshotsInFlight.has(request.to)) return;
    this.#snapshotsInFlight.add(request.to);
    const name = `${request.snapshot.index}-${request.snapshot.term}`;
    (async () => {
      let ok = false;
      try {
        const opened = await this.#storage.snapshots.open(name);
        ok = await this.#transport!.sendSnapshot(request, opened);
      } catch (error) {
        this.#logger.warn("snapshot transfer failed", { to: request.to, error: String(error) });
      } finally {
        this.#snapshotsInFlight.delete(request.to);
        this.#raft.reportSnapshot(request.to, ok);
        this.#signal();
      }
    })();
  }

  async #installSnapshot(meta: SnapshotMeta): Promise<void> {
    const name = `${meta.index}-${meta.term}`;
    await this.#saveHardState(this.#raft.status(), {
      force: true,
      installingSnapshot: true,
      firstIndex: meta.index + 1,
    });
    const opened = await this.#storage.snapshots.open(name);
    await this.#kv.restore(opened.stream(), { expectedAppliedIndex: meta.index });
    await this.#log.reset(meta.index + 1);
    this.#lastSnapshot = opened.info;
    await this.#saveHardState(this.#raft.status(), {
      force: true,
      installingSnapshot: false,
      firstIndex: meta.index + 1,
    });
    this.#logger.info("snapshot installed", { index: meta.index, term: meta.term });
    // Reads waiting for an index the snapshot covers can go now.
    this.#releaseAppliedWaiters();
  }

  async #saveHardState(
    state: HardState,
    options: { force?: boolean; installingSnapshot?: boolean; firstIndex?: number } = {},
  ): Promise<void> {
    const saved = this.#storage.hardState.load();
    const next: StoredHardState = {
      ...saved,
      term: state.term,
      vote: state.vote,
      commit: Math.max(saved.commit, Math.min(state.commit, this.#log.lastIndex())),
      firstIndex: options.firstIndex ?? saved.firstIndex,
      installingSnapshot: options.installingSnapshot ?? saved.installingSnapshot,
    };
    // Raft needs term and vote durable before answering. The commit index is a lower bound
    // that recovery uses to notice lost committed entries (storage.ts, step 5): saved with
    // every other change and otherwise at most once per `COMMIT_SAVE_INTERVAL_MS`, so it
    // costs no fsync per write.
    const changed = next.term !== saved.term || next.vote !== saved.vote ||
      next.firstIndex !== saved.firstIndex || next.installingSnapshot !== saved.installingSnapshot;
    const commitDue = next.commit > saved.commit &&
      this.#now() - this.#lastCommitSaveMs >= COMMIT_SAVE_INTERVAL_MS;
    if (!changed && !commitDue && !options.force) return;
    await this.#storage.hardState.save(next);
    this.#lastCommitSaveMs = this.#now();
  }

  #apply(entry: Entry): void {
    if (entry.index <= this.#kv.appliedIndex) return; // covered by an installed snapshot
    // The entry's term goes with it: a new leader's entry aborts an open online restore.
    const restoreBefore = this.#kv.openRestore;
    if (entry.type !== EntryType.Normal) {
      this.#kv.markApplied(entry.index, entry.term);
      if (restoreBefore !== null) this.#noteRestore(entry, restoreBefore, null);
      this.#failLostWrite(entry);
      return;
    }
    const result = this.#kv.apply(entry.index, entry.data, entry.term);
    if (restoreBefore !== null || this.#kv.openRestore !== null) {
      this.#noteRestore(entry, restoreBefore, result);
    }
    const pending = this.#pendingWrites.get(entry.index);
    if (pending === undefined) return;
    this.#pendingWrites.delete(entry.index);
    if (pending.term !== entry.term) {
      pending.reject(new NoLeaderError("The write was lost in a leader change; retry it"));
      return;
    }
    pending.resolve(result);
  }

  /** Logs the online-restore transitions an applied entry caused; after a completed
   * restore, asks for a snapshot of the new state. */
  #noteRestore(
    entry: Entry,
    before: OpenRestore | null,
    result: ApplyResult | null,
  ): void {
    const after = this.#kv.openRestore;
    if (result !== null && result.ok && result.restored !== undefined) {
      const r = result.restored;
      this.#logger.info("restore applied", {
        restoreId: r.restoreId,
        index: entry.index,
        beginIndex: r.beginIndex,
        keys: r.keys,
        sourceCluster: r.sourceClusterId,
        sourceIndex: r.sourceIndex,
      });
      this.#snapshotWanted = { index: entry.index, sinceMs: this.#now() };
      return;
    }
    if (after !== null && after.restoreId !== before?.restoreId) {
      this.#logger.info("restore started", {
        restoreId: after.restoreId,
        index: entry.index,
        size: after.size,
        sourceCluster: after.sourceClusterId,
        sourceIndex: after.sourceIndex,
      });
    }
    const abort = this.#kv.lastRestoreAbort;
    if (before !== null && after?.restoreId !== before.restoreId && abort?.index === entry.index) {
      this.#logger.warn("restore aborted", {
        restoreId: abort.restoreId,
        index: entry.index,
        reason: abort.reason,
      });
    }
  }

  #failLostWrite(entry: Entry): void {
    const pending = this.#pendingWrites.get(entry.index);
    if (pending === undefined) return;
    this.#pendingWrites.delete(entry.index);
    pending.reject(new NoLeaderError("The write was lost in a leader change; retry it"));
  }

  #releaseAppliedWaiters(): void {
    if (this.#appliedWaiters.length === 0) return;
    const applied = this.#kv.appliedIndex;
    const still: AppliedWaiter[] = [];
    for (const waiter of this.#appliedWaiters) {
      if (waiter.index <= applied) waiter.resolve();
      else still.push(waiter);
    }
    this.#appliedWaiters = still;
  }

  #syncMembers(): void {
    const membership = this.#raft.status().membership;
    const key = JSON.stringify(membership.members);
    if (key === this.#membershipKey) return;
    this.#membershipKey = key;
    this.#transport?.setMembers(membership.members);
  }

  // ---- snapshots -------------------------------------------------------------------------

  #maybeStartSnapshot(): void {
    if (this.#snapshotRunning || this.#closing) return;
    // An open online restore is not part of a snapshot: none is taken until it ends, so a
    // restart replays it from its begin entry.
    if (this.#kv.openRestore !== null) return;
    const policy = this.#options.snapshotPolicy;
    const due = snapshotDue(policy, {
      appliedIndex: this.#kv.appliedIndex,
      lastSnapshotIndex: this.#lastSnapshot?.index ?? 0,
      elapsedMs: this.#now() - this.#lastSnapshotAtMs,
      closing: false,
    });
    if (due === null && !this.#postRestoreSnapshotDue()) return;
    this.#snapshotWanted = null;
    this.#takeSnapshot().catch((error) =>
      this.#logger.warn("snapshot failed", { error: String(error) })
    );
  }

  /**
   * After a restore, a snapshot frees the chunks held in the log. A leader waits until every
   * follower has the restore's end entry (at most POST_RESTORE_SNAPSHOT_WAIT_MS): its snapshot
   * compacts the core's log, and a follower still missing entries would then be sent the
   * whole state instead of a few entries.
   */
  #postRestoreSnapshotDue(): boolean {
    const wanted = this.#snapshotWanted;
    if (wanted === null) return false;
    const s = this.#raft.status();
    if (s.role !== "leader") return true;
    if (this.#now() - wanted.sinceMs >= POST_RESTORE_SNAPSHOT_WAIT_MS) return true;
    return s.progress.every((p) => p.id === this.id || p.match >= wanted.index);
  }

  async #takeSnapshot(): Promise<void> {
    if (this.#snapshotRunning) return;
    if (this.#kv.openRestore !== null) return; // see #maybeStartSnapshot
    const index = this.#kv.appliedIndex;
    if (index === 0 || index <= (this.#lastSnapshot?.index ?? 0)) return;
    const term = this.#termAt(index);
    this.#snapshotRunning = true;
    const started = performance.now();
    try {
      const meta: SnapshotMeta = { index, term, membership: this.#raft.membershipAt(index) };
      const snapshot = this.#kv.snapshot();
      const info = await this.#storage.snapshots.writeFromStream(meta, snapshot.stream);
      this.#lastSnapshot = info;
      this.#lastSnapshotAtMs = this.#now();
      this.#pendingCompaction = meta;
      this.#options.metrics?.snapshots.inc();
      this.#options.metrics?.snapshotSeconds.observe((performance.now() - started) / 1000);
      this.#logger.info("snapshot taken", { index, term, size: info.size });
      await this.#storage.snapshots.retain(this.#options.snapshotPolicy.snapshotsKeep);
      this.#signal();
    } finally {
      this.#snapshotRunning = false;
    }
  }

  #compactionPromise: Promise<void> | null = null;

  /** Tells the core about a finished snapshot and drops log segments it covers. Runs between
   * Ready batches so the log store never sees a compaction and an append at once. */
  #compactIfPending(): void {
    const meta = this.#pendingCompaction;
    if (meta === null || this.#compactionPromise !== null) return;
    this.#pendingCompaction = null;
    const status = this.#raft.status();
    if (meta.index < status.firstIndex - 1 || meta.index > status.applied) return;
    this.#raft.snapshotTaken(meta);
    const upto = meta.index - this.#options.compactionMarginEntries;
    if (upto < this.#log.firstIndex()) return;
    this.#compactionPromise = this.#log.compactPrefix(upto).catch((error) => {
      this.#logger.warn("log compaction failed", { error: String(error) });
    }).finally(() => (this.#compactionPromise = null));
  }

  async #finishCompaction(): Promise<void> {
    await this.#compactionPromise;
  }

  // ---- proposals and reads ---------------------------------------------------------------

  async #proposeWrite(
    key: string,
    data: Uint8Array,
    prevRevision: number | undefined,
  ): Promise<number> {
    this.#checkServing();
    const proposed = this.#raft.propose(data);
    if (!proposed.ok) {
      this.#options.metrics?.proposals.inc(1, { result: "rejected" });
      throw this.#proposeError(proposed);
    }
    const applied = new Promise<ApplyResult>((resolve, reject) => {
      this.#pendingWrites.set(proposed.index, {
        term: proposed.term,
        key,
        prevRevision,
        resolve,
        reject,
      });
    });
    this.#signal();
    let result: ApplyResult;
    try {
      result = await this.#withDeadline(applied, "waiting for the write to commit");
    } finally {
      this.#pendingWrites.delete(proposed.index);
    }
    this.#options.metrics?.proposals.inc(1, { result: result.ok ? "committed" : "rejected" });
    if (result.ok) return result.revision;
    if (result.code === "revision_mismatch") {
      throw new RevisionMismatchError(key, prevRevision ?? 0, result.current);
    }
    if (result.code === "not_found") throw new KeyNotFoundError(key);
    throw new EdgeraftError("ERR_BAD_REQUEST", result.message);
  }

  async #linearizableBarrier(): Promise<number> {
    this.#checkServing();
    const requestId = `${this.id}-${++this.#readSeq}`;
    const index = await this.#withDeadline(
      new Promise<number>((resolve, reject) => {
        this.#pendingReads.set(requestId, { resolve, reject });
        this.#raft.readIndex(requestId);
        this.#signal();
      }),
      "confirming leadership for a linearizable read",
    ).finally(() => this.#pendingReads.delete(requestId));
    await this.waitApplied(index);
    return index;
  }

  #checkServing(): void {
    if (this.#closing) throw new ShuttingDownError();
    if (this.#fatal !== null) {
      throw new NoLeaderError("This node stopped after a storage failure or internal error");
    }
  }

  #proposeError(result: Extract<ProposeResult, { ok: false }>): EdgeraftError {
    switch (result.reason) {
      case "not_leader":
        return this.#notLeaderError(false, result.leader);
      case "transferring":
        return new NoLeaderError("Leadership is being transferred; retry shortly");
      case "too_large":
        return new ValueTooLargeError(this.#options.raftConfig.proposalBytesMax);
      case "overloaded":
        return new NoLeaderError("The leader has too many uncommitted writes; retry shortly");
      default:
        return new EdgeraftError("ERR_BAD_REQUEST", `Proposal refused: ${result.reason}`);
    }
  }

  #notLeaderError(transferring: boolean, leader = this.#raft.status().leader): EdgeraftError {
    if (transferring) return new NoLeaderError("Leadership is being transferred; retry shortly");
    if (leader === null || leader === this.id) return new NoLeaderError();
    const url = this.#addressOf(leader);
    return url === null ? new NoLeaderError() : new NotLeaderError(leader, url);
  }

  #addressOf(id: NodeId): string | null {
    return this.#raft.status().membership.members.find((m) => m.id === id)?.address ?? null;
  }

  #withDeadline<T>(promise: Promise<T>, what: string): Promise<T> {
    const ms = this.#options.requestTimeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new TimeoutError(`Timed out after ${ms} ms ${what}`)),
        ms,
      );
    });
    return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
  }

  #failAll(error: unknown): void {
    for (const pending of this.#pendingWrites.values()) pending.reject(error);
    this.#pendingWrites.clear();
    for (const pending of this.#pendingReads.values()) pending.reject(error);
    this.#pendingReads.clear();
  }
}
