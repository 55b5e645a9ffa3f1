import assert from "node:assert/strict";
import { VERSION } from "../../src/version.ts";

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

Deno.test("an unknown command exits non-zero with a one-line message", async () => {
  const result = await runCli("frobnicate");
  assert.notEqual(result.code, 0);
  assert.equal(result.stdout, "");
  assert.match(result.stderr.trim(), /^edgeraft: unknown command "frobnicate"/);
  assert.equal(result.stderr.trim().split("\n").length, 1);
});
