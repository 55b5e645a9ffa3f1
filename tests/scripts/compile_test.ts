/**
 * The compiled binary itself: `deno task compile` for this machine's target, then three nodes
 * started from the binary alone (no deno, no flags: the permissions are baked in), a write, a
 * backup and its verification, and `edgeraft version` with the embedded commit.
 *
 * `deno compile` needs its runtime (`denort-<target>.zip`), which only dl.deno.land serves. Where
 * that download fails, the test is reported as ignored (never as passed) and one line says why;
 * tests/scripts/bundle_test.ts proves compile-safety without the runtime.
 *
 * @module
 */

import assert from "node:assert/strict";
import { gitCommit, TARGETS } from "../../scripts/build_info.ts";
import { RELEASE } from "../../src/version.ts";
import {
  assertSuccess,
  baseEnv,
  ROOT,
  runCommand,
  threeNodeScenario,
} from "./release_processes.ts";

const TARGET = Deno.build.target;

/**
 * Why no binary can be compiled here, or null when it can (or when compile fails for another
 * reason: then the test runs and shows that failure). Compiles a one-line program as the probe.
 */
async function compileUnavailable(): Promise<string | null> {
  if (!(TARGETS as readonly string[]).includes(TARGET)) {
    return `no release target for this machine (${TARGET}; targets: ${TARGETS.join(", ")})`;
  }
  const dir = await Deno.makeTempDir({ prefix: "edgeraft-compile-probe-" });
  try {
    await Deno.writeTextFile(`${dir}/probe.ts`, 'console.log("probe");\n');
    const result = await runCommand(
      [Deno.execPath(), "compile", "--no-config", "--no-check", "-o", `${dir}/probe`, "probe.ts"],
      { cwd: dir, timeoutMs: 180_000, inheritEnv: true },
    );
    if (result.code === 0) return null;
    if (!/Setting up base binary|denort/.test(result.stderr)) return null;
    const lines = result.stderr.split("\n").map((line) => line.trim().replace(/^\d+: /, ""));
    const cause = lines.find((line) => /error|Could not find/i.test(line) && /denort/.test(line)) ??
      lines.find((line) => /denort/.test(line)) ?? "Setting up base binary failed";
    return `deno compile cannot download its runtime here (${cause})`;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const unavailable = await compileUnavailable();
if (unavailable !== null) console.warn(`skipped compiled-binary test: ${unavailable}`);

Deno.test({
  name: "the compiled binary runs a three-node cluster, backs it up and prints its commit",
  ignore: unavailable !== null,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "edgeraft-compiled-" });
    try {
      const build = await runCommand([
        Deno.execPath(),
        "run",
        "--quiet",
        "--allow-read",
        "--allow-write",
        "--allow-run",
        `${ROOT}/scripts/compile.ts`,
        "--target",
        TARGET,
        "--out-dir",
        `${tmp}/dist`,
      ], { timeoutMs: 300_000, inheritEnv: true });
      assertSuccess(build, "deno task compile");
      const name = `edgeraft-${TARGET}`;
      const sums = await Deno.readTextFile(`${tmp}/dist/SHA256SUMS`);
      assert.match(sums, new RegExp(`^[0-9a-f]{64}  ${name}$`, "m"));

      // The binary alone in an empty folder, with an empty Deno cache.
      const run = `${tmp}/run`;
      await Deno.mkdir(`${run}/cluster`, { recursive: true });
      await Deno.mkdir(`${tmp}/deno-dir`);
      await Deno.copyFile(`${tmp}/dist/${name}`, `${run}/edgeraft`);
      await Deno.chmod(`${run}/edgeraft`, 0o755);
      const env = baseEnv({ DENO_DIR: `${tmp}/deno-dir` });

      const version = await runCommand([`${run}/edgeraft`, "version"], { cwd: run, env });
      assertSuccess(version, "edgeraft version");
      const commit = await gitCommit(ROOT) ?? "unknown";
      assert.equal(version.stdout, `edgeraft ${RELEASE} (commit ${commit})\n`);

      await threeNodeScenario([`${run}/edgeraft`], `${run}/cluster`, env);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
