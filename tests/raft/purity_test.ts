/**
 * Keeps the consensus core pure (STYLE.md items 1 and 18): no I/O, clock, timers, ambient
 * randomness or asynchrony in src/raft/. Comments and strings are stripped first, so doc
 * comments may name what they avoid.
 */

import assert from "node:assert/strict";

const forbidden: Array<[RegExp, string]> = [
  [/\bDeno\s*\./, "Deno.*"],
  [/\bfetch\s*\(/, "fetch"],
  [/\bsetTimeout\b|\bsetInterval\b|\bsetImmediate\b|\bqueueMicrotask\b/, "timers"],
  [/\bDate\b/, "Date"],
  [/\bperformance\b/, "performance"],
  [/\bMath\s*\.\s*random\b/, "Math.random"],
  [/\bcrypto\b/, "crypto"],
  [/["']node:|["']npm:|["']jsr:|["']https?:/, "external modules"],
  [/\basync\b|\bawait\b|\bPromise\b/, "async code"],
  [/\bconst\s+enum\b/, "const enum"],
];

/** Removes comments and the contents of string literals (keeping import specifiers' quotes). */
function stripComments(source: string): string {
  let out = "";
  let i = 0;
  while (i < source.length) {
    const two = source.slice(i, i + 2);
    if (two === "//") {
      while (i < source.length && source[i] !== "\n") i++;
    } else if (two === "/*") {
      const end = source.indexOf("*/", i + 2);
      i = end === -1 ? source.length : end + 2;
    } else if (source[i] === "`") {
      // Template literals: keep them (they could hide nothing importable), skip to the end.
      const end = source.indexOf("`", i + 1);
      out += source.slice(i, end + 1);
      i = end + 1;
    } else {
      out += source[i];
      i++;
    }
  }
  return out;
}

async function coreSources(): Promise<Map<string, string>> {
  const sources = new Map<string, string>();
  const dir = new URL("../../src/raft/", import.meta.url);
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && entry.name.endsWith(".ts")) {
      sources.set(entry.name, await Deno.readTextFile(new URL(entry.name, dir)));
    }
  }
  return sources;
}

Deno.test("src/raft uses no I/O, clock, timers, randomness or async code", async () => {
  const sources = await coreSources();
  assert.ok(sources.has("raft.ts") && sources.size >= 8, "found the core's sources");
  const violations: string[] = [];
  for (const [name, source] of sources) {
    const code = stripComments(source);
    for (const [pattern, label] of forbidden) {
      if (pattern.test(code)) violations.push(`${name}: ${label}`);
    }
  }
  assert.deepEqual(violations, []);
});

Deno.test("src/raft imports only its own files and src/util", async () => {
  for (const [name, source] of await coreSources()) {
    for (const match of source.matchAll(/\bfrom\s+["']([^"']+)["']/g)) {
      const specifier = match[1] ?? "";
      assert.ok(
        /^\.\/[a-z_]+\.ts$/.test(specifier) || /^\.\.\/util\/[a-z_]+\.ts$/.test(specifier),
        `${name} imports ${specifier}`,
      );
    }
  }
});

Deno.test("the purity check catches forbidden code and ignores comments", () => {
  const flagged = (code: string) =>
    forbidden.filter(([pattern]) => pattern.test(stripComments(code))).map(([, label]) => label);
  assert.deepEqual(flagged("const t = Date.now();"), ["Date"]);
  assert.deepEqual(flagged("x = Math.random();"), ["Math.random"]);
  assert.deepEqual(flagged("async function f() { await g(); }"), ["async code"]);
  assert.deepEqual(flagged('import { x } from "node:fs";'), ["external modules"]);
  assert.deepEqual(
    flagged("/** never uses Date or Deno.open */\n// no setTimeout\nconst a = 1;"),
    [],
  );
});
