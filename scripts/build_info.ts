/**
 * What a release build of edgeraft bakes in: the targets, the permissions the binary runs
 * with, and the version stamp. Shared by the build (scripts/compile.ts) and the tests that prove
 * the flags and the stamp (tests/scripts/), so both use the same values.
 *
 * @module
 */

/** `deno compile --target` values of the release binaries (`dist/edgeraft-<target>`). */
export const TARGETS = ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"] as const;

/** One release target. */
export type Target = typeof TARGETS[number];

/**
 * The permissions baked into the binary (and given to the bundle in tests): no `-A`.
 *
 * - `--allow-net`: `serve` listens on the configured address and calls the peers; `backup`,
 *   `status` call a node. Both come from configuration, so no host list can be fixed at build
 *   time.
 * - `--allow-read`, `--allow-write` (unscoped): one binary serves every command, and the paths
 *   are the operator's: `serve` uses any `--data-dir` and reads `--config`, token, secret and
 *   TLS files wherever they are; `backup -o FILE` writes anywhere (the working directory by
 *   default); `verify` and `inspect` read an archive anywhere; `restore` builds a data directory
 *   anywhere. Permissions are fixed per binary, not per command, so a path list would have to be
 *   the union of all of those, i.e. everything. Under systemd the unit confines the node instead
 *   (`ProtectSystem=strict`, `ProtectHome=yes`: writable is only its state directory).
 * - `--allow-env` (unscoped): `serve` reads the whole environment (`Deno.env.toObject()` in
 *   src/node/config.ts) to find every `EDGERAFT_*` variable and warn about unknown ones; Deno
 *   checks that call against full env access, so `--allow-env=EDGERAFT_*` would fail it.
 * - `--no-prompt`: a missing permission is an error, never an interactive question.
 *
 * Not granted, because nothing uses them: `--allow-run`, `--allow-sys`, `--allow-ffi`,
 * `--allow-import`.
 */
export const PERMISSION_FLAGS = [
  "--allow-read",
  "--allow-write",
  "--allow-net",
  "--allow-env",
  "--no-prompt",
] as const;

/** The line of src/version.ts that a build rewrites. */
const COMMIT_LINE = /^export const COMMIT = "unknown";$/m;

/** A short commit as stamped: 7-40 hex digits, optionally `-dirty`. */
export const COMMIT_PATTERN = /^[0-9a-f]{7,40}(-dirty)?$/;

/**
 * Returns the text of src/version.ts with `COMMIT` set to `commit`. Throws when the file does
 * not hold the `COMMIT = "unknown"` line exactly once (a build must not ship an unstamped or
 * doubly stamped version silently).
 */
export function stampVersionSource(text: string, commit: string): string {
  if (!COMMIT_PATTERN.test(commit) && commit !== "unknown") {
    throw new Error(`Cannot stamp commit ${JSON.stringify(commit)}: expected a short git hash`);
  }
  const matches = text.match(new RegExp(COMMIT_LINE.source, "gm")) ?? [];
  if (matches.length !== 1) {
    throw new Error(
      `Cannot stamp src/version.ts: expected one line 'export const COMMIT = "unknown";', found ${matches.length}`,
    );
  }
  return text.replace(COMMIT_LINE, `export const COMMIT = ${JSON.stringify(commit)};`);
}

/** Runs git in `dir`; its trimmed stdout, or null when git is missing or fails. */
async function git(dir: string, args: string[]): Promise<string | null> {
  try {
    const output = await new Deno.Command("git", {
      args: ["-C", dir, ...args],
      stdout: "piped",
      stderr: "null",
      stdin: "null",
    }).output();
    return output.success ? new TextDecoder().decode(output.stdout).trim() : null;
  } catch {
    return null;
  }
}

/**
 * The short hash of `HEAD` in the repository at `dir`, with `-dirty` when tracked files differ
 * from it (untracked files do not count), or null outside a git work tree.
 */
export async function gitCommit(dir: string): Promise<string | null> {
  const hash = await git(dir, ["rev-parse", "--short=12", "HEAD"]);
  if (hash === null || !COMMIT_PATTERN.test(hash)) return null;
  const changes = await git(dir, ["status", "--porcelain", "--untracked-files=no"]);
  return changes === null || changes === "" ? hash : `${hash}-dirty`;
}

/** The `"version"` of the deno.json at `path`. */
export async function denoJsonVersion(path: string): Promise<string> {
  const json = JSON.parse(await Deno.readTextFile(path)) as { version?: unknown };
  if (typeof json.version !== "string") throw new Error(`${path} has no "version"`);
  return json.version;
}
