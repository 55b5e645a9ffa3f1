/**
 * How a leader tracks one follower's replication (etcd-io/raft's Progress, Raft §5.3).
 *
 * States:
 * - `probe`: the leader does not know where the follower's log matches; it sends one append
 *   at a time and waits for the answer (or a heartbeat answer) before sending the next;
 * - `replicate`: the logs match up to `match`; appends are pipelined optimistically (`next`
 *   advances as they are sent), at most `inflightAppendsMax` unacknowledged at once;
 * - `snapshot`: the follower needs entries the leader has compacted; nothing is sent until
 *   the snapshot transfer is reported or an append answer shows the follower caught up.
 *
 * Invariants: `match < next`; `match` never decreases within one leadership.
 *
 * @module
 */

import { assert } from "../util/assert.ts";

/** The replication state of one follower. */
export type ProgressState = "probe" | "replicate" | "snapshot";

/** The last indexes of appends sent but not acknowledged, oldest first (a ring buffer). */
class Inflights {
  readonly #buffer: number[];
  #start = 0;
  #count = 0;

  constructor(capacity: number) {
    this.#buffer = new Array<number>(capacity).fill(0);
  }

  get count(): number {
    return this.#count;
  }

  get full(): boolean {
    return this.#count === this.#buffer.length;
  }

  add(lastIndex: number): void {
    assert(!this.full, "inflight window overflow");
    this.#buffer[(this.#start + this.#count) % this.#buffer.length] = lastIndex;
    this.#count++;
  }

  /** Forgets every append whose entries are all at or below `index`. */
  freeTo(index: number): void {
    while (this.#count > 0 && (this.#buffer[this.#start] ?? 0) <= index) {
      this.#start = (this.#start + 1) % this.#buffer.length;
      this.#count--;
    }
  }

  freeFirst(): void {
    if (this.#count === 0) return;
    this.#start = (this.#start + 1) % this.#buffer.length;
    this.#count--;
  }

  reset(): void {
    this.#start = 0;
    this.#count = 0;
  }
}

/** One follower's replication progress, as seen by the leader. */
export class Progress {
  #match = 0;
  #next: number;
  #state: ProgressState = "probe";
  /** In probe state: an append went out and its answer has not come back. */
  #probeSent = false;
  /** In snapshot state: the index of the snapshot being sent. */
  #pendingSnapshot = 0;
  readonly #inflights: Inflights;
  /** Heard from since the last check-quorum round (thesis §6.2). */
  recentActive = false;
  /** The highest commit index this follower was told about and can apply. */
  sentCommit = 0;

  constructor(next: number, inflightAppendsMax: number) {
    assert(next >= 1, "next index starts at 1");
    this.#next = next;
    this.#inflights = new Inflights(inflightAppendsMax);
  }

  get match(): number {
    return this.#match;
  }

  get next(): number {
    return this.#next;
  }

  get state(): ProgressState {
    return this.#state;
  }

  get pendingSnapshot(): number {
    return this.#pendingSnapshot;
  }

  get inflightCount(): number {
    return this.#inflights.count;
  }

  /** Whether the leader must wait before sending this follower another append. */
  get paused(): boolean {
    if (this.#state === "probe") return this.#probeSent;
    if (this.#state === "replicate") return this.#inflights.full;
    return true;
  }

  /** Back to probing from just after the last known match. */
  becomeProbe(): void {
    if (this.#state === "snapshot") {
      // The follower may have installed the snapshot: start probing just after it.
      this.#next = Math.max(this.#match + 1, this.#pendingSnapshot + 1);
    } else {
      this.#next = this.#match + 1;
    }
    this.#state = "probe";
    this.#probeSent = false;
    this.#pendingSnapshot = 0;
    this.#inflights.reset();
  }

  /**
   * The snapshot transfer finished (`ok`) or failed. Either way the follower is probed again,
   * after its answer or the next heartbeat answer (etcd-io/raft does the same).
   */
  snapshotDone(ok: boolean): void {
    if (!ok) this.#pendingSnapshot = 0;
    this.becomeProbe();
    this.#probeSent = true;
  }

  /** The logs are known to match up to `match`: pipeline appends from there. */
  becomeReplicate(): void {
    this.#state = "replicate";
    this.#next = this.#match + 1;
    this.#probeSent = false;
    this.#pendingSnapshot = 0;
    this.#inflights.reset();
  }

  /** A snapshot at `index` is on its way to the follower. */
  becomeSnapshot(index: number): void {
    this.#state = "snapshot";
    this.#pendingSnapshot = index;
    this.#probeSent = false;
    this.#inflights.reset();
  }

  /** Records that an append whose last entry is `lastIndex` (or an empty one) was sent. */
  sentAppend(lastIndex: number | null): void {
    if (this.#state === "replicate") {
      if (lastIndex !== null) {
        this.#next = lastIndex + 1;
        this.#inflights.add(lastIndex);
      }
    } else if (this.#state === "probe") {
      this.#probeSent = true;
    }
  }

  /** Lets a probing leader send again (an answer or heartbeat answer came back). */
  resumeProbe(): void {
    this.#probeSent = false;
  }

  /** Frees one inflight slot, so a pipeline whose appends were lost can probe again. */
  freeFirstInflight(): void {
    this.#inflights.freeFirst();
  }

  /**
   * The follower acknowledged its log matches up to `index`. Returns false when the answer is
   * stale (no new information).
   */
  maybeUpdate(index: number): boolean {
    const updated = index > this.#match;
    if (updated) {
      this.#match = index;
      this.#probeSent = false;
    }
    this.#next = Math.max(this.#next, index + 1);
    this.#inflights.freeTo(index);
    return updated;
  }

  /**
   * The follower rejected an append at `rejected`; `probeHint` is the leader's guess of the
   * last index where the logs may match (from the follower's hint) and `followerLast` the
   * follower's own hint index, unclamped. Returns false when the rejection is stale, otherwise
   * moves `next` back (and `match`, when the follower lost acknowledged entries) and leaves the
   * follower probing.
   */
  maybeDecrTo(rejected: number, probeHint: number, followerLast = probeHint): boolean {
    if (rejected === this.#match && followerLast < this.#match && this.#match > 0) {
      // The follower no longer holds what it acknowledged: storage recovery cut its log after
      // corruption (docs/STORAGE.md, "lost entries"). Believe it and re-send from what it has;
      // lowering match only delays commits (the commit index itself never moves back). A
      // reordered old rejection can look the same; then it costs one re-sent append.
      this.#match = followerLast;
      this.becomeProbe();
      this.#next = followerLast + 1;
      this.#probeSent = false;
      return true;
    }
    if (this.#state === "snapshot") return false;
    if (this.#state === "replicate") {
      // Rejections at or below match come from appends that were overtaken.
      if (rejected <= this.#match) return false;
    } else if (this.#next - 1 !== rejected) {
      // In probe state only the answer to the latest probe counts.
      return false;
    }
    const state = this.#state;
    if (state === "replicate") this.becomeProbe();
    this.#next = Math.max(Math.min(rejected, probeHint + 1), this.#match + 1);
    this.#probeSent = false;
    return true;
  }
}
