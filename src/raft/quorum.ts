/**
 * Majority arithmetic over the voters of one configuration (Raft §5.2, §5.3): the highest
 * index a quorum has reached, and the outcome of a vote tally.
 *
 * Only voters are ever passed in; learners neither vote nor count toward commit.
 *
 * @module
 */

import type { NodeId } from "./types.ts";

/** The size of a majority of `voters` voters. */
export function quorumSize(voters: number): number {
  return Math.floor(voters / 2) + 1;
}

/**
 * The largest value that at least a majority of `values` (one per voter) reach: the commit
 * index when the values are match indexes. 0 for no voters. Sorts `values` in place.
 */
export function majorityValue(values: number[]): number {
  if (values.length === 0) return 0;
  values.sort((a, b) => b - a);
  return values[quorumSize(values.length) - 1] ?? 0;
}

/** The outcome of an election so far. */
export type VoteResult = "won" | "lost" | "pending";

/** Tallies `votes` (granted or refused, by voter) among `voters`; other senders are ignored. */
export function voteResult(
  voters: readonly NodeId[],
  votes: ReadonlyMap<NodeId, boolean>,
): VoteResult {
  let granted = 0;
  let refused = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === true) granted++;
    else if (vote === false) refused++;
  }
  const quorum = quorumSize(voters.length);
  if (voters.length > 0 && granted >= quorum) return "won";
  if (voters.length - refused < quorum) return "lost";
  return "pending";
}
