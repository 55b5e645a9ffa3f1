/**
 * The fault injector of the faulty phase. At random times it crashes nodes (between Readies or
 * at an armed point inside one, see {@linkcode CrashStage}) and restarts them later from their
 * disks (sometimes with a corrupted log tail, recovered with the no-vote marker, or with a
 * wiped disk, started again empty with `--join`: node replacement), crashes the
 * whole cluster, partitions the network (isolated node, majority/minority
 * split, a bridge node, one-way cuts, random cut links), changes delay/loss/duplication,
 * proposes membership changes (add learner, add voter, promote, remove, re-add a removed node
 * with its old disk) and asks the leader to transfer leadership.
 *
 * Every choice is drawn from the cluster's generator, so a seed replays the same faults.
 *
 * @module
 */

import { encodeConfChange, sameMembership } from "../raft/conf_change.ts";
import type { ConfChange, NodeId } from "../raft/types.ts";
import { CRASH_STAGES, CrashStage, type SimNode } from "./sim_node.ts";
import type { SimCluster } from "./sim_cluster.ts";
import { type NemesisPlan, type NemesisWeights, pick } from "./scenario.ts";

/** What the nemesis did. */
export interface NemesisCounters {
  crashes: number;
  corruptions: number;
  wipes: number;
  crashAlls: number;
  partitions: number;
  linkChanges: number;
  confChangesProposed: number;
  transfers: number;
}

type Action = keyof NemesisWeights;

const PARTITION_KINDS = ["isolate", "split", "bridge", "one_way", "links"] as const;
type PartitionKind = typeof PARTITION_KINDS[number];

/** The fault injector. */
export class Nemesis {
  readonly counters: NemesisCounters = {
    crashes: 0,
    corruptions: 0,
    wipes: 0,
    crashAlls: 0,
    partitions: 0,
    linkChanges: 0,
    confChangesProposed: 0,
    transfers: 0,
  };
  readonly #cluster: SimCluster;
  readonly #plan: NemesisPlan;
  #running = false;
  #partitionGeneration = 0;
  #confPending = false;

  constructor(cluster: SimCluster, plan: NemesisPlan) {
    this.#cluster = cluster;
    this.#plan = plan;
  }

  /** Starts acting at random times (and reacting to elections and commits). */
  start(): void {
    this.#running = true;
    this.#scheduleNext();
    const cluster = this.#cluster;
    const plan = this.#plan;
    cluster.onNewLeader = (node) => {
      if (plan.isolateNewLeader > 0 && cluster.random() < plan.isolateNewLeader) {
        // Before its first Ready as leader sends anything: its new entries stay its own.
        this.#partition("isolate", node.id, "new leader");
      }
    };
    cluster.onLeaderCommit = (node, term, _commit, commitTerm, first) => {
      if (plan.crashEarlyLeader <= 0) return;
      if (!first && (commitTerm === undefined || commitTerm >= term)) return;
      if (cluster.random() >= plan.crashEarlyLeader) return;
      const incarnation = node.incarnation;
      cluster.after(0, "crash early leader", () => {
        if (!node.alive || node.incarnation !== incarnation) return;
        this.counters.crashes++;
        node.crash(`nemesis: leader of term ${term} right after a commit`);
        this.#scheduleRestart(node);
      });
    };
  }

  /** Stops acting; already scheduled restarts and partition heals still happen. */
  stop(): void {
    this.#running = false;
    this.#cluster.onNewLeader = null;
    this.#cluster.onLeaderCommit = null;
  }

  #scheduleNext(): void {
    const cluster = this.#cluster;
    cluster.after(cluster.random() * 2 * this.#plan.gapMs, "nemesis", () => {
      if (!this.#running) return;
      this.act(this.#chooseAction());
      this.#scheduleNext();
    });
  }

  #chooseAction(): Action {
    const weights = this.#plan.weights;
    const actions = Object.keys(weights) as Action[];
    let total = 0;
    for (const action of actions) total += weights[action];
    let roll = this.#cluster.random() * total;
    for (const action of actions) {
      roll -= weights[action];
      if (roll < 0) return action;
    }
    return actions[0]!;
  }

  /** Performs one action now. */
  act(action: Action): void {
    switch (action) {
      case "crash":
        return this.#crashOne();
      case "corrupt":
        return this.#corrupt();
      case "wipe":
        return this.#wipe();
      case "crashAll":
        return this.#crashAll();
      case "partition":
        return this.#partition();
      case "links":
        return this.#changeLinks();
      case "confChange":
        return this.#confChange();
      case "transfer":
        return this.#transfer();
    }
  }

  #target(): SimNode | null {
    const cluster = this.#cluster;
    const leader = cluster.leader();
    if (leader !== null && cluster.random() < this.#plan.leaderBias) return leader;
    const live = cluster.liveNodes();
    return live.length === 0 ? null : pick(cluster.random, live);
  }

  #crashOne(): void {
    const node = this.#target();
    if (node === null) return;
    this.counters.crashes++;
    this.#crash(node);
  }

  /**
   * Crashes a member and cuts its log tail as corruption found at recovery would, with the
   * no-vote marker set. One node at a time: if a majority lost committed entries no protocol
   * could keep them (that is the separate, explicit "recover lost quorum" operation).
   */
  #corrupt(): void {
    const node = this.#damageable();
    if (node === null) return;
    const disk = node.disk;
    if (disk.lastIndex <= disk.snapshotIndex) return;
    this.counters.corruptions++;
    node.crash("nemesis: crash before a corrupted restart");
    const keep = disk.snapshotIndex +
      Math.floor(this.#cluster.random() * (disk.lastIndex - disk.snapshotIndex));
    node.corruptLogAfter(keep);
    this.#scheduleRestart(node);
  }

  /**
   * Node replacement: crashes a member, wipes its disk and starts it again empty with the
   * joining marker (`--join`), under the same conditions as a corruption (one node at a
   * time, the others a majority). The joining rule relies on check-quorum (src/raft/raft.ts,
   * #refreshJoining), which edgeraft always runs with.
   */
  #wipe(): void {
    if (!this.#cluster.options.raft.checkQuorum) return;
    const node = this.#damageable();
    if (node === null) return;
    this.counters.wipes++;
    node.crash("nemesis: crash before its disk is wiped");
    node.wipeDisk();
    this.#scheduleRestart(node);
  }

  /** A member that may lose (part of) its disk now, or null (see #corrupt). */
  #damageable(): SimNode | null {
    const cluster = this.#cluster;
    // The others must still form a majority, or nobody could vote the marked node back in:
    // at least 3 voters, and no uncommitted change in any log (an appended change is in force
    // at once, and nodes that disagree on the configuration may need the marked node's vote).
    if (this.#recovering() || this.#confPending) return null;
    if (cluster.membership.members.filter((m) => m.voter).length < 3) return null;
    for (const node of cluster.nodes.values()) {
      if (node.incarnation === 0) continue;
      if (!sameMembership(node.latestMembership(), cluster.membership)) return null;
    }
    const members = cluster.membership.members
      .map((member) => cluster.node(member.id))
      .filter((node) => node.incarnation > 0 && !cluster.isDecommissioned(node.id));
    if (members.length === 0) return null;
    return pick(cluster.random, members);
  }

  /** Whether some node still carries the no-vote marker of a corrupted log. */
  #recovering(): boolean {
    return [...this.#cluster.nodes.values()].some((node) => node.disk.lostAfter > 0);
  }

  #crashAll(): void {
    this.counters.crashAlls++;
    this.#cluster.trace("nemesis", "crash every node");
    for (const node of this.#cluster.liveNodes()) this.#crash(node);
  }

  #crash(node: SimNode): void {
    const cluster = this.#cluster;
    const plan = this.#plan;
    let crashedWithinMs = 0;
    if (cluster.random() < plan.midReadyCrash) {
      const stage = pick(cluster.random, CRASH_STAGES);
      cluster.trace("nemesis", `arm crash of ${node.id} at ${stage}`);
      node.armCrash(stage);
      const incarnation = node.incarnation;
      // A node that handles no fitting Ready for a while is crashed between Readies instead.
      crashedWithinMs = stage === CrashStage.AfterSnapshot ? 1000 : 100;
      cluster.after(crashedWithinMs, "armed crash fallback", () => {
        if (node.alive && node.incarnation === incarnation && node.crashArmed) {
          node.crash(`armed crash did not strike within ${crashedWithinMs} ms`);
        }
      });
    } else {
      node.crash("nemesis");
    }
    // Counted from when the crash has surely happened, so the restart never comes first.
    this.#scheduleRestart(node, crashedWithinMs);
  }

  #scheduleRestart(node: SimNode, afterMs = 0): void {
    const cluster = this.#cluster;
    const plan = this.#plan;
    const down = plan.downMinMs + cluster.random() * (plan.downMaxMs - plan.downMinMs);
    cluster.after(afterMs + down, "restart", () => {
      if (!node.alive && !cluster.isDecommissioned(node.id)) cluster.startNode(node.id);
    });
  }

  #partition(kind?: PartitionKind, targetId?: NodeId, why = "random"): void {
    const cluster = this.#cluster;
    const plan = this.#plan;
    const network = cluster.network;
    const ids = [...cluster.nodes.keys()];
    network.heal();
    kind ??= pick(cluster.random, PARTITION_KINDS);
    const target = targetId ?? this.#target()?.id ?? pick(cluster.random, ids);
    const others = ids.filter((id) => id !== target);
    switch (kind) {
      case "isolate":
        network.partition([[target], others]);
        break;
      case "split": {
        const shuffled = shuffle(cluster.random, ids);
        const cut = 1 + Math.floor(cluster.random() * (shuffled.length - 1));
        network.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
        break;
      }
      case "bridge": {
        // `target` talks to both halves, which cannot talk to each other.
        const shuffled = shuffle(cluster.random, others);
        const cut = Math.floor(shuffled.length / 2);
        network.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
        break;
      }
      case "one_way": {
        // `target` still sends but hears nothing (or the reverse): check-quorum territory.
        const inbound = cluster.random() < 0.5;
        for (const other of others) {
          if (inbound) network.block(other, target);
          else network.block(target, other);
        }
        break;
      }
      case "links":
        for (const a of ids) {
          for (const b of ids) if (a !== b && cluster.random() < 0.25) network.block(a, b);
        }
        break;
    }
    this.counters.partitions++;
    const generation = ++this.#partitionGeneration;
    cluster.trace(
      "nemesis",
      `partition ${kind} (${target}, ${why}): cut ${network.describeCuts()}`,
    );
    const lasts = plan.partitionMinMs +
      cluster.random() * (plan.partitionMaxMs - plan.partitionMinMs);
    cluster.after(lasts, "heal partition", () => {
      if (generation !== this.#partitionGeneration) return;
      network.heal();
      cluster.trace("nemesis", "partition healed");
    });
  }

  #changeLinks(): void {
    const cluster = this.#cluster;
    const random = cluster.random;
    const plan = this.#plan;
    this.counters.linkChanges++;
    const delayMinMs = 0.2 + random() * 2;
    const calm = random() < 0.3;
    cluster.network.quality = {
      delayMinMs,
      delayMaxMs: delayMinMs + 1 + random() * 30,
      lossRate: calm ? 0 : random() * plan.lossMax,
      duplicateRate: calm ? 0 : random() * plan.duplicateMax,
      spikeRate: calm ? 0 : random() * 0.1,
      spikeMaxMs: 100,
    };
    const q = cluster.network.quality;
    cluster.trace(
      "nemesis",
      `links: delay ${q.delayMinMs.toFixed(1)}-${q.delayMaxMs.toFixed(1)} ms, loss ` +
        `${q.lossRate.toFixed(2)}, duplicate ${q.duplicateRate.toFixed(2)}, spikes ` +
        `${q.spikeRate.toFixed(2)}`,
    );
  }

  #confChange(): void {
    const cluster = this.#cluster;
    const random = cluster.random;
    const leader = cluster.leader();
    // No membership change while a node may not vote: removing a healthy voter could leave
    // the marked one needed for every majority.
    if (leader === null || this.#confPending || this.#recovering()) return;
    const members = cluster.membership.members;
    const voters = members.filter((m) => m.voter);
    const learners = members.filter((m) => !m.voter);
    const outsiders = [...cluster.nodes.keys()].filter((id) => !members.some((m) => m.id === id));
    const options: { weight: number; make: () => ConfChange }[] = [];
    if (learners.length > 0) {
      options.push({ weight: 3, make: () => ({ kind: "promote", id: pick(random, learners).id }) });
      options.push({
        weight: 0.5,
        make: () => ({ kind: "remove", id: pick(random, learners).id }),
      });
    }
    if (outsiders.length > 0) {
      options.push({ weight: 3, make: () => addition("add_learner", pick(random, outsiders)) });
      options.push({ weight: 0.5, make: () => addition("add_voter", pick(random, outsiders)) });
    }
    if (voters.length >= 3) {
      options.push({ weight: 2, make: () => ({ kind: "remove", id: pick(random, voters).id }) });
    }
    if (options.length === 0) return;
    let total = 0;
    for (const option of options) total += option.weight;
    let roll = random() * total;
    let chosen = options[0]!;
    for (const option of options) {
      roll -= option.weight;
      if (roll < 0) {
        chosen = option;
        break;
      }
    }
    const change = chosen.make();
    if (change.kind === "add_learner" || change.kind === "add_voter") {
      // A new node starts empty; a removed one comes back with its old disk ("re-add").
      cluster.startNode(change.id);
    }
    const result = leader.proposeConfChange(
      change,
      encodeConfChange(change),
      (outcome, index) => {
        this.#confPending = false;
        cluster.trace(leader.id, `conf change ${change.kind} ${change.id} at ${index}: ${outcome}`);
      },
    );
    if (result?.ok) {
      this.#confPending = true;
      this.counters.confChangesProposed++;
      cluster.trace(
        leader.id,
        `propose conf change ${change.kind} ${change.id} at ${result.index}/${result.term}`,
      );
    } else if (result !== null && !result.ok) {
      cluster.trace(leader.id, `conf change ${change.kind} ${change.id} refused: ${result.reason}`);
    }
  }

  #transfer(): void {
    const cluster = this.#cluster;
    const leader = cluster.leader();
    if (leader === null) return;
    const voters = cluster.membership.members.filter((m) => m.voter && m.id !== leader.id);
    if (voters.length === 0) return;
    const to = pick(cluster.random, voters).id;
    const ok = leader.transferLeadership(to);
    if (ok) this.counters.transfers++;
    cluster.trace(leader.id, `transfer leadership to ${to}: ${ok ? "started" : "refused"}`);
  }
}

function addition(kind: "add_learner" | "add_voter", id: NodeId): ConfChange {
  return { kind, id, address: `sim://${id}` };
}

function shuffle<T>(random: () => number, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
