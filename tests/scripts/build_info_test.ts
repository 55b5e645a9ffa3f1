import assert from "node:assert/strict";
import {
  COMMIT_PATTERN,
  PERMISSION_FLAGS,
  stampVersionSource,
  TARGETS,
} from "../../scripts/build_info.ts";

const VERSION_SOURCE = new URL("../../src/version.ts", import.meta.url);

Deno.test("the build stamps the commit into src/version.ts's COMMIT line and nothing else", async () => {
  const source = await Deno.readTextFile(VERSION_SOURCE);
  const stamped = stampVersionSource(source, "1a2b3c4d5e6f-dirty");
  const changed = stamped.split("\n").filter((line, i) => line !== source.split("\n")[i]);
  assert.deepEqual(changed, ['export const COMMIT = "1a2b3c4d5e6f-dirty";']);
  assert.equal(stampVersionSource(source, "unknown"), source);
});

Deno.test("stamping refuses a file without the COMMIT line, twice stamped, or a bad commit", async () => {
  const source = await Deno.readTextFile(VERSION_SOURCE);
  assert.throws(() => stampVersionSource("export const VERSION = 1;\n", "abcdef1"), /found 0/);
  assert.throws(
    () => stampVersionSource(stampVersionSource(source, "abcdef1"), "abcdef2"),
    /found 0/,
  );
  assert.throws(() => stampVersionSource(`${source}${source}`, "abcdef1"), /found 2/);
  assert.throws(() => stampVersionSource(source, 'x"; evil()'), /expected a short git hash/);
  assert.match("abcdef1", COMMIT_PATTERN);
  assert.doesNotMatch("ABCDEF1", COMMIT_PATTERN);
});

Deno.test("the release binaries are Linux x86_64 and aarch64 with narrow permissions, never -A", () => {
  assert.deepEqual([...TARGETS], ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"]);
  const flags: readonly string[] = PERMISSION_FLAGS;
  assert.ok(!flags.includes("-A") && !flags.includes("--allow-all"));
  for (const flag of ["--allow-run", "--allow-ffi", "--allow-sys", "--allow-import"]) {
    assert.ok(!flags.some((f) => f.startsWith(flag)), flag);
  }
});

Deno.test("deno task compile builds every target with the release permissions", async () => {
  const { tasks } = JSON.parse(
    await Deno.readTextFile(new URL("../../deno.json", import.meta.url)),
  ) as { tasks: Record<string, { command: string }> };
  assert.match(tasks.compile!.command, /scripts\/compile\.ts$/);
  assert.match(tasks.bundle!.command, /scripts\/compile\.ts --bundle$/);
  const script = await Deno.readTextFile(new URL("../../scripts/compile.ts", import.meta.url));
  assert.match(script, /"compile", \.\.\.PERMISSION_FLAGS, "--target", target/);
});
