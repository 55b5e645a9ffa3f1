/**
 * The in-memory twin of {@linkcode FileLogStore}: the same contract (contiguous indexes,
 * overwrite-on-append, group-committed `append`, compaction, reset) with nothing on disk.
 * Used by the simulator and by tests of the node driver.
 *
 * @module
 */

import { assert } from "../util/assert.ts";
import type { Entry } from "../raft/types.ts";
import { RECORD_HEADER_BYTES } from "./log_record.ts";
import type { LogStore } from "./types.ts";

/** See the module documentation. */
export class MemoryLogStore implements LogStore {
  #first: number;
  #entries: Entry[] = [];
  #durable: number;
  #waiters: { index: number; resolve: (n: number) => void }[] = [];
  #scheduled = false;
  #closed = false;

  constructor(options: { readonly firstIndex?: number } = {}) {
    this.#first = options.firstIndex ?? 1;
    this.#durable = this.#first - 1;
  }

  firstIndex(): number {
    return this.#first;
  }

  lastIndex(): number {
    return this.#first + this.#entries.length - 1;
  }

  durableIndex(): number {
    return this.#durable;
  }

  term(index: number): number | undefined {
    return this.#entries[index - this.#first]?.term;
  }

  entries(lo: number, hi: number, maxBytes = Infinity): Entry[] {
    assert(!this.#closed, "log store is closed");
    assert(lo >= this.#first && hi <= this.lastIndex() + 1 && lo <= hi, `bad range [${lo}, ${hi})`);
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.#entries[i - this.#first]!;
      bytes += RECORD_HEADER_BYTES + e.data.length;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  append(entries: readonly Entry[]): Promise<number> {
    assert(!this.#closed, "log store is closed");
    if (entries.length === 0) return Promise.resolve(this.#durable);
    const head = entries[0]!;
    assert(head.index >= this.#first, `append at ${head.index} before first index ${this.#first}`);
    assert(head.index <= this.lastIndex() + 1, `append at ${head.index} leaves a gap`);
    if (head.index <= this.lastIndex()) this.#truncate(head.index);
    let prevTerm = this.term(this.lastIndex()) ?? 0;
    let expect = head.index;
    for (const e of entries) {
      assert(e.index === expect, `entries not contiguous at ${e.index}`);
      assert(e.term >= prevTerm, `term goes down at ${e.index}`);
      prevTerm = e.term;
      expect++;
      this.#entries.push({ index: e.index, term: e.term, type: e.type, data: e.data.slice() });
    }
    const target = this.lastIndex();
    const promise = new Promise<number>((resolve) =>
      this.#waiters.push({ index: target, resolve })
    );
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => {
        this.#scheduled = false;
        this.#durable = this.lastIndex();
        const waiters = this.#waiters;
        this.#waiters = [];
        for (const w of waiters) w.resolve(this.#durable);
      });
    }
    return promise;
  }

  #truncate(fromIndex: number): void {
    assert(fromIndex >= this.#first, `truncate at ${fromIndex} before first index`);
    if (fromIndex > this.lastIndex()) return;
    this.#entries.length = fromIndex - this.#first;
    this.#durable = Math.min(this.#durable, this.lastIndex());
  }

  truncateSuffix(fromIndex: number): Promise<void> {
    this.#truncate(fromIndex);
    return Promise.resolve();
  }

  compactPrefix(uptoIndex: number): Promise<void> {
    if (uptoIndex < this.#first) return Promise.resolve();
    if (uptoIndex >= this.lastIndex()) return this.reset(uptoIndex + 1);
    this.#entries = this.#entries.slice(uptoIndex + 1 - this.#first);
    this.#first = uptoIndex + 1;
    return Promise.resolve();
  }

  reset(nextIndex: number): Promise<void> {
    this.#entries = [];
    this.#first = nextIndex;
    this.#durable = nextIndex - 1;
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#durable = this.lastIndex();
    for (const w of this.#waiters) w.resolve(this.#durable);
    this.#waiters = [];
    return Promise.resolve();
  }
}
