/**
 * Opens a node from its data directory: checks or writes the cluster identity, recovers
 * storage (hard state, snapshots, log, in that order: storage.ts), restores the state machine
 * from the newest verified snapshot, and builds the Raft core from what survived.
 *
 * The order matters: the state machine is restored before the core starts, so the entries
 * the core hands out as committed start right after the snapshot and nothing is applied
 * twice; the core's commit index is clamped by recovery to what the log still holds.
 *
 * Node replacement (`--join`, docs/ARCHITECTURE.md "Replacing a node"): an empty data
 * directory bootstrapped with `join` gets the joining marker (`lostAfter =
 * JOINING_LOST_AFTER`) in its hard state *before* its identity file is written, so once the
 * directory counts as initialised the marker is durable: a crash before the node caught up
 * restarts it still joining, and a crash before the identity file leaves a directory that is
 * refused until emptied. The driver clears the marker when the core stops joining.
 *
 * @module
 */

import { KvStateMachine } from "../kv/kv_state_machine.ts";
import { defaultRaftConfig, validateRaftConfig } from "../raft/config.ts";
import { Raft } from "../raft/raft.ts";
import {
  JOINING_LOST_AFTER,
  type Member,
  type NodeId,
  type RaftConfig,
  type SnapshotMeta,
} from "../raft/types.ts";
import { DEFAULT_STORAGE_CONFIG, type StorageConfig } from "../storage/config.ts";
import { describeStorageEvent } from "../storage/events.ts";
import { FileHardStateStore } from "../storage/file_hard_state_store.ts";
import { DenoFileSystem, type FileSystem } from "../storage/fs.ts";
import { Storage } from "../storage/storage.ts";
import type { Logger } from "../util/logger.ts";
import {
  type ClusterIdentity,
  deriveClusterId,
  readClusterIdentity,
  writeClusterIdentity,
} from "./cluster_identity.ts";
import type { NodeMetrics } from "./metrics.ts";
import { RaftNode } from "./raft_node.ts";

/** Everything needed to open a node. */
export interface OpenNodeOptions {
  readonly id: NodeId;
  readonly dataDir: string;
  /** `--peers`: bootstraps an empty data directory; ignored afterwards. */
  readonly peers: readonly Member[] | null;
  /** `--join`: bootstrap an empty data directory as a replacement member of an existing
   * cluster (no vote until caught up). Ignored, with a warning, for an initialised one. */
  readonly join?: boolean;
  /** `--cluster-id`: the id to bootstrap with instead of the one derived from the peers;
   * an initialised directory must carry it. */
  readonly clusterId?: string | null;
  readonly tickMs: number;
  /** Overrides of the core's defaults (`defaultRaftConfig`). */
  readonly raft?: Partial<Omit<RaftConfig, "id">>;
  readonly storage?: Partial<StorageConfig>;
  readonly requestTimeoutMs: number;
  readonly valueBytesMax: number;
  /** Entries kept below a new snapshot for slow followers. Default 1000. */
  readonly compactionMarginEntries?: number;
  readonly logger: Logger;
  readonly metrics?: NodeMetrics;
  readonly fs?: FileSystem;
  readonly random?: () => number;
  readonly now?: () => number;
}

/** A data directory that cannot be used as asked (wrong node, no peers to bootstrap...). */
export class DataDirError extends Error {
  override name = "DataDirError";
}

/** Opens (and when new, bootstraps) the node of `options.dataDir`. Not started yet. */
export async function openNode(options: OpenNodeOptions): Promise<RaftNode> {
  const fs = options.fs ?? new DenoFileSystem();
  const raftConfig: RaftConfig = { ...defaultRaftConfig(options.id), ...options.raft };
  const problems = validateRaftConfig(raftConfig);
  if (problems.length > 0) throw new DataDirError(`Invalid Raft settings: ${problems.join("; ")}`);

  fs.mkdir(options.dataDir, { recursive: true });
  const identity = checkIdentity(fs, options);

  const storageConfig: StorageConfig = { ...DEFAULT_STORAGE_CONFIG, ...options.storage };
  const { storage, recovery } = await Storage.open(fs, options.dataDir, {
    config: storageConfig,
    now: options.now,
    onEvent: (event) => options.logger.warn(describeStorageEvent(event), { event: event.kind }),
  });
  for (const problem of recovery.problems) {
    options.logger.error("storage damage found at start-up", { ...problem });
  }

  const kv = new KvStateMachine();
  let snapshotMeta: SnapshotMeta | null = null;
  if (recovery.snapshot !== null) {
    const info = recovery.snapshot.info;
    await kv.restore(recovery.snapshot.stream(), { expectedAppliedIndex: info.index });
    snapshotMeta = { index: info.index, term: info.term, membership: info.membership };
    options.logger.info("state restored from snapshot", {
      index: info.index,
      term: info.term,
      keys: kv.stats().keys,
    });
  }

  const raft = new Raft(raftConfig, {
    hardState: recovery.raftHardState,
    snapshot: snapshotMeta,
    entries: recovery.entries,
    membership: identity.initialMembership,
    applied: snapshotMeta?.index ?? 0,
    lostAfter: recovery.lostAfter,
  }, { random: options.random ?? Math.random });
  const joining = raft.status().joining;
  if (joining) {
    options.logger.info(
      "joining an existing cluster: no vote until caught up from the leader",
      { id: options.id, cluster: identity.clusterId },
    );
  }

  options.logger.info("node opened", {
    id: options.id,
    cluster: identity.clusterId,
    term: recovery.raftHardState.term,
    commit: recovery.raftHardState.commit,
    firstIndex: storage.log.firstIndex(),
    lastIndex: storage.log.lastIndex(),
    lostAfter: joining ? null : recovery.lostAfter,
    joining,
  });

  return new RaftNode({
    id: options.id,
    clusterId: identity.clusterId,
    raftConfig,
    tickMs: options.tickMs,
    storage,
    stateMachine: kv,
    raft,
    snapshotPolicy: storageConfig,
    compactionMarginEntries: options.compactionMarginEntries ?? 1000,
    requestTimeoutMs: options.requestTimeoutMs,
    valueBytesMax: options.valueBytesMax,
    logger: options.logger,
    metrics: options.metrics,
    storageErrors: recovery.problems.map((p) => ({
      code: p.code,
      message: `${p.file} at offset ${p.offset}: ${p.reason}`,
    })),
    latestSnapshot: recovery.snapshot?.info ?? null,
    now: options.now,
  });
}

function checkIdentity(fs: FileSystem, options: OpenNodeOptions): ClusterIdentity {
  const existing = readClusterIdentity(fs, options.dataDir);
  const wantedClusterId = options.clusterId ?? null;
  if (existing !== null) {
    if (existing.nodeId !== options.id) {
      throw new DataDirError(
        `Data directory "${options.dataDir}" belongs to node "${existing.nodeId}", not "${options.id}"`,
      );
    }
    if (wantedClusterId !== null && existing.clusterId !== wantedClusterId) {
      throw new DataDirError(
        `Data directory "${options.dataDir}" belongs to cluster ${existing.clusterId}, ` +
          `not --cluster-id ${wantedClusterId}`,
      );
    }
    if (options.join === true) {
      options.logger.warn(
        "--join ignored: the data directory is already initialised (it only bootstraps an empty one)",
        { dataDir: options.dataDir },
      );
    }
    return existing;
  }
  const leftovers = fs.readDir(options.dataDir).filter((e) => !e.name.startsWith("."));
  if (leftovers.length > 0) {
    const interrupted = leftovers.every((e) => e.name.startsWith("hardstate"));
    throw new DataDirError(
      `Data directory "${options.dataDir}" holds files but no cluster identity; ` +
        (interrupted
          ? "its bootstrap was interrupted: empty it and start again"
          : "it was not created by edgeraft serve or restore"),
    );
  }
  const peers = options.peers;
  if (peers === null || peers.length === 0) {
    throw new DataDirError(
      `Data directory "${options.dataDir}" is empty: give --peers to bootstrap ` +
        (options.join === true ? "it as a member of the existing cluster" : "a new cluster"),
    );
  }
  if (!peers.some((m) => m.id === options.id)) {
    throw new DataDirError(`--peers does not name this node "${options.id}"`);
  }
  const members = [...peers].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const initialMembership = { members };
  const identity: ClusterIdentity = {
    clusterId: wantedClusterId ?? deriveClusterId(initialMembership),
    nodeId: options.id,
    initialMembership,
    createdAt: new Date(options.now?.() ?? Date.now()).toISOString(),
  };
  if (options.join === true) {
    // The marker first: the directory counts as initialised only once the identity exists.
    const hardState = FileHardStateStore.open(fs, options.dataDir);
    hardState.saveSync({ ...hardState.load(), lostAfter: JOINING_LOST_AFTER });
    hardState.close();
  }
  writeClusterIdentity(fs, options.dataDir, identity);
  return identity;
}
