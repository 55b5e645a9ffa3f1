/**
 * A seed replays exactly: the same seed gives the same trace (hash), steps and outcome, and
 * nothing in src/sim/ reads the clock or an unseeded random source.
 */

import assert from "node:assert/strict";
import { runSeed } from "../../src/sim/run_seed.ts";

Deno.test("the same seed run twice gives an identical trace", () => {
  for (const seed of [1, 7, 42, 1234]) {
    const lines: string[] = [];
    const first = runSeed(seed, { traceSink: (line) => lines.push(line) });
    const second = runSeed(seed);
    assert.equal(second.traceHash, first.traceHash, `seed ${seed}`);
    assert.equal(second.stats.steps, first.stats.steps);
    assert.deepEqual(second.stats, first.stats);
    assert.deepEqual(second.violation, first.violation);
    assert.deepEqual(second.traceTail, lines.slice(-second.traceTail.length));
  }
});

Deno.test("different seeds give different traces", () => {
  const hashes = new Set([1, 2, 3, 4, 5].map((seed) => runSeed(seed).traceHash));
  assert.equal(hashes.size, 5);
});

Deno.test("the simulator's sources use no clock and no unseeded randomness", async () => {
  const dir = new URL("../../src/sim/", import.meta.url);
  const forbidden = [
    /Math\.random/,
    /Date\.now/,
    /new Date\b/,
    /performance\.now/,
    /setTimeout|setInterval/,
    /\bDeno\./,
    /crypto\.getRandomValues/,
  ];
  let files = 0;
  for await (const item of Deno.readDir(dir)) {
    if (!item.isFile || !item.name.endsWith(".ts")) continue;
    files++;
    const text = await Deno.readTextFile(new URL(item.name, dir));
    for (const pattern of forbidden) {
      assert.ok(!pattern.test(text), `src/sim/${item.name} matches ${pattern}`);
    }
  }
  assert.ok(files >= 10);
});
