/**
 * The simulator's command line (`deno task sim`); needs no permissions.
 *
 *     deno task sim --seeds 500            seeds 1..500 (or --start X: X..X+499)
 *     deno task sim --seed 42 [--verbose]  replay one seed (with its full trace)
 *     --hook commitOldTermEntries          switch on a deliberately broken core rule
 *
 * It prints the seed of every run it replays, a full report for every failing seed (the
 * invariant, its evidence, the last trace events and the replay command), and ends with
 * exactly one line `sim: N seeds, M steps, K violations`; the exit code is 1 when K > 0.
 *
 * @module
 */

import type { RaftTestHooks } from "../src/raft/types.ts";
import { addStats, emptyStats, runSeed } from "../src/sim/run_seed.ts";
import { formatFailure, formatStats, formatSummary } from "../src/sim/sim_report.ts";

const HOOKS = ["commitOldTermEntries", "grantVotesToStaleLogs"] as const;
type HookName = typeof HOOKS[number];

interface SimArgs {
  start: number;
  count: number;
  single: boolean;
  verbose: boolean;
  hooks: HookName[];
}

const USAGE = "usage: deno task sim [--seeds N [--start X]] [--seed S [--verbose]] " +
  `[--hook ${HOOKS.join("|")}]`;

function parseArgs(args: readonly string[]): SimArgs | string {
  const parsed: SimArgs = { start: 1, count: 100, single: false, verbose: false, hooks: [] };
  const number = (flag: string, value: string | undefined): number | string => {
    const n = Number(value);
    return value !== undefined && Number.isSafeInteger(n) && n >= 0
      ? n
      : `${flag} needs a non-negative integer, got ${JSON.stringify(value ?? "")}`;
  };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i]!;
    const take = (): number | string => number(flag, args[++i]);
    let value: number | string;
    switch (flag) {
      case "--seeds":
        value = take();
        if (typeof value === "string") return value;
        parsed.count = value;
        break;
      case "--start":
        value = take();
        if (typeof value === "string") return value;
        parsed.start = value;
        break;
      case "--seed":
        value = take();
        if (typeof value === "string") return value;
        parsed.start = value;
        parsed.count = 1;
        parsed.single = true;
        break;
      case "--verbose":
        parsed.verbose = true;
        break;
      case "--hook": {
        const hook = args[++i];
        if (!HOOKS.includes(hook as HookName)) return `unknown --hook ${JSON.stringify(hook)}`;
        parsed.hooks.push(hook as HookName);
        break;
      }
      case "--help":
      case "-h":
        return USAGE;
      default:
        return `unknown argument ${JSON.stringify(flag)}`;
    }
  }
  if (parsed.verbose && !parsed.single) return "--verbose needs --seed S";
  return parsed;
}

function main(args: readonly string[]): number {
  const parsed = parseArgs(args);
  if (typeof parsed === "string") {
    console.error(parsed === USAGE ? USAGE : `sim: ${parsed}\n${USAGE}`);
    return 2;
  }
  const testHooks: RaftTestHooks = Object.fromEntries(parsed.hooks.map((h) => [h, true]));
  const totals = emptyStats();
  let violations = 0;
  const end = parsed.start + parsed.count - 1;
  if (!parsed.single) {
    console.log(`sim: seeds ${parsed.start}..${end}${hookNote(parsed.hooks)}`);
  }
  for (let seed = parsed.start; seed <= end; seed++) {
    if (parsed.single) console.log(`sim: seed ${seed}${hookNote(parsed.hooks)}`);
    const result = runSeed(seed, {
      testHooks,
      traceSink: parsed.verbose ? (line) => console.log(line) : undefined,
    });
    addStats(totals, result.stats);
    if (result.violation !== null) {
      violations++;
      console.log(formatFailure(result, parsed.hooks));
    } else if (parsed.single) {
      console.log(`sim: seed ${seed} ok (trace hash ${result.traceHash})`);
    }
    const done = seed - parsed.start + 1;
    if (!parsed.single && done % 100 === 0 && done < parsed.count) {
      console.log(`sim: ${done}/${parsed.count} seeds, ${violations} violations so far`);
    }
  }
  console.log(formatStats(totals));
  console.log(formatSummary(parsed.count, totals.steps, violations));
  return violations > 0 ? 1 : 0;
}

function hookNote(hooks: readonly string[]): string {
  return hooks.length === 0 ? "" : ` (broken on purpose: ${hooks.join(", ")})`;
}

if (import.meta.main) Deno.exit(main(Deno.args));
