/**
 * `deno task compile`: builds the release executables `dist/edgeraft-<target>` for x86_64 and
 * aarch64 Linux with `deno compile`, the permissions of scripts/build_info.ts baked in, and the
 * version and git commit embedded so `edgeraft version` prints them.
 *
 * How the commit gets in without touching the work tree: the sources the binary needs
 * (main.ts, src/, deno.json, deno.lock) are copied to a temporary staging directory, the copy of
 * src/version.ts gets the commit (`stampVersionSource`), and `deno compile` runs on the copy.
 * The staging directory is removed afterwards, also on failure.
 *
 * Usage:
 *   deno task compile [--target TARGET]... [--out-dir DIR] [--commit HASH] [--bundle]
 *
 * - `--target`: build only this target (repeatable); default: every target of TARGETS.
 * - `--out-dir`: where the files go (default `dist/`); a `SHA256SUMS` is written next to them.
 * - `--commit`: stamp this instead of asking git (builds from a source tarball).
 * - `--bundle`: instead of compiling, write the stamped sources as one JavaScript file
 *   `edgeraft.js` with `deno bundle` (runs with `deno run` plus the same permission flags). This
 *   needs no Deno runtime download, so it works where `deno compile` cannot (the tests use it).
 *
 * `deno compile` needs the `denort` runtime for each target: on first use it downloads
 * `https://dl.deno.land/release/v<deno version>/denort-<target>.zip` into `$DENO_DIR/dl/`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import {
  COMMIT_PATTERN,
  denoJsonVersion,
  gitCommit,
  PERMISSION_FLAGS,
  stampVersionSource,
  type Target,
  TARGETS,
} from "./build_info.ts";

/** The repository (decoded: a checkout path may hold spaces or `%`). */
const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");

/** Copies a directory tree (regular files and directories only). */
async function copyTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    if (entry.isDirectory) await copyTree(`${from}/${entry.name}`, `${to}/${entry.name}`);
    else if (entry.isFile) await Deno.copyFile(`${from}/${entry.name}`, `${to}/${entry.name}`);
  }
}

/** Copies what the binary is built from into a new temporary directory, stamped. */
async function stage(commit: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "edgeraft-build-" });
  try {
    for (const file of ["main.ts", "deno.json", "deno.lock"]) {
      await Deno.copyFile(`${ROOT}/${file}`, `${dir}/${file}`);
    }
    await copyTree(`${ROOT}/src`, `${dir}/src`);
    const versionFile = `${dir}/src/version.ts`;
    await Deno.writeTextFile(
      versionFile,
      stampVersionSource(await Deno.readTextFile(versionFile), commit),
    );
    return dir;
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path);
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

/**
 * Writes `outputs`' SHA-256 into `dir/SHA256SUMS` (`sha256sum -c` format), keeping the lines of
 * files built earlier that still exist (building one target keeps the other's line).
 */
async function updateSums(dir: string, outputs: string[]): Promise<void> {
  const sums = new Map<string, string>();
  try {
    for (const line of (await Deno.readTextFile(`${dir}/SHA256SUMS`)).split("\n")) {
      const match = /^([0-9a-f]{64}) {2}(.+)$/.exec(line);
      if (match === null) continue;
      const exists = await Deno.stat(`${dir}/${match[2]}`).then(() => true, () => false);
      if (exists) sums.set(match[2]!, match[1]!);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  for (const output of outputs) {
    sums.set(output.slice(output.lastIndexOf("/") + 1), await sha256File(output));
  }
  const lines = [...sums].sort(([a], [b]) => a < b ? -1 : 1).map(([f, h]) => `${h}  ${f}`);
  await Deno.writeTextFile(`${dir}/SHA256SUMS`, `${lines.join("\n")}\n`);
}

async function deno(args: string[], cwd: string): Promise<void> {
  const { code } = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code !== 0) throw new Error(`deno ${args[0]} failed (exit ${code})`);
}

async function main(args: string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args,
      options: {
        target: { type: "string", multiple: true },
        "out-dir": { type: "string", default: `${ROOT}/dist` },
        commit: { type: "string" },
        bundle: { type: "boolean", default: false },
      },
      allowPositionals: false,
    }).values;
  } catch (error) {
    console.error(`compile: ${(error as Error).message}`);
    return 2;
  }
  if (
    values.commit !== undefined && values.commit !== "unknown" &&
    !COMMIT_PATTERN.test(values.commit)
  ) {
    console.error(
      `compile: --commit ${
        JSON.stringify(values.commit)
      }: expected a short git hash (7-40 lowercase hex digits, optionally -dirty)`,
    );
    return 2;
  }
  const targets = (values.target ?? [...TARGETS]) as Target[];
  for (const target of targets) {
    if (!(TARGETS as readonly string[]).includes(target)) {
      console.error(`compile: unknown target ${target}; one of ${TARGETS.join(", ")}`);
      return 2;
    }
  }
  const outDir = values["out-dir"]!.startsWith("/")
    ? values["out-dir"]!
    : `${Deno.cwd()}/${values["out-dir"]}`;

  // The release comes from deno.json; src/version.ts must agree (it is also what `deno run`
  // prints), so a version bump cannot miss one of them.
  const release = await denoJsonVersion(`${ROOT}/deno.json`);
  const versionText = await Deno.readTextFile(`${ROOT}/src/version.ts`);
  if (!versionText.includes(`export const RELEASE = ${JSON.stringify(release)};`)) {
    console.error(`compile: src/version.ts RELEASE differs from deno.json "version" ${release}`);
    return 1;
  }
  let commit = values.commit ?? await gitCommit(ROOT);
  if (commit === null) {
    console.error("compile: warning: not a git work tree; the commit is stamped as unknown");
    commit = "unknown";
  }

  let dir: string | null = null;
  try {
    dir = await stage(commit);
    await Deno.mkdir(outDir, { recursive: true });
    const outputs: string[] = [];
    if (values.bundle) {
      const output = `${outDir}/edgeraft.js`;
      await deno(["bundle", "--quiet", "-o", output, `${dir}/main.ts`], dir);
      outputs.push(output);
    } else {
      for (const target of targets) {
        const output = `${outDir}/edgeraft-${target}`;
        console.error(`compile: edgeraft ${release} (commit ${commit}) for ${target}`);
        await deno(
          ["compile", ...PERMISSION_FLAGS, "--target", target, "-o", output, "main.ts"],
          dir,
        );
        outputs.push(output);
      }
    }
    await updateSums(outDir, outputs);
    for (const output of outputs) console.log(output);
    return 0;
  } catch (error) {
    console.error(`compile: ${(error as Error).message}`);
    return 1;
  } finally {
    if (dir !== null) await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  // Anything unexpected (an unreadable deno.json, ...) is one line too, never a stack trace.
  Deno.exit(
    await main(Deno.args).catch((error) => {
      console.error(`compile: ${error instanceof Error ? error.message : String(error)}`);
      return 1;
    }),
  );
}
