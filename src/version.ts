/**
 * The release and the git commit of this build: printed by `edgeraft version`, reported as
 * `version` in `GET /v1/status` and written into backup manifests (`edgeraft_version`).
 *
 * `RELEASE` equals deno.json's `"version"` (tests/cli/version_test.ts checks it). `COMMIT` is
 * `"unknown"` in the source tree: `deno task compile` (scripts/compile.ts) compiles a staged copy
 * of the sources in which the `COMMIT` line below is rewritten to the short hash of `HEAD` (with
 * `-dirty` when tracked files had uncommitted changes). The commit is therefore a plain string
 * constant inside the binary; nothing is read from disk, git or the environment at run time, and
 * the work tree is never modified by a build. Keep the `COMMIT` line exactly in this form: the
 * build refuses to stamp a file whose line it cannot find.
 */

/** The release version (semver), as in deno.json. */
export const RELEASE = "0.1.0";
/** The short git commit the binary was built from, or "unknown" when run from source. */
export const COMMIT = "unknown";
/** What `edgeraft version` prints after "edgeraft ": e.g. `0.1.0 (commit 1a2b3c4d5e6f)`. */
export const VERSION = `${RELEASE} (commit ${COMMIT})`;
