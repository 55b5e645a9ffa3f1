/**
 * Shared helpers of the storage tests: entry builders, a collecting event sink, and temporary
 * directories on the real file system.
 *
 * @module
 */

import type { Entry } from "../../src/raft/types.ts";
import { EntryType } from "../../src/raft/types.ts";
import type { StorageEvent } from "../../src/storage/events.ts";
import { FaultFileSystem } from "../../src/storage/fault_fs.ts";

/** Entry `index` of term `term` whose data encodes both (so reads can be checked). */
export function entry(index: number, term: number, bytes = 8): Entry {
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) data[i] = (index * 31 + term * 7 + i) & 0xff;
  return { index, term, type: EntryType.Normal, data };
}

/** Entries [from, to] all of `term`. */
export function entries(from: number, to: number, term: number, bytes = 8): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term, bytes));
  return out;
}

/** True when `e` is exactly what `entry(e.index, e.term, n)` produced. */
export function isIntact(e: Entry): boolean {
  const want = entry(e.index, e.term, e.data.length);
  return e.type === want.type && want.data.every((b, i) => e.data[i] === b);
}

/** An event sink that keeps events instead of printing them. */
export function collector(): { events: StorageEvent[]; sink: (e: StorageEvent) => void } {
  const events: StorageEvent[] = [];
  return { events, sink: (e) => events.push(e) };
}

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
export async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "edgeraft-storage-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A fault-injecting file system with a durable, empty data directory "/d". */
export function newFaultFs(): FaultFileSystem {
  const fs = new FaultFileSystem();
  fs.mkdir("/d");
  fs.syncDir("/");
  return fs;
}
