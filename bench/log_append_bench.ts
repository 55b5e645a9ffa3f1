/**
 * Log append benchmark: the file log store with group commit against the disk's own raw
 * write + fdatasync, measured in the same run (ARCHITECTURE.md: every bench reports ratios).
 *
 * 1. raw: write 128 bytes + fdatasync into a preallocated file, p50 and rate;
 * 2. one proposer, one entry per append: p50 latency per batch vs raw p50;
 * 3. 100 B and 4 KiB entries at 1, 16 and 256 concurrent proposers: appends/s, MB/s, entries
 *    per sync, and appends/s as a multiple of the raw fdatasync rate.
 *
 * `deno task bench log [--seconds S] [--dir DIR]` or `deno run -A bench/log_append_bench.ts`.
 * Runs in about 30 s with the default 2 s per configuration.
 *
 * @module
 */

import { FileLogStore } from "../src/storage/file_log_store.ts";
import { DenoFileSystem } from "../src/storage/fs.ts";
import { EntryType } from "../src/raft/types.ts";
import type { Entry } from "../src/raft/types.ts";

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
}

function rawFdatasync(dir: string, samples: number): { p50: number; p99: number } {
  const path = `${dir}/raw.bin`;
  const file = Deno.openSync(path, { read: true, write: true, create: true });
  try {
    const zeros = new Uint8Array(1 << 20);
    for (let i = 0; i < 4; i++) file.writeSync(zeros);
    file.syncSync();
    const record = new Uint8Array(128).fill(7);
    const times: number[] = [];
    for (let i = 0; i < samples; i++) {
      const t0 = performance.now();
      file.seekSync(i * 128, Deno.SeekMode.Start);
      file.writeSync(record);
      file.syncDataSync();
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return { p50: percentile(times, 0.5), p99: percentile(times, 0.99) };
  } finally {
    file.close();
    Deno.removeSync(path);
  }
}

async function openLog(dir: string): Promise<FileLogStore> {
  Deno.mkdirSync(dir, { recursive: true });
  const { store } = await FileLogStore.open(new DenoFileSystem(), dir, {
    segmentBytes: 64 * 1024 * 1024,
    preallocate: true,
    onEvent: () => {},
  });
  return store;
}

async function singleLatency(dir: string, samples: number): Promise<{ p50: number; p99: number }> {
  const log = await openLog(dir);
  const data = new Uint8Array(100).fill(1);
  const times: number[] = [];
  try {
    for (let i = 1; i <= samples; i++) {
      const t0 = performance.now();
      await log.append([{ index: i, term: 1, type: EntryType.Normal, data }]);
      times.push(performance.now() - t0);
    }
  } finally {
    await log.close();
    Deno.removeSync(dir, { recursive: true });
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 0.5), p99: percentile(times, 0.99) };
}

interface Throughput {
  appendsPerS: number;
  mbPerS: number;
  entriesPerSync: number;
}

async function throughput(
  dir: string,
  entryBytes: number,
  proposers: number,
  seconds: number,
): Promise<Throughput> {
  const log = await openLog(dir);
  const data = new Uint8Array(entryBytes).fill(3);
  let next = 1;
  let done = 0;
  let syncs = 0;
  let lastDurable = 0;
  const deadline = performance.now() + seconds * 1000;
  const t0 = performance.now();
  const proposer = async () => {
    while (performance.now() < deadline) {
      const e: Entry = { index: next++, term: 1, type: EntryType.Normal, data };
      const durable = await log.append([e]);
      if (durable !== lastDurable) {
        lastDurable = durable;
        syncs++;
      }
      done++;
    }
  };
  try {
    await Promise.all(Array.from({ length: proposers }, proposer));
  } finally {
    await log.close();
    Deno.removeSync(dir, { recursive: true });
  }
  const elapsedS = (performance.now() - t0) / 1000;
  return {
    appendsPerS: done / elapsedS,
    mbPerS: (done * entryBytes) / elapsedS / 1e6,
    entriesPerSync: done / Math.max(1, syncs),
  };
}

/** Entry point for `tools/bench.ts` ("log"). */
export async function run(args: string[]): Promise<void> {
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const seconds = Number(flag("--seconds") ?? 2);
  const base = flag("--dir");
  const root = await Deno.makeTempDir({ prefix: "edgeraft-logbench-", dir: base });
  try {
    console.log(`log append bench: ${root} (Deno ${Deno.version.deno}), ${seconds} s per case`);
    // Interleave the reference and the store (A B A B) and take the median of the pair ratios.
    const raws: { p50: number; p99: number }[] = [];
    const singles: { p50: number; p99: number }[] = [];
    for (let round = 0; round < 3; round++) {
      raws.push(rawFdatasync(root, 1000));
      singles.push(await singleLatency(`${root}/single${round}`, 1000));
    }
    const ratios = raws.map((r, i) => singles[i]!.p50 / r.p50).sort((a, b) => a - b);
    const raw = raws.map((r) => r.p50).sort((a, b) => a - b)[1]!;
    const rawP99 = raws.map((r) => r.p99).sort((a, b) => a - b)[1]!;
    const single = singles.map((r) => r.p50).sort((a, b) => a - b)[1]!;
    const singleP99 = singles.map((r) => r.p99).sort((a, b) => a - b)[1]!;
    console.log(
      `raw write(128 B)+fdatasync, preallocated: p50 ${raw.toFixed(3)} ms, ` +
        `p99 ${rawP99.toFixed(3)} ms, ${(1000 / raw).toFixed(0)} syncs/s`,
    );
    console.log(
      `log append, 1 entry (100 B) per batch:    p50 ${single.toFixed(3)} ms, ` +
        `p99 ${singleP99.toFixed(3)} ms, ${ratios[1]!.toFixed(2)}× raw p50 (median of 3 pairs)`,
    );
    console.log("\nentry   proposers   appends/s      MB/s   entries/sync   × raw sync rate");
    for (const entryBytes of [100, 4096]) {
      for (const proposers of [1, 16, 256]) {
        const r = await throughput(
          `${root}/t${entryBytes}-${proposers}`,
          entryBytes,
          proposers,
          seconds,
        );
        console.log(
          `${String(entryBytes).padStart(5)}   ${String(proposers).padStart(9)}   ` +
            `${r.appendsPerS.toFixed(0).padStart(9)}   ${r.mbPerS.toFixed(1).padStart(7)}   ` +
            `${r.entriesPerSync.toFixed(1).padStart(12)}   ` +
            `${(r.appendsPerS / (1000 / raw)).toFixed(2).padStart(15)}`,
        );
      }
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

if (import.meta.main) await run(Deno.args);
