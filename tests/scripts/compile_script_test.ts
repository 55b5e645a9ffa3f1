/**
 * scripts/compile.ts as a command: a bad `--commit` is one line and exit 2 (no stack trace), and
 * the build works from a checkout whose path holds a space and a `%` (a file URL's pathname
 * would keep them percent-encoded). Builds the bundle, which needs no runtime download.
 *
 * @module
 */

import assert from "node:assert/strict";
import { RELEASE } from "../../src/version.ts";
import { assertSuccess, bundleCommand, ROOT, runCommand } from "./release_processes.ts";

/** `deno run` of compile.ts at `script` with the permissions of `deno task compile`. */
function compile(script: string, args: string[]) {
  return runCommand([
    Deno.execPath(),
    "run",
    "--quiet",
    "--allow-read",
    "--allow-write",
    "--allow-run",
    script,
    ...args,
  ], { timeoutMs: 120_000, inheritEnv: true });
}

Deno.test("compile.ts refuses a bad --commit in one line, before building anything", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "edgeraft-compile-args-" });
  try {
    for (const commit of ['bad"hash', "ABCDEF1", "abc"]) {
      const result = await compile(`${ROOT}/scripts/compile.ts`, [
        "--bundle",
        "--commit",
        commit,
        "--out-dir",
        `${tmp}/out`,
      ]);
      assert.equal(result.code, 2, result.stderr);
      assert.equal(
        result.stderr,
        `compile: --commit ${
          JSON.stringify(commit)
        }: expected a short git hash (7-40 lowercase hex digits, optionally -dirty)\n`,
      );
      await assert.rejects(Deno.stat(`${tmp}/out`), Deno.errors.NotFound);
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("compile.ts builds from a checkout whose path holds a space and a %", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "edgeraft-compile-path-" });
  try {
    const checkout = `${tmp}/my checkout 100%20`;
    await Deno.mkdir(checkout);
    for (const part of ["main.ts", "deno.json", "deno.lock", "src", "scripts"]) {
      assertSuccess(
        await runCommand(["cp", "-R", `${ROOT}/${part}`, `${checkout}/${part}`]),
        `copying ${part}`,
      );
    }
    const build = await compile(`${checkout}/scripts/compile.ts`, [
      "--bundle",
      "--commit",
      "abcdef1",
      "--out-dir",
      `${tmp}/out dir`,
    ]);
    assertSuccess(build, "compile.ts --bundle");
    assert.equal(build.stdout, `${tmp}/out dir/edgeraft.js\n`);
    assert.match(
      await Deno.readTextFile(`${tmp}/out dir/SHA256SUMS`),
      /^[0-9a-f]{64} {2}edgeraft\.js\n$/,
    );
    const version = await runCommand([...bundleCommand(`${tmp}/out dir/edgeraft.js`), "version"]);
    assertSuccess(version, "edgeraft version");
    assert.equal(version.stdout, `edgeraft ${RELEASE} (commit abcdef1)\n`);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
