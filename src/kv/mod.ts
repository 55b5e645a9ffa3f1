/**
 * The key-value state machine: re-exports for the node driver, the HTTP edge and the backup
 * tools.
 *
 * @module
 */

export * from "./kv_command.ts";
export * from "./kv_key.ts";
export type { OpenRestore, RestoreBegin } from "./kv_restore.ts";
export * from "./kv_state_machine.ts";
export * from "./scan_snapshot.ts";
export {
  SnapshotFormatError,
  type SnapshotFormatErrorReason,
  type SnapshotHeader,
} from "./snapshot_format.ts";
export type { SnapshotSummary } from "./snapshot_decoder.ts";
