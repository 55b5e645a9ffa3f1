/**
 * Online restore and undo, end to end on real processes (docs/BACKUP.md, "Online restore"):
 * `POST /v1/restore` on a follower replaces the whole cluster's state through Raft, keeps the
 * state before as an undo archive on the leader, and POSTing that archive brings it back.
 * Also: unsound archives (422), another cluster's archive (409 without `force`), tokens
 * (401/403), a follower killed with -9 during a restore that converges after a restart, and
 * a leader killed during a restore, after which every node holds the same whole state.
 */

import assert from "node:assert/strict";
import { writeBackupArchive } from "../../src/backup/archive_writer.ts";
import { encodeKvCommand } from "../../src/kv/kv_command.ts";
import { KvStateMachine } from "../../src/kv/kv_state_machine.ts";
import {
  Cluster,
  errorOf,
  get,
  listAll,
  type ListItem,
  type NodeProcess,
  pool,
  put,
  request,
  statusOf,
  waitFor,
} from "./cluster_harness.ts";

const CLIENT_TOKEN = "client-token-0123456789";
const ADMIN_TOKEN = "admin-token-9876543210";
const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` };
const CLIENT = { authorization: `Bearer ${CLIENT_TOKEN}` };

interface RestoreAnswer {
  index: number;
  term: number;
  source_cluster_id: string;
  source_index: number;
  keys: number;
  undo_archive: string;
  undo_index: number;
  node: string;
  chunks: number;
}

/** GET /v1/backup from `node` (admin token), saved to `path`; returns the backup index. */
async function backupTo(node: NodeProcess, path: string, headers = ADMIN): Promise<number> {
  const response = await fetch(`${node.url}/v1/backup`, {
    headers,
    signal: AbortSignal.timeout(60_000),
  });
  if (response.status !== 200) {
    throw new Error(`backup from ${node.id}: ${response.status} ${await response.text()}`);
  }
  const index = Number(response.headers.get("x-edgeraft-backup-index"));
  await Deno.writeFile(path, response.body!);
  return index;
}

/** POST the archive file `path` to `/v1/restore` of `node`. */
async function postRestore(
  node: NodeProcess,
  path: string,
  options: { query?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; text: string }> {
  const file = await Deno.open(path);
  const answer = await request(`${node.url}/v1/restore${options.query ?? ""}`, {
    method: "POST",
    headers: { "content-type": "application/x-tar", ...(options.headers ?? ADMIN) },
    body: file.readable,
    timeoutMs: 120_000,
  });
  return { status: answer.status, text: answer.text };
}

/** key → [value (base64), revision] of every key, read from `node`. */
async function dump(
  node: NodeProcess,
  consistency: "stale" | "linearizable",
): Promise<Map<string, { value: string; revision: number }>> {
  const items: ListItem[] = await listAll(node.url, "", {
    consistency,
    values: true,
    headers: CLIENT,
  });
  return new Map(items.map((i) => [i.key, { value: i.value!, revision: i.revision }]));
}

function valuesOf(map: Map<string, { value: string; revision: number }>): [string, string][] {
  return [...map.entries()].map(([k, v]): [string, string] => [k, v.value]).sort();
}

/** Every running node, caught up, shows exactly `expected` (keys and values), stale and
 * linearizable; returns the leader's dump. */
async function assertEveryNode(
  cluster: Cluster,
  expected: [string, string][],
  what: string,
): Promise<Map<string, { value: string; revision: number }>> {
  let leaderDump: Map<string, { value: string; revision: number }> | null = null;
  const leader = await cluster.waitLeader();
  for (const node of cluster.nodes.filter((n) => n.running)) {
    await cluster.waitCaughtUp(node);
    const stale = await dump(node, "stale");
    assert.deepEqual(valuesOf(stale), expected, `${what}: stale read on ${node.id}`);
    const linearizable = await dump(node, "linearizable");
    assert.deepEqual(valuesOf(linearizable), expected, `${what}: linearizable read via ${node.id}`);
    if (node === leader) leaderDump = stale;
  }
  return leaderDump!;
}

/** An archive of `keys` keys of 4 KiB from cluster "elsewhere", built offline. */
async function writeForeignArchive(path: string, keys: number): Promise<void> {
  const kv = new KvStateMachine();
  for (let i = 0; i < keys; i++) {
    const value = new Uint8Array(4096).fill(i % 256);
    kv.apply(i + 1, encodeKvCommand({ op: "put", key: `big/${i}`, value }));
  }
  const snapshot = kv.snapshot();
  const archive = writeBackupArchive({
    clusterId: "elsewhere",
    nodeId: "x",
    index: snapshot.appliedIndex,
    term: 1,
    membership: { members: [{ id: "x", address: "http://x", voter: true }] },
    state: snapshot,
  });
  await Deno.writeFile(path, archive.stream);
}

function countLogged(node: NodeProcess, msg: string): number {
  return node.jsonLogs().filter((l) => l.msg === msg).length;
}

async function putMany(
  url: string,
  entries: [string, string][],
): Promise<void> {
  await pool(entries.length, 16, async (i) => {
    const [key, value] = entries[i]!;
    const answer = await put(url, key, value, { headers: CLIENT, timeoutMs: 20_000 });
    if (answer.status !== 200) throw new Error(`put ${key}: ${answer.status}`);
  });
}

Deno.test("online restore and undo", async () => {
  const files = await Deno.makeTempDir({ prefix: "edgeraft-restore-it-" });
  await Deno.writeTextFile(`${files}/admin-token`, `${ADMIN_TOKEN}\n`);
  const cluster = await Cluster.create(3, {
    token: CLIENT_TOKEN,
    extraArgs: () => ["--admin-token-file", `${files}/admin-token`],
  });
  const other = await Cluster.create(1);
  try {
    await cluster.start();
    const leader = await cluster.waitLeader();
    const follower = cluster.nodes.find((n) => n !== leader)!;

    // Data set A: 300 keys; then a backup of it, taken through a follower (forwarded).
    const setA: [string, string][] = Array.from(
      { length: 300 },
      (_, i) => [`a/${String(i).padStart(3, "0")}`, `A-${i}-${"x".repeat(i % 50)}`],
    );
    await putMany(leader.url, setA);
    await backupTo(follower, `${files}/a.tar`);
    const stateA = await dump(leader, "linearizable");
    assert.equal(stateA.size, 300);

    // Data set B: new keys, overwrites and a delete.
    const setB: [string, string][] = [
      ...Array.from({ length: 40 }, (_, i): [string, string] => [`b/${i}`, `B-${i}`]),
      ...Array.from({ length: 30 }, (_, i): [string, string] => [setA[i]![0], `B-over-${i}`]),
    ];
    await putMany(leader.url, setB);
    const deleted = await request(`${leader.url}/v1/kv/a%2F299`, {
      method: "DELETE",
      headers: CLIENT,
    });
    assert.equal(deleted.status, 200);
    const stateB = await dump(leader, "linearizable");
    assert.equal(stateB.size, 339);
    const highestB = Math.max(...[...stateB.values()].map((v) => v.revision));

    // Tokens: none → 401, the client token (an admin token is configured) → 403.
    const noToken = await postRestore(follower, `${files}/a.tar`, { headers: {} });
    assert.equal(noToken.status, 401, noToken.text);
    assert.equal(errorOf(noToken).code, "ERR_UNAUTHORIZED");
    const clientToken = await postRestore(leader, `${files}/a.tar`, { headers: CLIENT });
    assert.equal(clientToken.status, 403, clientToken.text);
    assert.equal(errorOf(clientToken).code, "ERR_FORBIDDEN");

    // An unsound archive (one flipped byte in the state): 422, nothing changes.
    const bytes = await Deno.readFile(`${files}/a.tar`);
    bytes[4096]! ^= 0x10;
    await Deno.writeFile(`${files}/flipped.tar`, bytes);
    const unsound = await postRestore(follower, `${files}/flipped.tar`);
    assert.equal(unsound.status, 422, unsound.text);
    assert.equal(errorOf(unsound).code, "ERR_BACKUP_CHECKSUM_MISMATCH");
    assert.deepEqual(valuesOf(await dump(leader, "linearizable")), valuesOf(stateB));

    // Restore A through a follower: 200 with the new index.
    const restore = await postRestore(follower, `${files}/a.tar`);
    assert.equal(restore.status, 200, `${restore.text}\n${cluster.dumpLogs()}`);
    const answer = JSON.parse(restore.text) as RestoreAnswer;
    assert.equal(answer.keys, 300);
    assert.equal(answer.source_cluster_id, (await statusOf(leader, CLIENT))?.cluster_id);
    assert.ok(answer.index > highestB, `restore index ${answer.index} > ${highestB}`);
    const restoringLeader = cluster.node(answer.node);
    assert.ok(
      answer.undo_archive.startsWith(`${restoringLeader.spec.dataDir}/restore/undo-edgeraft-`),
      answer.undo_archive,
    );
    assert.ok((await Deno.stat(answer.undo_archive)).isFile, "the undo archive is on the leader");

    // Every node shows exactly A, every key at the restore's index.
    const afterA = await assertEveryNode(cluster, valuesOf(stateA), "after the restore");
    for (const [key, { revision }] of afterA) {
      assert.equal(revision, answer.index, key);
      assert.ok(revision > (stateB.get(key)?.revision ?? 0), key);
    }
    // New writes get higher revisions; a conditional write on the restored revision works.
    const newWrite = await put(leader.url, "a/000", "C", {
      headers: CLIENT,
      query: `?prev_revision=${answer.index}`,
    });
    assert.equal(newWrite.status, 200, JSON.stringify(newWrite.body));
    assert.ok((newWrite.body.revision as number) > answer.index);
    const restored = await get(follower.url, "a/150", {
      headers: CLIENT,
      query: "?consistency=linearizable",
    });
    assert.equal(restored.revision, answer.index);

    // Undo: POST the undo archive (same cluster, no force) → state B is back.
    const undo = await postRestore(leader, answer.undo_archive);
    assert.equal(undo.status, 200, undo.text);
    const undoAnswer = JSON.parse(undo.text) as RestoreAnswer;
    assert.ok(undoAnswer.index > (newWrite.body.revision as number));
    assert.equal(undoAnswer.source_index, answer.undo_index);
    await assertEveryNode(cluster, valuesOf(stateB), "after the undo");

    // Another cluster's archive: 409 without force, 200 with ?force=true.
    await other.start();
    const otherLeader = await other.waitLeader();
    await putMany(otherLeader.url, [["other/1", "O1"], ["other/2", "O2"]]);
    await backupTo(otherLeader, `${files}/other.tar`, {} as typeof ADMIN);
    const conflict = await postRestore(follower, `${files}/other.tar`);
    assert.equal(conflict.status, 409, conflict.text);
    const conflictError = errorOf(conflict);
    assert.equal(conflictError.code, "ERR_RESTORE_CONFLICT");
    assert.match(conflictError.hint, /force=true/);
    const forced = await postRestore(follower, `${files}/other.tar`, { query: "?force=true" });
    assert.equal(forced.status, 200, forced.text);
    await assertEveryNode(
      cluster,
      [["other/1", "O1"], ["other/2", "O2"]].map(([k, v]) => [
        k!,
        btoa(v!),
      ]) as [string, string][],
      "after the forced restore",
    );

    // A follower killed with -9 during a restore converges after a restart.
    const victim = cluster.nodes.find((n) => n.id !== answer.node && n.running)!;
    const started = postRestore(cluster.node(answer.node), `${files}/a.tar`);
    const startedBefore = countLogged(victim, "restore started");
    assert.ok(
      await waitFor(() => countLogged(victim, "restore started") > startedBefore, 20_000, 5),
      "the follower applied the restore's begin",
    );
    await victim.kill9();
    const during = await started;
    assert.equal(during.status, 200, `${during.text}\n${cluster.dumpLogs()}`);
    await cluster.startNode(victim);
    await assertEveryNode(cluster, valuesOf(stateA), "after a follower's kill -9 and restart");
  } finally {
    await cluster.destroy();
    await other.destroy();
    await Deno.remove(files, { recursive: true }).catch(() => {});
  }
});

Deno.test("a leader killed during a restore leaves every node with the same whole state", async () => {
  const files = await Deno.makeTempDir({ prefix: "edgeraft-restore-it-" });
  const cluster = await Cluster.create(3);
  try {
    await writeForeignArchive(`${files}/big.tar`, 4000);
    await cluster.start();
    const leader = await cluster.waitLeader();
    await putMany(leader.url, Array.from({ length: 50 }, (_, i) => [`old/${i}`, `O${i}`]));
    const before = valuesOf(await dump(leader, "linearizable"));
    const follower = cluster.nodes.find((n) => n !== leader)!;
    const startedBefore = countLogged(follower, "restore started");
    const pending = postRestore(leader, `${files}/big.tar`, { query: "?force=true", headers: {} })
      .catch((error) => ({ status: 0, text: String(error) }));
    assert.ok(
      await waitFor(() => countLogged(follower, "restore started") > startedBefore, 20_000, 5),
      "the follower applied the restore's begin",
    );
    await leader.kill9();
    const answer = await pending;
    assert.notEqual(answer.status, 200, "the leader died before it could answer");

    // The survivors elect a leader; whatever the outcome, all of them hold the same whole
    // state: the old one (the new leader's first entry aborted the restore) or the restored.
    await cluster.waitLeader();
    const survivors = cluster.nodes.filter((n) => n.running);
    const states = [];
    for (const node of survivors) {
      await cluster.waitCaughtUp(node);
      states.push(valuesOf(await dump(node, "stale")));
    }
    assert.deepEqual(states[0], states[1]);
    const restored = states[0]!.length === 4000;
    if (!restored) {
      assert.deepEqual(states[0], before);
      for (const node of survivors) {
        assert.ok(node.logged("restore aborted"), `${node.id} aborted the open restore`);
      }
    }
    // The old leader comes back and converges to the same state.
    await cluster.startNode(leader);
    await cluster.waitCaughtUp(leader);
    assert.deepEqual(valuesOf(await dump(leader, "stale")), states[0]);
  } finally {
    await cluster.destroy();
    await Deno.remove(files, { recursive: true }).catch(() => {});
  }
});

Deno.test("a follower sent a snapshot during a restore gets one from before the begin and replays the chunks", async () => {
  const files = await Deno.makeTempDir({ prefix: "edgeraft-restore-it-" });
  // Snapshots every 20 entries, so the leader compacts its log and a lagging follower needs one;
  // small proposals and a small uncommitted budget, so a restore is many chunks, one in flight.
  const cluster = await Cluster.create(3, {
    extraArgs: () => [
      "--snapshot-entries",
      "20",
      "--value-bytes-max",
      "65536",
      "--uncommitted-bytes-max",
      "262144",
    ],
  });
  try {
    await writeForeignArchive(`${files}/big.tar`, 3000); // 12 MB, about 190 chunks
    await cluster.start();
    const leader = await cluster.waitLeader();
    const lagging = cluster.nodes.find((n) => n !== leader)!;
    await lagging.kill9();
    await putMany(leader.url, Array.from({ length: 120 }, (_, i) => [`old/${i}`, `O${i}`]));
    const startedBefore = countLogged(leader, "restore started");
    const pending = postRestore(leader, `${files}/big.tar`, { query: "?force=true", headers: {} });
    assert.ok(
      await waitFor(() => countLogged(leader, "restore started") > startedBefore, 20_000, 5),
      "the leader applied the restore's begin",
    );
    await cluster.startNode(lagging);
    const answer = await pending;
    assert.equal(answer.status, 200, `${answer.text}\n${cluster.dumpLogs()}`);
    const { index, chunks } = JSON.parse(answer.text) as RestoreAnswer & { begin_index: number };
    assert.ok(chunks > 100, `${chunks} chunks`);
    await cluster.waitCaughtUp(lagging);
    // (Log lines arrive through a pipe: give them a moment.)
    assert.ok(
      await waitFor(() => lagging.logged("snapshot installed"), 5000),
      `it was sent a snapshot\n${cluster.dumpLogs()}`,
    );
    const installed = lagging.jsonLogs().find((l) => l.msg === "snapshot installed")!;
    assert.ok(
      (installed.index as number) < index,
      `the snapshot (${installed.index}) is from before the restore's end (${index})`,
    );
    assert.ok(
      await lagging.waitLogged("restore applied", 5000),
      "the follower replayed the chunks and applied the restore itself",
    );
    const expected = valuesOf(await dump(leader, "linearizable"));
    assert.equal(expected.length, 3000);
    assert.deepEqual(valuesOf(await dump(lagging, "stale")), expected);
  } finally {
    await cluster.destroy();
    await Deno.remove(files, { recursive: true }).catch(() => {});
  }
});
