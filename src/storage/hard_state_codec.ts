/**
 * Encoding of the hard state file: two identical checksummed frames (`frame.ts`, magic "ERHS",
 * version 1) holding the state as JSON. The second copy lets a single flipped byte or bad
 * sector be survived without guessing a term or vote.
 *
 * @module
 */

import { decodeFrame, encodeFrame } from "./frame.ts";
import type { StoredHardState } from "./types.ts";
import { assert } from "../util/assert.ts";

/** "ERHS" little-endian. */
export const HARD_STATE_MAGIC = 0x53485245;
export const HARD_STATE_VERSION = 1;

/** Checks a hard state before it is written or after it is read; null when sound. */
export function hardStateProblem(s: StoredHardState): string | null {
  const count = (n: unknown, min: number) =>
    typeof n === "number" && Number.isSafeInteger(n) && n >= min;
  if (!count(s.term, 0)) return "term is not a non-negative integer";
  if (s.vote !== null && (typeof s.vote !== "string" || s.vote === "")) return "bad vote";
  if (!count(s.commit, 0)) return "commit is not a non-negative integer";
  if (!count(s.firstIndex, 1)) return "firstIndex is not a positive integer";
  if (typeof s.installingSnapshot !== "boolean") return "installingSnapshot is not a boolean";
  if (!count(s.lostAfter, 0)) return "lostAfter is not a non-negative integer";
  return null;
}

/** The file contents for `state` (both copies). */
export function encodeHardState(state: StoredHardState): Uint8Array {
  const problem = hardStateProblem(state);
  assert(problem === null, `refusing to write a bad hard state: ${problem}`);
  const json = JSON.stringify({
    term: state.term,
    vote: state.vote,
    commit: state.commit,
    firstIndex: state.firstIndex,
    installingSnapshot: state.installingSnapshot,
    lostAfter: state.lostAfter,
  });
  const frame = encodeFrame(HARD_STATE_MAGIC, HARD_STATE_VERSION, new TextEncoder().encode(json));
  const out = new Uint8Array(frame.length * 2);
  out.set(frame, 0);
  out.set(frame, frame.length);
  return out;
}

function decodeAt(bytes: Uint8Array, offset: number): StoredHardState | string {
  const frame = decodeFrame(bytes, HARD_STATE_MAGIC, offset);
  if (!frame.ok) return frame.reason;
  if (frame.version !== HARD_STATE_VERSION) return `unsupported version ${frame.version}`;
  let value: StoredHardState;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(frame.payload));
  } catch {
    return "payload is not JSON";
  }
  if (typeof value !== "object" || value === null) return "payload is not an object";
  const problem = hardStateProblem(value);
  if (problem !== null) return problem;
  return Object.freeze({
    term: value.term,
    vote: value.vote,
    commit: value.commit,
    firstIndex: value.firstIndex,
    installingSnapshot: value.installingSnapshot,
    lostAfter: value.lostAfter,
  });
}

/** Decodes the first sound copy, or returns why neither is. */
export function decodeHardState(
  bytes: Uint8Array,
): { ok: true; state: StoredHardState; damagedCopy: boolean } | { ok: false; reason: string } {
  const first = decodeAt(bytes, 0);
  if (typeof first !== "string") return { ok: true, state: first, damagedCopy: false };
  const offsets = new Set<number>();
  if (bytes.length % 2 === 0) offsets.add(bytes.length / 2);
  for (let at = 1; at + 4 <= bytes.length; at++) {
    if (
      new DataView(bytes.buffer, bytes.byteOffset + at, 4).getUint32(0, true) === HARD_STATE_MAGIC
    ) {
      offsets.add(at);
    }
  }
  for (const at of offsets) {
    const second = decodeAt(bytes, at);
    if (typeof second !== "string") return { ok: true, state: second, damagedCopy: true };
  }
  return { ok: false, reason: `both copies unreadable (first: ${first})` };
}
