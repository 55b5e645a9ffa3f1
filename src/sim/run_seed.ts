/**
 * One simulator run per seed, in three phases:
 *
 * 1. faulty: clients write and read while the nemesis crashes, partitions, degrades links,
 *    changes membership and transfers leadership, for the scenario's `faultMs`;
 * 2. heal: the network is repaired (no loss, no cuts), armed crashes are cancelled and every
 *    crashed node that is still meant to run restarts from its disk;
 * 3. liveness: within `livenessMs` the cluster must elect a leader, acknowledge a new write
 *    and converge (every member alive, applied to the same index with the same history),
 *    after which every acknowledged write must be in every member's state.
 *
 * Safety is checked after every event throughout (see {@linkcode SafetyChecker} and
 * {@linkcode ReadChecker}); the run stops at the first violation.
 *
 * @module
 */

import type { RaftTestHooks } from "../raft/types.ts";
import { ClientWorkload } from "./client_workload.ts";
import { Nemesis } from "./nemesis.ts";
import { calmLinks } from "./network.ts";
import { findLostWrite } from "./safety_checker.ts";
import { describeScenario, type Scenario, scenarioForSeed } from "./scenario.ts";
import { describeMembership, SimCluster } from "./sim_cluster.ts";
import type { SimNode } from "./sim_node.ts";
import { Invariant, type Violation, violation } from "./violation.ts";

/** Options of {@linkcode runSeed}. */
export interface RunSeedOptions {
  /** Deliberately broken core rules (tests of the simulator itself). */
  readonly testHooks?: RaftTestHooks;
  /** Receives every trace line as it happens (`--verbose`). */
  readonly traceSink?: (line: string) => void;
  /** Adjusts the scenario the seed chose (e.g. the bench's timing). */
  readonly adjust?: (scenario: Scenario) => Scenario;
}

/** Totals of what a run (or a batch of runs) did. */
export interface RunStats {
  steps: number;
  simulatedMs: number;
  messagesSent: number;
  messagesDropped: number;
  writesProposed: number;
  writesAcknowledged: number;
  writesLost: number;
  writesUnknown: number;
  writesRefused: number;
  readsStarted: number;
  readsServed: number;
  readsFailed: number;
  leadersElected: number;
  crashes: number;
  restarts: number;
  partitions: number;
  /** Disks wiped and restarted with `--join`, and replacement nodes that caught up. */
  wipes: number;
  joins: number;
  snapshotsTaken: number;
  snapshotsSent: number;
  snapshotsInstalled: number;
  confChangesProposed: number;
  confChangesCommitted: number;
  transfers: number;
  /** Longest time from healing to convergence, in simulated ms. */
  healToConvergedMaxMs: number;
}

/** The outcome of one seed. */
export interface SeedResult {
  readonly seed: number;
  readonly scenario: string;
  readonly violation: Violation | null;
  /** Simulated time of the violation (ms), or of the end of the run. */
  readonly atMs: number;
  readonly traceTail: readonly string[];
  readonly traceHash: string;
  readonly stats: RunStats;
}

/** An all-zero {@linkcode RunStats}. */
export function emptyStats(): RunStats {
  return {
    steps: 0,
    simulatedMs: 0,
    messagesSent: 0,
    messagesDropped: 0,
    writesProposed: 0,
    writesAcknowledged: 0,
    writesLost: 0,
    writesUnknown: 0,
    writesRefused: 0,
    readsStarted: 0,
    readsServed: 0,
    readsFailed: 0,
    leadersElected: 0,
    crashes: 0,
    restarts: 0,
    partitions: 0,
    wipes: 0,
    joins: 0,
    snapshotsTaken: 0,
    snapshotsSent: 0,
    snapshotsInstalled: 0,
    confChangesProposed: 0,
    confChangesCommitted: 0,
    transfers: 0,
    healToConvergedMaxMs: 0,
  };
}

/** Adds `more` into `total`. */
export function addStats(total: RunStats, more: RunStats): void {
  for (const key of Object.keys(total) as (keyof RunStats)[]) {
    if (key === "healToConvergedMaxMs") total[key] = Math.max(total[key], more[key]);
    else total[key] += more[key];
  }
}

/** Runs seed `seed` to completion or to its first violation. */
export function runSeed(seed: number, options: RunSeedOptions = {}): SeedResult {
  const base = scenarioForSeed(seed);
  const scenario = options.adjust ? options.adjust(base) : base;
  const cluster = new SimCluster({
    seed,
    nodeIds: scenario.nodeIds,
    voters: scenario.voters,
    tickMs: scenario.tickMs,
    raft: scenario.raft,
    snapshotEntries: scenario.snapshotEntries,
    links: scenario.links,
    testHooks: options.testHooks,
    traceSink: options.traceSink,
  });
  const summary = describeScenario(scenario);
  cluster.traceLog.record(0, `seed ${seed}: ${summary}`);
  for (const id of scenario.nodeIds.slice(0, scenario.voters)) cluster.startNode(id);
  const client = new ClientWorkload(cluster, scenario.client);
  const nemesis = new Nemesis(cluster, scenario.nemesis);

  // 1. Faulty phase.
  cluster.tornTermChangeRate = scenario.tornTermChangeRate;
  client.start();
  nemesis.start();
  cluster.runUntil(() => false, scenario.faultMs);
  client.stop();
  nemesis.stop();

  // 2. Heal, then 3. liveness.
  let convergedMs = 0;
  if (cluster.violation === null) {
    heal(cluster, scenario);
    const healedAt = cluster.now;
    const problem = awaitLiveness(cluster, client, healedAt, healedAt + scenario.livenessMs);
    if (problem !== null) cluster.fail(problem);
    convergedMs = cluster.now - healedAt;
  }

  const stats = emptyStats();
  stats.steps = cluster.steps;
  stats.simulatedMs = cluster.now;
  stats.messagesSent = cluster.counters.messagesSent;
  stats.messagesDropped = cluster.counters.messagesDropped;
  stats.writesProposed = client.counters.writesProposed;
  stats.writesAcknowledged = client.counters.writesAcknowledged;
  stats.writesLost = client.counters.writesLost;
  stats.writesUnknown = client.counters.writesUnknown;
  stats.writesRefused = client.counters.writesRefused;
  stats.readsStarted = client.counters.readsStarted;
  stats.readsServed = client.counters.readsServed;
  stats.readsFailed = client.counters.readsFailed;
  stats.leadersElected = cluster.checker.leadersElected;
  stats.partitions = nemesis.counters.partitions;
  stats.wipes = nemesis.counters.wipes;
  stats.snapshotsSent = cluster.counters.snapshotsSent;
  stats.confChangesProposed = nemesis.counters.confChangesProposed;
  stats.confChangesCommitted = cluster.counters.confChangesCommitted;
  stats.transfers = nemesis.counters.transfers;
  stats.healToConvergedMaxMs = cluster.violation === null ? convergedMs : 0;
  for (const node of cluster.nodes.values()) {
    stats.crashes += node.counters.crashes;
    stats.restarts += node.counters.restarts;
    stats.joins += node.counters.joins;
    stats.snapshotsTaken += node.counters.snapshotsTaken;
    stats.snapshotsInstalled += node.counters.snapshotsInstalled;
  }
  return {
    seed,
    scenario: summary,
    violation: cluster.violation,
    atMs: cluster.now,
    traceTail: cluster.traceLog.tail(),
    traceHash: cluster.traceLog.hash,
    stats,
  };
}

function heal(cluster: SimCluster, scenario: Scenario): void {
  cluster.tornTermChangeRate = 0;
  cluster.network.heal();
  cluster.network.quality = calmLinks(scenario.links.delayMinMs, scenario.links.delayMaxMs);
  cluster.trace("sim", "heal: network repaired, crashed nodes restart");
  for (const node of cluster.nodes.values()) {
    node.disarmCrash();
    if (!node.alive && node.incarnation > 0 && !cluster.isDecommissioned(node.id)) {
      cluster.startNode(node.id);
    }
  }
}

/** Waits for a leader, an acknowledged write and convergence; returns a liveness violation. */
function awaitLiveness(
  cluster: SimCluster,
  client: ClientWorkload,
  healedAt: number,
  deadline: number,
): Violation | null {
  const memberNodes = (): SimNode[] =>
    cluster.membership.members.map((member) => cluster.node(member.id));
  const isMember = (node: SimNode) => cluster.membership.members.some((m) => m.id === node.id);

  const hasLeader = () => {
    const leader = cluster.leader();
    return leader !== null && isMember(leader);
  };
  if (!cluster.runUntil(hasLeader, deadline)) {
    return cluster.violation ?? stuck(cluster, healedAt, "no leader was elected");
  }

  // A new write must be acknowledged: retried until it is, as a client would.
  let acknowledgedAt = -1;
  let pendingSince = -1;
  const markerDone = () => acknowledgedAt >= 0;
  while (!markerDone() && cluster.violation === null && cluster.now < deadline) {
    if (pendingSince < 0 || cluster.now - pendingSince > 500) {
      const leader = cluster.leader();
      if (leader !== null) {
        pendingSince = cluster.now;
        client.write({
          key: "marker",
          target: leader,
          onOutcome: (outcome, index) => {
            if (outcome === "acknowledged") acknowledgedAt = index;
            else pendingSince = -1;
          },
        });
      }
    }
    cluster.runUntil(markerDone, Math.min(deadline, cluster.now + 50));
  }
  if (cluster.violation !== null) return cluster.violation;
  if (!markerDone()) return stuck(cluster, healedAt, "no new write was acknowledged");

  const converged = () => {
    const nodes = memberNodes();
    const first = nodes[0];
    if (first === undefined || !first.alive) return false;
    return nodes.every((node) =>
      node.alive && node.applied >= acknowledgedAt && node.applied === first.applied &&
      node.digest === first.digest
    );
  };
  if (!cluster.runUntil(converged, deadline)) {
    return cluster.violation ?? stuck(cluster, healedAt, "the members did not converge");
  }
  return findLostWrite(client.acknowledged, memberNodes());
}

function stuck(cluster: SimCluster, healedAt: number, what: string): Violation {
  const lines = [...cluster.nodes.values()].map((node) => {
    const status = node.status();
    const role = status === null
      ? (node.incarnation === 0 ? "never started" : "down")
      : `${status.role} term ${status.term} leader ${status.leader ?? "-"} commit ` +
        `${status.commit} applied ${node.applied} log ${status.firstIndex}..${status.lastIndex}`;
    return `${node.id}: ${role}${cluster.isDecommissioned(node.id) ? " (removed)" : ""}`;
  });
  return violation(
    Invariant.Liveness,
    `${what} in time (at t=${cluster.now.toFixed(0)} ms, healed ${
      (cluster.now - healedAt).toFixed(0)
    } ms before); members ` +
      `${describeMembership(cluster.membership)}; ${lines.join("; ")}`,
  );
}
