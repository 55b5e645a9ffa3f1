/**
 * Offline restore into a brand-new cluster ("restore first, then form the cluster"): builds a
 * data directory seeded with a backup's state at the archive's index and a new membership.
 * Run it on each new node with the same archive and `--peers`, then start the nodes: they
 * come up with every key of the backup, under a new cluster id that all of them derive alike.
 *
 * Safety: the archive is verified completely first (one streaming pass), then the state is
 * copied into the snapshot store of a temporary directory next to the target while being
 * hashed again (a file changed between the passes is refused), and only a finished directory
 * is renamed into place. A failure at any step leaves nothing behind; a non-empty target is
 * refused unless `force`, and then it is replaced only after the new one is complete.
 *
 * What the new directory holds (docs/STORAGE.md): the cluster identity (new cluster id,
 * this node's id, the new membership), the hard state (term of the archive's index, no vote,
 * commit = index, first index = index + 1), the snapshot `<index>-<term>` whose membership is
 * the new one, and an empty log starting at index + 1.
 *
 * @module
 */

import { DataDirNotEmptyError, RestoreFailedError } from "../errors.ts";
import type { Member, Membership, NodeId } from "../raft/types.ts";
import { FileHardStateStore } from "../storage/file_hard_state_store.ts";
import { FileLogStore } from "../storage/file_log_store.ts";
import { FileSnapshotStore } from "../storage/file_snapshot_store.ts";
import { DenoFileSystem, type FileSystem } from "../storage/fs.ts";
import { sha256Hex } from "../util/encoding.ts";
import { writeClusterIdentity } from "./cluster_identity.ts";

/** The parts of a verified archive a restore uses. */
export interface RestoreSource {
  readonly clusterId: string;
  readonly index: number;
  readonly term: number;
  readonly stateSize: number;
  readonly stateSha256: string;
  /** A fresh stream of the `state.kvsnap` member's bytes. */
  openState(): Promise<ReadableStream<Uint8Array>>;
}

/** Options of {@linkcode restoreDataDir}. */
export interface RestoreDataDirOptions {
  readonly dataDir: string;
  readonly id: NodeId;
  /** The new cluster's members (`--peers`). */
  readonly peers: readonly Member[];
  /** Replace a non-empty data directory. */
  readonly force?: boolean;
  readonly fs?: FileSystem;
  readonly now?: () => number;
}

/** What a restore produced. */
export interface RestoreResult {
  readonly clusterId: string;
  readonly index: number;
  readonly term: number;
  readonly dataDir: string;
}

/**
 * The new cluster's id: derived from the source cluster, the index and the new members, so
 * every node restored from the same archive into the same membership agrees without talking,
 * and the restored cluster never shares an id with its source.
 */
export function restoredClusterId(source: RestoreSource, membership: Membership): string {
  const members = membership.members.map((m) => `${m.id}=${m.address}`).sort().join(",");
  const text = `edgeraft-restore:${source.clusterId}:${source.index}:${members}`;
  return sha256Hex(new TextEncoder().encode(text)).slice(0, 16);
}

/** Builds the data directory of `options.id` from `source`; see the module documentation. */
export async function restoreDataDir(
  source: RestoreSource,
  options: RestoreDataDirOptions,
): Promise<RestoreResult> {
  const fs = options.fs ?? new DenoFileSystem();
  const target = options.dataDir.replace(/\/+$/, "");
  if (!options.peers.some((m) => m.id === options.id)) {
    throw new RestoreFailedError(`--peers does not name this node "${options.id}"`);
  }
  const existing = fs.stat(target);
  if (existing !== null) {
    if (!existing.isDirectory) {
      throw new RestoreFailedError(`"${target}" exists and is not a directory`);
    }
    if (fs.readDir(target).length > 0 && !options.force) {
      throw new DataDirNotEmptyError(target);
    }
  }
  const parent = target.includes("/") ? target.slice(0, target.lastIndexOf("/")) || "/" : ".";
  fs.mkdir(parent, { recursive: true });
  const temp = `${target}.restore-tmp`;
  fs.remove(temp, { recursive: true });
  fs.mkdir(temp);

  const members = [...options.peers].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const membership: Membership = { members };
  const clusterId = restoredClusterId(source, membership);
  const meta = { index: source.index, term: source.term, membership };
  try {
    // The hard state first: storage refuses a directory with snapshots but no hard state.
    const hardState = FileHardStateStore.open(fs, temp);
    await hardState.save({
      term: source.term,
      vote: null,
      commit: source.index,
      firstIndex: source.index + 1,
      installingSnapshot: false,
      lostAfter: 0,
    });
    hardState.close();
    const snapshots = FileSnapshotStore.open(fs, temp, { now: options.now });
    await snapshots.writeFromStream(meta, await source.openState(), {
      expectedSha256: source.stateSha256,
      expectedSize: source.stateSize,
    });
    const { store: log } = await FileLogStore.open(fs, temp, { firstIndex: source.index + 1 });
    await log.close();
    writeClusterIdentity(fs, temp, {
      clusterId,
      nodeId: options.id,
      initialMembership: membership,
      createdAt: new Date(options.now?.() ?? Date.now()).toISOString(),
    });
    fs.syncDir(temp);
  } catch (error) {
    fs.remove(temp, { recursive: true });
    if (error instanceof RestoreFailedError) throw error;
    throw new RestoreFailedError(`Restore failed: ${(error as Error).message}`, { cause: error });
  }
  // Publish: the old directory (when forced) goes aside first, then the new one moves in.
  if (fs.stat(target) !== null) {
    const aside = `${target}.replaced-${Date.now()}`;
    fs.rename(target, aside);
    fs.rename(temp, target);
    fs.syncDir(parent);
    fs.remove(aside, { recursive: true });
  } else {
    fs.rename(temp, target);
  }
  fs.syncDir(parent);
  return { clusterId, index: source.index, term: source.term, dataDir: target };
}
