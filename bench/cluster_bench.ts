/**
 * Three-node cluster benchmark: edgeraft against etcd on this machine, same client, same run.
 *
 * Both clusters run as real processes on 127.0.0.1 with fresh data directories. Each workload
 * runs A B A B (edgeraft, etcd, edgeraft, etcd) and reports the median of each system's
 * figures and the median of the per-pair ratios, because this machine class is noisy
 * (TARGETS.md). The client is the same Deno `fetch` loop for both: etcd is driven through its
 * JSON gateway (`/v3/kv/put`, `/v3/kv/range`), which is what a curl user of etcd would use.
 * Writes go to each cluster's leader.
 *
 * Workloads: sequential put (1 client, p50/p99), 16 and 64 concurrent writers (writes/s,
 * p50/p99/max), 16 concurrent linearizable readers (reads/s), leader kill -9 → next
 * acknowledged write (median and max of `--kills` trials).
 *
 * Without an `etcd` binary on PATH (`apt-get install etcd-server`), edgeraft runs alone and
 * the ratios are left out.
 *
 * Usage: deno task bench cluster [--seconds 4] [--rounds 2] [--kills 10] [--no-etcd]
 *
 * @module
 */

import { parseArgs } from "node:util";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const VALUE_BYTES = 256;

interface System {
  readonly name: string;
  /** Base URLs of the members' client APIs. */
  urls: string[];
  leaderUrl(): Promise<string>;
  put(url: string, key: string, value: Uint8Array): Promise<boolean>;
  get(url: string, key: string): Promise<boolean>;
  killLeader(): Promise<{ killed: number; survivors: string[] }>;
  restart(index: number): Promise<void>;
  waitReady(): Promise<void>;
  stop(): Promise<void>;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await delay(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Per-request deadline; the leader-kill loop lowers it so a client retries another member
 * instead of waiting on one that holds the request while it has no leader. */
let requestTimeoutMs = 5000;

async function fetchOk(url: string, init?: RequestInit): Promise<Response | null> {
  try {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(requestTimeoutMs) });
    if (!response.ok) {
      await response.body?.cancel();
      return null;
    }
    return response;
  } catch {
    return null;
  }
}

// ---- edgeraft --------------------------------------------------------------------------------

async function startEdgeraft(root: string): Promise<System> {
  const nodes = [1, 2, 3].map((i) => {
    const port = freePort();
    return { id: `n${i}`, port, url: `http://127.0.0.1:${port}`, dir: `${root}/edgeraft-n${i}` };
  });
  const peers = nodes.map((n) => `${n.id}=${n.url}`).join(",");
  const children: (Deno.ChildProcess | null)[] = [null, null, null];
  const spawn = (i: number) => {
    const n = nodes[i]!;
    children[i] = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        MAIN,
        "serve",
        "--id",
        n.id,
        "--data-dir",
        n.dir,
        "--listen",
        `127.0.0.1:${n.port}`,
        "--peers",
        peers,
        "--log-level",
        "warn",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  };
  for (let i = 0; i < 3; i++) spawn(i);
  const status = async (url: string) => {
    const r = await fetchOk(`${url}/v1/status`);
    return r === null ? null : await r.json() as { role: string; leader: string | null };
  };
  const system: System = {
    name: "edgeraft",
    urls: nodes.map((n) => n.url),
    async leaderUrl() {
      for (let attempt = 0; attempt < 400; attempt++) {
        for (let i = 0; i < 3; i++) {
          if (children[i] === null) continue;
          const s = await status(nodes[i]!.url);
          if (s?.role === "leader") return nodes[i]!.url;
        }
        await delay(50);
      }
      throw new Error("edgeraft: no leader");
    },
    async put(url, key, value) {
      const r = await fetchOk(`${url}/v1/kv/${key}`, {
        method: "PUT",
        body: value as Uint8Array<ArrayBuffer>,
      });
      await r?.body?.cancel();
      return r !== null;
    },
    async get(url, key) {
      const r = await fetchOk(`${url}/v1/kv/${key}`);
      await r?.body?.cancel();
      return r !== null;
    },
    async killLeader() {
      const leader = await system.leaderUrl();
      const index = nodes.findIndex((n) => n.url === leader);
      children[index]!.kill("SIGKILL");
      await children[index]!.status;
      children[index] = null;
      return { killed: index, survivors: nodes.filter((_, i) => i !== index).map((n) => n.url) };
    },
    async restart(index) {
      spawn(index);
      await waitFor("edgeraft restart", async () => (await status(nodes[index]!.url)) !== null);
    },
    async waitReady() {
      await waitFor("edgeraft ready", async () => {
        const all = await Promise.all(nodes.map((n) => status(n.url)));
        return all.every((s) => s !== null && s.leader !== null);
      });
    },
    async stop() {
      for (const child of children) {
        if (child === null) continue;
        child.kill("SIGKILL");
        await child.status;
      }
    },
  };
  await system.waitReady();
  return system;
}

// ---- etcd ------------------------------------------------------------------------------------

function b64(text: string): string {
  return btoa(text);
}

async function startEtcd(root: string): Promise<System> {
  const members = [1, 2, 3].map((i) => {
    const client = freePort();
    const peer = freePort();
    return {
      name: `e${i}`,
      client: `http://127.0.0.1:${client}`,
      peer: `http://127.0.0.1:${peer}`,
      dir: `${root}/etcd-e${i}`,
    };
  });
  const initial = members.map((m) => `${m.name}=${m.peer}`).join(",");
  const children: (Deno.ChildProcess | null)[] = [null, null, null];
  const spawn = (i: number, state: "new" | "existing") => {
    const m = members[i]!;
    children[i] = new Deno.Command("etcd", {
      args: [
        "--name",
        m.name,
        "--data-dir",
        m.dir,
        "--listen-client-urls",
        m.client,
        "--advertise-client-urls",
        m.client,
        "--listen-peer-urls",
        m.peer,
        "--initial-advertise-peer-urls",
        m.peer,
        "--initial-cluster",
        initial,
        "--initial-cluster-state",
        state,
        "--initial-cluster-token",
        "edgeraft-bench",
        "--log-level",
        "error",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  };
  for (let i = 0; i < 3; i++) spawn(i, "new");
  const memberStatus = async (url: string) => {
    const r = await fetchOk(`${url}/v3/maintenance/status`, { method: "POST", body: "{}" });
    if (r === null) return null;
    const j = await r.json() as { header: { member_id: string }; leader: string };
    return { isLeader: j.header.member_id === j.leader, leader: j.leader };
  };
  const system: System = {
    name: "etcd",
    urls: members.map((m) => m.client),
    async leaderUrl() {
      for (let attempt = 0; attempt < 400; attempt++) {
        for (let i = 0; i < 3; i++) {
          if (children[i] === null) continue;
          if ((await memberStatus(members[i]!.client))?.isLeader) return members[i]!.client;
        }
        await delay(50);
      }
      throw new Error("etcd: no leader");
    },
    async put(url, key, value) {
      const r = await fetchOk(`${url}/v3/kv/put`, {
        method: "POST",
        body: JSON.stringify({ key: b64(key), value: btoaBytes(value) }),
      });
      await r?.body?.cancel();
      return r !== null;
    },
    async get(url, key) {
      const r = await fetchOk(`${url}/v3/kv/range`, {
        method: "POST",
        body: JSON.stringify({ key: b64(key) }),
      });
      await r?.body?.cancel();
      return r !== null;
    },
    async killLeader() {
      const leader = await system.leaderUrl();
      const index = members.findIndex((m) => m.client === leader);
      children[index]!.kill("SIGKILL");
      await children[index]!.status;
      children[index] = null;
      return {
        killed: index,
        survivors: members.filter((_, i) => i !== index).map((m) => m.client),
      };
    },
    async restart(index) {
      spawn(index, "existing");
      await waitFor(
        "etcd restart",
        async () => (await memberStatus(members[index]!.client)) !== null,
      );
    },
    async waitReady() {
      await waitFor("etcd ready", async () => {
        const all = await Promise.all(members.map((m) => memberStatus(m.client)));
        return all.every((s) => s !== null && s.leader !== "0");
      });
    },
    async stop() {
      for (const child of children) {
        if (child === null) continue;
        child.kill("SIGKILL");
        await child.status;
      }
    },
  };
  await system.waitReady();
  return system;
}

function btoaBytes(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

// ---- workloads -------------------------------------------------------------------------------

interface LoadResult {
  readonly ops: number;
  readonly errors: number;
  readonly seconds: number;
  readonly latenciesMs: number[];
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function median(values: readonly number[]): number {
  return quantile([...values].sort((a, b) => a - b), 0.5);
}

async function runLoad(
  clients: number,
  seconds: number,
  op: (client: number, i: number) => Promise<boolean>,
  maxOpsPerClient = Infinity,
): Promise<LoadResult> {
  const latencies: number[] = [];
  let ops = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      for (let i = 0; i < maxOpsPerClient && performance.now() < deadline; i++) {
        const t0 = performance.now();
        const ok = await op(client, i);
        const ms = performance.now() - t0;
        if (ok) {
          ops++;
          latencies.push(ms);
        } else {
          errors++;
        }
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  return { ops, errors, seconds: (performance.now() - started) / 1000, latenciesMs: latencies };
}

interface Figure {
  readonly name: string;
  /** Which direction is better. */
  readonly better: "lower" | "higher";
  readonly unit: string;
  readonly values: Record<string, number[]>;
}

function record(
  figures: Map<string, Figure>,
  name: string,
  system: string,
  value: number,
  better: "lower" | "higher",
  unit: string,
) {
  let f = figures.get(name);
  if (f === undefined) {
    f = { name, better, unit, values: {} };
    figures.set(name, f);
  }
  (f.values[system] ??= []).push(value);
}

async function workloads(
  system: System,
  seconds: number,
  figures: Map<string, Figure>,
  round: number,
) {
  const value = new Uint8Array(VALUE_BYTES).fill(0x61);
  const leader = await system.leaderUrl();
  const tag = `r${round}`;
  // Warm connections and the leader's caches.
  await runLoad(4, 0.5, (c, i) => system.put(leader, `warm-${tag}-${c}-${i}`, value));

  const seq = await runLoad(
    1,
    seconds,
    (_, i) => system.put(leader, `seq-${tag}-${i}`, value),
    2000,
  );
  record(figures, "sequential put p50", system.name, quantile(seq.latenciesMs, 0.5), "lower", "ms");
  record(
    figures,
    "sequential put p99",
    system.name,
    quantile(seq.latenciesMs, 0.99),
    "lower",
    "ms",
  );

  for (const clients of [16, 64]) {
    const r = await runLoad(
      clients,
      seconds,
      (c, i) => system.put(leader, `w${clients}-${tag}-${c}-${i}`, value),
    );
    record(figures, `writes/s, ${clients} clients`, system.name, r.ops / r.seconds, "higher", "/s");
    record(
      figures,
      `write p50, ${clients} clients`,
      system.name,
      quantile(r.latenciesMs, 0.5),
      "lower",
      "ms",
    );
    record(
      figures,
      `write p99, ${clients} clients`,
      system.name,
      quantile(r.latenciesMs, 0.99),
      "lower",
      "ms",
    );
    record(
      figures,
      `write max, ${clients} clients`,
      system.name,
      r.latenciesMs.at(-1) ?? NaN,
      "lower",
      "ms",
    );
    if (r.errors > 0) {
      console.log(`  (${system.name}: ${r.errors} failed writes at ${clients} clients)`);
    }
  }

  // Linearizable reads through a follower and the leader alike (both systems forward or
  // confirm leadership per read).
  const urls = system.urls;
  const reads = await runLoad(
    16,
    seconds,
    (c, i) => system.get(urls[c % urls.length]!, `seq-${tag}-${i % 100}`),
  );
  record(
    figures,
    "linearizable reads/s, 16 clients",
    system.name,
    reads.ops / reads.seconds,
    "higher",
    "/s",
  );
}

async function leaderKills(system: System, trials: number, figures: Map<string, Figure>) {
  const value = new Uint8Array(VALUE_BYTES).fill(0x62);
  const times: number[] = [];
  for (let t = 0; t < trials; t++) {
    await system.waitReady();
    const leader = await system.leaderUrl();
    // Steady writes first, so the kill lands on a busy leader.
    await runLoad(4, 0.3, (c, i) => system.put(leader, `pre-${t}-${c}-${i}`, value));
    const { killed, survivors } = await system.killLeader();
    requestTimeoutMs = 1000;
    const t0 = performance.now();
    let done = false;
    for (let i = 0; !done && performance.now() - t0 < 20_000; i++) {
      for (const url of survivors) {
        if (await system.put(url, `after-kill-${t}-${i}`, value)) {
          done = true;
          break;
        }
      }
      if (!done) await delay(5);
    }
    times.push(done ? performance.now() - t0 : NaN);
    requestTimeoutMs = 5000;
    await system.restart(killed);
  }
  record(figures, "leader kill → next write, median", system.name, median(times), "lower", "ms");
  record(figures, "leader kill → next write, max", system.name, Math.max(...times), "lower", "ms");
}

function report(figures: Map<string, Figure>, systems: string[]) {
  const header = [
    "figure",
    ...systems.map((s) => `${s} (median)`),
    ...(systems.length > 1 ? ["edgeraft / etcd"] : []),
  ];
  const rows: string[][] = [];
  for (const f of figures.values()) {
    const medians = systems.map((s) => median(f.values[s] ?? []));
    const row = [f.name, ...medians.map((m) => `${m.toFixed(f.unit === "ms" ? 2 : 0)} ${f.unit}`)];
    if (systems.length > 1) {
      const a = f.values["edgeraft"] ?? [];
      const b = f.values["etcd"] ?? [];
      const pairs = a.slice(0, b.length).map((x, i) => x / b[i]!);
      row.push(`${median(pairs).toFixed(2)}× (${f.better} is better)`);
    }
    rows.push(row);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    "| " + cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ") + " |";
  console.log(line(header));
  console.log("|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|");
  for (const row of rows) console.log(line(row));
}

/** Entry point for `deno task bench cluster`. */
export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      seconds: { type: "string", default: "4" },
      rounds: { type: "string", default: "2" },
      kills: { type: "string", default: "10" },
      "no-etcd": { type: "boolean" },
    },
  });
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const kills = Number(values.kills);
  let etcdAvailable = !values["no-etcd"];
  if (etcdAvailable) {
    try {
      await new Deno.Command("etcd", { args: ["--version"], stdout: "null", stderr: "null" })
        .output();
    } catch {
      etcdAvailable = false;
      console.log(
        "etcd not found on PATH (apt-get install etcd-server): edgeraft runs alone, no ratios",
      );
    }
  }
  const root = await Deno.makeTempDir({ prefix: "edgeraft-bench-" });
  const figures = new Map<string, Figure>();
  const systems: System[] = [];
  try {
    systems.push(await startEdgeraft(root));
    if (etcdAvailable) systems.push(await startEtcd(root));
    console.log(
      `cluster bench: 3 members each on 127.0.0.1, ${VALUE_BYTES}-byte values, ${seconds} s per load, ` +
        `${rounds} interleaved rounds, ${kills} leader kills; ${navigator.hardwareConcurrency} cores`,
    );
    for (let round = 0; round < rounds; round++) {
      for (const system of systems) {
        console.log(`round ${round + 1}: ${system.name}`);
        await workloads(system, seconds, figures, round);
      }
    }
    for (const system of systems) {
      console.log(`leader kills: ${system.name}`);
      await leaderKills(system, kills, figures);
    }
    report(figures, systems.map((s) => s.name));
  } finally {
    for (const system of systems) await system.stop();
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await run(Deno.args);
