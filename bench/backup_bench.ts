/**
 * Backup archive benchmark (`deno task bench backup [--mb N]`, or
 * `deno run -A bench/backup_bench.ts [--mb N]`): throughput of `writeBackupArchive` and
 * `verifyArchive` on a state of about N MB (default 200), plain and gzip, beside the machine's
 * own primitives measured in the same run: the KV snapshot encoder alone, node:crypto SHA-256,
 * node:zlib gzip level 1 and `CompressionStream("gzip")` (the alternative gzip kept out).
 *
 * The state: keys `<tenant>/<n>` and `cfg:<n>`, values 200–2000 bytes of JSON-ish text drawn
 * from a seeded PRNG (compresses about 2:1, like typical configuration and user data). The
 * archive is written to a temporary file (so the write figure includes the page cache write)
 * and verified from that file. MB = 10^6 bytes; rates are of uncompressed tar bytes.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { verifyArchive } from "../src/backup/archive_verifier.ts";
import { writeBackupArchive } from "../src/backup/archive_writer.ts";
import { gunzipStream, gzipStream } from "../src/backup/gzip.ts";
import { encodeKvCommand } from "../src/kv/kv_command.ts";
import { KvStateMachine } from "../src/kv/kv_state_machine.ts";
import { createPrng, randomInt } from "../src/util/prng.ts";

const MB = 1e6;

function buildState(targetBytes: number): KvStateMachine {
  const random = createPrng(0xbac0);
  const kv = new KvStateMachine();
  const words = ["alpha", "beta", "gamma", "delta", "id", "name", "true", "false", "null"];
  const enc = new TextEncoder();
  let bytes = 0;
  let index = 0;
  while (bytes < targetBytes) {
    const size = randomInt(random, 200, 2000);
    let text = "{";
    while (text.length < size) {
      text += `"${words[randomInt(random, 0, words.length - 1)]}":${
        Math.floor(random() * 1e9).toString(36)
      },`;
    }
    const value = enc.encode(text.slice(0, size));
    const key = index % 5 === 0 ? `cfg:${index}` : `tenant${index % 17}/${index}`;
    kv.apply(++index, encodeKvCommand({ op: "put", key, value }));
    bytes += value.length;
  }
  return kv;
}

async function drain(stream: ReadableStream<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const chunk of stream) n += chunk.length;
  return n;
}

function rate(bytes: number, ms: number): string {
  return `${(bytes / MB / (ms / 1000)).toFixed(0).padStart(5)} MB/s`;
}

function line(label: string, bytes: number, ms: number, extra = ""): void {
  console.log(
    `  ${label.padEnd(44)} ${rate(bytes, ms)}  (${(bytes / MB).toFixed(1)} MB in ${
      ms.toFixed(0)
    } ms)${extra}`,
  );
}

/** Runs the benchmark; `args`: `--mb N` sets the state size. */
export async function run(args: string[]): Promise<void> {
  const mbAt = args.indexOf("--mb");
  const stateMb = mbAt >= 0 ? Number(args[mbAt + 1]) : 200;
  if (!(stateMb > 0)) throw new Error("backup bench: --mb takes a positive number");

  console.log(`backup bench: building a state of ~${stateMb} MB of values...`);
  let t = performance.now();
  const kv = buildState(stateMb * MB);
  const stats = kv.stats();
  console.log(
    `  ${stats.keys} keys, ${(stats.valueBytes / MB).toFixed(1)} MB of values, built in ${
      (performance.now() - t).toFixed(0)
    } ms\n`,
  );

  // A sample of the real snapshot bytes for the primitives (32 MiB, repeated as needed).
  const sampleChunks: Uint8Array[] = [];
  let sampled = 0;
  for await (const chunk of kv.snapshot().stream) {
    if (sampled >= 32 * 1024 * 1024) break;
    sampleChunks.push(chunk);
    sampled += chunk.length;
  }
  const repeat = Math.max(1, Math.round((stateMb * MB) / sampled));

  console.log("primitives (same machine, same run):");
  t = performance.now();
  const snapBytes = await drain(kv.snapshot().stream);
  line("KV snapshot encoder alone", snapBytes, performance.now() - t);
  t = performance.now();
  for (let r = 0; r < repeat; r++) {
    const hash = createHash("sha256");
    for (const chunk of sampleChunks) hash.update(chunk);
    hash.digest("hex");
  }
  line("node:crypto SHA-256 (64 KiB updates)", sampled * repeat, performance.now() - t);
  const sampleAll = new Uint8Array(sampled);
  let off = 0;
  for (const c of sampleChunks) {
    sampleAll.set(c, off);
    off += c.length;
  }
  t = performance.now();
  const zipped = gzipSync(sampleAll, { level: 1 });
  line(
    "node:zlib gzip level 1 (gzipSync)",
    sampled,
    performance.now() - t,
    `, ratio ${(sampled / zipped.length).toFixed(2)}`,
  );
  t = performance.now();
  let out = await drain(ReadableStream.from(sampleChunks).pipeThrough(gzipStream()));
  line("gzipStream() (node:zlib level 1, web stream)", sampled, performance.now() - t);
  t = performance.now();
  out = await drain(
    ReadableStream.from(sampleChunks).pipeThrough(
      new CompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
    ),
  );
  line(
    'CompressionStream("gzip")',
    sampled,
    performance.now() - t,
    `, ratio ${(sampled / out).toFixed(2)}`,
  );
  t = performance.now();
  await drain(ReadableStream.from([zipped]).pipeThrough(gunzipStream()));
  line("gunzipStream() (node:zlib)", sampled, performance.now() - t);
  t = performance.now();
  await drain(
    ReadableStream.from([zipped]).pipeThrough(
      new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
    ),
  );
  line('DecompressionStream("gzip")', sampled, performance.now() - t);

  const dir = await Deno.makeTempDir({ prefix: "edgeraft-backup-bench-" });
  try {
    console.log("\narchive (state → tar → file; file → verify):");
    for (const gzip of [false, true]) {
      const path = `${dir}/backup.tar${gzip ? ".gz" : ""}`;
      const snapshot = kv.snapshot();
      t = performance.now();
      const archive = writeBackupArchive({
        clusterId: "bench",
        nodeId: "n1",
        index: snapshot.appliedIndex,
        term: 1,
        membership: { members: [{ id: "n1", address: "http://127.0.0.1:7070", voter: true }] },
        state: snapshot,
        gzip,
      });
      const file = await Deno.open(path, { write: true, create: true, truncate: true });
      await archive.stream.pipeTo(file.writable);
      const result = await archive.done;
      const writeMs = performance.now() - t;
      const tarBytes = snapshot.byteLength + 3 * 1024;
      line(
        `writeBackupArchive${gzip ? " gzip" : ""}`,
        tarBytes,
        writeMs,
        gzip ? `, archive ${(result.archiveBytes / MB).toFixed(1)} MB` : "",
      );
      t = performance.now();
      const report = await verifyArchive((await Deno.open(path)).readable);
      const verifyMs = performance.now() - t;
      if (!report.ok) throw new Error(`backup bench: archive unsound: ${report.error?.message}`);
      line(`verifyArchive${gzip ? " gzip" : ""}`, report.stats!.tarBytes, verifyMs);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const memory = Deno.memoryUsage();
  console.log(
    `\nprocess at the end: rss ${(memory.rss / MB).toFixed(0)} MB, heap ${
      (memory.heapUsed / MB).toFixed(0)
    } MB, external ${(memory.external / MB).toFixed(0)} MB (the state itself included)`,
  );
}

if (import.meta.main) await run(Deno.args);
