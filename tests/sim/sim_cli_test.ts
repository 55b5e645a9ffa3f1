/**
 * `deno task sim` (tools/sim.ts) needs no permissions, ends with exactly one summary line, and
 * on failure prints the seed, the invariant, the trace tail and the replay command.
 */

import assert from "node:assert/strict";
import { runSeed } from "../../src/sim/run_seed.ts";

const SIM = new URL("../../tools/sim.ts", import.meta.url).pathname;
const SUMMARY = /^sim: (\d+) seeds, (\d+) steps, (\d+) violations$/;

async function sim(...args: string[]): Promise<{ code: number; lines: string[] }> {
  // No --allow-* flags: the simulator must run without permissions.
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--no-prompt", SIM, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  return { code: output.code, lines: text.trimEnd().split("\n") };
}

Deno.test("sim --seeds ends with one summary line and an exit code matching it", async () => {
  const { code, lines } = await sim("--seeds", "3", "--start", "5");
  assert.equal(lines[0], "sim: seeds 5..7");
  const last = lines[lines.length - 1]!;
  const match = last.match(SUMMARY);
  assert.ok(match, last);
  assert.equal(match[1], "3");
  assert.ok(Number(match[2]) > 0);
  assert.equal(code, Number(match[3]) > 0 ? 1 : 0);
  assert.equal(lines.filter((line) => SUMMARY.test(line)).length, 1);
});

Deno.test("a failing seed prints its seed, invariant, trace tail and replay command", async () => {
  const hook = "grantVotesToStaleLogs";
  let seed = 1;
  while (runSeed(seed, { testHooks: { [hook]: true } }).violation === null) seed++;
  const { code, lines } = await sim("--seed", String(seed), "--hook", hook);
  const text = lines.join("\n");
  assert.equal(code, 1);
  assert.equal(lines[0], `sim: seed ${seed} (broken on purpose: ${hook})`);
  assert.match(text, new RegExp(`sim: seed ${seed} FAILED at t=[0-9.]+ms: [a-z_]+\\n`));
  assert.match(text, /last 30 trace events:/);
  assert.ok(text.includes(`replay: deno task sim --seed ${seed} --hook ${hook}`), text);
  assert.equal(lines[lines.length - 1], lines.find((line) => SUMMARY.test(line)));
  assert.match(lines[lines.length - 1]!, /^sim: 1 seeds, \d+ steps, 1 violations$/);
});

Deno.test("bad arguments exit 2 with a usage line", async () => {
  const { code } = await sim("--seeds", "many");
  assert.equal(code, 2);
});
