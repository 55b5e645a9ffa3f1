/**
 * What the simulator prints: a failure report (seed, the broken invariant with its evidence,
 * the last trace events and the exact replay command) and the one-line batch summary.
 *
 * @module
 */

import type { RunStats, SeedResult } from "./run_seed.ts";

/** The command that replays `seed` (with the hooks a test switched on, if any). */
export function replayCommand(seed: number, hooks: readonly string[] = []): string {
  const flags = hooks.map((hook) => ` --hook ${hook}`).join("");
  return `deno task sim --seed ${seed}${flags}`;
}

/** A multi-line report of a failed seed. */
export function formatFailure(result: SeedResult, hooks: readonly string[] = []): string {
  const v = result.violation;
  if (v === null) return `seed ${result.seed}: ok`;
  return [
    `sim: seed ${result.seed} FAILED at t=${result.atMs.toFixed(1)}ms: ${v.invariant}`,
    `  ${v.detail}`,
    `  scenario: ${result.scenario}`,
    `  last ${result.traceTail.length} trace events:`,
    ...result.traceTail.map((line) => `    ${line}`),
    `  replay: ${replayCommand(result.seed, hooks)}`,
  ].join("\n");
}

/** One line of totals showing how much work a batch did. */
export function formatStats(stats: RunStats): string {
  return `sim: work: ${stats.writesAcknowledged}/${stats.writesProposed} writes acknowledged ` +
    `(${stats.writesRefused} refused, ${stats.writesLost} lost, ${stats.writesUnknown} unknown), ` +
    `${stats.readsServed}/${stats.readsStarted} reads checked, ` +
    `${stats.leadersElected} leaders elected, ` +
    `${stats.crashes} crashes, ${stats.partitions} partitions, ${stats.wipes} disks wiped ` +
    `(${stats.joins} rejoined), ${stats.snapshotsTaken} ` +
    `snapshots taken, ${stats.snapshotsInstalled} installed, ${stats.confChangesCommitted}/` +
    `${stats.confChangesProposed} conf changes committed, ${stats.transfers} transfers; ` +
    `slowest heal→converged ${stats.healToConvergedMaxMs.toFixed(0)} ms`;
}

/** The closing line: `sim: N seeds, M steps, K violations`. */
export function formatSummary(seeds: number, steps: number, violations: number): string {
  return `sim: ${seeds} seeds, ${steps} steps, ${violations} violations`;
}
