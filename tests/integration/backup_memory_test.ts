/**
 * A backup's memory use does not grow with the data (DESIGN.md, "Backup and restore"),
 * measured on a real node process: its resident set size (`/proc/<pid>/status` VmRSS, sampled
 * every 20 ms) while `curl` downloads a backup of a 10 MB state, then of a 100 MB state.
 *
 * The node is an in-memory key-value store, so its RSS holds the state (and the Raft log)
 * anyway; what is compared is the growth *during* each download, relative to the RSS just
 * before it. The client reads at a bounded rate (`curl --limit-rate`), so a server that
 * ignored backpressure would pile the archive up in memory as surely as one that built it in
 * a buffer first: either way the 100 MB backup would add about 100 MB, far above the bounds.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Cluster, delay, type NodeProcess, procStatusKib, runTool } from "./cluster_harness.ts";
import { loadValues } from "./backup_helpers.ts";

const MiB = 1024 * 1024;

/** Downloads `url` with curl to /dev/null while sampling `node`'s VmRSS every 20 ms. */
async function measureBackup(
  node: NodeProcess,
  url: string,
  rateLimit: string,
): Promise<{ baselineMiB: number; peakMiB: number; growthMiB: number; bytes: number; ms: number }> {
  const pid = node.pid!;
  const rss = () => procStatusKib(pid, "VmRSS")! / 1024;
  // Baseline: the median of a few samples just before the request.
  const before: number[] = [];
  for (let i = 0; i < 5; i++) {
    before.push(rss());
    await delay(20);
  }
  const baselineMiB = before.sort((a, b) => a - b)[2]!;
  let peakMiB = baselineMiB;
  const timer = setInterval(() => {
    const now = procStatusKib(pid, "VmRSS");
    if (now !== null) peakMiB = Math.max(peakMiB, now / 1024);
  }, 20);
  const started = performance.now();
  let result;
  try {
    result = await runTool("curl", [
      "-sS",
      "--fail",
      "--max-time",
      "60",
      "--limit-rate",
      rateLimit,
      "-o",
      "/dev/null",
      "-w",
      "%{size_download}",
      url,
    ], { timeoutMs: 70_000 });
  } finally {
    clearInterval(timer);
  }
  const ms = performance.now() - started;
  peakMiB = Math.max(peakMiB, rss());
  assert.equal(result.code, 0, `curl ${url}: ${result.stderr}`);
  return {
    baselineMiB,
    peakMiB,
    growthMiB: peakMiB - baselineMiB,
    bytes: Number(result.stdout),
    ms,
  };
}

Deno.test("backing up a 10x larger state does not take more memory: RSS growth during the download stays flat", async () => {
  const cluster = await Cluster.create(1);
  try {
    await cluster.start();
    const node = await cluster.waitLeader();
    const url = `${node.url}/v1/backup`;
    const valueBytes = 256 * 1024;
    await loadValues(node.url, { prefix: "small", count: 40, bytes: valueBytes, width: 8 });
    // Warm-up (JIT, first buffers): not measured.
    await measureBackup(node, url, "200M");
    await delay(300);
    const small = await measureBackup(node, url, "50M");

    await loadValues(node.url, { prefix: "large", count: 360, bytes: valueBytes, width: 8 });
    await delay(500);
    const large = await measureBackup(node, url, "50M");
    await delay(300);
    const largeGzip = await measureBackup(node, `${url}?gzip=true`, "50M");

    const show = (name: string, m: Awaited<ReturnType<typeof measureBackup>>) =>
      console.log(
        `${name.padEnd(18)} ${(m.bytes / 1e6).toFixed(1).padStart(6)} MB in ${
          m.ms.toFixed(0).padStart(5)
        } ms: RSS ${m.baselineMiB.toFixed(0)} → peak ${m.peakMiB.toFixed(0)} MiB, growth ${
          m.growthMiB.toFixed(1)
        } MiB`,
      );
    show("backup 10 MB", small);
    show("backup 100 MB", large);
    show("backup 100 MB gzip", largeGzip);

    assert.ok(small.bytes > 10 * MiB && small.bytes < 12 * MiB, `small: ${small.bytes} bytes`);
    assert.ok(large.bytes > 100 * MiB, `large: ${large.bytes} bytes`);
    // Random values: gzip cannot shrink them, so the gzip archive is as large.
    assert.ok(largeGzip.bytes > 100 * MiB, `gzip: ${largeGzip.bytes} bytes`);
    assert.ok(large.ms > 1500, `the 100 MB download took only ${large.ms} ms`);
    // Buffering the archive (or ignoring backpressure) would add ≥ 100 MiB here.
    assert.ok(
      large.growthMiB < small.growthMiB + 48,
      `growth ${large.growthMiB.toFixed(1)} MiB for 100 MB vs ${
        small.growthMiB.toFixed(1)
      } MiB for 10 MB`,
    );
    assert.ok(large.growthMiB < 64, `growth ${large.growthMiB.toFixed(1)} MiB for 100 MB`);
    assert.ok(largeGzip.growthMiB < 64, `gzip growth ${largeGzip.growthMiB.toFixed(1)} MiB`);
  } catch (error) {
    console.error(cluster.dumpLogs());
    throw error;
  } finally {
    await cluster.destroy();
  }
});
