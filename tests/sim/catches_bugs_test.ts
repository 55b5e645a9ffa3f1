/**
 * The simulator must catch deliberately broken Raft rules (`RaftTestHooks`): a green batch is
 * only evidence if a broken core turns it red. Each hook runs seeds until one breaks a safety
 * invariant; the same seed without the hook must not break that invariant.
 */

import assert from "node:assert/strict";
import type { RaftTestHooks } from "../../src/raft/types.ts";
import { runSeed, type SeedResult } from "../../src/sim/run_seed.ts";
import { formatFailure } from "../../src/sim/sim_report.ts";
import { Invariant } from "../../src/sim/violation.ts";

/** What a broken commit or vote rule shows up as (not a crash of the core or a timeout). */
const SAFETY: ReadonlySet<string> = new Set([
  Invariant.ElectionSafety,
  Invariant.LogMatching,
  Invariant.LeaderCompleteness,
  Invariant.StateMachineSafety,
  Invariant.AcknowledgedWriteLost,
  Invariant.LinearizableRead,
]);

const SEEDS_MAX = 400;

function firstSafetyViolation(testHooks: RaftTestHooks): { found: SeedResult; tried: number } {
  for (let seed = 1; seed <= SEEDS_MAX; seed++) {
    const result = runSeed(seed, { testHooks });
    if (result.violation !== null && SAFETY.has(result.violation.invariant)) {
      return { found: result, tried: seed };
    }
  }
  throw new assert.AssertionError({
    message: `no safety violation in ${SEEDS_MAX} seeds with ${JSON.stringify(testHooks)}`,
  });
}

function assertCaught(hook: keyof RaftTestHooks): void {
  const { found, tried } = firstSafetyViolation({ [hook]: true });
  console.log(`${hook}: caught after ${tried} seeds\n${formatFailure(found, [hook])}`);
  const control = runSeed(found.seed);
  assert.notEqual(
    control.violation?.invariant,
    found.violation!.invariant,
    `seed ${found.seed} breaks ${found.violation!.invariant} even without ${hook}`,
  );
}

Deno.test("the simulator catches old-term entries committed by counting replicas (Raft §5.4.2, Figure 8)", () => {
  assertCaught("commitOldTermEntries");
});

Deno.test("the simulator catches votes granted to candidates with stale logs (Raft §5.4.1)", () => {
  assertCaught("grantVotesToStaleLogs");
});
