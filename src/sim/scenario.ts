/**
 * Turns a seed into a scenario: cluster size, the core's tunables, the starting network, how
 * long the faulty phase lasts, and the mix of faults and client work. Seeds fall into profiles
 * so that a batch covers calm clusters as well as heavy leader churn, lossy networks and
 * membership storms; within a profile every knob is drawn from the seed.
 *
 * The scenario has its own generator (derived from the seed), so adding a knob here does not
 * shift the run's event stream more than it must.
 *
 * @module
 */

import type { NodeId, RaftConfig } from "../raft/types.ts";
import { createPrng, type Random, randomInt } from "../util/prng.ts";
import type { LinkQuality } from "./network.ts";

/** Named mixes of faults and work. */
export const Profile = {
  /** A bit of everything. */
  Mixed: "mixed",
  /** Leaders crash and get cut off often, with entries in flight (Raft Figure 8 territory). */
  Churn: "churn",
  /** Heavy loss, duplication and reordering. */
  Lossy: "lossy",
  /** Frequent membership changes and leadership transfers. */
  Membership: "membership",
  /** Few faults, steady client load. */
  Calm: "calm",
  /**
   * Three nodes, new leaders cut off the moment they win and leaders crashed right after
   * their first commits: the interleavings of Raft Figure 8 (§5.4.2).
   */
  Figure8: "figure8",
} as const;
export type Profile = typeof Profile[keyof typeof Profile];

/** Relative weights of the nemesis' actions. */
export interface NemesisWeights {
  readonly crash: number;
  /** Crash a node and corrupt its log tail (recovered with the no-vote marker). */
  readonly corrupt: number;
  /** Crash a node, wipe its disk and start it again empty with `--join` (node replacement). */
  readonly wipe: number;
  readonly crashAll: number;
  readonly partition: number;
  readonly links: number;
  readonly confChange: number;
  readonly transfer: number;
}

/** How the nemesis behaves during the faulty phase. */
export interface NemesisPlan {
  /** Mean gap between two actions. */
  readonly gapMs: number;
  readonly weights: NemesisWeights;
  /** Probability that a crash or partition aims at the current leader. */
  readonly leaderBias: number;
  /** Probability that a crash strikes inside a Ready rather than between two. */
  readonly midReadyCrash: number;
  readonly downMinMs: number;
  readonly downMaxMs: number;
  readonly partitionMinMs: number;
  readonly partitionMaxMs: number;
  readonly lossMax: number;
  readonly duplicateMax: number;
  /** Probability that a node is cut off the moment it wins an election. */
  readonly isolateNewLeader: number;
  /**
   * Probability that a leader crashes right after a commit advance that happens before any
   * entry of its own term is committed (its first advance, for a correct core).
   */
  readonly crashEarlyLeader: number;
}

/** How the simulated clients behave. */
export interface ClientPlan {
  /** Mean gap between two client operations. */
  readonly gapMs: number;
  /** Share of operations that are ReadIndex reads. */
  readonly readShare: number;
  readonly keys: number;
  /** Probability that a write comes as a burst of several. */
  readonly burstChance: number;
  readonly burstMax: number;
}

/** Everything a seed decides before the run starts. */
export interface Scenario {
  readonly seed: number;
  readonly profile: Profile;
  /** Every id the run may use; the first `voters` are the bootstrap voters, the rest spares. */
  readonly nodeIds: readonly NodeId[];
  readonly voters: number;
  readonly tickMs: number;
  readonly raft: Omit<RaftConfig, "id">;
  readonly snapshotEntries: number;
  readonly links: LinkQuality;
  /** Length of the faulty phase. */
  readonly faultMs: number;
  /** After healing, the cluster must elect, commit and converge within this bound. */
  readonly livenessMs: number;
  readonly nemesis: NemesisPlan;
  readonly client: ClientPlan;
  /** See {@linkcode NodeWorld.tornTermChangeRate} (faulty phase only). */
  readonly tornTermChangeRate: number;
}

const PROFILES: readonly Profile[] = [
  Profile.Mixed,
  Profile.Mixed,
  Profile.Churn,
  Profile.Churn,
  Profile.Lossy,
  Profile.Membership,
  Profile.Calm,
  Profile.Figure8,
];

/** The scenario of `seed`. */
export function scenarioForSeed(seed: number): Scenario {
  const random = createPrng((seed ^ 0x5ce7a210) >>> 0);
  const profile = pick(random, PROFILES);
  const voters = profile === Profile.Figure8 || random() < 0.5 ? 3 : 5;
  const spares = randomInt(random, 1, 2);
  const nodeIds = Array.from({ length: voters + spares }, (_, i) => `n${i + 1}`);
  const figure8 = profile === Profile.Figure8;
  const churn = profile === Profile.Churn || figure8;
  const raft: Omit<RaftConfig, "id"> = {
    electionTicks: 10,
    heartbeatTicks: randomInt(random, 1, 3),
    preVote: random() < 0.8,
    checkQuorum: random() < 0.8,
    // One small append in flight at a time makes a catching-up follower acknowledge old
    // entries one by one: the window in which Figure 8 commits an old-term entry.
    inflightAppendsMax: figure8 ? 1 : pick(random, churn ? [2, 4, 16, 64] : [1, 2, 4, 16, 64]),
    appendBytesMax: figure8
      ? 16
      : churn
      ? pick(random, [16, 64])
      : pick(random, [64, 256, 4096, 65536]),
    // Figure 8 catch-up goes one entry per round trip: keep the backlog short enough to
    // converge well inside the liveness bound.
    uncommittedBytesMax: figure8 ? 2048 : pick(random, [4096, 65536, 1 << 20]),
    proposalBytesMax: 1024,
    applyBytesMax: pick(random, [16, 256, 1 << 20]),
  };
  const delayMinMs = 0.2 + random() * 2;
  const links: LinkQuality = {
    delayMinMs,
    delayMaxMs: delayMinMs + 1 + random() * (profile === Profile.Lossy ? 30 : 12),
    lossRate: profile === Profile.Calm ? 0 : random() * 0.05,
    duplicateRate: random() * 0.05,
    spikeRate: random() * 0.05,
    spikeMaxMs: 60,
  };
  return {
    seed,
    profile,
    nodeIds,
    voters,
    tickMs: 10,
    raft,
    snapshotEntries: randomInt(random, 6, 40),
    links,
    faultMs: figure8 ? 8000 : randomInt(random, 3000, 10_000),
    livenessMs: 10_000,
    nemesis: nemesisPlan(random, profile),
    tornTermChangeRate: profile === Profile.Calm ? 0 : 0.1,
    client: {
      gapMs: churn ? 4 + random() * 8 : 6 + random() * 24,
      readShare: 0.2 + random() * 0.3,
      keys: randomInt(random, 2, 6),
      burstChance: 0.1,
      burstMax: 8,
    },
  };
}

function nemesisPlan(random: Random, profile: Profile): NemesisPlan {
  const base: NemesisPlan = {
    gapMs: 150 + random() * 150,
    weights: {
      crash: 3,
      corrupt: 0.3,
      wipe: 0.3,
      crashAll: 0.15,
      partition: 3,
      links: 1.5,
      confChange: 2,
      transfer: 1,
    },
    leaderBias: 0.5,
    midReadyCrash: 0.6,
    downMinMs: 20,
    downMaxMs: 1500,
    partitionMinMs: 100,
    partitionMaxMs: 1500,
    lossMax: 0.15,
    duplicateMax: 0.1,
    isolateNewLeader: 0.03,
    crashEarlyLeader: 0.03,
  };
  switch (profile) {
    case Profile.Mixed:
      return base;
    case Profile.Churn:
      return {
        ...base,
        gapMs: 60 + random() * 80,
        weights: {
          crash: 6,
          corrupt: 0.3,
          wipe: 0.3,
          crashAll: 0.3,
          partition: 4,
          links: 1,
          confChange: 0.5,
          transfer: 1,
        },
        leaderBias: 0.85,
        downMinMs: 10,
        downMaxMs: 400,
        partitionMinMs: 50,
        partitionMaxMs: 600,
      };
    case Profile.Lossy:
      return {
        ...base,
        weights: {
          crash: 2,
          corrupt: 0.2,
          wipe: 0.2,
          crashAll: 0.1,
          partition: 2,
          links: 4,
          confChange: 1,
          transfer: 1,
        },
        lossMax: 0.35,
        duplicateMax: 0.25,
      };
    case Profile.Membership:
      return {
        ...base,
        gapMs: 120 + random() * 100,
        weights: {
          crash: 2,
          corrupt: 0.2,
          wipe: 0.2,
          crashAll: 0.1,
          partition: 1,
          links: 1,
          confChange: 7,
          transfer: 3,
        },
      };
    case Profile.Calm:
      return {
        ...base,
        gapMs: 500 + random() * 500,
        weights: {
          crash: 1,
          corrupt: 0,
          wipe: 0,
          crashAll: 0,
          partition: 1,
          links: 0.5,
          confChange: 1,
          transfer: 1,
        },
        isolateNewLeader: 0,
        crashEarlyLeader: 0,
      };
    case Profile.Figure8:
      return {
        ...base,
        gapMs: 80 + random() * 120,
        weights: {
          crash: 4,
          corrupt: 0,
          wipe: 0.3,
          crashAll: 0.2,
          partition: 4,
          links: 0.5,
          confChange: 0.3,
          transfer: 1,
        },
        leaderBias: 0.9,
        downMinMs: 10,
        downMaxMs: 500,
        partitionMinMs: 50,
        partitionMaxMs: 500,
        isolateNewLeader: 0.6,
        crashEarlyLeader: 1,
      };
  }
}

/** A one-line summary of a scenario for reports. */
export function describeScenario(s: Scenario): string {
  const r = s.raft;
  return `${s.voters} voters + ${s.nodeIds.length - s.voters} spare, profile ${s.profile}, ` +
    `faults for ${s.faultMs} ms, tick ${s.tickMs} ms, election ${r.electionTicks} ticks, ` +
    `heartbeat ${r.heartbeatTicks}, preVote ${r.preVote}, checkQuorum ${r.checkQuorum}, ` +
    `inflight ${r.inflightAppendsMax}, appendBytes ${r.appendBytesMax}, ` +
    `snapshot every ${s.snapshotEntries}, delay ${s.links.delayMinMs.toFixed(1)}-` +
    `${s.links.delayMaxMs.toFixed(1)} ms`;
}

/** A uniformly chosen element of `items` (non-empty). */
export function pick<T>(random: Random, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}
