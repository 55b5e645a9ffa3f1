/**
 * When to take a snapshot: a pure function the node driver calls after applying entries, on
 * its snapshot timer and when closing. No clock inside: the driver passes elapsed time.
 *
 * @module
 */

/** The three triggers (STYLE.md item 13: units last). */
export interface SnapshotPolicyConfig {
  /** Snapshot when at least this long has passed since the last one (0 = off). Default 3600. */
  readonly snapshotIntervalS: number;
  /** Snapshot when at least this many entries were applied since the last one (0 = off).
   * Default 10 000. */
  readonly snapshotEntries: number;
  /** Snapshot on a clean shutdown. Default true. */
  readonly snapshotOnClose: boolean;
}

/** Defaults of {@linkcode SnapshotPolicyConfig}. */
export const DEFAULT_SNAPSHOT_POLICY: SnapshotPolicyConfig = Object.freeze({
  snapshotIntervalS: 3600,
  snapshotEntries: 10_000,
  snapshotOnClose: true,
});

/** What the driver knows when it asks. */
export interface SnapshotPolicyInput {
  /** Highest index applied to the state machine. */
  readonly appliedIndex: number;
  /** Index of the newest stored snapshot (0 when none). */
  readonly lastSnapshotIndex: number;
  /** Milliseconds since the newest snapshot was taken (or since start when none). */
  readonly elapsedMs: number;
  /** The node is shutting down cleanly. */
  readonly closing: boolean;
}

/** Why a snapshot is due, or null when none is. */
export type SnapshotReason = "entries" | "interval" | "close";

/**
 * Decides whether a snapshot is due. Nothing is due when no entry was applied since the last
 * snapshot: a snapshot would hold the same state.
 */
export function snapshotDue(
  config: SnapshotPolicyConfig,
  input: SnapshotPolicyInput,
): SnapshotReason | null {
  const fresh = input.appliedIndex - input.lastSnapshotIndex;
  if (fresh <= 0) return null;
  if (input.closing) return config.snapshotOnClose ? "close" : null;
  if (config.snapshotEntries > 0 && fresh >= config.snapshotEntries) return "entries";
  if (config.snapshotIntervalS > 0 && input.elapsedMs >= config.snapshotIntervalS * 1000) {
    return "interval";
  }
  return null;
}

/** The policy as an object, for drivers that hold one. */
export class SnapshotPolicy {
  readonly config: SnapshotPolicyConfig;
  constructor(config: Partial<SnapshotPolicyConfig> = {}) {
    this.config = Object.freeze({ ...DEFAULT_SNAPSHOT_POLICY, ...config });
  }
  /** True when a snapshot should be taken now. */
  shouldSnapshot(input: SnapshotPolicyInput): boolean {
    return snapshotDue(this.config, input) !== null;
  }
  /** The trigger that fires, or null. */
  reason(input: SnapshotPolicyInput): SnapshotReason | null {
    return snapshotDue(this.config, input);
  }
}
