/**
 * scripts/ensure_deno.sh on a machine with neither deno nor node nor npm (a fresh Debian with
 * curl): it reads the registry's answer without node, installs the tarball only when its sha512
 * matches dist.integrity, and says so in one line otherwise. The registry is a local stand-in
 * on 127.0.0.1 (`npm_config_registry`, as npm itself reads it) serving a fake `package/deno`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { assertSuccess, ROOT, runCommand } from "./release_processes.ts";

const SCRIPT = `${ROOT}/scripts/ensure_deno.sh`;
const VERSION = "2.9.6";
const PACKAGE = Deno.build.arch === "x86_64" ? "linux-x64-glibc" : "linux-arm64-glibc";

/** What the script needs, and nothing else: no deno, node, npm or python on this PATH. */
const TOOLS = [
  "bash",
  "base64",
  "cat",
  "chmod",
  "curl",
  "dirname",
  "grep",
  "gzip",
  "head",
  "mkdir",
  "openssl",
  "rm",
  "sed",
  "tar",
  "uname",
];

/** A directory of links to {@linkcode TOOLS}, found in /usr/bin or /bin. */
async function toolDir(dir: string): Promise<string> {
  await Deno.mkdir(dir);
  for (const tool of TOOLS) {
    const found = [`/usr/bin/${tool}`, `/bin/${tool}`].find((path) => {
      try {
        return Deno.statSync(path).isFile;
      } catch {
        return false;
      }
    });
    assert.ok(found, `${tool} is installed`);
    await Deno.symlink(found, `${dir}/${tool}`);
  }
  return dir;
}

/** A registry tarball whose `package/deno` prints a version line. */
async function fakeTarball(dir: string): Promise<Uint8Array<ArrayBuffer>> {
  await Deno.mkdir(`${dir}/package`, { recursive: true });
  await Deno.writeTextFile(
    `${dir}/package/deno`,
    `#!/bin/sh\necho "deno ${VERSION} (fake, for ensure_deno_test)"\n`,
  );
  assertSuccess(
    await runCommand(["tar", "-czf", `${dir}/deno.tgz`, "-C", dir, "package"]),
    "tar",
  );
  return await Deno.readFile(`${dir}/deno.tgz`);
}

Deno.test("ensure_deno.sh installs Deno from the registry without node, and checks its sha512", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "edgeraft-ensure-deno-" });
  const tarball = await fakeTarball(`${tmp}/pkg`);
  const integrity = `sha512-${createHash("sha512").update(tarball).digest("base64")}`;
  // What the stand-in registry serves: set per case.
  let served: { meta: string; tarball: Uint8Array<ArrayBuffer> } = { meta: "", tarball };
  const requests: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const { pathname } = new URL(request.url);
    requests.push(pathname);
    if (pathname === `/@deno%2f${PACKAGE}/${VERSION}`) return new Response(served.meta);
    if (pathname === "/deno.tgz") return new Response(served.tarball);
    return new Response("not found", { status: 404 });
  });
  const registry = `http://127.0.0.1:${server.addr.port}`;
  const meta = (fields: Record<string, unknown>) =>
    JSON.stringify(
      {
        name: `@deno/${PACKAGE}`,
        version: VERSION,
        repository: { type: "git", url: "git+https://example.invalid/deno.git" },
        dist: fields,
      },
      null,
      1,
    ); // spaced out over lines, as some registries answer
  try {
    const path = await toolDir(`${tmp}/bin`);
    const run = (tools: string) =>
      runCommand(["bash", SCRIPT], {
        env: { PATH: path, HOME: tmp, EDGERAFT_TOOLS_DIR: tools, npm_config_registry: registry },
      });

    // A tampered tarball: refused, nothing installed.
    served = {
      meta: meta({ integrity, tarball: `${registry}/deno.tgz` }),
      tarball: new Uint8Array([...tarball, 0]),
    };
    const tampered = await run(`${tmp}/tools-tampered`);
    assert.equal(tampered.code, 1, tampered.stderr);
    assert.equal(
      tampered.stderr,
      `ensure_deno: integrity mismatch for ${registry}/deno.tgz\n`,
    );
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(`${tmp}/tools-tampered`))).map((e) => e.name),
      [`deno-${VERSION}`],
    );
    assert.deepEqual(
      await Array.fromAsync(Deno.readDir(`${tmp}/tools-tampered/deno-${VERSION}`)),
      [],
    );

    // An answer without the dist fields: one clear line.
    served = { meta: meta({ shasum: "0" }), tarball };
    const broken = await run(`${tmp}/tools-broken`);
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /^ensure_deno: no dist\.tarball and sha512 dist\.integrity in /);
    assert.equal(broken.stderr.trimEnd().split("\n").length, 1);

    // The real thing: installed, printed, runnable; a second run downloads nothing.
    served = { meta: meta({ integrity, tarball: `${registry}/deno.tgz` }), tarball };
    const good = await run(`${tmp}/tools`);
    assertSuccess(good, "ensure_deno.sh");
    const bin = `${tmp}/tools/deno-${VERSION}/deno`;
    assert.equal(good.stdout, `${bin}\n`);
    const version = await runCommand([bin, "--version"]);
    assert.equal(version.stdout, `deno ${VERSION} (fake, for ensure_deno_test)\n`);
    const before = requests.length;
    const again = await run(`${tmp}/tools`);
    assertSuccess(again, "ensure_deno.sh (again)");
    assert.equal(again.stdout, `${bin}\n`);
    assert.equal(requests.length, before);
  } finally {
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
  }
});
