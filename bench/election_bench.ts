/**
 * Election benchmark (`deno task bench election`, or `deno run bench/election_bench.ts`):
 * how long a cluster is without a leader after its leader crashes, measured in the seeded
 * simulator with realistic timing, over 1000 trials.
 *
 * Timing: tick 10 ms, election timeout 15–29 ticks (150–300 ms), heartbeat every 5 ticks
 * (50 ms), one-way delay uniform in 0.5–5 ms, pre-vote and check-quorum on (edgeraft's
 * defaults). Each trial builds a fresh cluster, waits until a leader has committed an entry
 * of its term, lets a random part of one heartbeat interval pass (so the crash lands anywhere
 * in the heartbeat cycle, as in the Raft paper's experiment) and crashes the leader. It
 * reports the time from the crash to (a) another node winning an election and (b) that new
 * leader committing its first entry (the no-op of its term, Raft §8), after which it can
 * acknowledge writes.
 *
 * The reference is the Raft paper (Ongaro and Ousterhout, USENIX ATC 2014), §9.3 and
 * Figure 16, which crashed the leader of a five-server cluster 1000 times per timeout range
 * and plotted the time to replace it; our TARGETS.md summarises it as ≈ 0.3 s at 150–300 ms
 * timeouts. (Compare the distribution with the figure itself; no exact numbers are quoted
 * here because they were not checked against the paper.) The paper
 * measured real servers (broadcast time ≈ 15 ms) and plain Raft; edgeraft adds pre-vote (one
 * more round trip before the real election) and the check-quorum lease (followers refuse
 * candidates until they have missed the leader for a full minimum timeout), so expect the
 * median a little above the minimum timeout and a longer tail when a pre-candidate asks too
 * early and has to wait for a second timeout.
 *
 * Times are simulated, so the figures do not depend on the machine; only the run time does.
 *
 * @module
 */

import { calmLinks } from "../src/sim/network.ts";
import { SimCluster } from "../src/sim/sim_cluster.ts";

const TICK_MS = 10;
const ELECTION_TICKS = 15;
const HEARTBEAT_TICKS = 5;

/** What one trial measured, in simulated ms after the crash. */
interface Trial {
  readonly elected: number;
  readonly committed: number;
}

/** Runs one trial with `seed`; throws if the cluster breaks an invariant or never recovers. */
export function electionTrial(seed: number, voters: number): Trial {
  const ids = Array.from({ length: voters }, (_, i) => `n${i + 1}`);
  const cluster = new SimCluster({
    seed,
    nodeIds: ids,
    voters,
    tickMs: TICK_MS,
    raft: {
      electionTicks: ELECTION_TICKS,
      heartbeatTicks: HEARTBEAT_TICKS,
      preVote: true,
      checkQuorum: true,
      inflightAppendsMax: 256,
      appendBytesMax: 1 << 20,
      uncommittedBytesMax: 1 << 26,
      proposalBytesMax: 1 << 20,
      applyBytesMax: 1 << 22,
    },
    snapshotEntries: 10_000,
    links: calmLinks(0.5, 5),
  });
  for (const id of ids) cluster.startNode(id);

  // A settled leader: it has committed in its term.
  let settled = false;
  cluster.onLeaderCommit = (_node, _term, _commit, _commitTerm, first) => {
    if (first) settled = true;
  };
  if (!cluster.runUntil(() => settled, 10_000)) fail(cluster, seed, "no first leader");
  const old = cluster.leader()!;
  const offset = cluster.random() * HEARTBEAT_TICKS * TICK_MS;
  cluster.runUntil(() => false, cluster.now + 100 + offset);
  const leader = cluster.leader();
  if (leader === null || leader.id !== old.id) fail(cluster, seed, "the first leader did not last");

  let elected = -1;
  let committed = -1;
  let newLeader: string | null = null;
  cluster.onNewLeader = (node, term) => {
    if (elected < 0 && node.id !== old.id && term > old.term) {
      elected = cluster.now;
      newLeader = node.id;
    }
  };
  cluster.onLeaderCommit = (node, _term, _commit, _commitTerm, first) => {
    if (first && committed < 0 && node.id === newLeader) committed = cluster.now;
  };
  const crashedAt = cluster.now;
  old.crash("bench: leader crash");
  if (!cluster.runUntil(() => committed >= 0, crashedAt + 10_000)) {
    fail(cluster, seed, "no new leader committed within 10 s");
  }
  return { elected: elected - crashedAt, committed: committed - crashedAt };
}

function fail(cluster: SimCluster, seed: number, what: string): never {
  const v = cluster.violation;
  throw new Error(
    `election bench: trial seed ${seed}: ${v === null ? what : `${v.invariant}: ${v.detail}`}`,
  );
}

/** The value below which `q` of `sorted` lies (nearest rank). */
function quantile(sorted: readonly number[], q: number): number {
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

function row(label: string, values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const cell = (v: number) => `${v.toFixed(0).padStart(6)} ms`;
  const within = (ms: number) => sorted.filter((v) => v <= ms).length / sorted.length;
  return `${label.padEnd(26)}${cell(quantile(sorted, 0.5))}${cell(quantile(sorted, 0.99))}` +
    `${cell(sorted[sorted.length - 1]!)}${(100 * within(300)).toFixed(1).padStart(9)} %`;
}

/** Entry point for tools/bench.ts: `--trials N` (1000), `--nodes 3|5` (5, as in the paper). */
export function run(args: string[]): Promise<void> {
  let trials = 1000;
  let voters = 5;
  for (let i = 0; i < args.length; i++) {
    const value = Number(args[i + 1]);
    if (args[i] === "--trials" && Number.isSafeInteger(value) && value > 0) trials = value;
    else if (args[i] === "--nodes" && (value === 3 || value === 5)) voters = value;
    else throw new Error(`election bench: usage: [--trials N] [--nodes 3|5], got ${args[i]}`);
    i++;
  }
  const elected: number[] = [];
  const committed: number[] = [];
  for (let trial = 1; trial <= trials; trial++) {
    const result = electionTrial(trial, voters);
    elected.push(result.elected);
    committed.push(result.committed);
  }
  console.log(
    `election: ${trials} leader crashes, ${voters} nodes, election timeout ` +
      `${ELECTION_TICKS * TICK_MS}-${2 * ELECTION_TICKS * TICK_MS} ms, heartbeat ` +
      `${HEARTBEAT_TICKS * TICK_MS} ms, one-way delay 0.5-5 ms, pre-vote + check-quorum ` +
      `(simulated time)`,
  );
  console.log(
    `${"".padEnd(26)}${"median".padStart(9)}${"p99".padStart(9)}` +
      `${"max".padStart(9)}${"≤ 300 ms".padStart(11)}`,
  );
  console.log(row("crash → new leader", elected));
  console.log(row("crash → its first commit", committed));
  console.log(
    "reference: Raft paper §9.3 / Figure 16 (5 servers, plain Raft): TARGETS.md puts it at " +
      "≈ 0.3 s with 150–300 ms timeouts. TARGETS.md goal: leader kill → next acknowledged " +
      "write median ≤ 600 ms, max ≤ 1.2 s.",
  );
  return Promise.resolve();
}

if (import.meta.main) await run(Deno.args);
