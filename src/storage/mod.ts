/**
 * The storage layer: log segments, hard state, snapshot store, their in-memory twins, the
 * fault-injecting file system and the snapshot policy. See docs/STORAGE.md.
 *
 * @module
 */

export * from "./types.ts";
export * from "./errors.ts";
export * from "./events.ts";
export * from "./config.ts";
export * from "./fs.ts";
export * from "./fault_fs.ts";
export { FileLogStore, type FileLogStoreOptions } from "./file_log_store.ts";
export { MemoryLogStore } from "./memory_log_store.ts";
export { FileHardStateStore } from "./file_hard_state_store.ts";
export { MemoryHardStateStore } from "./memory_hard_state_store.ts";
export { FileSnapshotStore, type FileSnapshotStoreOptions } from "./file_snapshot_store.ts";
export { MemorySnapshotStore } from "./memory_snapshot_store.ts";
export * from "./snapshot_policy.ts";
export * from "./storage.ts";
