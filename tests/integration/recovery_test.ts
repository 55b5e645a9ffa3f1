/**
 * Real processes, real files: a follower far behind a compacted log catches up through
 * InstallSnapshot over HTTP, and damaged log files (a torn tail, a flipped byte in an early
 * record) are healed from the leader. The on-disk layout used to damage files is the one of
 * docs/STORAGE.md ("Log segment, version 1").
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  Cluster,
  get,
  listAll,
  type NodeProcess,
  pool,
  putEventually,
  segmentFiles,
  type SegmentRecord,
  segmentRecords,
  statusOf,
  waitFor,
} from "./cluster_harness.ts";

type Written = Map<string, { value: string; revision: number }>;

/**
 * Writes `count` keys `prefix/NNNN` through `nodes` (8 at a time), each acknowledged (retried
 * through 503s while a restarted node learns the leader or a new leader is elected).
 */
async function writeKeys(
  nodes: readonly NodeProcess[],
  prefix: string,
  count: number,
  valueBytes = 16,
  into: Written = new Map(),
): Promise<Written> {
  await pool(count, 8, async (i) => {
    const key = `${prefix}/${String(i).padStart(4, "0")}`;
    const value = `${key}=`.padEnd(valueBytes, String.fromCharCode(97 + (i % 26)));
    const urls = nodes.map((_, k) => nodes[(i + k) % nodes.length]!.url);
    const answer = await putEventually(urls, key, value, 10_000);
    assert.equal(answer.status, 200, `${key}: ${JSON.stringify(answer.body)}`);
    into.set(key, { value, revision: answer.body.revision as number });
  });
  return into;
}

/** Stale reads on `node` (its own applied state) return every written key and revision. */
async function assertServes(node: NodeProcess, written: Written, prefixes: string[]) {
  const listed = new Map<string, { value: string; revision: number }>();
  for (const prefix of prefixes) {
    for (
      const item of await listAll(node.url, `${prefix}/`, { consistency: "stale", values: true })
    ) {
      listed.set(item.key, { value: atob(item.value!), revision: item.revision });
    }
  }
  assert.equal(
    listed.size,
    written.size,
    `${node.id} lists ${listed.size} of ${written.size} keys`,
  );
  for (const [key, expected] of written) {
    assert.deepEqual(listed.get(key), expected, `${node.id}: ${key}`);
  }
  const keys = [...written.keys()];
  for (const key of [keys[0]!, keys[Math.floor(keys.length / 2)]!, keys[keys.length - 1]!]) {
    const r = await get(node.url, key, { query: "?consistency=stale" });
    assert.equal(r.status, 200);
    assert.equal(r.text, written.get(key)!.value);
    assert.equal(r.revision, written.get(key)!.revision);
  }
}

Deno.test("a follower behind the leader's compacted log catches up through InstallSnapshot over HTTP", async () => {
  // Small segments and frequent snapshots, so 500 writes of 3 KiB roll several segments and
  // the leader drops the ones its snapshots cover.
  const cluster = await Cluster.create(3, {
    extraArgs: () => [
      "--snapshot-entries",
      "50",
      "--segment-bytes",
      String(1024 * 1024),
      "--value-bytes-max",
      String(64 * 1024),
    ],
  });
  try {
    await cluster.start();
    const leader = await cluster.waitLeader();
    const follower = cluster.others(leader)[0]!;
    const written = await writeKeys(cluster.nodes, "early", 10, 64);
    await cluster.waitCaughtUp(follower);
    const behind = (await statusOf(follower))!.applied_index;
    await follower.kill9();

    const running = cluster.nodes.filter((n) => n.running);
    await writeKeys(running, "late", 500, 3000, written);

    // The leader took snapshots and its log no longer reaches back to the follower's.
    const leaderStatus = (await statusOf(leader))!;
    assert.ok(leaderStatus.last_snapshot !== null, JSON.stringify(leaderStatus));
    assert.ok(leaderStatus.last_snapshot.index > behind + 50);
    assert.ok(await leader.waitLogged("snapshot taken"));
    let firstSegmentIndex = 0;
    assert.ok(
      await waitFor(async () => {
        const segments = await segmentFiles(leader.spec.dataDir);
        firstSegmentIndex = Number(segments[0]!.slice(-24, -4));
        return firstSegmentIndex > behind + 1;
      }, 5000),
      `leader log still starts at ${firstSegmentIndex}; follower is at ${behind}`,
    );
    console.log(
      `InstallSnapshot: follower at ${behind}, leader snapshot ${leaderStatus.last_snapshot.index}, leader log starts at ${firstSegmentIndex}, commit ${leaderStatus.commit_index}`,
    );

    await cluster.startNode(follower);
    await cluster.waitCaughtUp(follower);
    assert.ok(await follower.waitLogged("snapshot received"), follower.logs.slice(-30).join("\n"));
    assert.ok(await follower.waitLogged("snapshot installed"));
    assert.ok(await leader.waitLogged("snapshot sent"));
    await assertServes(follower, written, ["early", "late"]);
    const after = (await statusOf(follower))!;
    assert.ok(after.last_snapshot !== null && after.last_snapshot.index > behind);
    assert.deepEqual(after.storage_errors, []);

    // Writes keep working with the healed follower in the quorum.
    await writeKeys(cluster.nodes, "after", 20, 16, written);
    await cluster.waitCaughtUp(follower);
    await assertServes(follower, written, ["early", "late", "after"]);

    // kill -9 of the leader, whose log now starts after its snapshots: it recovers from its
    // newest snapshot plus the log suffix and serves everything again.
    await leader.kill9();
    await writeKeys(cluster.nodes.filter((n) => n.running), "final", 20, 16, written);
    await cluster.startNode(leader);
    assert.ok(await leader.waitLogged("state restored from snapshot"));
    await cluster.waitCaughtUp(leader);
    await assertServes(leader, written, ["early", "late", "after", "final"]);
  } catch (error) {
    console.error(cluster.dumpLogs());
    throw error;
  } finally {
    await cluster.destroy();
  }
});

/** The newest segment of `node` and its records (the node must be stopped). */
async function newestSegment(node: NodeProcess) {
  const segments = await segmentFiles(node.spec.dataDir);
  const path = segments[segments.length - 1]!;
  const bytes = await Deno.readFile(path);
  return { path, bytes, records: segmentRecords(bytes) };
}

/** A damage done to a stopped node's newest segment, given the segment's last record. */
type Damage = (path: string, bytes: Uint8Array, last: SegmentRecord) => Promise<void>;

/**
 * Kills `follower`, lets the others take writes, damages its newest segment, restarts it and
 * checks that recovery cut a torn tail (no corruption reported) and that it catches up.
 */
async function tornTailRounds(
  cluster: Cluster,
  follower: NodeProcess,
  written: Written,
  damages: readonly [string, Damage][],
): Promise<void> {
  const prefixes = ["a"];
  for (const [round, [what, damage]] of damages.entries()) {
    await cluster.waitCaughtUp(follower);
    await follower.kill9();
    // The other two keep taking writes meanwhile.
    prefixes.push(`b${round}`);
    await writeKeys(cluster.nodes.filter((n) => n.running), `b${round}`, 20, 16, written);

    const { path, bytes, records } = await newestSegment(follower);
    assert.ok(records.length >= 2, `${path}: ${records.length} records`);
    const last = records[records.length - 1]!;
    await damage(path, bytes, last);

    const cutsBefore = follower.jsonLogs().filter((l) => l.event === "tail_cut").length;
    await cluster.startNode(follower);
    await waitFor(
      () => follower.jsonLogs().filter((l) => l.event === "tail_cut").length > cutsBefore,
      3000,
      20,
    );
    const cuts = follower.jsonLogs().filter((l) => l.event === "tail_cut");
    assert.equal(cuts.length, cutsBefore + 1, `${what}: ${follower.logs.slice(-20).join("\n")}`);
    console.log(`${what}: ${cuts[cuts.length - 1]!.msg}`);
    // A torn tail is what a crash leaves, not corruption: nothing reported or set aside.
    const status = (await statusOf(follower))!;
    assert.deepEqual(status.storage_errors, [], what);
    assert.equal(
      await Deno.stat(`${follower.spec.dataDir}/log/corrupt`).then(() => true, () => false),
      false,
    );
    await cluster.waitCaughtUp(follower, 10_000);
    await assertServes(follower, written, prefixes);
    assert.ok((await statusOf(follower))!.last_log_index >= last.index);
  }
  // And it takes part in the quorum again: with the other follower down, writes commit.
  const leader = await cluster.waitLeader();
  const other = cluster.others(leader).find((n) => n !== follower)!;
  await other.kill9();
  await writeKeys([leader, follower], "c", 10, 16, written);
  await cluster.waitCaughtUp(follower, 10_000);
  await assertServes(follower, written, [...prefixes, "c"]);
}

Deno.test("garbage after the last record of a follower's newest segment is cut at restart", async () => {
  const cluster = await Cluster.create(3);
  try {
    await cluster.start();
    const leader = await cluster.waitLeader();
    const follower = cluster.others(leader)[0]!;
    const written = await writeKeys(cluster.nodes, "a", 40);
    await tornTailRounds(cluster, follower, written, [
      [
        // A batch that was being written when the machine stopped: its first bytes reached
        // the preallocated segment, the rest did not; none of it was acknowledged.
        "garbage after the last record",
        async (path, bytes, last) => {
          const torn = bytes.slice();
          torn.set(crypto.getRandomValues(new Uint8Array(300)), last.offset + last.size);
          await Deno.writeFile(path, torn);
        },
      ],
      [
        "a record header cut short after the last record",
        async (path, bytes, last) => {
          const torn = bytes.slice();
          // A valid-looking start of a record header (magic, version), then nothing.
          torn.set([0x45, 0x52, 0x01, 0x00, 0x10, 0x00, 0x00, 0x00], last.offset + last.size);
          await Deno.writeFile(path, torn);
        },
      ],
    ]);
  } catch (error) {
    console.error(cluster.dumpLogs());
    throw error;
  } finally {
    await cluster.destroy();
  }
});

Deno.test("a follower whose last record was torn gets it back from the leader", async () => {
  const cluster = await Cluster.create(3);
  try {
    await cluster.start();
    const leader = await cluster.waitLeader();
    const follower = cluster.others(leader)[0]!;
    const written = await writeKeys(cluster.nodes, "a", 40);
    await tornTailRounds(cluster, follower, written, [
      [
        // A torn write in a preallocated segment: the record's second half is still zeros.
        "second half of the last record zeroed",
        async (path, bytes, last) => {
          const torn = bytes.slice();
          torn.fill(0, last.offset + Math.floor(last.size / 2), last.offset + last.size);
          await Deno.writeFile(path, torn);
        },
      ],
      [
        // A torn write without preallocation: the file ends inside the last record.
        "file truncated inside the last record",
        async (path, _bytes, last) => {
          await Deno.truncate(path, last.offset + 20);
        },
      ],
    ]);
  } catch (error) {
    console.error(cluster.dumpLogs());
    throw error;
  } finally {
    await cluster.destroy();
  }
});

Deno.test("a flipped byte in an early record: reported, set aside, and healed from the leader", async () => {
  const cluster = await Cluster.create(3);
  try {
    await cluster.start();
    const leader = await cluster.waitLeader();
    const [follower, other] = cluster.others(leader) as [NodeProcess, NodeProcess];
    const written = await writeKeys(cluster.nodes, "a", 30, 40);
    await cluster.waitCaughtUp(follower);
    await follower.kill9();

    // Flip one byte in the payload of the third normal entry of the follower's first
    // segment: a bad record followed by good ones is corruption, not a torn tail.
    const segments = await segmentFiles(follower.spec.dataDir);
    const path = segments[0]!;
    const bytes = await Deno.readFile(path);
    const records = segmentRecords(bytes);
    const normal = records.filter((r) => r.type === 0 && r.payloadLength > 0);
    const victim = normal[2]!;
    assert.ok(victim !== records[records.length - 1], "victim must not be the last record");
    const at = victim.offset + 32 + Math.floor(victim.payloadLength / 2);
    bytes[at] = bytes[at]! ^ 0x5a;
    await Deno.writeFile(path, bytes);

    await writeKeys([leader, other], "b", 30, 40, written);
    await cluster.startNode(follower);

    // Reported on the status page with the file and offset, and logged.
    const status = (await statusOf(follower))!;
    assert.equal(status.storage_errors.length, 1, JSON.stringify(status.storage_errors));
    const problem = status.storage_errors[0]!;
    assert.equal(problem.code, "ERR_LOG_CORRUPT");
    assert.ok(problem.message.includes(path.slice(-24)), problem.message);
    assert.match(problem.message, new RegExp(`at offset ${victim.offset}\\b`));
    assert.ok(await follower.waitLogged("storage damage found at start-up"));
    // The damaged segment was set aside under log/corrupt/.
    const corrupt: string[] = [];
    for await (const e of Deno.readDir(`${follower.spec.dataDir}/log/corrupt`)) {
      corrupt.push(e.name);
    }
    assert.ok(
      corrupt.some((name) => name.startsWith(path.slice(-24) + ".")),
      `log/corrupt holds ${JSON.stringify(corrupt)}`,
    );

    // The cluster keeps taking writes while the follower heals; it gets every key back.
    await writeKeys(cluster.nodes, "c", 30, 40, written);
    await cluster.waitCaughtUp(follower, 10_000);
    await assertServes(follower, written, ["a", "b", "c"]);

    // Healed for real: with the other follower down, the leader's writes commit only with
    // this follower's acknowledgements (it may count towards a quorum again).
    await other.kill9();
    await writeKeys([leader, follower], "d", 10, 40, written);
    await cluster.waitCaughtUp(follower);
    await assertServes(follower, written, ["a", "b", "c", "d"]);
  } catch (error) {
    console.error(cluster.dumpLogs());
    throw error;
  } finally {
    await cluster.destroy();
  }
});
