/**
 * The compiled binaries themselves: `deno task compile` for every release target (x86_64 and,
 * cross-compiled, aarch64), each checked by its ELF header and `sha256sum -c SHA256SUMS`; then
 * three nodes started from this machine's binary alone (no deno, no flags: the permissions are
 * baked in), a write, a backup and its verification, and `edgeraft version` with the embedded
 * commit.
 *
 * `deno compile` needs its runtime (`denort-<target>.zip`), which only dl.deno.land serves (then
 * cached in `$DENO_DIR/dl/`). Where that download fails, the test is reported as ignored (never
 * as passed) and one line says why; tests/scripts/bundle_test.ts proves compile-safety without
 * the runtime, and tests/scripts/elf_header_test.ts the header check.
 *
 * @module
 */

import assert from "node:assert/strict";
import { gitCommit, TARGETS } from "../../scripts/build_info.ts";
import { RELEASE } from "../../src/version.ts";
import { ELF_MACHINE, readElfHeader } from "./elf_header.ts";
import {
  assertSuccess,
  baseEnv,
  ROOT,
  runCommand,
  threeNodeScenario,
} from "./release_processes.ts";

const TARGET = Deno.build.target;

/** How long dl.deno.land gets to answer before the test is skipped. */
const REACH_TIMEOUT_MS = 5_000;

/** The Deno cache this process's deno uses (where `deno compile` keeps the runtimes). */
async function denoDir(): Promise<string> {
  const info = await runCommand([Deno.execPath(), "info", "--json"], { inheritEnv: true });
  assertSuccess(info, "deno info --json");
  return (JSON.parse(info.stdout) as { denoDir: string }).denoDir;
}

/**
 * Why `deno compile` cannot fetch the runtime of a target whose zip is not cached, or null when
 * every runtime is cached or dl.deno.land answers. A quick request with a deadline, so a host
 * that drops the connection (instead of failing DNS) costs seconds, not the compile timeout.
 */
async function runtimeUnreachable(): Promise<string | null> {
  const dir = await denoDir();
  for (const target of TARGETS) {
    const path = `release/v${Deno.version.deno}/denort-${target}.zip`;
    const cached = await Deno.stat(`${dir}/dl/${path}`).then(() => true, () => false);
    if (cached) continue;
    const url = `https://dl.deno.land/${path}`;
    try {
      const response = await fetch(url, {
        method: "HEAD",
        signal: AbortSignal.timeout(REACH_TIMEOUT_MS),
      });
      await response.body?.cancel();
      if (!response.ok) return `${url}: HTTP ${response.status}`;
    } catch (error) {
      // fetch's own message is "fetch failed"; the reason (DNS, connect, TLS) is its cause.
      const message = error instanceof DOMException && error.name === "TimeoutError"
        ? `no answer within ${REACH_TIMEOUT_MS / 1000} s`
        : error instanceof Error && error.cause instanceof Error
        ? error.cause.message
        : String(error);
      return message.includes(url) ? message : `${url}: ${message}`;
    }
  }
  return null;
}

/**
 * Why no binary can be compiled here, or null when it can (or when compile fails for another
 * reason: then the test runs and shows that failure). Compiles a one-line program as the probe.
 */
async function compileUnavailable(): Promise<string | null> {
  if (!(TARGETS as readonly string[]).includes(TARGET)) {
    return `no release target for this machine (${TARGET}; targets: ${TARGETS.join(", ")})`;
  }
  const unreachable = await runtimeUnreachable();
  if (unreachable !== null) return `deno compile cannot download its runtime here (${unreachable})`;
  // The runtime is cached or reachable: the probe may download it, so it gets a long deadline.
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

// One line, whatever the error text held.
const unavailable = (await compileUnavailable())?.replace(/\s+/g, " ") ?? null;
if (unavailable !== null) console.warn(`skipped compiled-binary test: ${unavailable}`);

Deno.test({
  name: "the compiled binaries (both targets, checked ELF and sums) run a cluster and back it up",
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
        "--out-dir",
        `${tmp}/dist`,
      ], { timeoutMs: 600_000, inheritEnv: true });
      assertSuccess(build, "deno task compile");

      // Every target, the cross-compiled one included: its CPU in the ELF header, and a
      // SHA256SUMS that lists exactly the binaries and that sha256sum itself accepts.
      const names = TARGETS.map((target) => `edgeraft-${target}`).sort();
      for (const target of TARGETS) {
        assert.deepEqual(await readElfHeader(`${tmp}/dist/edgeraft-${target}`), {
          is64Bit: true,
          littleEndian: true,
          machine: ELF_MACHINE[target],
        }, target);
      }
      const sums = await Deno.readTextFile(`${tmp}/dist/SHA256SUMS`);
      assert.deepEqual(sums.trimEnd().split("\n").map((line) => line.slice(66)), names);
      const check = await runCommand(["sha256sum", "-c", "SHA256SUMS"], { cwd: `${tmp}/dist` });
      assertSuccess(check, "sha256sum -c SHA256SUMS");
      assert.equal(check.stdout, names.map((name) => `${name}: OK\n`).join(""));

      const name = `edgeraft-${TARGET}`;

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
