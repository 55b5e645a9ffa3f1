/** Validation of the core's tunables (STYLE.md item 14: every violation reported at once). */

import assert from "node:assert/strict";
import { defaultRaftConfig, validateRaftConfig } from "../../src/raft/config.ts";
import { Raft } from "../../src/raft/raft.ts";
import { createPrng } from "../../src/util/prng.ts";
import { membershipOf } from "./harness.ts";

Deno.test("the default configuration is valid", () => {
  assert.deepEqual(validateRaftConfig(defaultRaftConfig("n1")), []);
});

Deno.test("heartbeatTicks must be less than electionTicks", () => {
  const problems = validateRaftConfig({
    ...defaultRaftConfig("n1"),
    electionTicks: 5,
    heartbeatTicks: 5,
  });
  assert.deepEqual(problems, ["heartbeatTicks (5) must be less than electionTicks (5)"]);
});

Deno.test("every violation is reported, not just the first", () => {
  const problems = validateRaftConfig({
    ...defaultRaftConfig("a=b"),
    electionTicks: 0,
    inflightAppendsMax: 1.5,
    appendBytesMax: -1,
    proposalBytesMax: 100,
    uncommittedBytesMax: 10,
  });
  assert.equal(problems.length, 6, problems.join("\n"));
  for (const fragment of ["id", "electionTicks", "inflightAppendsMax", "appendBytesMax"]) {
    assert.ok(problems.some((p) => p.includes(fragment)), fragment);
  }
  assert.ok(problems.some((p) => p.includes("must be less than electionTicks")));
  assert.ok(problems.some((p) => p.includes("must not exceed uncommittedBytesMax")));
});

Deno.test("the core refuses an invalid configuration", () => {
  const config = { ...defaultRaftConfig("a"), heartbeatTicks: 20 };
  assert.throws(
    () =>
      new Raft(config, {
        hardState: { term: 0, vote: null, commit: 0 },
        snapshot: null,
        entries: [],
        membership: membershipOf(["a"]),
        applied: 0,
      }, { random: createPrng(1) }),
    /Invalid Raft config: heartbeatTicks/,
  );
});
