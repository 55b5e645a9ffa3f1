/**
 * Validation of the core's tunables ({@linkcode RaftConfig}) and the defaults the node uses.
 *
 * Every relation between fields is checked and every violation is reported at once
 * (STYLE.md item 14), so an operator fixes a bad configuration in one round. The core itself
 * treats an invalid configuration as a programming error: the driver validates at the edge.
 *
 * @module
 */

import type { NodeId, RaftConfig } from "./types.ts";

/** Returns a description of every problem with `config`; an empty array means it is valid. */
export function validateRaftConfig(config: RaftConfig): string[] {
  const problems: string[] = [];
  if (typeof config.id !== "string" || config.id === "" || /[=,]/.test(config.id)) {
    problems.push(`id ${JSON.stringify(config.id)} must be non-empty without "=" or ","`);
  }
  const positive = [
    "electionTicks",
    "heartbeatTicks",
    "inflightAppendsMax",
    "appendBytesMax",
    "uncommittedBytesMax",
    "proposalBytesMax",
    "applyBytesMax",
  ] as const;
  for (const key of positive) {
    const value = config[key];
    if (!Number.isSafeInteger(value) || value < 1) {
      problems.push(`${key} must be a positive integer, got ${value}`);
    }
  }
  if (typeof config.preVote !== "boolean") problems.push("preVote must be a boolean");
  if (typeof config.checkQuorum !== "boolean") problems.push("checkQuorum must be a boolean");
  // A follower must hear several heartbeats per election timeout, or a healthy leader would
  // be deposed by followers whose timers fire between two heartbeats.
  if (config.heartbeatTicks >= config.electionTicks) {
    problems.push(
      `heartbeatTicks (${config.heartbeatTicks}) must be less than electionTicks (${config.electionTicks})`,
    );
  }
  // A proposal the leader could never hold uncommitted would be refused forever.
  if (config.proposalBytesMax > config.uncommittedBytesMax) {
    problems.push(
      `proposalBytesMax (${config.proposalBytesMax}) must not exceed uncommittedBytesMax (${config.uncommittedBytesMax})`,
    );
  }
  return problems;
}

/** The configuration edgeraft runs with unless told otherwise (one tick ≈ 100 ms). */
export function defaultRaftConfig(id: NodeId): RaftConfig {
  return {
    id,
    electionTicks: 10,
    heartbeatTicks: 1,
    preVote: true,
    checkQuorum: true,
    inflightAppendsMax: 256,
    appendBytesMax: 1024 * 1024,
    uncommittedBytesMax: 64 * 1024 * 1024,
    proposalBytesMax: 1024 * 1024,
    applyBytesMax: 4 * 1024 * 1024,
  };
}
