/**
 * The snapshot manifest: a checksummed frame (`frame.ts`, magic "ERSM", version 1) holding
 * JSON with the snapshot's index, term, membership, data size, data SHA-256, creation time and
 * the data format version. Also the name scheme `<index>-<term>` shared by both snapshot stores.
 *
 * @module
 */

import { assert } from "../util/assert.ts";
import type { Member, Membership, SnapshotMeta } from "../raft/types.ts";
import { decodeFrame, encodeFrame } from "./frame.ts";
import type { SnapshotInfo } from "./types.ts";

/** "ERSM" little-endian. */
export const MANIFEST_MAGIC = 0x4d535245;
export const MANIFEST_VERSION = 1;
/** `format` field of the manifest JSON. */
export const MANIFEST_FORMAT = "edgeraft-snapshot";

const NAME = /^(\d{1,16})-(\d{1,16})$/;

/** The directory name of snapshot `meta`. */
export function snapshotName(meta: { readonly index: number; readonly term: number }): string {
  return `${meta.index}-${meta.term}`;
}

/** Parses a snapshot directory name; null when it is not one. */
export function parseSnapshotName(name: string): { index: number; term: number } | null {
  const m = NAME.exec(name);
  if (m === null) return null;
  const index = Number(m[1]);
  const term = Number(m[2]);
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(term)) return null;
  if (snapshotName({ index, term }) !== name) return null; // no leading zeros
  return { index, term };
}

/** Newest first: higher index, then higher term. */
export function compareNewestFirst(
  a: { readonly index: number; readonly term: number },
  b: { readonly index: number; readonly term: number },
): number {
  return b.index - a.index || b.term - a.term;
}

function membershipProblem(m: unknown): string | null {
  if (typeof m !== "object" || m === null) return "membership is not an object";
  const members = (m as Membership).members;
  if (!Array.isArray(members)) return "membership.members is not an array";
  for (const x of members as unknown[]) {
    const mem = x as Member;
    if (typeof mem !== "object" || mem === null) return "bad member";
    if (typeof mem.id !== "string" || mem.id === "") return "bad member id";
    if (typeof mem.address !== "string") return "bad member address";
    if (typeof mem.voter !== "boolean") return "bad member voter flag";
  }
  return null;
}

/** Checks the fields of snapshot metadata (writers call it before encoding). */
export function snapshotMetaProblem(meta: SnapshotMeta): string | null {
  if (!Number.isSafeInteger(meta.index) || meta.index < 1) return "index must be ≥ 1";
  if (!Number.isSafeInteger(meta.term) || meta.term < 1) return "term must be ≥ 1";
  return membershipProblem(meta.membership);
}

/** Encodes the manifest of `info`. */
export function encodeManifest(info: SnapshotInfo): Uint8Array {
  const problem = snapshotMetaProblem(info);
  assert(problem === null, `refusing to write a bad manifest: ${problem}`);
  assert(/^[0-9a-f]{64}$/.test(info.sha256), "sha256 must be 64 lowercase hex digits");
  const json = JSON.stringify({
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    index: info.index,
    term: info.term,
    membership: {
      members: info.membership.members.map((m) => ({
        id: m.id,
        address: m.address,
        voter: m.voter,
      })),
    },
    size: info.size,
    sha256: info.sha256,
    created_at: info.createdAt,
  });
  return encodeFrame(MANIFEST_MAGIC, MANIFEST_VERSION, new TextEncoder().encode(json));
}

/** Decodes and checks a manifest; `name` must match its index and term. */
export function decodeManifest(bytes: Uint8Array, name: string): SnapshotInfo | string {
  const frame = decodeFrame(bytes, MANIFEST_MAGIC);
  if (!frame.ok) return `manifest ${frame.reason}`;
  if (frame.version !== MANIFEST_VERSION) return `unsupported manifest version ${frame.version}`;
  if (frame.end !== bytes.length) return "manifest has trailing bytes";
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(frame.payload));
  } catch {
    return "manifest is not JSON";
  }
  if (typeof v !== "object" || v === null) return "manifest is not an object";
  if (v.format !== MANIFEST_FORMAT) return "manifest format is not edgeraft-snapshot";
  const meta = {
    index: v.index as number,
    term: v.term as number,
    membership: v.membership as Membership,
  };
  const problem = snapshotMetaProblem(meta);
  if (problem !== null) return `manifest: ${problem}`;
  if (snapshotName(meta) !== name) return `manifest names ${snapshotName(meta)}, not ${name}`;
  if (typeof v.size !== "number" || !Number.isSafeInteger(v.size) || v.size < 0) {
    return "manifest: bad size";
  }
  if (typeof v.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(v.sha256)) {
    return "manifest: bad sha256";
  }
  if (typeof v.created_at !== "string") return "manifest: bad created_at";
  return Object.freeze({
    ...meta,
    name,
    size: v.size,
    sha256: v.sha256,
    createdAt: v.created_at,
  });
}
