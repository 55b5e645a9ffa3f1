/**
 * Backups of a running three-node cluster taken the way an operator would: `curl -o` against a
 * follower while clients keep writing, and `edgeraft backup`. The archives are checked with the
 * real `tar` and `sha256sum`, and their state is decoded key by key.
 *
 * What must hold (DESIGN.md, "Backup and restore"): the archive contains every write
 * acknowledged before the request was sent, is a point-in-time copy at the index its headers
 * and manifest name, and writes keep being acknowledged while it streams.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  Cluster,
  delay,
  freePort,
  type NodeProcess,
  put,
  runEdgeraft,
  runTool,
  statusOf,
} from "./cluster_harness.ts";
import {
  curlDownload,
  exists,
  extractAndCheck,
  loadValues,
  readManifest,
  readStateFile,
} from "./backup_helpers.ts";

/** One acknowledged write of the live writers. */
interface Ack {
  readonly value: string;
  readonly revision: number;
  /** `performance.now()` when the request was sent and when its 200 arrived. */
  readonly sentAt: number;
  readonly ackedAt: number;
}

/** Writers PUTting unique keys through every node in turn (except those in `avoid`) until
 * stopped. */
function startWriters(
  nodes: readonly NodeProcess[],
  writers: number,
  avoid: ReadonlySet<NodeProcess>,
): { acked: Map<string, Ack>; stop: () => Promise<number> } {
  const acked = new Map<string, Ack>();
  let stopped = false;
  let attempts = 0;
  const loops = Array.from({ length: writers }, async (_, w) => {
    for (let i = 0; !stopped; i++) {
      const key = `live/w${w}/${String(i).padStart(6, "0")}`;
      const value = `live value ${w}-${i}`;
      const sentAt = performance.now();
      attempts++;
      try {
        const usable = nodes.filter((n) => !avoid.has(n));
        const answer = await put(usable[(w + i) % usable.length]!.url, key, value, {
          timeoutMs: 5000,
        });
        if (answer.status === 200) {
          acked.set(key, {
            value,
            revision: answer.body.revision as number,
            sentAt,
            ackedAt: performance.now(),
          });
        }
      } catch {
        await delay(20);
      }
    }
  });
  return {
    acked,
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
      return attempts;
    },
  };
}

Deno.test("curl -o against a follower while writers run: every earlier write is in the archive, writes keep flowing", async () => {
  const cluster = await Cluster.create(3);
  const work = await Deno.makeTempDir({ prefix: "edgeraft-backup-it-" });
  let writers: ReturnType<typeof startWriters> | null = null;
  try {
    await cluster.start();
    const leader = await cluster.waitLeader();
    const follower = cluster.others(leader)[0]!;
    // 32 MiB of incompressible values, so the archive takes a while to stream.
    const bulk = await loadValues(leader.url, {
      prefix: "bulk",
      count: 128,
      bytes: 256 * 1024,
      width: 8,
    });

    let requestSentAt = 0;
    let download: Awaited<ReturnType<typeof curlDownload>>;
    const avoid = new Set<NodeProcess>();
    writers = startWriters(cluster.nodes, 6, avoid);
    await delay(500);
    const ackedBeforeStart = writers.acked.size;
    assert.ok(ackedBeforeStart > 0, "the writers acknowledged nothing in 500 ms");

    // The follower falls behind: frozen for 250 ms (less than an election timeout) while the
    // leader and the other follower keep acknowledging writes. The backup request reaches it
    // while it is still frozen, so a follower that served its own applied state instead of
    // forwarding to the leader would miss those writes.
    const archive = `${work}/b.tar`;
    avoid.add(follower);
    const frozenAt = performance.now();
    follower.signal("SIGSTOP");
    let frozen = true;
    try {
      await delay(250);
      // The backup: real curl against the follower, reading at 16 MB/s (about 2 s for 33 MB).
      requestSentAt = performance.now();
      const downloading = curlDownload(`${follower.url}/v1/backup`, archive, {
        headersFile: `${work}/headers.txt`,
        extra: ["--limit-rate", "16M"],
      });
      await delay(50);
      follower.signal("SIGCONT");
      frozen = false;
      avoid.delete(follower);
      download = await downloading;
    } finally {
      if (frozen) follower.signal("SIGCONT");
    }
    const downloadDoneAt = performance.now();
    await delay(200);
    const ackedWrites = writers.acked;
    const attempts = await writers.stop();
    writers = null;

    assert.equal(download.status, 200);
    const index = Number(download.headers.get("x-edgeraft-backup-index"));
    const term = Number(download.headers.get("x-edgeraft-backup-term"));
    assert.ok(index > 0 && term > 0, `headers: ${[...download.headers].join("; ")}`);

    // Standard tools: tar extracts it, sha256sum -c passes.
    const extracted = `${work}/x`;
    await extractAndCheck(archive, extracted);
    const manifest = await readManifest(extracted);
    assert.equal(manifest.index, index);
    assert.equal(manifest.term, term);
    assert.equal(manifest.node_id, leader.id, "served by the leader (the follower forwards)");
    const clusterId = (await statusOf(follower))!.cluster_id as string;
    assert.equal(manifest.cluster_id, clusterId);
    assert.equal(
      download.headers.get("content-disposition"),
      `attachment; filename="edgeraft-${clusterId}-${index}.tar"`,
    );
    assert.equal(download.headers.get("content-type"), "application/x-tar");

    // The state, key by key.
    const state = await readStateFile(`${extracted}/state.kvsnap`);
    assert.equal(state.appliedIndex, index);
    assert.equal(state.keys.size, manifest.state.keys);
    for (const [key, expected] of bulk) {
      const got = state.keys.get(key);
      assert.ok(got !== undefined, `bulk key ${key} missing from the archive`);
      assert.equal(got.sha256, expected.sha256, `value of ${key}`);
      assert.equal(got.revision, expected.revision, `revision of ${key}`);
    }
    let before = 0;
    let whileFrozen = 0;
    let inFlight = 0;
    for (const [key, ack] of ackedWrites) {
      const got = state.keys.get(key);
      if (ack.ackedAt < requestSentAt) {
        before++;
        assert.ok(got !== undefined, `${key} acknowledged before the backup request is missing`);
        if (ack.sentAt > frozenAt) whileFrozen++;
      }
      if (ack.revision <= index) {
        // Committed at or before the backup's index: it is in, with its value and revision.
        assert.ok(got !== undefined, `${key} (revision ${ack.revision} <= ${index}) missing`);
        assert.equal(got.text, ack.value);
        assert.equal(got.revision, ack.revision);
      } else {
        // Committed after the backup's point: a point-in-time copy does not have it.
        assert.equal(got, undefined, `${key} (revision ${ack.revision} > ${index}) is in`);
        if (ack.ackedAt < downloadDoneAt) inFlight++;
      }
    }
    for (const key of state.keys.keys()) {
      assert.ok(key.startsWith("bulk/") || key.startsWith("live/"), `unexpected key ${key}`);
    }
    console.log(
      `backup through ${follower.id}: index ${index}, ${
        (manifest.files[0]!.size / 1e6).toFixed(1)
      } MB state, download ${download.elapsedMs.toFixed(0)} ms; ${before} writes acknowledged ` +
        `before the request (all in; ${whileFrozen} sent while ${follower.id} was frozen), ${inFlight} acknowledged after the backup point while ` +
        `it streamed; ${ackedWrites.size}/${attempts} writes acknowledged in all`,
    );
    assert.ok(before >= ackedBeforeStart);
    assert.ok(whileFrozen >= 5, `only ${whileFrozen} writes acknowledged while frozen`);
    assert.ok(download.elapsedMs > 1000, `the download took ${download.elapsedMs} ms`);
    assert.ok(
      inFlight >= 20,
      `only ${inFlight} writes were acknowledged while the backup streamed`,
    );
  } catch (error) {
    console.error(cluster.dumpLogs());
    throw error;
  } finally {
    await writers?.stop();
    await cluster.destroy();
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("edgeraft backup --from a follower: a verified file (plain and --gzip), and a one-line error when unreachable", async () => {
  const cluster = await Cluster.create(3);
  const work = await Deno.makeTempDir({ prefix: "edgeraft-backup-it-" });
  try {
    await cluster.start();
    const leader = await cluster.waitLeader();
    const follower = cluster.others(leader)[0]!;
    const values = await loadValues(leader.url, { prefix: "cli", count: 200, bytes: 1000 });
    const clusterId = (await statusOf(follower))!.cluster_id as string;

    // Plain, to a named file.
    const file = `${work}/b.tar`;
    const plain = await runEdgeraft(["backup", "--from", follower.url, "-o", file]);
    assert.equal(plain.code, 0, plain.stderr);
    const printed = fieldsOf(plain.stdout);
    assert.equal(printed.get("backup written:"), file);
    const sha = (await runTool("sha256sum", [file])).stdout.split(/\s+/)[0];
    assert.equal(printed.get("sha256"), sha, "printed sha256 = sha256sum of the file");
    assert.equal(printed.get("size"), `${(await Deno.stat(file)).size} bytes`);
    assert.match(printed.get("elapsed") ?? "", /^\d+\.\d\d s \(\d+(\.\d)? MB\/s\)$/);
    assert.equal(await exists(`${file}.partial`), false, "no .partial left");
    const inspect = await runEdgeraft(["inspect", "--json", file]);
    assert.equal(inspect.code, 0, inspect.stderr);
    const inspected = JSON.parse(inspect.stdout) as {
      ok: boolean;
      manifest: { index: number; cluster_id: string; state: { keys: number } };
    };
    assert.equal(inspected.ok, true);
    assert.equal(printed.get("index"), String(inspected.manifest.index));
    assert.equal(inspected.manifest.cluster_id, clusterId);
    assert.equal(inspected.manifest.state.keys, values.size);
    await extractAndCheck(file, `${work}/plain`);
    const state = await readStateFile(`${work}/plain/state.kvsnap`);
    for (const [key, expected] of values) {
      assert.equal(state.keys.get(key)?.sha256, expected.sha256, key);
    }

    // --gzip: gzip -t, tar -xzf and sha256sum -c all pass.
    const gzFile = `${work}/b.tar.gz`;
    const gz = await runEdgeraft(["backup", "--from", follower.url, "--gzip", "-o", gzFile]);
    assert.equal(gz.code, 0, gz.stderr);
    assert.equal(fieldsOf(gz.stdout).get("backup written:"), gzFile);
    assert.equal(await exists(`${gzFile}.partial`), false);
    const gzipTest = await runTool("gzip", ["-t", gzFile]);
    assert.equal(gzipTest.code, 0, gzipTest.stderr);
    await extractAndCheck(gzFile, `${work}/gz`, { gzip: true });
    assert.equal((await readManifest(`${work}/gz`)).cluster_id, clusterId);
    const verifyGz = await runEdgeraft(["verify", gzFile]);
    assert.equal(verifyGz.code, 0, verifyGz.stderr);

    // Without -o: the name from Content-Disposition, in the current directory.
    const here = `${work}/cwd`;
    await Deno.mkdir(here);
    const named = await runEdgeraft(["backup", "--from", follower.url], { cwd: here });
    assert.equal(named.code, 0, named.stderr);
    const index = fieldsOf(named.stdout).get("index");
    assert.ok(await exists(`${here}/edgeraft-${clusterId}-${index}.tar`), named.stdout);

    // Nothing listens: one line on stderr, exit 1, no file and no .partial.
    const nowhere = `http://127.0.0.1:${freePort()}`;
    const lost = `${work}/lost.tar`;
    const failed = await runEdgeraft(["backup", "--from", nowhere, "-o", lost]);
    assert.equal(failed.code, 1);
    assert.equal(failed.stdout, "");
    const lines = failed.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, failed.stderr);
    assert.match(lines[0]!, /^edgeraft backup: .*127\.0\.0\.1/);
    assert.equal(await exists(lost), false);
    assert.equal(await exists(`${lost}.partial`), false);
  } catch (error) {
    console.error(cluster.dumpLogs());
    throw error;
  } finally {
    await cluster.destroy();
    await Deno.remove(work, { recursive: true });
  }
});

/** `backup written: FILE` and `name    value` lines of `edgeraft backup` as a map. */
function fieldsOf(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const written = /^(backup written:) (.*)$/.exec(line);
    if (written !== null) out.set(written[1]!, written[2]!);
    const field = /^(\w+)\s{2,}(.*)$/.exec(line);
    if (field !== null) out.set(field[1]!, field[2]!);
  }
  return out;
}
