import assert from "node:assert/strict";
import { COMMIT, RELEASE, VERSION } from "../../src/version.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

async function runCli(
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

Deno.test("edgeraft version prints the release version and exits 0", async () => {
  const result = await runCli("version");
  assert.equal(result.code, 0);
  assert.equal(result.stdout.trim(), `edgeraft ${VERSION}`);
});

Deno.test("run from source, the version names the release and an unknown commit", async () => {
  // Builds stamp the commit into a staged copy (scripts/compile.ts); the source stays unstamped.
  assert.equal(COMMIT, "unknown");
  assert.equal(VERSION, `${RELEASE} (commit unknown)`);
  const result = await runCli("--version");
  assert.equal(result.stdout, `edgeraft ${RELEASE} (commit unknown)\n`);
});

Deno.test("the release in src/version.ts is deno.json's version", async () => {
  const denoJson = JSON.parse(
    await Deno.readTextFile(new URL("../../deno.json", import.meta.url)),
  ) as { version: string };
  assert.equal(RELEASE, denoJson.version);
  assert.match(RELEASE, /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/);
});

Deno.test("an unknown command exits non-zero with a one-line message", async () => {
  const result = await runCli("frobnicate");
  assert.notEqual(result.code, 0);
  assert.equal(result.stdout, "");
  assert.match(result.stderr.trim(), /^edgeraft: unknown command "frobnicate"/);
  assert.equal(result.stderr.trim().split("\n").length, 1);
});
