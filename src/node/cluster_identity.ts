/**
 * The data directory's identity file, `cluster`: which cluster and node this directory
 * belongs to, and the membership it was bootstrapped with. Written once, when an empty data
 * directory is bootstrapped (or restored), by temp + fsync + rename + directory fsync, in the
 * storage layer's checksummed frame (magic "ERCL", version 1; docs/STORAGE.md).
 *
 * Why a file of its own: `--peers` only bootstraps an empty directory, so after the first
 * start the initial membership must come from disk until a snapshot or a configuration entry
 * supersedes it; and a node must refuse peers of another cluster and a data directory of
 * another node.
 *
 * @module
 */

import { decodeFrame, encodeFrame } from "../storage/frame.ts";
import { type FileSystem, joinPath } from "../storage/fs.ts";
import type { Membership, NodeId } from "../raft/types.ts";
import { sha256Hex } from "../util/encoding.ts";

const CLUSTER_MAGIC = 0x4c435245; // "ERCL" little-endian
const CLUSTER_VERSION = 1;
const FILE_NAME = "cluster";

/** What the identity file holds. */
export interface ClusterIdentity {
  readonly clusterId: string;
  readonly nodeId: NodeId;
  readonly initialMembership: Membership;
  /** RFC 3339 time the directory was bootstrapped. */
  readonly createdAt: string;
}

/** The identity file is unreadable: damaged, or written by a newer edgeraft. */
export class ClusterIdentityError extends Error {
  override name = "ClusterIdentityError";
}

/**
 * A cluster id every node of a new cluster derives alike from the same `--peers`, with no
 * coordination (as etcd derives its cluster id from the initial members).
 */
export function deriveClusterId(membership: Membership): string {
  const text = membership.members.map((m) => `${m.id}=${m.address}`).sort().join(",");
  return sha256Hex(new TextEncoder().encode(`edgeraft-cluster:${text}`)).slice(0, 16);
}

/** A cluster id as {@linkcode deriveClusterId} and `restoredClusterId` make them: 16 lowercase
 * hex digits (`--cluster-id` is checked against this). */
export function isClusterId(text: string): boolean {
  return /^[0-9a-f]{16}$/.test(text);
}

/** Reads the identity of `dataDir`, or null when the directory has none yet. */
export function readClusterIdentity(fs: FileSystem, dataDir: string): ClusterIdentity | null {
  const path = joinPath(dataDir, FILE_NAME);
  if (fs.stat(path) === null) return null;
  const bytes = fs.readFile(path);
  const frame = decodeFrame(bytes, CLUSTER_MAGIC);
  if (!frame.ok) {
    throw new ClusterIdentityError(`Cannot read "${path}": ${frame.reason}`);
  }
  if (frame.version !== CLUSTER_VERSION) {
    throw new ClusterIdentityError(
      `Cannot read "${path}": version ${frame.version} is newer than this edgeraft supports`,
    );
  }
  try {
    const value = JSON.parse(new TextDecoder().decode(frame.payload));
    if (
      typeof value.clusterId !== "string" || typeof value.nodeId !== "string" ||
      !Array.isArray(value.initialMembership?.members) || typeof value.createdAt !== "string"
    ) {
      throw new Error("fields missing");
    }
    return value as ClusterIdentity;
  } catch (error) {
    throw new ClusterIdentityError(`Cannot read "${path}": ${(error as Error).message}`);
  }
}

/** Writes the identity of `dataDir` crash-safely (temp, fsync, rename, directory fsync). */
export function writeClusterIdentity(
  fs: FileSystem,
  dataDir: string,
  identity: ClusterIdentity,
): void {
  const path = joinPath(dataDir, FILE_NAME);
  const temp = `${path}.tmp`;
  const bytes = encodeFrame(
    CLUSTER_MAGIC,
    CLUSTER_VERSION,
    new TextEncoder().encode(JSON.stringify(identity)),
  );
  fs.remove(temp);
  const file = fs.open(temp, { write: true, createNew: true });
  try {
    file.write(bytes, 0);
    file.sync();
  } finally {
    file.close();
  }
  fs.rename(temp, path);
  fs.syncDir(dataDir);
}
