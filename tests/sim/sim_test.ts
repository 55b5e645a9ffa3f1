/**
 * The simulator smoke batch: hundreds of seeds in-process, zero violations allowed, and proof
 * that the batch did real work (acknowledged writes, checked reads, elections, crashes,
 * partitions, snapshots installed, membership changes, transfers, every profile and both
 * cluster sizes), so that it cannot pass vacuously.
 *
 * A failure prints each failing seed's report with its replay command
 * (`deno task sim --seed S`).
 */

import assert from "node:assert/strict";
import { addStats, emptyStats, runSeed, type SeedResult } from "../../src/sim/run_seed.ts";
import { Profile, scenarioForSeed } from "../../src/sim/scenario.ts";
import { formatFailure, formatStats, formatSummary } from "../../src/sim/sim_report.ts";

/** Measured: ~1.2 s per 100 seeds on the 2-core CI machine class (≈ 12 s for the batch). */
const SEEDS = 1000;

Deno.test(`${SEEDS} simulator seeds keep every safety and liveness invariant`, () => {
  const totals = emptyStats();
  const failures: SeedResult[] = [];
  const profiles = new Map<string, number>();
  const sizes = new Map<number, number>();
  for (let seed = 1; seed <= SEEDS; seed++) {
    const scenario = scenarioForSeed(seed);
    profiles.set(scenario.profile, (profiles.get(scenario.profile) ?? 0) + 1);
    sizes.set(scenario.voters, (sizes.get(scenario.voters) ?? 0) + 1);
    const result = runSeed(seed);
    addStats(totals, result.stats);
    if (result.violation !== null) failures.push(result);
  }
  const summary = formatSummary(SEEDS, totals.steps, failures.length);
  console.log(formatStats(totals));
  console.log(summary);
  if (failures.length > 0) {
    for (const failure of failures.slice(0, 3)) console.log(formatFailure(failure));
    const seeds = failures.slice(0, 20).map((f) => `${f.seed} (${f.violation!.invariant})`);
    const more = failures.length > 20 ? `, … ${failures.length - 20} more` : "";
    assert.fail(`${summary}; failing seeds: ${seeds.join(", ")}${more}`);
  }

  // The batch must have exercised what it claims to check.
  const atLeast = (what: string, value: number, min: number) =>
    assert.ok(value >= min, `only ${value} ${what} in ${SEEDS} seeds (expected ≥ ${min})`);
  atLeast("acknowledged writes", totals.writesAcknowledged, 50 * SEEDS);
  atLeast("checked reads", totals.readsServed, 15 * SEEDS);
  atLeast("leaders elected", totals.leadersElected, 4 * SEEDS);
  atLeast("crashes", totals.crashes, 5 * SEEDS);
  atLeast("restarts", totals.restarts, 4 * SEEDS);
  atLeast("partitions", totals.partitions, 4 * SEEDS);
  atLeast("snapshots taken", totals.snapshotsTaken, 10 * SEEDS);
  atLeast("snapshots installed from a leader", totals.snapshotsInstalled, 2 * SEEDS);
  atLeast("committed membership changes", totals.confChangesCommitted, 1 * SEEDS);
  atLeast("leadership transfers", totals.transfers, SEEDS / 2);
  // Node replacement: disks wiped, restarted empty with --join, caught up and voting again.
  atLeast("wiped disks", totals.wipes, SEEDS / 5);
  atLeast("replacement nodes that rejoined", totals.joins, SEEDS / 6);
  for (const profile of Object.values(Profile)) {
    atLeast(`seeds of profile ${profile}`, profiles.get(profile) ?? 0, SEEDS / 20);
  }
  atLeast("3-node clusters", sizes.get(3) ?? 0, SEEDS / 4);
  atLeast("5-node clusters", sizes.get(5) ?? 0, SEEDS / 4);
});
