/**
 * The storage layer's tunables in one place, validated once with every violation reported
 * (STYLE.md items 13 and 14).
 *
 * @module
 */

import { DEFAULT_SNAPSHOT_POLICY, type SnapshotPolicyConfig } from "./snapshot_policy.ts";

/** Storage configuration; every limit names its unit last. */
export interface StorageConfig extends SnapshotPolicyConfig {
  /** Log segment size before rolling to a new one. */
  readonly segmentBytes: number;
  /** Zero-fill segments when created (faster syncs, no ENOSPC mid-segment). */
  readonly preallocateSegments: boolean;
  /** Upper bound on one log entry's data. */
  readonly entryBytesMax: number;
  /** Snapshots kept (the newest `snapshotsKeep`). */
  readonly snapshotsKeep: number;
  /** Upper bound on one snapshot's data. */
  readonly snapshotBytesMax: number;
  /** Delete whole log segments covered by a new snapshot. */
  readonly deleteLogsAfterSnapshot: boolean;
}

/** Defaults. */
export const DEFAULT_STORAGE_CONFIG: StorageConfig = Object.freeze({
  ...DEFAULT_SNAPSHOT_POLICY,
  segmentBytes: 16 * 1024 * 1024,
  preallocateSegments: true,
  entryBytesMax: 8 * 1024 * 1024,
  snapshotsKeep: 2,
  snapshotBytesMax: Number.MAX_SAFE_INTEGER,
  deleteLogsAfterSnapshot: true,
});

/** Every problem with `config`, empty when it is valid. */
export function validateStorageConfig(config: StorageConfig): string[] {
  const problems: string[] = [];
  const int = (name: keyof StorageConfig, min: number) => {
    const v = config[name];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
      problems.push(`${name} must be an integer ≥ ${min}, got ${String(v)}`);
    }
  };
  int("segmentBytes", 4096);
  int("entryBytesMax", 1);
  int("snapshotsKeep", 1);
  int("snapshotBytesMax", 1);
  int("snapshotIntervalS", 0);
  int("snapshotEntries", 0);
  for (
    const name of ["preallocateSegments", "snapshotOnClose", "deleteLogsAfterSnapshot"] as const
  ) {
    if (typeof config[name] !== "boolean") problems.push(`${name} must be a boolean`);
  }
  return problems;
}
