/**
 * The seam between the HTTP edge (src/http/) and the node driver (src/node/node.ts): what the
 * client API may ask of a running node. The edge decodes requests, calls these methods and
 * maps the typed errors of src/errors.ts to `ERR_*` responses; it never sees the Raft core.
 *
 * Invariants the driver guarantees:
 * - a write resolves only after its entry is committed (durable on a majority) and applied
 *   here, with the revision (= log index) it was applied at;
 * - a linearizable read resolves only after a ReadIndex round confirmed leadership and this
 *   node applied up to the read index;
 * - every method either resolves or rejects with a typed error within its deadline
 *   (`ERR_TIMEOUT`), never hangs.
 *
 * @module
 */

import type { Membership, NodeId, Role } from "../raft/types.ts";

/** A stored value with its revision (the log index of the entry that last wrote the key). */
export interface KvValue {
  readonly value: Uint8Array;
  readonly revision: number;
}

/** One row of a key listing. */
export interface KvListItem {
  readonly key: string;
  readonly revision: number;
  /** Present when the listing asked for values. */
  readonly value?: Uint8Array;
}

export interface KvListOptions {
  readonly prefix: string;
  /** Exclusive lower bound: only keys sorted after this one. */
  readonly after?: string;
  readonly limit: number;
  readonly values: boolean;
}

export interface KvListResult {
  readonly items: readonly KvListItem[];
  /** True when more keys match after the last item returned. */
  readonly more: boolean;
}

/** `linearizable` goes through ReadIndex; `stale` reads this node's applied state. */
export type ReadConsistency = "linearizable" | "stale";

/** The answer to a write. */
export interface WriteResult {
  readonly key: string;
  readonly revision: number;
}

/** What `/v1/status` shows. */
export interface NodeStatus {
  readonly id: NodeId;
  readonly clusterId: string;
  readonly role: Role;
  /**
   * Whether this node takes part in elections: a voter without a no-vote marker. False for a
   * learner, after storage lost acknowledged entries and while a replacement (`--join`)
   * catches up, until its log holds what the leader committed (docs/ARCHITECTURE.md).
   */
  readonly voting?: boolean;
  readonly term: number;
  readonly leader: NodeId | null;
  /** The leader's peer URL when known, for forwarding. */
  readonly leaderUrl: string | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastLogIndex: number;
  readonly lastSnapshot: {
    readonly index: number;
    readonly term: number;
    readonly createdAt: string;
  } | null;
  readonly lastBackup: { readonly index: number; readonly createdAt: string } | null;
  /** Milliseconds since this node last heard from a leader (0 on the leader), or null. */
  readonly lastContactMs: number | null;
  /** Storage problems found at start-up (e.g. `ERR_LOG_CORRUPT` with file and offset). */
  readonly storageErrors: readonly { readonly code: string; readonly message: string }[];
  readonly version: string;
}

/**
 * The node as the client API sees it. Methods reject with the typed errors of
 * src/errors.ts: `NotLeaderError` (carries the leader's URL so the edge can forward),
 * `NoLeaderError`, `RevisionMismatchError`, `KeyNotFoundError`, `TimeoutError`, ...
 */
export interface NodeApi {
  /** Write `value` at `key`; with `prevRevision`, only if the key's revision is that (0 = absent). */
  put(key: string, value: Uint8Array, options?: { prevRevision?: number }): Promise<WriteResult>;
  /** Delete `key`; rejects with `KeyNotFoundError` when absent. */
  delete(key: string, options?: { prevRevision?: number }): Promise<WriteResult>;
  /** The value of `key`, or null when absent. */
  get(key: string, consistency: ReadConsistency): Promise<KvValue | null>;
  list(options: KvListOptions, consistency: ReadConsistency): Promise<KvListResult>;
  status(): NodeStatus;
  /** The current membership with each member's peer URL in `address`. */
  membership(): Membership;
  /** True when a leader is known and this node has applied what it committed. */
  ready(): boolean;
  /** Prometheus text exposition of the node's metrics. */
  metricsText(): string;
}
