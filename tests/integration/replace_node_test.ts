/**
 * Node replacement with real processes (docs/ARCHITECTURE.md, "Replacing a node"): a node
 * whose data directory was wiped starts again with the same id, the same `--peers` and
 * `--join`. It stays out of elections (`voting: false` in /v1/status) until it caught up from
 * the leader through InstallSnapshot, serves every key, and then counts as a voter: with the
 * old leader killed, it and the other survivor elect a leader and take writes.
 *
 * A node of a restored cluster needs `--cluster-id` as well: the id its peers derive from the
 * archive differs from the one `--peers` alone gives.
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
  runEdgeraft,
  type StatusJson,
  statusOf,
  waitFor,
  waitHealthy,
} from "./cluster_harness.ts";

type Written = Map<string, { value: string; revision: number }>;

/** Small snapshots, so that 500 writes leave the leader's log compacted past the start. */
const SNAPSHOT_ARGS = ["--snapshot-entries", "50"];

/** Writes `count` keys `prefix/NNNN` through `nodes` (8 at a time), each acknowledged. */
async function writeKeys(
  nodes: readonly NodeProcess[],
  prefix: string,
  count: number,
  into: Written = new Map(),
): Promise<Written> {
  await pool(count, 8, async (i) => {
    const key = `${prefix}/${String(i).padStart(4, "0")}`;
    const value = `${key}=${"v".repeat(40)}`;
    const urls = nodes.map((_, k) => nodes[(i + k) % nodes.length]!.url);
    const answer = await putEventually(urls, key, value, 15_000);
    assert.equal(answer.status, 200, `${key}: ${JSON.stringify(answer.body)}`);
    into.set(key, { value, revision: answer.body.revision as number });
  });
  return into;
}

/** Stale reads on `node` (its own applied state) return exactly the written keys. */
async function assertServes(node: NodeProcess, written: Written, prefixes: string[]) {
  const listed = new Map<string, { value: string; revision: number }>();
  for (const prefix of prefixes) {
    const items = await listAll(node.url, `${prefix}/`, { consistency: "stale", values: true });
    for (const item of items) {
      listed.set(item.key, { value: atob(item.value!), revision: item.revision });
    }
  }
  assert.equal(listed.size, written.size, `${node.id} lists ${listed.size} of ${written.size}`);
  for (const [key, expected] of written) {
    assert.deepEqual(listed.get(key), expected, `${node.id}: ${key}`);
  }
  const last = [...written.keys()].at(-1)!;
  const r = await get(node.url, last, { query: "?consistency=stale" });
  assert.equal(r.status, 200);
  assert.equal(r.text, written.get(last)!.value);
}

/** kill -9 `node`, delete its data directory, start it again with `--join` (and `extra`). */
async function replace(cluster: Cluster, node: NodeProcess, extra: string[] = []) {
  await node.kill9();
  await Deno.remove(node.spec.dataDir, { recursive: true });
  node.start([...cluster.args(node), "--join", ...extra]);
  await waitHealthy(node);
}

/**
 * Polls `node`'s status until it applied `target`; returns every status seen, so the test can
 * check it was not voting before it caught up.
 */
async function watchCatchUp(node: NodeProcess, target: number): Promise<StatusJson[]> {
  const seen: StatusJson[] = [];
  const ok = await waitFor(
    async () => {
      const s = await statusOf(node);
      if (s !== null) seen.push(s);
      return s !== null && s.applied_index >= target && s.voting === true;
    },
    30_000,
    20,
  );
  assert.ok(ok, `${node.id} did not catch up to ${target}: ${JSON.stringify(seen.at(-1))}`);
  return seen;
}

Deno.test("a wiped follower started again with --join recovers everything through InstallSnapshot, then votes", async () => {
  const cluster = await Cluster.create(3, { extraArgs: () => SNAPSHOT_ARGS });
  try {
    await cluster.start();
    const leader = await cluster.waitLeader();
    const written = await writeKeys(cluster.nodes, "before", 500);
    const follower = cluster.others(leader)[0]!;
    await cluster.waitCaughtUp(follower);
    const clusterId = (await statusOf(leader))!.cluster_id;
    const leaderStatus = (await statusOf(leader))!;
    assert.ok(leaderStatus.last_snapshot !== null && leaderStatus.last_snapshot.index > 100);

    await replace(cluster, follower);
    const seen = await watchCatchUp(follower, leaderStatus.commit_index);
    assert.equal(seen[0]!.voting, false, "not eligible to vote right after the start");
    assert.equal(seen[0]!.cluster_id, clusterId, "same cluster id, derived from --peers");
    const firstVoting = seen.findIndex((s) => s.voting === true);
    assert.ok(
      seen.slice(0, firstVoting).every((s) => s.voting === false),
      "voting only once caught up",
    );
    assert.ok(
      await follower.waitLogged(
        "joining an existing cluster: no vote until caught up from the leader",
      ),
    );
    assert.ok(await follower.waitLogged("snapshot received"), follower.logs.slice(-30).join("\n"));
    assert.ok(await follower.waitLogged("snapshot installed"));
    assert.ok(await follower.waitLogged("caught up from the leader: voting again"));
    const order = follower.jsonLogs().map((l) => l.msg);
    assert.ok(
      order.lastIndexOf("snapshot received") <
        order.lastIndexOf("caught up from the leader: voting again"),
    );
    await assertServes(follower, written, ["before"]);

    // It participates: the old leader goes, the replaced node and the other survivor elect a
    // leader between them and take writes.
    await leader.kill9();
    const newLeader = await cluster.waitLeader();
    assert.notEqual(newLeader, leader);
    const survivors = cluster.nodes.filter((n) => n.running);
    assert.deepEqual(
      survivors.map((n) => n.id).sort(),
      [follower.id, cluster.others(follower)[0]!.id].sort(),
    );
    await writeKeys(survivors, "after", 50, written);
    await cluster.waitCaughtUp(follower);
    await assertServes(follower, written, ["before", "after"]);

    // A restart keeps it a voter (the marker was cleared), and --join is now ignored.
    await follower.kill9();
    follower.start([...cluster.args(follower), "--join"]);
    await waitHealthy(follower);
    assert.ok(
      await follower.waitLogged(
        "--join ignored: the data directory is already initialised (it only bootstraps an empty one)",
      ),
    );
    const status = await statusOf(follower);
    assert.equal(status?.voting, true);
  } catch (error) {
    console.error(cluster.dumpLogs());
    throw error;
  } finally {
    await cluster.destroy();
  }
});

Deno.test("a node of a restored cluster is replaced with --join --cluster-id", async () => {
  const source = await Cluster.create(3);
  let restored: Cluster | null = null;
  const work = await Deno.makeTempDir({ prefix: "edgeraft-replace-" });
  try {
    await source.start();
    const sourceLeader = await source.waitLeader();
    const written = await writeKeys(source.nodes, "source", 100);
    const archive = `${work}/backup.tar`;
    const response = await fetch(`${sourceLeader.url}/v1/backup`, {
      signal: AbortSignal.timeout(30_000),
    });
    assert.equal(response.status, 200);
    await Deno.writeFile(archive, response.body!);
    await Promise.all(source.nodes.map((n) => n.kill9()));

    restored = await Cluster.createNamed(["r1", "r2", "r3"], { extraArgs: () => SNAPSHOT_ARGS });
    for (const node of restored.nodes) {
      const done = await runEdgeraft([
        "restore",
        archive,
        "--data-dir",
        node.spec.dataDir,
        "--id",
        node.id,
        "--peers",
        restored.peersFlag,
      ]);
      assert.equal(done.code, 0, done.stderr);
    }
    await restored.start();
    const leader = await restored.waitLeader();
    await writeKeys(restored.nodes, "restored", 200, written);
    const clusterId = (await statusOf(leader))!.cluster_id as string;
    const target = restored.others(leader)[0]!;
    await restored.waitCaughtUp(target);

    // Without --cluster-id the empty node derives another id from --peers: its peers refuse
    // its messages and it cannot catch up.
    await replace(restored, target);
    const wrong = (await statusOf(target))!;
    assert.notEqual(wrong.cluster_id, clusterId);
    assert.equal(wrong.voting, false);

    await replace(restored, target, ["--cluster-id", clusterId]);
    const commit = (await statusOf(leader))!.commit_index;
    await watchCatchUp(target, commit);
    assert.equal((await statusOf(target))!.cluster_id, clusterId);
    assert.ok(await target.waitLogged("snapshot received"));
    await assertServes(target, written, ["source", "restored"]);
  } catch (error) {
    console.error(restored?.dumpLogs() ?? source.dumpLogs());
    throw error;
  } finally {
    await source.destroy();
    await restored?.destroy();
    await Deno.remove(work, { recursive: true });
  }
});
