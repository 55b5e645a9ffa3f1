/**
 * Backup and restore, end to end, on real processes (`deno task bench restore [--mb N]`, or
 * `deno run -A bench/backup_restore_bench.ts [--mb N] [--rounds R] [--no-etcd]`).
 *
 * A single-node edgeraft is loaded with about N MB of values (default 1024: 256 KiB values of
 * JSON-like text), then:
 *
 * - backup over HTTP with `curl -o FILE` (plain and `?gzip=true`) and with `edgeraft backup`
 *   (download, verify, fsync, rename), with the node's peak RSS growth during the download
 *   (`/proc/<pid>/status` VmRSS sampled every 20 ms, relative to just before);
 * - `edgeraft verify FILE` and `edgeraft restore FILE` (into a temporary data directory), timed
 *   as processes, with the restore's peak RSS from `/usr/bin/time -v`;
 * - write latency (one client, sequential 128-byte PUTs) while a backup streams, beside the same
 *   client with nothing else running;
 * - the machine's own rates in the same run: node:crypto SHA-256, node:zlib gzip level 1 and
 *   `sha256sum` on the archive.
 *
 * With `etcd` and `etcdctl` on PATH, a single-member etcd gets the same values (through its
 * JSON gateway, 8 clients) and the same figures: `etcdctl snapshot save` (etcd's backup,
 * fsynced like `edgeraft backup`), `etcdctl snapshot restore`, write latency during a snapshot.
 * The backup and restore figures run A B A B (`--rounds`, default 2) and the ratios are the
 * median of the per-round ratios. MB = 10^6 bytes; throughput is of each system's own file
 * (archive or snapshot), and the table gives the seconds for the same logical data too.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { Buffer } from "node:buffer";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const MB = 1e6;
const MiB = 1024 * 1024;
const VALUE_BYTES = 256 * 1024;
const LOAD_CLIENTS = 8;

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function median(values: readonly number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

// ---- values ----------------------------------------------------------------------------------

/**
 * 8 MiB of JSON-like text (field names from a small vocabulary, random base-36 numbers): what
 * configuration and user records look like; gzip level 1 compresses it about 1.5:1.
 */
function valuePool(): Uint8Array {
  const words = ["alpha", "beta", "gamma", "delta", "id", "name", "true", "false", "null", "ts"];
  const random = new Uint32Array(4 * 1024 * 1024);
  for (let at = 0; at < random.length; at += 16384) {
    crypto.getRandomValues(random.subarray(at, at + 16384));
  }
  const parts: string[] = [];
  let length = 0;
  for (let i = 0; length < 8 * MiB; i += 2) {
    const part = `"${words[random[i % random.length]! % words.length]}":${
      random[(i + 1) % random.length]!.toString(36)
    },`;
    parts.push(part);
    length += part.length;
  }
  return new TextEncoder().encode(parts.join("")).slice(0, 8 * MiB);
}

/** Value `i`: a window of the pool (distinct per key within deflate's reach). */
function valueAt(pool: Uint8Array, i: number): Uint8Array<ArrayBuffer> {
  const span = pool.length - VALUE_BYTES;
  const at = (i * 40_961) % span;
  return pool.slice(at, at + VALUE_BYTES);
}

// ---- processes -------------------------------------------------------------------------------

/** Peak VmRSS growth of `pid` while `work` runs (sampled every 20 ms), in MiB. */
async function withRss<T>(
  pid: number,
  work: () => Promise<T>,
): Promise<{ result: T; baselineMiB: number; peakMiB: number }> {
  const read = () => {
    try {
      const text = Deno.readTextFileSync(`/proc/${pid}/status`);
      return Number(/^VmRSS:\s+(\d+) kB/m.exec(text)?.[1] ?? NaN) / 1024;
    } catch {
      return NaN;
    }
  };
  const baselineMiB = read();
  let peakMiB = baselineMiB;
  const timer = setInterval(() => {
    const now = read();
    if (now > peakMiB) peakMiB = now;
  }, 20);
  try {
    const result = await work();
    return { result, baselineMiB, peakMiB: Math.max(peakMiB, read()) };
  } finally {
    clearInterval(timer);
  }
}

interface Timed {
  readonly seconds: number;
  readonly stdout: string;
  readonly stderr: string;
  /** From `/usr/bin/time -v` when used. */
  readonly maxRssMiB: number | null;
}

/** Runs a command to completion (optionally under `/usr/bin/time -v`); throws unless exit 0. */
async function timed(
  program: string,
  args: readonly string[],
  options: { timeV?: boolean; env?: Record<string, string> } = {},
): Promise<Timed> {
  const useTime = options.timeV === true && timeAvailable;
  const started = performance.now();
  const output = await new Deno.Command(useTime ? "/usr/bin/time" : program, {
    args: useTime ? ["-v", program, ...args] : [...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: options.env,
  }).output();
  const seconds = (performance.now() - started) / 1000;
  const decoder = new TextDecoder();
  const stdout = decoder.decode(output.stdout);
  const stderr = decoder.decode(output.stderr);
  if (!output.success) {
    throw new Error(`${program} ${args.join(" ")} failed (${output.code}): ${stderr.slice(-2000)}`);
  }
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
  return { seconds, stdout, stderr, maxRssMiB: rss === null ? null : Number(rss[1]) / 1024 };
}

let timeAvailable = false;

async function commandWorks(program: string, args: string[]): Promise<boolean> {
  try {
    const output = await new Deno.Command(program, { args, stdout: "null", stderr: "null" })
      .output();
    return output.success;
  } catch {
    return false;
  }
}

async function fetchRetry(url: string, init: RequestInit, attempts = 5): Promise<Response> {
  for (let attempt = 1;; attempt++) {
    try {
      const response = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
      if (response.ok || attempt >= attempts) return response;
      await response.body?.cancel();
    } catch (error) {
      if (attempt >= attempts) throw error;
    }
    await delay(100 * attempt);
  }
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await delay(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A key-value server under test. */
interface Server {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
  put(key: string, value: Uint8Array<ArrayBuffer>): Promise<void>;
  stop(): Promise<void>;
}

async function startEdgeraft(root: string): Promise<Server> {
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      MAIN,
      "serve",
      "--id",
      "n1",
      "--data-dir",
      `${root}/edgeraft-n1`,
      "--listen",
      `127.0.0.1:${port}`,
      "--peers",
      `n1=${url}`,
      "--log-level",
      "warn",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  await waitUntil("edgeraft leader", async () => {
    const r = await fetch(`${url}/v1/status`, { signal: AbortSignal.timeout(1000) });
    const s = await r.json() as { role?: string };
    return s.role === "leader";
  });
  return {
    name: "edgeraft",
    url,
    pid: child.pid,
    async put(key, value) {
      const r = await fetchRetry(`${url}/v1/kv/${key}`, { method: "PUT", body: value });
      const text = await r.text();
      if (!r.ok) throw new Error(`edgeraft PUT ${key}: ${r.status} ${text}`);
    },
    async stop() {
      child.kill("SIGKILL");
      await child.status;
    },
  };
}

async function startEtcd(root: string): Promise<Server> {
  const client = `http://127.0.0.1:${freePort()}`;
  const peer = `http://127.0.0.1:${freePort()}`;
  const child = new Deno.Command("etcd", {
    args: [
      "--name",
      "e1",
      "--data-dir",
      `${root}/etcd-e1`,
      "--listen-client-urls",
      client,
      "--advertise-client-urls",
      client,
      "--listen-peer-urls",
      peer,
      "--initial-advertise-peer-urls",
      peer,
      "--initial-cluster",
      `e1=${peer}`,
      "--quota-backend-bytes",
      String(8 * 1024 * MiB),
      "--log-level",
      "error",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  await waitUntil("etcd leader", async () => {
    const r = await fetch(`${client}/v3/maintenance/status`, {
      method: "POST",
      body: "{}",
      signal: AbortSignal.timeout(1000),
    });
    const s = await r.json() as { leader?: string };
    return s.leader !== undefined && s.leader !== "0";
  });
  return {
    name: "etcd",
    url: client,
    pid: child.pid,
    async put(key, value) {
      const r = await fetchRetry(`${client}/v3/kv/put`, {
        method: "POST",
        body: JSON.stringify({
          key: Buffer.from(key).toString("base64"),
          value: Buffer.from(value).toString("base64"),
        }),
      });
      const text = await r.text();
      if (!r.ok) throw new Error(`etcd put ${key}: ${r.status} ${text}`);
    },
    async stop() {
      child.kill("SIGKILL");
      await child.status;
    },
  };
}

/** Loads `count` values through `LOAD_CLIENTS` concurrent clients; returns seconds. */
async function load(server: Server, pool: Uint8Array, count: number): Promise<number> {
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: LOAD_CLIENTS }, async () => {
      while (next < count) {
        const i = next++;
        await server.put(`bench/${String(i).padStart(8, "0")}`, valueAt(pool, i));
      }
    }),
  );
  return (performance.now() - started) / 1000;
}

/** One write of the latency client: when it was sent and how long it took (ms). */
interface Sample {
  readonly at: number;
  readonly ms: number;
}

/** One client writing 128-byte values back to back until `stop()`. */
function latencyWriter(server: Server, tag: string): { stop: () => Promise<Sample[]> } {
  const value = new Uint8Array(128).fill(0x61);
  const samples: Sample[] = [];
  let stopped = false;
  const loop = (async () => {
    for (let i = 0; !stopped; i++) {
      const at = performance.now();
      await server.put(`lat/${tag}/${i}`, value);
      samples.push({ at, ms: performance.now() - at });
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return samples;
    },
  };
}

// ---- the figures -----------------------------------------------------------------------------

interface Row {
  readonly figure: string;
  readonly edgeraft: string;
  readonly etcd: string;
  readonly ratio: string;
  readonly note: string;
}

function mbps(bytes: number, seconds: number): number {
  return bytes / MB / seconds;
}

function fmtRate(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(0)} MB/s` : "-";
}

function fmtMs(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(1)} ms` : "-";
}

function fmtMiB(value: number | null): string {
  return value !== null && Number.isFinite(value) ? `${value.toFixed(0)} MiB` : "-";
}

function fmtRatio(pairs: readonly number[], better: "higher" | "lower"): string {
  const m = median(pairs);
  return Number.isFinite(m) ? `${m.toFixed(2)}× (${better} is better)` : "-";
}

function printTable(rows: readonly Row[]): void {
  const header: Row = {
    figure: "figure",
    edgeraft: "edgeraft",
    etcd: "etcd",
    ratio: "edgeraft / etcd",
    note: "notes",
  };
  const keys = ["figure", "edgeraft", "etcd", "ratio", "note"] as const;
  const widths = keys.map((k) => Math.max(...[header, ...rows].map((r) => r[k].length)));
  const line = (r: Row) => "| " + keys.map((k, i) => r[k].padEnd(widths[i]!)).join(" | ") + " |";
  console.log(line(header));
  console.log("|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|");
  for (const r of rows) console.log(line(r));
}

async function fileSize(path: string): Promise<number> {
  return (await Deno.stat(path)).size;
}

/** Runs the benchmark; see the module documentation for `args`. */
export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      mb: { type: "string", default: "1024" },
      rounds: { type: "string", default: "2" },
      "no-etcd": { type: "boolean" },
    },
  });
  const stateMb = Number(values.mb);
  const rounds = Number(values.rounds);
  if (!(stateMb > 0) || !(rounds >= 1)) {
    throw new Error("restore bench: --mb and --rounds take positive numbers");
  }
  const count = Math.max(1, Math.round((stateMb * MB) / VALUE_BYTES));
  timeAvailable = await commandWorks("/usr/bin/time", ["-v", "true"]);
  const withEtcd = !values["no-etcd"] && await commandWorks("etcd", ["--version"]) &&
    await commandWorks("etcdctl", ["version"]);
  const root = await Deno.makeTempDir({ prefix: "edgeraft-restore-bench-" });
  const servers: Server[] = [];
  const benchStarted = performance.now();
  const log = (text: string) =>
    console.log(
      `[${((performance.now() - benchStarted) / 1000).toFixed(0).padStart(4)} s] ${text}`,
    );
  try {
    console.log(
      `restore bench: ${count} values of ${VALUE_BYTES / 1024} KiB (${
        (count * VALUE_BYTES / MB).toFixed(0)
      } MB), single-node edgeraft${
        withEtcd ? " and etcd" : ""
      }, ${rounds} interleaved rounds, ${navigator.hardwareConcurrency} cores, load ${
        Deno.loadavg().map((l) => l.toFixed(2)).join(" ")
      }`,
    );
    const pool = valuePool();

    // Reference rates of this machine, same run.
    const sample = new Uint8Array(64 * MiB);
    for (let at = 0; at < sample.length; at += VALUE_BYTES) {
      sample.set(valueAt(pool, at / VALUE_BYTES), at);
    }
    let t = performance.now();
    const hash = createHash("sha256");
    for (let round = 0; round < 4; round++) {
      for (let at = 0; at < sample.length; at += MiB) hash.update(sample.subarray(at, at + MiB));
    }
    hash.digest();
    const sha256Rate = mbps(4 * sample.length, (performance.now() - t) / 1000);
    t = performance.now();
    const gz = gzipSync(sample, { level: 1 });
    const gzipRate = mbps(sample.length, (performance.now() - t) / 1000);
    const gzipRatio = sample.length / gz.length;
    log(
      `machine: node:crypto SHA-256 ${sha256Rate.toFixed(0)} MB/s, node:zlib gzip level 1 ${
        gzipRate.toFixed(0)
      } MB/s (ratio ${gzipRatio.toFixed(2)}:1)`,
    );

    const edgeraft = await startEdgeraft(root);
    servers.push(edgeraft);
    const etcd = withEtcd ? await startEtcd(root) : null;
    if (etcd !== null) servers.push(etcd);

    const loadSeconds: Record<string, number> = {};
    for (const server of servers) {
      log(`loading ${server.name}...`);
      loadSeconds[server.name] = await load(server, pool, count);
      log(
        `  ${server.name}: ${(count * VALUE_BYTES / MB).toFixed(0)} MB in ${
          loadSeconds[server.name]!.toFixed(1)
        } s (${mbps(count * VALUE_BYTES, loadSeconds[server.name]!).toFixed(0)} MB/s)`,
      );
    }
    await delay(1000);

    // Backups, A B A B.
    const plain = `${root}/backup.tar`;
    const snap = `${root}/etcd.snapshot.db`;
    const backupRates: number[] = [];
    const backupSeconds: number[] = [];
    const backupGrowth: number[] = [];
    const backupBase: number[] = [];
    const backupPeak: number[] = [];
    const etcdBase: number[] = [];
    const etcdPeak: number[] = [];
    const cliRates: number[] = [];
    const cliSeconds: number[] = [];
    const etcdRates: number[] = [];
    const etcdSeconds: number[] = [];
    const etcdGrowth: number[] = [];
    let archiveBytes = 0;
    let snapshotBytes = 0;
    for (let round = 0; round < rounds; round++) {
      await Deno.remove(plain).catch(() => {});
      const b = await withRss(
        edgeraft.pid,
        () => timed("curl", ["-sS", "--fail", "-o", plain, `${edgeraft.url}/v1/backup`]),
      );
      archiveBytes = await fileSize(plain);
      backupSeconds.push(b.result.seconds);
      backupRates.push(mbps(archiveBytes, b.result.seconds));
      backupGrowth.push(b.peakMiB - b.baselineMiB);
      backupBase.push(b.baselineMiB);
      backupPeak.push(b.peakMiB);
      log(
        `edgeraft curl /v1/backup: ${(archiveBytes / MB).toFixed(0)} MB in ${
          b.result.seconds.toFixed(2)
        } s, node RSS ${b.baselineMiB.toFixed(0)} → ${b.peakMiB.toFixed(0)} MiB`,
      );
      const cliFile = `${root}/backup-cli.tar`;
      await Deno.remove(cliFile).catch(() => {});
      const cli = await timed(Deno.execPath(), [
        "run",
        "-A",
        "--quiet",
        MAIN,
        "backup",
        "--from",
        edgeraft.url,
        "-o",
        cliFile,
      ]);
      cliSeconds.push(cli.seconds);
      cliRates.push(mbps(await fileSize(cliFile), cli.seconds));
      await Deno.remove(cliFile);
      log(`edgeraft backup (download, verify, fsync): ${cli.seconds.toFixed(2)} s`);
      if (etcd !== null) {
        await Deno.remove(snap).catch(() => {});
        const e = await withRss(
          etcd.pid,
          () =>
            timed("etcdctl", ["--endpoints", etcd.url, "snapshot", "save", snap], {
              env: { ETCDCTL_API: "3" },
            }),
        );
        snapshotBytes = await fileSize(snap);
        etcdSeconds.push(e.result.seconds);
        etcdRates.push(mbps(snapshotBytes, e.result.seconds));
        etcdGrowth.push(e.peakMiB - e.baselineMiB);
        etcdBase.push(e.baselineMiB);
        etcdPeak.push(e.peakMiB);
        log(
          `etcdctl snapshot save: ${(snapshotBytes / MB).toFixed(0)} MB in ${
            e.result.seconds.toFixed(2)
          } s, etcd RSS ${e.baselineMiB.toFixed(0)} → ${e.peakMiB.toFixed(0)} MiB`,
        );
      }
    }

    // gzip backup (once: etcd has no counterpart).
    const gzFile = `${root}/backup.tar.gz`;
    const g = await withRss(
      edgeraft.pid,
      () => timed("curl", ["-sS", "--fail", "-o", gzFile, `${edgeraft.url}/v1/backup?gzip=true`]),
    );
    const gzBytes = await fileSize(gzFile);
    log(
      `edgeraft curl /v1/backup?gzip=true: ${(gzBytes / MB).toFixed(0)} MB in ${
        g.result.seconds.toFixed(2)
      } s, node RSS ${g.baselineMiB.toFixed(0)} → ${g.peakMiB.toFixed(0)} MiB`,
    );

    // Verify (edgeraft verify; etcdctl snapshot status, which reads every key, as a reference).
    const verifySeconds: number[] = [];
    const statusSeconds: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const v = await timed(Deno.execPath(), ["run", "-A", "--quiet", MAIN, "verify", plain]);
      verifySeconds.push(v.seconds);
      log(`edgeraft verify: ${v.seconds.toFixed(2)} s`);
      if (etcd !== null) {
        const s = await timed("etcdctl", ["snapshot", "status", snap], {
          env: { ETCDCTL_API: "3" },
        });
        statusSeconds.push(s.seconds);
        log(`etcdctl snapshot status: ${s.seconds.toFixed(2)} s`);
      }
    }
    const verifyGz = await timed(Deno.execPath(), ["run", "-A", "--quiet", MAIN, "verify", gzFile]);
    log(`edgeraft verify (gzip): ${verifyGz.seconds.toFixed(2)} s`);
    t = performance.now();
    await timed("sha256sum", [plain]);
    const sha256sumRate = mbps(archiveBytes, (performance.now() - t) / 1000);

    // Restores, A B A B.
    const restoreSeconds: number[] = [];
    const restoreRss: number[] = [];
    const etcdRestoreSeconds: number[] = [];
    const etcdRestoreRss: number[] = [];
    let stateBytes = archiveBytes;
    for (let round = 0; round < rounds; round++) {
      const dir = `${root}/restored-${round}`;
      const r = await timed(Deno.execPath(), [
        "run",
        "-A",
        "--quiet",
        MAIN,
        "restore",
        plain,
        "--data-dir",
        dir,
        "--id",
        "r1",
        "--peers",
        "r1=http://127.0.0.1:1",
      ], { timeV: true });
      restoreSeconds.push(r.seconds);
      restoreRss.push(r.maxRssMiB ?? NaN);
      stateBytes = await snapshotStoreBytes(dir);
      await Deno.remove(dir, { recursive: true });
      log(`edgeraft restore: ${r.seconds.toFixed(2)} s, max RSS ${fmtMiB(r.maxRssMiB)}`);
      if (etcd !== null) {
        const edir = `${root}/etcd-restored-${round}`;
        const e = await timed("etcdctl", ["snapshot", "restore", snap, "--data-dir", edir], {
          timeV: true,
          env: { ETCDCTL_API: "3" },
        });
        etcdRestoreSeconds.push(e.seconds);
        etcdRestoreRss.push(e.maxRssMiB ?? NaN);
        await Deno.remove(edir, { recursive: true });
        log(`etcdctl snapshot restore: ${e.seconds.toFixed(2)} s, max RSS ${fmtMiB(e.maxRssMiB)}`);
      }
    }

    // Write latency with and without a backup streaming (to /dev/null).
    const latency: Record<string, { idle: number[]; busy: number[]; backupS: number }> = {};
    for (const server of servers) {
      const tag = server.name;
      const busyWriter = latencyWriter(server, `${tag}-busy`);
      await delay(200);
      const started = performance.now();
      if (server === edgeraft) {
        await timed("curl", ["-sS", "--fail", "-o", "/dev/null", `${edgeraft.url}/v1/backup`]);
      } else {
        const tmp = `${root}/latency-snapshot.db`;
        await timed("etcdctl", ["--endpoints", server.url, "snapshot", "save", tmp], {
          env: { ETCDCTL_API: "3" },
        });
        await Deno.remove(tmp);
      }
      const ended = performance.now();
      const backupS = (ended - started) / 1000;
      // Writes sent while the backup ran.
      const busy = (await busyWriter.stop()).filter((x) => x.at >= started && x.at < ended)
        .map((x) => x.ms);
      await delay(500);
      const idleWriter = latencyWriter(server, `${tag}-idle`);
      await delay(Math.max(2000, backupS * 1000));
      const idle = (await idleWriter.stop()).map((x) => x.ms);
      latency[tag] = { idle, busy, backupS };
      log(
        `${tag} write latency: p99 ${percentile(idle, 99).toFixed(1)} ms idle, ${
          percentile(busy, 99).toFixed(1)
        } ms during a ${backupS.toFixed(2)} s backup (${busy.length} writes)`,
      );
    }

    // The table.
    const pairs = (a: number[], b: number[], f: (x: number, y: number) => number) =>
      a.slice(0, b.length).map((x, i) => f(x, b[i]!));
    const e = etcd !== null;
    const rows: Row[] = [
      {
        figure: "state loaded (8 clients)",
        edgeraft: `${fmtRate(mbps(count * VALUE_BYTES, loadSeconds.edgeraft!))}`,
        etcd: e ? fmtRate(mbps(count * VALUE_BYTES, loadSeconds.etcd!)) : "-",
        ratio: e ? fmtRatio([loadSeconds.etcd! / loadSeconds.edgeraft!], "higher") : "-",
        note: `${count} × ${VALUE_BYTES / 1024} KiB values`,
      },
      {
        figure: "backup over HTTP (curl -o)",
        edgeraft: `${fmtRate(median(backupRates))}, ${median(backupSeconds).toFixed(2)} s`,
        etcd: e ? `${fmtRate(median(etcdRates))}, ${median(etcdSeconds).toFixed(2)} s` : "-",
        ratio: e ? fmtRatio(pairs(etcdSeconds, backupSeconds, (x, y) => x / y), "higher") : "-",
        note: `archive ${(archiveBytes / MB).toFixed(0)} MB; etcd: snapshot save, ${
          (snapshotBytes / MB).toFixed(0)
        } MB; ratio = etcd s / edgeraft s`,
      },
      {
        figure: "edgeraft backup (+verify, fsync)",
        edgeraft: `${fmtRate(median(cliRates))}, ${median(cliSeconds).toFixed(2)} s`,
        etcd: e ? `${fmtRate(median(etcdRates))}, ${median(etcdSeconds).toFixed(2)} s` : "-",
        ratio: e ? fmtRatio(pairs(etcdSeconds, cliSeconds, (x, y) => x / y), "higher") : "-",
        note: "download + full verify + fsync + rename vs snapshot save (fsync)",
      },
      {
        figure: "backup over HTTP, gzip",
        edgeraft: `${fmtRate(mbps(archiveBytes, g.result.seconds))}, ${
          g.result.seconds.toFixed(2)
        } s`,
        etcd: "-",
        ratio: "-",
        note: `${(gzBytes / MB).toFixed(0)} MB (${(archiveBytes / gzBytes).toFixed(2)}:1); ` +
          `node:zlib level 1 alone ${fmtRate(gzipRate)}`,
      },
      {
        figure: "node peak RSS growth during backup",
        edgeraft: `${fmtMiB(median(backupGrowth))} (gzip ${fmtMiB(g.peakMiB - g.baselineMiB)})`,
        etcd: e ? fmtMiB(median(etcdGrowth)) : "-",
        ratio: "-",
        note: `VmRSS sampled every 20 ms minus VmRSS just before (edgeraft ${
          fmtMiB(median(backupBase))
        } → ${fmtMiB(median(backupPeak))}${
          e ? `, etcd ${fmtMiB(median(etcdBase))} → ${fmtMiB(median(etcdPeak))}` : ""
        }); both hold the state in memory`,
      },
      {
        figure: "verify",
        edgeraft: `${fmtRate(mbps(archiveBytes, median(verifySeconds)))}, ${
          median(verifySeconds).toFixed(2)
        } s`,
        etcd: e
          ? `${fmtRate(mbps(snapshotBytes, median(statusSeconds)))}, ${
            median(statusSeconds).toFixed(2)
          } s`
          : "-",
        ratio: e ? fmtRatio(pairs(statusSeconds, verifySeconds, (x, y) => x / y), "higher") : "-",
        note: `etcd: snapshot status (CRC-32C of every key and value, not the file's ` +
          `SHA-256); sha256sum ${fmtRate(sha256sumRate)}, ` +
          `node:crypto SHA-256 ${fmtRate(sha256Rate)}`,
      },
      {
        figure: "verify, gzip archive",
        edgeraft: `${fmtRate(mbps(archiveBytes, verifyGz.seconds))}, ${
          verifyGz.seconds.toFixed(2)
        } s`,
        etcd: "-",
        ratio: "-",
        note: "rate of uncompressed tar bytes",
      },
      {
        figure: "restore (offline, new data dir)",
        edgeraft: `${fmtRate(mbps(stateBytes, median(restoreSeconds)))}, ${
          median(restoreSeconds).toFixed(2)
        } s`,
        etcd: e
          ? `${fmtRate(mbps(snapshotBytes, median(etcdRestoreSeconds)))}, ${
            median(etcdRestoreSeconds).toFixed(2)
          } s`
          : "-",
        ratio: e
          ? fmtRatio(pairs(etcdRestoreSeconds, restoreSeconds, (x, y) => x / y), "higher")
          : "-",
        note: `edgeraft verifies the archive, then copies ${
          (stateBytes / MB).toFixed(0)
        } MB of state, hashing; ratio = etcd s / edgeraft s`,
      },
      {
        figure: "restore process peak RSS",
        edgeraft: fmtMiB(median(restoreRss)),
        etcd: e ? fmtMiB(median(etcdRestoreRss)) : "-",
        ratio: e ? fmtRatio(pairs(restoreRss, etcdRestoreRss, (x, y) => x / y), "lower") : "-",
        note: timeAvailable ? "/usr/bin/time -v" : "/usr/bin/time not available",
      },
    ];
    for (const server of servers) {
      const l = latency[server.name]!;
      rows.push({
        figure: `${server.name}: write p99 idle → during backup`,
        edgeraft: server === edgeraft
          ? `${fmtMs(percentile(l.idle, 99))} → ${fmtMs(percentile(l.busy, 99))}`
          : "",
        etcd: server === edgeraft
          ? ""
          : `${fmtMs(percentile(l.idle, 99))} → ${fmtMs(percentile(l.busy, 99))}`,
        ratio: "",
        note: `p50 ${fmtMs(percentile(l.idle, 50))} → ${fmtMs(percentile(l.busy, 50))}, max ${
          fmtMs(Math.max(...l.busy))
        } during; ${l.busy.length} writes in ${l.backupS.toFixed(2)} s`,
      });
    }
    if (e) {
      const a = latency.edgeraft!;
      const b = latency.etcd!;
      rows.push({
        figure: "write p99 during backup",
        edgeraft: fmtMs(percentile(a.busy, 99)),
        etcd: fmtMs(percentile(b.busy, 99)),
        ratio: fmtRatio([percentile(a.busy, 99) / percentile(b.busy, 99)], "lower"),
        note: "one sequential writer, 128-byte values",
      });
    }
    console.log("");
    printTable(rows);
    console.log(
      `\nmachine: node:crypto SHA-256 ${fmtRate(sha256Rate)}, node:zlib gzip level 1 ${
        fmtRate(gzipRate)
      } (${gzipRatio.toFixed(2)}:1 on these values), sha256sum ${fmtRate(sha256sumRate)}; ` +
        `load ${Deno.loadavg().map((l) => l.toFixed(2)).join(" ")}; total ${
          ((performance.now() - benchStarted) / 1000).toFixed(0)
        } s`,
    );
  } finally {
    for (const server of servers) await server.stop();
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}

/** Bytes of the snapshot data in a restored data directory (`snapshots/<index>-<term>/data`). */
async function snapshotStoreBytes(dir: string): Promise<number> {
  let total = 0;
  for await (const entry of Deno.readDir(`${dir}/snapshots`)) {
    if (!entry.isDirectory) continue;
    try {
      total += (await Deno.stat(`${dir}/snapshots/${entry.name}/data`)).size;
    } catch {
      // not a snapshot directory
    }
  }
  return total;
}

if (import.meta.main) await run(Deno.args);
