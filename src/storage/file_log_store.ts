/**
 * The Raft log on disk: segmented, append-only files under `<data-dir>/log/`, one checksummed
 * record per entry (layout in `log_record.ts` and docs/STORAGE.md).
 *
 * Invariants:
 * - the segments hold contiguous indexes: segment k+1 starts at segment k's last index + 1;
 * - every record on disk at or below `durableIndex()` has been fsynced (and so has the
 *   directory entry of its segment);
 * - appends are group-committed: `append` encodes nothing and writes nothing; it queues the
 *   entries and schedules one flush (a microtask), which writes every queued record with one
 *   write and one fdatasync per touched segment, then resolves every waiting append;
 * - a failed write or sync leaves the on-disk state unknown: the store refuses further work
 *   (StoreFailedError) until it is reopened, which re-runs recovery.
 *
 * Recovery (`FileLogStore.open`) scans every segment and checks each record's frame, checksum,
 * index continuity and term monotonicity. A bad spot with nothing valid after it in the last
 * segment is a torn tail (crash mid-append): it is cut off and reported as a `TailCut`. Anything
 * else (a bad spot followed by valid records, a bad segment header, a missing segment) is
 * corruption: the damaged segment is copied and every later segment moved to `log/corrupt/`,
 * the log is truncated to the last sound entry, and the report says what was lost. Before it
 * destroys anything it calls `beforeDiscard(highestSeen)` so that the caller can persist the
 * "lost after" marker first (docs/STORAGE.md, "Lost entries and the no-vote rule").
 *
 * @module
 */

import { assert, AssertionError } from "../util/assert.ts";
import type { Entry } from "../raft/types.ts";
import { crc32c } from "../util/crc32c.ts";
import { LogCorruptError, StoreFailedError } from "./errors.ts";
import { consoleStorageEventSink, type StorageEventSink } from "./events.ts";
import { type FileHandle, type FileSystem, joinPath } from "./fs.ts";
import {
  allZero,
  decodeRecordHeader,
  decodeSegmentHeader,
  encodeRecord,
  encodeSegmentHeader,
  RECORD_HEADER_BYTES,
  recordBytes,
  SEGMENT_HEADER_BYTES,
} from "./log_record.ts";
import type { CorruptionReport, LogRecovery, LogStore, TailCut } from "./types.ts";

/** Options of {@linkcode FileLogStore.open}. */
export interface FileLogStoreOptions {
  /** A segment is sealed once the next batch would not fit (a lone oversized batch still
   * goes into an empty segment). Default 16 MiB. */
  readonly segmentBytes?: number;
  /** Zero-fill new segments to `segmentBytes` so that appends overwrite allocated blocks and
   * fdatasync has no size or allocation to record. Default true. */
  readonly preallocate?: boolean;
  /** The first index the log must hold (latest snapshot index + 1). Default 1. */
  readonly firstIndex?: number;
  /** Upper bound on one entry's data. Default 64 MiB. */
  readonly entryBytesMax?: number;
  /** Called, and awaited, before recovery discards entries that were not at the torn tail. */
  readonly beforeDiscard?: (highestSeen: number) => Promise<void> | void;
  readonly onEvent?: StorageEventSink;
}

interface Segment {
  readonly firstIndex: number;
  readonly name: string;
  readonly path: string;
  /** Start offset of each record; record i has index firstIndex + i. */
  offsets: number[];
  /** Offset just after the last record. */
  end: number;
}

interface Waiter {
  readonly index: number;
  readonly resolve: (durable: number) => void;
  readonly reject: (error: unknown) => void;
}

const SEGMENT_NAME = /^(\d{20})\.log$/;
const ZERO_CHUNK_BYTES = 1 << 20;

function segmentName(firstIndex: number): string {
  return `${String(firstIndex).padStart(20, "0")}.log`;
}

function segLast(seg: Segment): number {
  return seg.firstIndex + seg.offsets.length - 1;
}

interface ScanResult {
  offsets: number[];
  terms: number[];
  end: number;
  bad: { offset: number; reason: string } | null;
}

/** Parses records from `SEGMENT_HEADER_BYTES` on, stopping at the first bad spot. */
function scanRecords(bytes: Uint8Array, firstIndex: number, prevTerm: number): ScanResult {
  const offsets: number[] = [];
  const terms: number[] = [];
  let pos = SEGMENT_HEADER_BYTES;
  let index = firstIndex;
  let term = prevTerm;
  const bad = (reason: string): ScanResult => ({
    offsets,
    terms,
    end: pos,
    bad: { offset: pos, reason },
  });
  while (pos < bytes.length) {
    const header = decodeRecordHeader(bytes, pos);
    if (header === null) {
      if (allZero(bytes, pos)) break;
      return bad(
        bytes.length - pos < RECORD_HEADER_BYTES
          ? "partial record header"
          : "invalid record header",
      );
    }
    const payloadEnd = pos + RECORD_HEADER_BYTES + header.length;
    if (payloadEnd > bytes.length) return bad("record extends past end of file");
    if (crc32c(bytes, pos + RECORD_HEADER_BYTES, payloadEnd) !== header.payloadCrc) {
      return bad("payload checksum mismatch");
    }
    if (header.index !== index) return bad(`expected index ${index}, found ${header.index}`);
    if (header.term < term) return bad(`term went down from ${term} to ${header.term}`);
    offsets.push(pos);
    terms.push(header.term);
    term = header.term;
    index++;
    pos = payloadEnd;
  }
  return { offsets, terms, end: pos, bad: null };
}

/** The highest index of any valid record header at or after `from`, or 0. */
function highestValidHeader(bytes: Uint8Array, from: number): number {
  let highest = 0;
  for (let at = from; at + RECORD_HEADER_BYTES <= bytes.length; at++) {
    if (bytes[at] !== 0x45 || bytes[at + 1] !== 0x52) continue;
    const header = decodeRecordHeader(bytes, at);
    if (header !== null) highest = Math.max(highest, header.index);
  }
  return highest;
}

/** See the module documentation. */
export class FileLogStore implements LogStore {
  readonly #fs: FileSystem;
  readonly #dir: string;
  readonly #segmentBytes: number;
  readonly #preallocate: boolean;
  readonly #entryBytesMax: number;
  #segments: Segment[] = [];
  #active: FileHandle | null = null;
  #first: number;
  #last: number;
  #written: number;
  /** terms[i] is the term of index #termBase + i, for every index in [#termBase, #last]. */
  #terms: number[] = [];
  #termBase: number;
  #pending: Entry[] = [];
  #waiters: Waiter[] = [];
  #scheduled = false;
  #failed: unknown = null;
  #closed = false;
  #scratch = new Uint8Array(64 * 1024);

  private constructor(fs: FileSystem, dir: string, options: FileLogStoreOptions) {
    this.#fs = fs;
    this.#dir = dir;
    this.#segmentBytes = options.segmentBytes ?? 16 * 1024 * 1024;
    this.#preallocate = options.preallocate ?? true;
    this.#entryBytesMax = options.entryBytesMax ?? 64 * 1024 * 1024;
    this.#first = options.firstIndex ?? 1;
    this.#last = this.#first - 1;
    this.#written = this.#last;
    this.#termBase = this.#first;
    assert(this.#segmentBytes >= 4096, "segmentBytes must be at least 4096");
    assert(Number.isSafeInteger(this.#first) && this.#first >= 1, "firstIndex must be ≥ 1");
  }

  /**
   * Opens (recovers) the log in `<dataDir>/log`, creating the folder for a new node. Returns
   * the store and what recovery found.
   */
  static async open(
    fs: FileSystem,
    dataDir: string,
    options: FileLogStoreOptions = {},
  ): Promise<{ store: FileLogStore; recovery: LogRecovery }> {
    const dir = joinPath(dataDir, "log");
    if (fs.stat(dir) === null) {
      fs.mkdir(dir, { recursive: true });
      fs.syncDir(dataDir);
    }
    const store = new FileLogStore(fs, dir, options);
    const recovery = await store.#recover(options);
    return { store, recovery };
  }

  // ---------------------------------------------------------------------------------------
  // Recovery

  async #recover(options: FileLogStoreOptions): Promise<LogRecovery> {
    const onEvent = options.onEvent ?? consoleStorageEventSink;
    const expected = this.#first;
    const names = this.#fs.readDir(this.#dir)
      .filter((e) => !e.isDirectory && SEGMENT_NAME.test(e.name))
      .map((e) => e.name);
    const cuts: TailCut[] = [];
    const kept: Segment[] = [];
    const terms: number[] = [];
    let lastGood = 0;
    let lastTerm = 0;
    let damage: { k: number; offset: number; reason: string; bytes: Uint8Array | null } | null =
      null;

    for (let k = 0; k < names.length; k++) {
      const name = names[k]!;
      const path = joinPath(this.#dir, name);
      const nameIndex = Number(SEGMENT_NAME.exec(name)![1]);
      const isLast = k === names.length - 1;
      const bytes = this.#fs.readFile(path);
      const header = decodeSegmentHeader(bytes);
      if (!header.ok) {
        if (isLast && highestValidHeader(bytes, 0) === 0) {
          // Crash while creating the segment: it never held a durable record.
          this.#fs.remove(path);
          this.#fs.syncDir(this.#dir);
          const cut = { file: path, offset: 0, bytes: bytes.length, reason: header.reason };
          cuts.push(cut);
          onEvent({ kind: "tail_cut", cut });
          continue;
        }
        damage = { k, offset: 0, reason: header.reason, bytes };
        break;
      }
      if (header.firstIndex !== nameIndex) {
        damage = {
          k,
          offset: 0,
          reason: `segment header names index ${header.firstIndex}, file name ${nameIndex}`,
          bytes,
        };
        break;
      }
      const wanted = kept.length === 0 ? expected : lastGood + 1;
      if (kept.length === 0 ? header.firstIndex > expected : header.firstIndex !== wanted) {
        damage = {
          k,
          offset: 0,
          reason: header.firstIndex > wanted
            ? `missing entries ${wanted}..${header.firstIndex - 1}`
            : `segment overlaps: starts at ${header.firstIndex}, expected ${wanted}`,
          bytes,
        };
        break;
      }
      const scan = scanRecords(bytes, header.firstIndex, lastTerm);
      const seg: Segment = {
        firstIndex: header.firstIndex,
        name,
        path,
        offsets: scan.offsets,
        end: scan.end,
      };
      kept.push(seg);
      for (const t of scan.terms) terms.push(t);
      if (scan.offsets.length > 0) {
        lastGood = segLast(seg);
        lastTerm = scan.terms[scan.terms.length - 1]!;
      } else if (kept.length === 1) {
        lastGood = header.firstIndex - 1;
      }
      if (scan.bad !== null) {
        const validAfter = highestValidHeader(bytes, scan.bad.offset + 1) > lastGood;
        const nextName = names[k + 1];
        const nextContinues = nextName !== undefined &&
          Number(SEGMENT_NAME.exec(nextName)![1]) === lastGood + 1;
        if (!validAfter && (isLast || nextContinues)) {
          // A torn tail (or garbage after a sealed segment's last record): cut it off.
          const cut = {
            file: path,
            offset: scan.bad.offset,
            bytes: bytes.length - scan.bad.offset,
            reason: scan.bad.reason,
          };
          this.#cutFile(path, scan.bad.offset, bytes.length);
          cuts.push(cut);
          onEvent({ kind: "tail_cut", cut });
        } else {
          damage = { k, offset: scan.bad.offset, reason: scan.bad.reason, bytes };
          break;
        }
      }
    }

    let corruption: CorruptionReport | null = null;
    if (damage !== null) {
      corruption = await this.#setAside(names, kept, damage, lastGood, options);
      onEvent({ kind: "log_corrupt", report: corruption });
    }

    if (kept.length === 0 || lastGood < expected - 1) {
      // Nothing usable, or everything is covered by the snapshot: start empty at `expected`.
      for (const seg of kept) {
        this.#fs.remove(seg.path);
        onEvent({
          kind: "stale_segment_removed",
          file: seg.path,
          reason: `entries end at ${lastGood}, before the first index ${expected}`,
        });
      }
      if (kept.length > 0) this.#fs.syncDir(this.#dir);
      this.#segments = [];
      this.#first = expected;
      this.#last = expected - 1;
    } else {
      const base = kept[0]!.firstIndex;
      this.#segments = kept;
      this.#first = Math.max(expected, base);
      this.#last = lastGood;
      this.#terms = terms.slice(this.#first - base);
      const tail = kept[kept.length - 1]!;
      this.#active = this.#fs.open(tail.path, { write: true });
    }
    this.#termBase = this.#first;
    this.#written = this.#last;
    return { firstIndex: this.#first, lastIndex: this.#last, cuts, corruption };
  }

  /** Truncates `path` to `offset`, zero-filling back to its old length when preallocating. */
  #cutFile(path: string, offset: number, oldLength: number): void {
    const h = this.#fs.open(path, { write: true });
    try {
      h.truncate(offset);
      if (this.#preallocate && oldLength > offset) h.truncate(oldLength);
      h.sync();
    } finally {
      h.close();
    }
  }

  async #setAside(
    names: string[],
    kept: Segment[],
    damage: { k: number; offset: number; reason: string; bytes: Uint8Array | null },
    lastGood: number,
    options: FileLogStoreOptions,
  ): Promise<CorruptionReport> {
    const fs = this.#fs;
    const damagedName = names[damage.k]!;
    const damagedPath = joinPath(this.#dir, damagedName);
    let highestSeen = lastGood;
    if (damage.bytes !== null) {
      highestSeen = Math.max(highestSeen, highestValidHeader(damage.bytes, damage.offset + 1));
    }
    for (let j = damage.k + 1; j < names.length; j++) {
      const name = names[j]!;
      highestSeen = Math.max(highestSeen, Number(SEGMENT_NAME.exec(name)![1]));
      highestSeen = Math.max(
        highestSeen,
        highestValidHeader(fs.readFile(joinPath(this.#dir, name)), 0),
      );
    }
    if (options.beforeDiscard !== undefined) await options.beforeDiscard(highestSeen);

    const corruptDir = joinPath(this.#dir, "corrupt");
    if (fs.stat(corruptDir) === null) {
      fs.mkdir(corruptDir);
      fs.syncDir(this.#dir);
    }
    const target = (name: string): string => {
      let n = 0;
      while (fs.stat(joinPath(corruptDir, `${name}.${n}`)) !== null) n++;
      return joinPath(corruptDir, `${name}.${n}`);
    };
    const movedTo: string[] = [];
    const damagedSeg = kept.find((s) => s.name === damagedName);
    const keepPrefix = damagedSeg !== undefined && damagedSeg.offsets.length > 0;
    if (keepPrefix) {
      // Keep the sound prefix in place; a full copy goes to corrupt/ for inspection.
      const copy = target(damagedName);
      const h = fs.open(copy, { createNew: true });
      try {
        h.write(damage.bytes ?? fs.readFile(damagedPath), 0);
        h.sync();
      } finally {
        h.close();
      }
      movedTo.push(copy);
    }
    // Later segments first (newest first), so an interrupted repair leaves a contiguous log.
    for (let j = names.length - 1; j > damage.k; j--) {
      const to = target(names[j]!);
      fs.rename(joinPath(this.#dir, names[j]!), to);
      movedTo.push(to);
    }
    if (!keepPrefix) {
      const to = target(damagedName);
      fs.rename(damagedPath, to);
      movedTo.push(to);
      if (damagedSeg !== undefined) kept.pop();
    }
    fs.syncDir(corruptDir);
    fs.syncDir(this.#dir);
    if (keepPrefix) {
      this.#cutFile(damagedPath, damagedSeg.end, damage.bytes?.length ?? damagedSeg.end);
    }
    const keptThrough = kept.length === 0 ? this.#first - 1 : lastGood;
    return {
      code: "ERR_LOG_CORRUPT",
      file: damagedPath,
      offset: damage.offset,
      reason: damage.reason,
      movedTo,
      keptThrough,
      highestSeen,
    };
  }

  // ---------------------------------------------------------------------------------------
  // Reads

  firstIndex(): number {
    return this.#first;
  }

  lastIndex(): number {
    return this.#last;
  }

  durableIndex(): number {
    return this.#written;
  }

  term(index: number): number | undefined {
    if (index < this.#first || index > this.#last) return undefined;
    return this.#terms[index - this.#termBase];
  }

  entries(lo: number, hi: number, maxBytes = Infinity): Entry[] {
    this.#checkUsable();
    assert(lo >= this.#first && hi <= this.#last + 1 && lo <= hi, `bad range [${lo}, ${hi})`);
    const out: Entry[] = [];
    let bytes = 0;
    let index = lo;
    while (index < hi && index <= this.#written) {
      const k = this.#segmentOf(index);
      const seg = this.#segments[k]!;
      const upto = Math.min(hi - 1, segLast(seg), this.#written);
      const from = seg.offsets[index - seg.firstIndex]!;
      const to = upto === segLast(seg) ? seg.end : seg.offsets[upto + 1 - seg.firstIndex]!;
      const buf = this.#readRange(seg, k, from, to);
      let at = 0;
      for (; index <= upto; index++) {
        const header = decodeRecordHeader(buf, at);
        const fail = (reason: string): never => {
          throw new LogCorruptError(seg.path, from + at, reason);
        };
        if (header === null) fail("invalid record header on read");
        const h = header!;
        const dataEnd = at + RECORD_HEADER_BYTES + h.length;
        if (dataEnd > buf.length) fail("record extends past its neighbour on read");
        const data = buf.subarray(at + RECORD_HEADER_BYTES, dataEnd);
        if (crc32c(data) !== h.payloadCrc) fail("payload checksum mismatch on read");
        if (h.index !== index) fail(`expected index ${index}, found ${h.index} on read`);
        bytes += RECORD_HEADER_BYTES + h.length;
        if (out.length > 0 && bytes > maxBytes) return out;
        out.push({ index, term: h.term, type: h.type, data });
        at = dataEnd;
      }
    }
    for (; index < hi; index++) {
      const entry = this.#pending[index - this.#written - 1]!;
      bytes += recordBytes(entry);
      if (out.length > 0 && bytes > maxBytes) return out;
      out.push(entry);
    }
    return out;
  }

  #segmentOf(index: number): number {
    let lo = 0;
    let hi = this.#segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#segments[mid]!.firstIndex <= index) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  #readRange(seg: Segment, k: number, from: number, to: number): Uint8Array {
    const buf = new Uint8Array(to - from);
    const isActive = k === this.#segments.length - 1 && this.#active !== null;
    const h = isActive ? this.#active! : this.#fs.open(seg.path);
    try {
      const n = h.read(buf, from);
      if (n !== buf.length) {
        throw new LogCorruptError(seg.path, from + n, "file shorter than index");
      }
    } finally {
      if (!isActive) h.close();
    }
    return buf;
  }

  // ---------------------------------------------------------------------------------------
  // Writes

  #checkUsable(): void {
    if (this.#failed !== null) throw new StoreFailedError("log store", this.#failed);
    assert(!this.#closed, "log store is closed");
  }

  append(entries: readonly Entry[]): Promise<number> {
    this.#checkUsable();
    if (entries.length === 0) return Promise.resolve(this.#written);
    const head = entries[0]!;
    assert(head.index >= this.#first, `append at ${head.index} before first index ${this.#first}`);
    assert(
      head.index <= this.#last + 1,
      `append at ${head.index} leaves a gap after ${this.#last}`,
    );
    if (head.index <= this.#last) {
      // An entry at a stored index replaces it and every later one (Raft §5.3).
      try {
        this.#truncateNow(head.index);
      } catch (error) {
        if (error instanceof AssertionError) throw error;
        if (this.#failed === null) this.#failed = error;
        return Promise.reject(error);
      }
    }
    let prevTerm = this.#last >= this.#first ? this.term(this.#last)! : 0;
    let expect = head.index;
    for (const e of entries) {
      assert(e.index === expect, `entries not contiguous at ${e.index}`);
      assert(e.term >= prevTerm, `term goes down at ${e.index}: ${prevTerm} → ${e.term}`);
      assert(e.data.length <= this.#entryBytesMax, `entry ${e.index} exceeds entryBytesMax`);
      prevTerm = e.term;
      expect++;
      this.#pending.push(e);
      this.#terms.push(e.term);
    }
    this.#last = expect - 1;
    const target = this.#last;
    const promise = new Promise<number>((resolve, reject) => {
      this.#waiters.push({ index: target, resolve, reject });
    });
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.#flush());
    }
    return promise;
  }

  /** Writes and syncs everything queued, then settles the waiters. */
  #flush(): void {
    this.#scheduled = false;
    if (this.#failed === null) {
      try {
        this.#writePending();
      } catch (error) {
        this.#failed = error;
      }
    }
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) {
      if (this.#failed !== null) w.reject(this.#failed);
      else w.resolve(this.#written);
    }
  }

  #writePending(): void {
    const entries = this.#pending;
    let i = 0;
    while (i < entries.length) {
      if (this.#active === null) this.#createSegment(entries[i]!.index);
      const seg = this.#segments[this.#segments.length - 1]!;
      const room = this.#segmentBytes - seg.end;
      let bytes = 0;
      let j = i;
      while (j < entries.length) {
        const size = recordBytes(entries[j]!);
        if (bytes + size > room && !(j === i && seg.offsets.length === 0)) break;
        bytes += size;
        j++;
      }
      if (j === i) {
        this.#createSegment(entries[i]!.index);
        continue;
      }
      if (this.#scratch.length < bytes) {
        let size = this.#scratch.length;
        while (size < bytes) size *= 2;
        this.#scratch = new Uint8Array(size);
      }
      const buf = this.#scratch;
      let at = 0;
      const offsets: number[] = [];
      for (let k = i; k < j; k++) {
        offsets.push(seg.end + at);
        at = encodeRecord(entries[k]!, buf, at);
      }
      this.#active!.write(buf.subarray(0, at), seg.end);
      this.#active!.syncData();
      for (const o of offsets) seg.offsets.push(o);
      seg.end += at;
      this.#written = entries[j - 1]!.index;
      i = j;
    }
    this.#pending = [];
  }

  /** Creates a segment whose first record will be `firstIndex`, durable (file and entry). */
  #createSegment(firstIndex: number): void {
    const name = segmentName(firstIndex);
    const path = joinPath(this.#dir, name);
    this.#fs.remove(path); // a leftover from an interrupted truncation holds nothing live
    const h = this.#fs.open(path, { createNew: true });
    try {
      h.write(encodeSegmentHeader(firstIndex), 0);
      if (this.#preallocate) {
        const zeros = new Uint8Array(Math.min(ZERO_CHUNK_BYTES, this.#segmentBytes));
        for (let at = SEGMENT_HEADER_BYTES; at < this.#segmentBytes; at += zeros.length) {
          h.write(zeros.subarray(0, Math.min(zeros.length, this.#segmentBytes - at)), at);
        }
      }
      h.sync();
      this.#fs.syncDir(this.#dir);
    } catch (error) {
      h.close();
      throw error;
    }
    this.#active?.close();
    this.#active = h;
    this.#segments.push({
      firstIndex,
      name,
      path,
      offsets: [],
      end: SEGMENT_HEADER_BYTES,
    });
  }

  /** Writes anything queued synchronously (used before truncations and on close). */
  #flushNow(): void {
    if (this.#pending.length === 0 && this.#waiters.length === 0) return;
    this.#flush();
    if (this.#failed !== null) throw new StoreFailedError("log store", this.#failed);
  }

  #guard<T>(fn: () => T): Promise<T> {
    try {
      this.#checkUsable();
      return Promise.resolve(fn());
    } catch (error) {
      if (!(error instanceof StoreFailedError) && this.#failed === null) this.#failed = error;
      return Promise.reject(error);
    }
  }

  truncateSuffix(fromIndex: number): Promise<void> {
    return this.#guard(() => this.#truncateNow(fromIndex));
  }

  #truncateNow(fromIndex: number): void {
    assert(fromIndex >= this.#first, `truncate at ${fromIndex} before first index ${this.#first}`);
    this.#flushNow();
    if (fromIndex > this.#last) return;
    let k = this.#segmentOf(fromIndex);
    let seg = this.#segments[k]!;
    if (fromIndex === seg.firstIndex && k > 0) k--;
    // Newest first, so that a crash leaves a contiguous (longer) log, never a gap.
    const doomed = this.#segments.splice(k + 1);
    if (doomed.length > 0) {
      this.#active?.close();
      this.#active = null;
      for (let j = doomed.length - 1; j >= 0; j--) this.#fs.remove(doomed[j]!.path);
      this.#fs.syncDir(this.#dir);
      seg = this.#segments[k]!;
      this.#active = this.#fs.open(seg.path, { write: true });
    }
    if (fromIndex <= segLast(seg)) {
      const at = seg.offsets[fromIndex - seg.firstIndex]!;
      const h = this.#active!;
      const length = h.size();
      h.truncate(at);
      if (this.#preallocate && length > at) h.truncate(length);
      h.sync();
      seg.offsets.length = fromIndex - seg.firstIndex;
      seg.end = at;
    }
    this.#last = fromIndex - 1;
    this.#written = Math.min(this.#written, this.#last);
    this.#terms.length = this.#last + 1 - this.#termBase;
  }

  compactPrefix(uptoIndex: number): Promise<void> {
    return this.#guard(() => {
      if (uptoIndex < this.#first) return;
      if (uptoIndex >= this.#last) {
        this.#resetNow(uptoIndex + 1);
        return;
      }
      // Oldest first: an interrupted compaction leaves a contiguous suffix.
      let removed = 0;
      while (
        removed < this.#segments.length - 1 && segLast(this.#segments[removed]!) <= uptoIndex
      ) {
        this.#fs.remove(this.#segments[removed]!.path);
        removed++;
      }
      if (removed > 0) {
        this.#segments.splice(0, removed);
        this.#fs.syncDir(this.#dir);
      }
      this.#terms = this.#terms.slice(uptoIndex + 1 - this.#termBase);
      this.#first = uptoIndex + 1;
      this.#termBase = this.#first;
    });
  }

  reset(nextIndex: number): Promise<void> {
    return this.#guard(() => this.#resetNow(nextIndex));
  }

  #resetNow(nextIndex: number): void {
    assert(Number.isSafeInteger(nextIndex) && nextIndex >= 1, `bad reset index ${nextIndex}`);
    this.#flushNow();
    this.#active?.close();
    this.#active = null;
    for (let j = this.#segments.length - 1; j >= 0; j--) {
      this.#fs.remove(this.#segments[j]!.path);
    }
    this.#fs.syncDir(this.#dir);
    this.#segments = [];
    this.#first = nextIndex;
    this.#last = nextIndex - 1;
    this.#written = this.#last;
    this.#terms = [];
    this.#termBase = nextIndex;
    // The new segment records the new first index on disk.
    this.#createSegment(nextIndex);
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    try {
      if (this.#failed === null) this.#flushNow();
    } catch (error) {
      this.#active?.close();
      this.#active = null;
      this.#closed = true;
      return Promise.reject(error);
    }
    this.#active?.close();
    this.#active = null;
    this.#closed = true;
    return Promise.resolve();
  }
}
