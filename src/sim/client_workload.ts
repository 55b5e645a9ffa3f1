/**
 * Simulated clients: writes (append a unique token to a key) and ReadIndex reads, issued at
 * random times to random nodes. Writes go to a node believed to lead, following one
 * "not leader" redirect like a real client; reads go to any node, leader or follower.
 *
 * Every step of every operation is recorded in the cluster's {@linkcode ReadChecker} with one
 * logical clock, and each answered read is judged at once. A write is acknowledged when its
 * proposer applies the entry at the proposed index with the proposed term (types.ts,
 * ProposeResult); acknowledged writes are kept for the final "no acknowledged write lost" check.
 *
 * @module
 */

import type { NodeId, ProposeResult } from "../raft/types.ts";
import { randomInt } from "../util/prng.ts";
import { encodeWrite } from "./register_state.ts";
import type { AcknowledgedWrite } from "./safety_checker.ts";
import type { ClientPlan } from "./scenario.ts";
import type { SimCluster } from "./sim_cluster.ts";
import type { ProposalOutcome, SimNode } from "./sim_node.ts";

/** What the clients did. */
export interface ClientCounters {
  writesProposed: number;
  writesAcknowledged: number;
  writesLost: number;
  writesUnknown: number;
  writesRefused: number;
  readsStarted: number;
  readsServed: number;
  readsFailed: number;
}

/** Options of one write. */
export interface WriteOptions {
  readonly key?: string;
  /** Send to this node first (default: the leader, or a random node). */
  readonly target?: SimNode;
  readonly onOutcome?: (outcome: ProposalOutcome, index: number) => void;
}

/** The simulated client population. */
export class ClientWorkload {
  readonly acknowledged: AcknowledgedWrite[] = [];
  readonly counters: ClientCounters = {
    writesProposed: 0,
    writesAcknowledged: 0,
    writesLost: 0,
    writesUnknown: 0,
    writesRefused: 0,
    readsStarted: 0,
    readsServed: 0,
    readsFailed: 0,
  };
  readonly #cluster: SimCluster;
  readonly #plan: ClientPlan;
  #running = false;
  #writeSeq = 0;
  #readSeq = 0;

  constructor(cluster: SimCluster, plan: ClientPlan) {
    this.#cluster = cluster;
    this.#plan = plan;
  }

  /** Starts issuing operations at random times. */
  start(): void {
    this.#running = true;
    this.#scheduleNext();
  }

  /** Stops issuing new operations (those in flight still complete). */
  stop(): void {
    this.#running = false;
  }

  #scheduleNext(): void {
    const cluster = this.#cluster;
    cluster.after(cluster.random() * 2 * this.#plan.gapMs, "client", () => {
      if (!this.#running) return;
      if (cluster.random() < this.#plan.readShare) this.read();
      else {
        const burst = cluster.random() < this.#plan.burstChance
          ? randomInt(cluster.random, 2, this.#plan.burstMax)
          : 1;
        for (let i = 0; i < burst; i++) this.write();
      }
      this.#scheduleNext();
    });
  }

  /** Proposes one write; returns whether a node accepted it. */
  write(options: WriteOptions = {}): boolean {
    const cluster = this.#cluster;
    let node: SimNode | null = options.target ?? this.#pickWriteTarget();
    if (node === null || !node.alive) return false;
    const key = options.key ?? `k${randomInt(cluster.random, 0, this.#plan.keys - 1)}`;
    const token = `w${++this.#writeSeq}`;
    const data = encodeWrite(key, token);
    cluster.reads.writeProposed(token, key, cluster.clock());
    this.counters.writesProposed++;
    for (let hop = 0; hop < 2 && node !== null; hop++) {
      const proposer: NodeId = node.id;
      const result: ProposeResult | null = node.propose(
        data,
        (outcome, index) => this.#settle(proposer, key, token, outcome, index, options.onOutcome),
      );
      if (result === null) break;
      if (result.ok) {
        cluster.trace(node.id, `propose ${key}+=${token} at ${result.index}/${result.term}`);
        return true;
      }
      const hint: NodeId | null = result.leader;
      const next: SimNode | undefined = hint === null || hint === node.id
        ? undefined
        : cluster.nodes.get(hint);
      node = next !== undefined && next.alive ? next : null;
    }
    this.counters.writesRefused++;
    return false;
  }

  #settle(
    proposer: NodeId,
    key: string,
    token: string,
    outcome: ProposalOutcome,
    index: number,
    onOutcome: WriteOptions["onOutcome"],
  ): void {
    const cluster = this.#cluster;
    switch (outcome) {
      case "acknowledged":
        cluster.reads.writeAcknowledged(token, cluster.clock());
        this.acknowledged.push({ key, token, index });
        this.counters.writesAcknowledged++;
        cluster.trace(proposer, `ack ${key}+=${token} at ${index}`);
        break;
      case "lost":
        this.counters.writesLost++;
        cluster.trace(proposer, `lost ${key}+=${token} at ${index}`);
        break;
      case "unknown":
        this.counters.writesUnknown++;
        break;
    }
    onOutcome?.(outcome, index);
  }

  /** Starts one ReadIndex read at a random live node. */
  read(): void {
    const cluster = this.#cluster;
    const live = cluster.liveNodes();
    if (live.length === 0) return;
    const node = live[Math.floor(cluster.random() * live.length)]!;
    const key = `k${randomInt(cluster.random, 0, this.#plan.keys - 1)}`;
    const id = `r${++this.#readSeq}`;
    cluster.reads.readStarted(id, key, cluster.clock());
    this.counters.readsStarted++;
    const started = node.readIndex(id, key, (result) => {
      if (result === null) {
        cluster.reads.readAbandoned(id);
        this.counters.readsFailed++;
        return;
      }
      this.counters.readsServed++;
      cluster.trace(node.id, `read ${id} ${key} = ${result.length} tokens`);
      const problem = cluster.reads.readFinished(id, result, cluster.clock());
      if (problem !== null) cluster.fail(problem);
    });
    if (!started) {
      cluster.reads.readAbandoned(id);
      this.counters.readsFailed++;
    }
  }

  /** Usually the leader; sometimes any live node, to exercise redirects. */
  #pickWriteTarget(): SimNode | null {
    const cluster = this.#cluster;
    const leader = cluster.leader();
    if (leader !== null && cluster.random() < 0.8) return leader;
    const live = cluster.liveNodes();
    return live.length === 0 ? null : live[Math.floor(cluster.random() * live.length)]!;
  }
}
