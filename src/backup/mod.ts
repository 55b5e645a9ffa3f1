/**
 * Backup archives (docs/BACKUP.md): writing, verifying and inspecting them, and the offline
 * `edgeraft verify` / `edgeraft inspect` commands. Re-exports only.
 *
 * @module
 */

export * from "./archive_input.ts";
export * from "./archive_state.ts";
export * from "./archive_verifier.ts";
export * from "./archive_writer.ts";
export * from "./cli.ts";
export * from "./inspect.ts";
export * from "./manifest.ts";
export * from "./sha256sums.ts";
export * from "./tar_reader.ts";
export * from "./tar_writer.ts";
export { GzipError } from "./gzip.ts";
