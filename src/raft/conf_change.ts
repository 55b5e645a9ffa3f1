/**
 * Membership changes, one server at a time (Raft thesis §4.1): their encoding as the data of
 * a `ConfChange` log entry and their effect on a {@linkcode Membership}.
 *
 * Invariants: a membership's members are sorted by id and unique, and it always keeps at
 * least one voter (a cluster without voters could never commit again). Applying a change is
 * a pure function of (membership, change), so every node that holds the same log computes
 * the same configuration; a change that does not apply is a no-op on every node alike.
 *
 * @module
 */

import type { ConfChange, Member, Membership, NodeId } from "./types.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes `change` as the data of a `ConfChange` entry (UTF-8 JSON). */
export function encodeConfChange(change: ConfChange): Uint8Array {
  const plain: Record<string, string> = { kind: change.kind, id: change.id };
  if (change.kind === "add_learner" || change.kind === "add_voter") {
    plain.address = change.address;
  }
  return encoder.encode(JSON.stringify(plain));
}

/** Decodes the data of a `ConfChange` entry; null when it is not a well-formed change. */
export function decodeConfChange(data: Uint8Array): ConfChange | null {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(data));
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const { kind, id, address } = value as Record<string, unknown>;
  if (typeof id !== "string" || id === "") return null;
  switch (kind) {
    case "add_learner":
    case "add_voter":
      return typeof address === "string" ? { kind, id, address } : null;
    case "promote":
    case "remove":
      return { kind, id };
    default:
      return null;
  }
}

/** The member with `id`, or undefined. */
export function findMember(membership: Membership, id: NodeId): Member | undefined {
  return membership.members.find((member) => member.id === id);
}

/** Whether `id` is a voter in `membership`. */
export function isVoter(membership: Membership, id: NodeId): boolean {
  return findMember(membership, id)?.voter === true;
}

/** The voters' ids, in id order. */
export function voterIds(membership: Membership): NodeId[] {
  const ids: NodeId[] = [];
  for (const member of membership.members) if (member.voter) ids.push(member.id);
  return ids;
}

/**
 * Applies `change` to `membership`. Returns the new membership, or a string saying why the
 * change is invalid (adding a member twice, promoting a voter or a stranger, removing a
 * stranger or the last voter).
 */
export function applyConfChange(membership: Membership, change: ConfChange): Membership | string {
  const existing = findMember(membership, change.id);
  switch (change.kind) {
    case "add_learner":
    case "add_voter": {
      if (existing) return `${change.id} is already a member`;
      if (/[=,]/.test(change.id)) return `${JSON.stringify(change.id)} is not a valid node id`;
      const member: Member = {
        id: change.id,
        address: change.address,
        voter: change.kind === "add_voter",
      };
      return sorted([...membership.members, member]);
    }
    case "promote": {
      if (!existing) return `${change.id} is not a member`;
      if (existing.voter) return `${change.id} is already a voter`;
      return sorted(
        membership.members.map((m) => m.id === change.id ? { ...m, voter: true } : m),
      );
    }
    case "remove": {
      if (!existing) return `${change.id} is not a member`;
      const rest = membership.members.filter((m) => m.id !== change.id);
      if (!rest.some((m) => m.voter)) return `removing ${change.id} would leave no voter`;
      return { members: rest };
    }
  }
}

/** Whether two memberships list the same members with the same roles and addresses. */
export function sameMembership(a: Membership, b: Membership): boolean {
  if (a.members.length !== b.members.length) return false;
  return a.members.every((m, i) => {
    const other = b.members[i];
    return other !== undefined && other.id === m.id && other.voter === m.voter &&
      other.address === m.address;
  });
}

function sorted(members: Member[]): Membership {
  return { members: members.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)) };
}
