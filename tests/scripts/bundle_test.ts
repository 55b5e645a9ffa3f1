/**
 * Proves edgeraft is compile-safe where `deno compile` cannot run (its runtime download is
 * unreachable): the entry point is bundled into one file (`deno task bundle`, the release build's
 * stamped sources) and that file alone, copied into an empty folder, is run with an empty Deno
 * cache, no config file, `--cached-only --no-remote --no-npm` (nothing may be fetched or
 * resolved at run time) and exactly the permissions baked into the binary (no -A). A read of a
 * file relative to the source, a dynamic import of a local path or a missing permission would
 * fail here as it would in the binary.
 *
 * @module
 */

import assert from "node:assert/strict";
import { gitCommit } from "../../scripts/build_info.ts";
import { RELEASE } from "../../src/version.ts";
import {
  assertSuccess,
  baseEnv,
  buildBundle,
  bundleCommand,
  freePort,
  http,
  ROOT,
  runCommand,
  ServeProcess,
  threeNodeScenario,
  waitHealthy,
} from "./release_processes.ts";

async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const name = `${prefix}${entry.name}`;
    if (entry.isDirectory) out.push(...await listFiles(`${dir}/${entry.name}`, `${name}/`));
    else out.push(name);
  }
  return out;
}

Deno.test("the bundled entry point runs alone from an empty folder with an empty Deno cache", async (t) => {
  const tmp = await Deno.makeTempDir({ prefix: "edgeraft-bundle-" });
  try {
    const built = await buildBundle(`${tmp}/build`);
    const run = `${tmp}/run`;
    const denoDir = `${tmp}/deno-dir`;
    await Deno.mkdir(run);
    await Deno.mkdir(denoDir);
    await Deno.copyFile(built, `${run}/edgeraft.js`);
    const edgeraft = [
      ...bundleCommand(`${run}/edgeraft.js`),
    ];
    // Nothing may come from anywhere but the file itself.
    edgeraft.splice(edgeraft.length - 1, 0, "--cached-only", "--no-remote", "--no-npm");
    const env = baseEnv({ DENO_DIR: denoDir });

    await t.step(
      "edgeraft version prints the release and the commit it was built from",
      async () => {
        const result = await runCommand([...edgeraft, "version"], { cwd: run, env });
        assertSuccess(result, "edgeraft version");
        const commit = await gitCommit(ROOT) ?? "unknown";
        assert.equal(result.stdout, `edgeraft ${RELEASE} (commit ${commit})\n`);
      },
    );

    await t.step(
      "one node serves /healthz, a write and a read, and exits 0 on SIGTERM",
      async () => {
        const port = freePort();
        const url = `http://127.0.0.1:${port}`;
        const node = new ServeProcess("n1", [
          ...edgeraft,
          "serve",
          "--id",
          "n1",
          "--data-dir",
          "data",
          "--listen",
          `127.0.0.1:${port}`,
          "--peers",
          `n1=${url}`,
          "--segment-bytes",
          String(2 * 1024 * 1024),
        ], { cwd: run, env });
        try {
          await waitHealthy(node, url);
          assert.deepEqual(await http(`${url}/healthz`), { status: 200, text: '{"ok":true}' });
          let put = await http(`${url}/v1/kv/greeting`, { method: "PUT", body: "hello" });
          for (let i = 0; put.status === 503 && i < 50; i++) {
            // no leader yet: a single node elects itself within an election timeout
            await new Promise((resolve) => setTimeout(resolve, 100));
            put = await http(`${url}/v1/kv/greeting`, { method: "PUT", body: "hello" });
          }
          assert.equal(put.status, 200, put.text);
          assert.deepEqual(await http(`${url}/v1/kv/greeting`), { status: 200, text: "hello" });
        } finally {
          const exit = await node.stop();
          assert.equal(exit.code, 0, node.output);
        }
        const files = await listFiles(run);
        assert.ok(files.includes("edgeraft.js"));
        assert.ok(
          files.every((f) => f === "edgeraft.js" || f.startsWith("data/")),
          files.join(" "),
        );
      },
    );

    await t.step(
      "three nodes, a write, status, backup and verify, all from the bundle",
      async () => {
        const dir = `${run}/cluster`;
        await Deno.mkdir(dir);
        await threeNodeScenario(edgeraft, dir, env);
      },
    );

    await t.step("nothing was downloaded into the empty Deno cache", async () => {
      const fetched = (await listFiles(denoDir)).filter((f) =>
        f.startsWith("remote/") || f.startsWith("npm/") || f.startsWith("jsr/")
      );
      assert.deepEqual(fetched, []);
    });
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

/** Every TypeScript file of the shipped program: main.ts and everything under src/. */
async function shippedSources(): Promise<string[]> {
  const files = ["main.ts"];
  for (const file of await listFiles(`${ROOT}/src`)) {
    if (file.endsWith(".ts")) files.push(`src/${file}`);
  }
  return files.sort();
}

Deno.test("the shipped sources neither import dynamically nor locate files next to themselves", async () => {
  // In a compiled binary the sources live in an embedded file system: `import.meta.url`-relative
  // reads and dynamic local imports only work with --include. Keep them out altogether.
  const problems: string[] = [];
  for (const file of await shippedSources()) {
    const lines = (await Deno.readTextFile(`${ROOT}/${file}`)).split("\n");
    for (const [i, line] of lines.entries()) {
      const code = line.replace(/\/\/.*$/, "");
      if (/\bimport\s*\(/.test(code)) problems.push(`${file}:${i + 1}: dynamic import`);
      if (/import\.meta\.(url|dirname|filename|resolve)\b/.test(code)) {
        problems.push(`${file}:${i + 1}: file location of the source (${code.trim()})`);
      }
    }
  }
  assert.deepEqual(problems, []);
});
