/**
 * An in-memory {@linkcode NodeApi} for driving the HTTP edge in-process: a Map-backed KV store
 * with global revisions and compare-and-set, plus switches that make it fail the way a real node
 * does (not the leader, no leader, timeouts, an unexpected bug).
 *
 * @module
 */

import {
  KeyNotFoundError,
  NoLeaderError,
  NotLeaderError,
  RevisionMismatchError,
  TimeoutError,
} from "../../src/errors.ts";
import type {
  KvListOptions,
  KvListResult,
  KvValue,
  NodeApi,
  NodeStatus,
  ReadConsistency,
  WriteResult,
} from "../../src/node/node_api.ts";
import type { Membership } from "../../src/raft/types.ts";

/** How the fake fails its calls. */
export type FakeFailure =
  | {
    readonly kind: "not_leader";
    readonly leaderId: string | null;
    readonly leaderUrl: string | null;
  }
  | { readonly kind: "no_leader" }
  | { readonly kind: "timeout" }
  | { readonly kind: "bug" };

/** One call the fake received, for assertions. */
export interface FakeCall {
  readonly method: "put" | "delete" | "get" | "list";
  readonly key?: string;
  readonly prevRevision?: number;
  readonly consistency?: ReadConsistency;
  readonly list?: KvListOptions;
  readonly value?: Uint8Array;
}

export class FakeNode implements NodeApi {
  readonly id: string;
  /** The last log index used; every write takes the next one. */
  revision = 0;
  readonly store = new Map<string, KvValue>();
  readonly calls: FakeCall[] = [];
  /** When set, writes (put, delete) fail this way. */
  writeFailure: FakeFailure | null = null;
  /** When set, reads (get, list) fail this way. */
  readFailure: FakeFailure | null = null;
  isReady = true;
  role: NodeStatus["role"] = "leader";
  leader: string | null;
  metrics = "# HELP edgeraft_term The term.\n# TYPE edgeraft_term gauge\nedgeraft_term 3\n";
  members: Membership = {
    members: [
      { id: "n3", address: "http://10.0.0.3:7070", voter: false },
      { id: "n1", address: "http://10.0.0.1:7070", voter: true },
      { id: "n2", address: "http://10.0.0.2:7070", voter: true },
    ],
  };

  constructor(id = "n1") {
    this.id = id;
    this.leader = id;
  }

  put(
    key: string,
    value: Uint8Array,
    options: { prevRevision?: number } = {},
  ): Promise<WriteResult> {
    this.calls.push({ method: "put", key, value, ...options });
    return this.#write(key, options.prevRevision, () => {
      this.revision += 1;
      this.store.set(key, { value: value.slice(), revision: this.revision });
    });
  }

  delete(key: string, options: { prevRevision?: number } = {}): Promise<WriteResult> {
    this.calls.push({ method: "delete", key, ...options });
    return this.#write(key, options.prevRevision, () => {
      if (!this.store.has(key)) throw new KeyNotFoundError(key);
      this.revision += 1;
      this.store.delete(key);
    });
  }

  get(key: string, consistency: ReadConsistency): Promise<KvValue | null> {
    this.calls.push({ method: "get", key, consistency });
    return this.#read(() => this.store.get(key) ?? null);
  }

  list(options: KvListOptions, consistency: ReadConsistency): Promise<KvListResult> {
    this.calls.push({ method: "list", list: options, consistency });
    return this.#read(() => {
      // ASCII test keys: string order is byte order.
      const keys = [...this.store.keys()]
        .filter((k) => k.startsWith(options.prefix))
        .filter((k) => options.after === undefined || k > options.after)
        .sort();
      const page = keys.slice(0, options.limit);
      return {
        items: page.map((key) => {
          const { value, revision } = this.store.get(key)!;
          return options.values ? { key, revision, value } : { key, revision };
        }),
        more: keys.length > page.length,
      };
    });
  }

  status(): NodeStatus {
    return {
      id: this.id,
      clusterId: "c-test",
      role: this.role,
      term: 3,
      leader: this.leader,
      leaderUrl: this.leader === null ? null : `http://${this.leader}:7070`,
      commitIndex: this.revision,
      appliedIndex: this.revision,
      lastLogIndex: this.revision,
      lastSnapshot: { index: 0, term: 0, createdAt: "2025-01-01T00:00:00.000Z" },
      lastBackup: null,
      lastContactMs: 0,
      storageErrors: [],
      version: "0.1.0",
    };
  }

  membership(): Membership {
    return this.members;
  }

  ready(): boolean {
    return this.isReady;
  }

  metricsText(): string {
    return this.metrics;
  }

  #write(key: string, prevRevision: number | undefined, apply: () => void): Promise<WriteResult> {
    try {
      fail(this.writeFailure);
      if (prevRevision !== undefined) {
        const current = this.store.get(key)?.revision ?? 0;
        if (current !== prevRevision) throw new RevisionMismatchError(key, prevRevision, current);
      }
      apply();
      return Promise.resolve({ key, revision: this.revision });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #read<T>(read: () => T): Promise<T> {
    try {
      fail(this.readFailure);
      return Promise.resolve(read());
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

function fail(failure: FakeFailure | null): void {
  if (failure === null) return;
  switch (failure.kind) {
    case "not_leader":
      throw new NotLeaderError(failure.leaderId, failure.leaderUrl);
    case "no_leader":
      throw new NoLeaderError();
    case "timeout":
      throw new TimeoutError("The write was not committed within 5000 ms");
    case "bug":
      throw new Error("secret internal detail: index out of range");
  }
}
