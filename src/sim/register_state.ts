/**
 * The simulated state machine: per-key append-only registers. A write appends a unique token
 * to a key; the state is the map key → tokens in apply order. Append-only state makes reads
 * easy to judge (every read result must be a prefix of one history per key) and lost or
 * reordered writes visible.
 *
 * Every apply also folds the entry into a running digest, so two replicas (or a replica and a
 * snapshot) agree on their whole history up to an index exactly when their digests do.
 *
 * @module
 */

import type { Entry } from "../raft/types.ts";
import { EntryType } from "../raft/types.ts";

/** A decoded client write. */
export interface WriteCommand {
  readonly key: string;
  readonly token: string;
}

/** An immutable copy of the registers at `index` (what a Raft snapshot carries here). */
export interface RegisterSnapshot {
  readonly index: number;
  readonly term: number;
  readonly lists: ReadonlyMap<string, readonly string[]>;
  readonly digest: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const WRITE_PREFIX = "w|";

/** Encodes a write of `token` to `key` as entry data. Keys and tokens contain no "|". */
export function encodeWrite(key: string, token: string): Uint8Array {
  return encoder.encode(`${WRITE_PREFIX}${key}|${token}`);
}

/** Decodes entry data written by {@linkcode encodeWrite}, or returns null. */
export function decodeWrite(data: Uint8Array): WriteCommand | null {
  const text = decoder.decode(data);
  if (!text.startsWith(WRITE_PREFIX)) return null;
  const bar = text.indexOf("|", WRITE_PREFIX.length);
  if (bar < 0) return null;
  return { key: text.slice(WRITE_PREFIX.length, bar), token: text.slice(bar + 1) };
}

/** FNV-1a over the bytes of `data`, starting from `seed`. */
export function hashBytes(data: Uint8Array, seed = 0x811c9dc5): number {
  let h = seed;
  for (let i = 0; i < data.length; i++) h = Math.imul(h ^ data[i]!, 0x01000193);
  return h >>> 0;
}

/** The digest after applying `entry` on top of a history whose digest is `previous`. */
export function entryDigest(previous: number, entry: Entry): number {
  let h = Math.imul(previous ^ entry.index, 0x01000193);
  h = Math.imul(h ^ entry.term, 0x01000193);
  h = Math.imul(h ^ entry.type, 0x01000193);
  return hashBytes(entry.data, h);
}

/** The registers of one replica. */
export class RegisterState {
  #lists = new Map<string, string[]>();
  #index = 0;
  #term = 0;
  #digest = 0;

  /** The index of the last applied entry (or of the snapshot restored from). */
  get index(): number {
    return this.#index;
  }

  /** The term of the entry at {@linkcode index}. */
  get term(): number {
    return this.#term;
  }

  /** The digest of the history up to {@linkcode index}. */
  get digest(): number {
    return this.#digest;
  }

  /** A new state holding `snapshot`'s registers. */
  static restore(snapshot: RegisterSnapshot): RegisterState {
    const state = new RegisterState();
    for (const [key, list] of snapshot.lists) state.#lists.set(key, [...list]);
    state.#index = snapshot.index;
    state.#term = snapshot.term;
    state.#digest = snapshot.digest;
    return state;
  }

  /**
   * Applies `entry`, which the caller has checked is the next index. Returns the decoded write
   * for normal entries, null for no-ops and membership changes.
   */
  apply(entry: Entry): WriteCommand | null {
    this.#index = entry.index;
    this.#term = entry.term;
    this.#digest = entryDigest(this.#digest, entry);
    if (entry.type !== EntryType.Normal) return null;
    const write = decodeWrite(entry.data);
    if (write === null) return null;
    const list = this.#lists.get(write.key);
    if (list === undefined) this.#lists.set(write.key, [write.token]);
    else list.push(write.token);
    return write;
  }

  /** The tokens of `key` in apply order (a copy). */
  read(key: string): string[] {
    return [...(this.#lists.get(key) ?? [])];
  }

  /** Whether `token` was applied to `key`. */
  has(key: string, token: string): boolean {
    return this.#lists.get(key)?.includes(token) ?? false;
  }

  /** An immutable copy of the current state. */
  snapshot(): RegisterSnapshot {
    const lists = new Map<string, readonly string[]>();
    for (const [key, list] of this.#lists) lists.set(key, [...list]);
    return { index: this.#index, term: this.#term, lists, digest: this.#digest };
  }
}
