/**
 * Checks ReadIndex reads against a linearizable history of the append-only registers
 * (Raft §8, thesis §6.4). A write appends a unique token to a key; a read returns the key's
 * token list. For a read of key k started at t0 and answered at t1 with list L:
 *
 * 1. L contains every write to k acknowledged before t0 (a read sees completed writes);
 * 2. L contains no write proposed after t1, nor a token never written, nor one twice;
 * 3. if read r1 finished before r2 started (same key), L1 is a prefix of L2 (reads never go
 *    back in time);
 * 4. any two results for k are prefix-comparable (all reads observe one order of writes).
 *
 * Times are any strictly increasing counter shared by all calls; the simulator uses one
 * logical clock, so "before" is exact even within one millisecond. Checks are incremental: each
 * answered read is judged at once against the history so far.
 *
 * @module
 */

import { Invariant, type Violation, violation } from "./violation.ts";

interface WriteInfo {
  readonly key: string;
  readonly proposedAt: number;
  acknowledgedAt: number | undefined;
}

interface ReadInfo {
  readonly key: string;
  readonly startedAt: number;
  /** How many writes to the key were acknowledged before the read started. */
  readonly acknowledgedBefore: number;
  /** The longest result among reads of the key that finished before this one started. */
  readonly floor: readonly string[];
}

/** Incremental linearizability checker for reads of append-only registers. */
export class ReadChecker {
  readonly #writes = new Map<string, WriteInfo>();
  readonly #acknowledged = new Map<string, string[]>();
  readonly #longest = new Map<string, readonly string[]>();
  readonly #reads = new Map<string, ReadInfo>();
  #finished = 0;

  /** Number of reads answered and checked so far. */
  get readsChecked(): number {
    return this.#finished;
  }

  /** A client proposed a write of `token` to `key` at time `at`. Tokens are unique. */
  writeProposed(token: string, key: string, at: number): void {
    this.#writes.set(token, { key, proposedAt: at, acknowledgedAt: undefined });
  }

  /** The write of `token` was acknowledged to its client at time `at`. */
  writeAcknowledged(token: string, at: number): void {
    const write = this.#writes.get(token);
    if (write === undefined || write.acknowledgedAt !== undefined) return;
    write.acknowledgedAt = at;
    const list = this.#acknowledged.get(write.key);
    if (list === undefined) this.#acknowledged.set(write.key, [token]);
    else list.push(token);
  }

  /** A client issued read `id` of `key` at time `at`. */
  readStarted(id: string, key: string, at: number): void {
    this.#reads.set(id, {
      key,
      startedAt: at,
      acknowledgedBefore: this.#acknowledged.get(key)?.length ?? 0,
      floor: this.#longest.get(key) ?? [],
    });
  }

  /** Read `id` failed or its node crashed: it returned nothing, so there is nothing to check. */
  readAbandoned(id: string): void {
    this.#reads.delete(id);
  }

  /** Read `id` returned `result` at time `at`. Returns the first rule it breaks, or null. */
  readFinished(id: string, result: readonly string[], at: number): Violation | null {
    const read = this.#reads.get(id);
    if (read === undefined) return null;
    this.#reads.delete(id);
    this.#finished++;
    const where = `read ${id} of "${read.key}" (started at ${read.startedAt}, answered at ${at})`;
    const seen = new Set<string>();
    for (const token of result) {
      if (seen.has(token)) return bad(`${where} returned ${token} twice: [${show(result)}]`);
      seen.add(token);
      const write = this.#writes.get(token);
      if (write === undefined || write.key !== read.key) {
        return bad(`${where} returned ${token}, which was never written to "${read.key}"`);
      }
      if (write.proposedAt > at) {
        return bad(`${where} returned ${token}, proposed later at ${write.proposedAt}`);
      }
    }
    const acknowledged = this.#acknowledged.get(read.key) ?? [];
    for (let i = 0; i < read.acknowledgedBefore; i++) {
      const token = acknowledged[i]!;
      if (!seen.has(token)) {
        const ackAt = this.#writes.get(token)?.acknowledgedAt;
        return bad(
          `${where} misses ${token}, acknowledged at ${ackAt} before the read started: ` +
            `[${show(result)}]`,
        );
      }
    }
    if (!isPrefix(read.floor, result)) {
      return bad(
        `${where} returned [${show(result)}], but a read that finished before it started ` +
          `returned [${show(read.floor)}] (not a prefix)`,
      );
    }
    const longest = this.#longest.get(read.key) ?? [];
    if (isPrefix(longest, result)) {
      this.#longest.set(read.key, [...result]);
    } else if (!isPrefix(result, longest)) {
      return bad(
        `${where} returned [${show(result)}], which diverges from another read's ` +
          `[${show(longest)}]`,
      );
    }
    return null;
  }
}

function bad(detail: string): Violation {
  return violation(Invariant.LinearizableRead, detail);
}

function isPrefix(prefix: readonly string[], list: readonly string[]): boolean {
  if (prefix.length > list.length) return false;
  for (let i = 0; i < prefix.length; i++) if (prefix[i] !== list[i]) return false;
  return true;
}

function show(list: readonly string[]): string {
  if (list.length <= 12) return list.join(" ");
  return `${list.slice(0, 4).join(" ")} … ${list.slice(-6).join(" ")} (${list.length} tokens)`;
}
