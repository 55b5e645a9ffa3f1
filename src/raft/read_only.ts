/**
 * The leader's queue of ReadIndex requests (Raft §8, thesis §6.4).
 *
 * A read is recorded with the commit index at the time it arrived and the sequence number of
 * the heartbeat round that will confirm leadership. A round is confirmed once a quorum of
 * voters acknowledged a heartbeat carrying a sequence number at or above it; since every
 * later round was sent after every earlier one, releasing all reads up to the quorum's
 * acknowledged sequence keeps them in arrival order.
 *
 * Invariants: sequence numbers in the queue never decrease from head to tail; acknowledged
 * sequences per voter never decrease. Reads that arrive before the leader committed an entry
 * of its own term wait in `awaiting` (the leader's commit index may be stale until then).
 *
 * @module
 */

import type { NodeId } from "./types.ts";

/** A read waiting for its heartbeat round. `from` is the leader itself for local reads. */
export interface PendingRead {
  readonly requestId: string;
  readonly from: NodeId;
  readonly index: number;
  readonly seq: number;
}

/** A read that arrived before the leader committed an entry of its term. */
export interface AwaitingRead {
  readonly requestId: string;
  readonly from: NodeId;
}

/** ReadIndex bookkeeping for one leadership term. */
export class ReadOnly {
  #queue: PendingRead[] = [];
  #head = 0;
  #awaiting: AwaitingRead[] = [];
  #seq = 0;
  #broadcastPending = false;
  readonly #acks = new Map<NodeId, number>();

  /** The sequence number of the latest round, or 0 when no read is queued. */
  get activeSeq(): number {
    return this.#head < this.#queue.length ? this.#seq : 0;
  }

  /** Number of reads waiting for confirmation or for the leader's first commit. */
  get size(): number {
    return this.#queue.length - this.#head + this.#awaiting.length;
  }

  /** Parks a read until the leader commits an entry of its own term. */
  park(requestId: string, from: NodeId): void {
    this.#awaiting.push({ requestId, from });
  }

  /** Takes the reads parked by {@linkcode ReadOnly.park}. */
  takeAwaiting(): AwaitingRead[] {
    const reads = this.#awaiting;
    this.#awaiting = [];
    return reads;
  }

  /**
   * Queues a read at commit index `index`. Reads added before the next heartbeat broadcast
   * share one round, so a burst of reads costs one heartbeat per follower.
   */
  add(requestId: string, from: NodeId, index: number): void {
    if (!this.#broadcastPending) {
      this.#seq++;
      this.#broadcastPending = true;
    }
    this.#queue.push({ requestId, from, index, seq: this.#seq });
  }

  /** The sequence number a heartbeat broadcast must carry now, or 0 when none is due. */
  takeBroadcast(): number {
    if (!this.#broadcastPending) return 0;
    this.#broadcastPending = false;
    return this.#seq;
  }

  /** Records that `from` acknowledged the round `seq`. */
  ack(from: NodeId, seq: number): void {
    if (seq > (this.#acks.get(from) ?? 0)) this.#acks.set(from, seq);
  }

  /** The highest round `from` acknowledged; the leader acknowledges every round. */
  acked(from: NodeId, self: NodeId): number {
    return from === self ? this.#seq : this.#acks.get(from) ?? 0;
  }

  /** Removes and returns, in order, the queued reads whose round is at or below `seq`. */
  release(seq: number): PendingRead[] {
    const released: PendingRead[] = [];
    while (this.#head < this.#queue.length) {
      const read = this.#queue[this.#head];
      if (read === undefined || read.seq > seq) break;
      released.push(read);
      this.#head++;
    }
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    }
    return released;
  }

  /** Removes and returns every read (the leader is stepping down or transferring). */
  drain(): AwaitingRead[] {
    const reads: AwaitingRead[] = [...this.#awaiting, ...this.#queue.slice(this.#head)];
    this.#awaiting = [];
    this.#queue = [];
    this.#head = 0;
    return reads;
  }
}
