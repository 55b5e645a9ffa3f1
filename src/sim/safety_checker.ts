/**
 * Raft's safety properties, checked incrementally as the simulated cluster runs. The cluster
 * feeds it facts (a node's role, entries it stored or sent, its commit index, what it applied,
 * its hard state) and the checker returns a {@linkcode Violation} the first time a fact
 * contradicts what came before. It knows nothing about the simulator's internals, so the
 * self-tests can feed it hand-made histories.
 *
 * Facts it accumulates over a run:
 * - the leader of each term (Election Safety);
 * - the identity of every (index, term) ever seen in a log: data hash and the term before it
 *   (Log Matching, by induction over the index);
 * - the committed prefix: the term at each committed index and the lowest term at which any
 *   node knew it committed (Leader Completeness: a leader of term T must hold every entry
 *   known committed before T);
 * - what was applied at each index and the state digest after it (State Machine Safety).
 *
 * @module
 */

import type { Entry, HardState, NodeId, Role } from "../raft/types.ts";
import { hashBytes } from "./register_state.ts";
import { Invariant, type Violation, violation } from "./violation.ts";

interface EntryId {
  readonly type: number;
  readonly hash: number;
  /** The term of the entry at index - 1 in a log holding this entry (undefined: not seen). */
  prevTerm: number | undefined;
}

interface AppliedEntry {
  readonly node: NodeId;
  readonly term: number;
  readonly type: number;
  readonly hash: number;
}

/** Terms of a node's log: the term at an index, or undefined when not held. */
export type TermLookup = (index: number) => number | undefined;

/** An acknowledged write and where it was applied. */
export interface AcknowledgedWrite {
  readonly key: string;
  readonly token: string;
  readonly index: number;
}

/** A replica's final state, as far as the lost-write check needs it. */
export interface ReplicaView {
  readonly id: NodeId;
  readonly applied: number;
  has(key: string, token: string): boolean;
}

/** Incremental checker of Raft's safety invariants. */
export class SafetyChecker {
  readonly #leaders = new Map<number, NodeId>();
  readonly #entryIds = new Map<number, Map<number, EntryId>>();
  readonly #committedTerm: number[] = [0];
  readonly #committedBy: number[] = [0];
  #commitMax = 0;
  readonly #applied: (AppliedEntry | undefined)[] = [];
  readonly #digests: (number | undefined)[] = [0];

  /** Number of terms in which some node became leader. */
  get leadersElected(): number {
    return this.#leaders.size;
  }

  /** The highest index known committed anywhere. */
  get commitMax(): number {
    return this.#commitMax;
  }

  /** The term of the committed entry at `index`, if known. */
  committedTerm(index: number): number | undefined {
    return this.#committedTerm[index];
  }

  /** The applied history's digest after `index`, if any node applied or restored it. */
  digestAt(index: number): number | undefined {
    return this.#digests[index];
  }

  /** Raft §5.2: a node claims `role` in `term`; two leaders in one term are a violation. */
  observeRole(node: NodeId, role: Role, term: number): Violation | null {
    if (role !== "leader") return null;
    const known = this.#leaders.get(term);
    if (known === undefined) {
      this.#leaders.set(term, node);
      return null;
    }
    if (known === node) return null;
    return violation(
      Invariant.ElectionSafety,
      `two leaders in term ${term}: ${known} and ${node}`,
    );
  }

  /**
   * Raft §5.3: `entries` appear in `node`'s log (stored, or sent in an append) right after an
   * entry of term `prevTerm` at `prevIndex` (undefined: unknown). The same (index, term) must
   * always carry the same entry and follow the same term, and terms never decrease.
   */
  observeLogEntries(
    node: NodeId,
    where: string,
    prevIndex: number,
    prevTerm: number | undefined,
    entries: readonly Entry[],
  ): Violation | null {
    let expectIndex = prevIndex + 1;
    let before = prevTerm;
    for (const entry of entries) {
      if (entry.index !== expectIndex) {
        return violation(
          Invariant.LogMatching,
          `${node} ${where}: entry index ${entry.index} where ${expectIndex} was expected`,
        );
      }
      if (before !== undefined && entry.term < before) {
        return violation(
          Invariant.LogMatching,
          `${node} ${where}: term decreases along the log at ${entry.index} ` +
            `(${before} → ${entry.term})`,
        );
      }
      const hash = hashBytes(entry.data);
      let byTerm = this.#entryIds.get(entry.index);
      if (byTerm === undefined) {
        byTerm = new Map();
        this.#entryIds.set(entry.index, byTerm);
      }
      const known = byTerm.get(entry.term);
      if (known === undefined) {
        byTerm.set(entry.term, { type: entry.type, hash, prevTerm: before });
      } else {
        if (known.type !== entry.type || known.hash !== hash) {
          return violation(
            Invariant.LogMatching,
            `${node} ${where}: two different entries with index ${entry.index} and term ` +
              `${entry.term} (${describeEntry(entry)} differs from the one seen before)`,
          );
        }
        if (before !== undefined) {
          if (known.prevTerm === undefined) known.prevTerm = before;
          else if (known.prevTerm !== before) {
            return violation(
              Invariant.LogMatching,
              `${node} ${where}: entry ${entry.index}/${entry.term} follows term ${before} ` +
                `at index ${entry.index - 1}, elsewhere term ${known.prevTerm}`,
            );
          }
        }
      }
      before = entry.term;
      expectIndex++;
    }
    return null;
  }

  /**
   * `node`, in term `nodeTerm`, now has commit index `to` (was `from`); `termAt` reads its log.
   * Records the committed prefix and checks that no committed index changes its term.
   */
  observeCommit(
    node: NodeId,
    nodeTerm: number,
    from: number,
    to: number,
    termAt: TermLookup,
  ): Violation | null {
    for (let index = from + 1; index <= to; index++) {
      const term = termAt(index);
      if (term === undefined) continue; // compacted into a snapshot; checked by digest
      const v = this.#recordCommitted(node, nodeTerm, index, term);
      if (v !== null) return v;
    }
    return null;
  }

  #recordCommitted(node: NodeId, nodeTerm: number, index: number, term: number): Violation | null {
    const known = this.#committedTerm[index];
    if (known === undefined) {
      this.#committedTerm[index] = term;
      this.#committedBy[index] = nodeTerm;
      if (index > this.#commitMax) this.#commitMax = index;
      return null;
    }
    if (known !== term) {
      return violation(
        Invariant.StateMachineSafety,
        `${node} holds term ${term} at committed index ${index}, which was committed with ` +
          `term ${known}`,
      );
    }
    if (nodeTerm < this.#committedBy[index]!) this.#committedBy[index] = nodeTerm;
    return null;
  }

  /** A node's commit index must never decrease (in memory, or below what it persisted). */
  observeCommitIndex(
    node: NodeId,
    previous: number,
    current: number,
    context: string,
  ): Violation | null {
    if (current >= previous) return null;
    return violation(
      Invariant.CommitMonotonic,
      `${node} commit index went from ${previous} to ${current} (${context})`,
    );
  }

  /**
   * Raft §5.4.1: `node` just became leader of `term`; its log (`termAt`, holding entries
   * after `snapshotIndex` up to `lastIndex`) must contain every entry known committed in an
   * earlier term.
   */
  observeNewLeader(
    node: NodeId,
    term: number,
    snapshotIndex: number,
    lastIndex: number,
    termAt: TermLookup,
  ): Violation | null {
    for (let index = snapshotIndex + 1; index <= this.#commitMax; index++) {
      const committed = this.#committedTerm[index];
      if (committed === undefined || this.#committedBy[index]! >= term) continue;
      const held = index <= lastIndex ? termAt(index) : undefined;
      if (held !== committed) {
        return violation(
          Invariant.LeaderCompleteness,
          `${node} became leader of term ${term} but ` +
            (held === undefined
              ? `its log ends at ${lastIndex}, before committed entry ${index}`
              : `holds term ${held} at index ${index}`) +
            ` (committed with term ${committed} by term ${this.#committedBy[index]})`,
        );
      }
    }
    return null;
  }

  /**
   * Raft §5.4.3: `node` (in term `nodeTerm`) applied `entry`, reaching history digest
   * `digest`. Every node must apply the same entry at an index, after the same history.
   */
  observeApply(node: NodeId, nodeTerm: number, entry: Entry, digest: number): Violation | null {
    const hash = hashBytes(entry.data);
    const known = this.#applied[entry.index];
    if (known === undefined) {
      this.#applied[entry.index] = { node, term: entry.term, type: entry.type, hash };
    } else if (known.term !== entry.term || known.type !== entry.type || known.hash !== hash) {
      return violation(
        Invariant.StateMachineSafety,
        `${node} applied ${describeEntry(entry)} at index ${entry.index}, but ${known.node} ` +
          `applied an entry of term ${known.term} (type ${known.type}) there`,
      );
    }
    const v = this.#recordCommitted(node, nodeTerm, entry.index, entry.term);
    if (v !== null) return v;
    return this.observeState(node, entry.index, digest, "after apply");
  }

  /** A node's state machine is at `index` with history digest `digest` (apply or snapshot). */
  observeState(node: NodeId, index: number, digest: number, context: string): Violation | null {
    const known = this.#digests[index];
    if (known === undefined) {
      this.#digests[index] = digest;
      return null;
    }
    if (known === digest) return null;
    return violation(
      Invariant.StateMachineSafety,
      `${node} state at index ${index} (${context}) has a different history than other ` +
        `replicas at that index (digest ${hex(digest)} vs ${hex(known)})`,
    );
  }

  /**
   * A node persisted `next` over `previous`: the term never decreases, the vote never
   * changes within a term (Raft §5.2: one vote per term, durable), the commit never decreases.
   */
  observeHardState(node: NodeId, previous: HardState, next: HardState): Violation | null {
    if (next.term < previous.term) {
      return violation(
        Invariant.Durability,
        `${node} persisted term ${next.term} over term ${previous.term}`,
      );
    }
    if (next.term === previous.term && previous.vote !== null && next.vote !== previous.vote) {
      return violation(
        Invariant.Durability,
        `${node} changed its persisted vote in term ${next.term} from ${previous.vote} to ` +
          `${next.vote ?? "nobody"}`,
      );
    }
    if (next.commit < previous.commit) {
      return violation(
        Invariant.CommitMonotonic,
        `${node} persisted commit ${next.commit} over ${previous.commit}`,
      );
    }
    return null;
  }
}

/**
 * Every acknowledged write must be in every converged replica's state (no acknowledged write
 * lost). Returns the first miss.
 */
export function findLostWrite(
  acknowledged: readonly AcknowledgedWrite[],
  replicas: readonly ReplicaView[],
): Violation | null {
  for (const write of acknowledged) {
    for (const replica of replicas) {
      if (replica.applied < write.index) {
        return violation(
          Invariant.AcknowledgedWriteLost,
          `${replica.id} applied only up to ${replica.applied}, before acknowledged write ` +
            `${write.token} at index ${write.index}`,
        );
      }
      if (!replica.has(write.key, write.token)) {
        return violation(
          Invariant.AcknowledgedWriteLost,
          `acknowledged write ${write.token} to "${write.key}" (index ${write.index}) is ` +
            `missing from ${replica.id}`,
        );
      }
    }
  }
  return null;
}

/** A short description of an entry for reports. */
export function describeEntry(entry: Entry): string {
  const kind = entry.type === 0 ? "normal" : entry.type === 1 ? "conf" : "noop";
  const text = entry.type === 0 ? ` "${new TextDecoder().decode(entry.data)}"` : "";
  return `${entry.index}/${entry.term} ${kind}${text}`;
}

function hex(value: number): string {
  return (value >>> 0).toString(16).padStart(8, "0");
}
