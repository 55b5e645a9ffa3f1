/**
 * Online restore through a real node driver, in process: one-node clusters (the node elects
 * itself) on temporary data directories, with a transport that delivers nothing.
 */

import assert from "node:assert/strict";
import { verifyArchive } from "../../src/backup/archive_verifier.ts";
import { writeBackupArchive } from "../../src/backup/archive_writer.ts";
import { BackupError, PayloadTooLargeError, RestoreConflictError } from "../../src/errors.ts";
import { createHash } from "node:crypto";
import { OnlineRestore } from "../../src/node/online_restore.ts";
import { openNode } from "../../src/node/open_node.ts";
import type { PeerTransport } from "../../src/node/peer_transport.ts";
import type { RaftNode } from "../../src/node/raft_node.ts";
import { cleanRestoreDir, restoreDir, spoolUpload } from "../../src/node/restore_files.ts";
import { createLogger, type LogFields } from "../../src/util/logger.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

const nullTransport: PeerTransport = {
  send() {},
  sendSnapshot: () => Promise.resolve(false),
  setMembers() {},
  close: () => Promise.resolve(),
};

interface TestNode {
  node: RaftNode;
  dataDir: string;
  logs: { msg: string; fields: LogFields }[];
}

async function startNode(
  dataDir: string,
  options: { address?: string; snapshotEntries?: number; logs?: TestNode["logs"] } = {},
): Promise<TestNode> {
  const logs = options.logs ?? [];
  const logger = createLogger({
    level: "info",
    sink: (line) => {
      const record = JSON.parse(line) as { msg: string } & LogFields;
      logs.push({ msg: record.msg, fields: record });
    },
  });
  const node = await openNode({
    id: "n1",
    dataDir,
    peers: [{ id: "n1", address: options.address ?? "http://127.0.0.1:1", voter: true }],
    tickMs: 10,
    storage: {
      segmentBytes: 4 * 1024 * 1024,
      preallocateSegments: false,
      snapshotEntries: options.snapshotEntries ?? 0,
      snapshotIntervalS: 0,
      snapshotOnClose: false,
    },
    compactionMarginEntries: 0,
    requestTimeoutMs: 5000,
    valueBytesMax: 1024 * 1024,
    logger,
  });
  node.start(nullTransport);
  const deadline = Date.now() + 5000;
  while (node.status().role !== "leader" || !node.ready()) {
    if (Date.now() > deadline) throw new Error("no leader");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { node, dataDir, logs };
}

async function putAll(node: RaftNode, entries: [string, string][]): Promise<void> {
  for (const [key, value] of entries) await node.put(key, enc.encode(value));
}

async function contents(node: RaftNode): Promise<Map<string, { value: string; revision: number }>> {
  const out = new Map<string, { value: string; revision: number }>();
  const page = await node.list({ prefix: "", limit: 100_000, values: true }, "linearizable");
  for (const item of page.items) {
    out.set(item.key, { value: dec.decode(item.value), revision: item.revision });
  }
  return out;
}

/** A backup archive of `node` written to `path`. */
async function backup(node: RaftNode, path: string): Promise<void> {
  const view = await node.backupView({ stale: false });
  const archive = writeBackupArchive({ ...view, state: view.snapshot });
  await Deno.writeFile(path, archive.stream);
  await archive.done;
}

function waitFor(condition: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const poll = () => {
      if (condition()) return resolve();
      if (Date.now() > deadline) return reject(new Error("condition not met in time"));
      setTimeout(poll, 10);
    };
    poll();
  });
}

Deno.test("online restore replaces the state at a new index and the undo archive brings it back", async () => {
  const root = await Deno.makeTempDir({ prefix: "edgeraft-restore-" });
  const { node, dataDir, logs } = await startNode(`${root}/n1`);
  try {
    const setA: [string, string][] = Array.from({ length: 200 }, (_, i) => [`a/${i}`, `A${i}`]);
    await putAll(node, setA);
    await backup(node, `${root}/a.tar`);
    const stateA = await contents(node);
    await putAll(node, [["a/1", "B1"], ["a/2", "B2"], ["b/1", "new"], ["b/2", "new"]]);
    await node.delete("a/3");
    const stateB = await contents(node);
    const highestB = Math.max(...[...stateB.values()].map((v) => v.revision));

    const restorer = new OnlineRestore(node, { dataDir });
    const result = await restorer.run(`${root}/a.tar`);
    assert.equal(result.keys, 200);
    assert.equal(result.sourceClusterId, node.clusterId);
    assert.equal(result.sourceIndex, stateA.get("a/199")!.revision + 0);
    assert.ok(result.index > highestB);
    assert.ok(result.chunks >= 1);
    assert.equal(result.node, "n1");
    const restored = await contents(node);
    assert.deepEqual([...restored.keys()].sort(), [...stateA.keys()].sort());
    for (const [key, { value, revision }] of restored) {
      assert.equal(value, stateA.get(key)!.value, key);
      assert.equal(revision, result.index, key);
    }
    assert.equal(node.status().appliedIndex >= result.index, true);
    assert.ok(logs.some((l) => l.msg === "restore applied"));

    // The undo archive is a sound backup of state B, at the index before the restore began.
    assert.ok(result.undoArchive.startsWith(restoreDir(dataDir) + "/undo-edgeraft-"));
    const report = await verifyArchive((await Deno.open(result.undoArchive)).readable);
    assert.equal(report.ok, true);
    assert.equal(report.manifest?.index, result.undoIndex);
    assert.equal(report.manifest?.state.keys, stateB.size);
    assert.ok(result.undoIndex < result.beginIndex);

    // New writes get revisions above the restore.
    const write = await node.put("after", enc.encode("x"));
    assert.ok(write.revision > result.index);

    // Undo: POSTing the undo archive (same cluster) brings state B back, at a newer index.
    const undone = await restorer.run(result.undoArchive);
    assert.ok(undone.index > write.revision);
    const back = await contents(node);
    assert.deepEqual(
      [...back.entries()].map(([k, v]) => [k, v.value]).sort(),
      [...stateB.entries()].map(([k, v]) => [k, v.value]).sort(),
    );
  } finally {
    await node.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("an unsound archive or another cluster's is refused before anything changes", async () => {
  const root = await Deno.makeTempDir({ prefix: "edgeraft-restore-" });
  const a = await startNode(`${root}/n1`);
  const other = await startNode(`${root}/other`, { address: "http://127.0.0.1:2" });
  try {
    await putAll(a.node, [["k", "mine"]]);
    await putAll(other.node, [["k", "theirs"], ["o", "1"]]);
    await backup(other.node, `${root}/other.tar`);
    await backup(a.node, `${root}/mine.tar`);
    assert.notEqual(a.node.clusterId, other.node.clusterId);
    const restorer = new OnlineRestore(a.node, { dataDir: a.dataDir });
    const appliedBefore = a.node.status().appliedIndex;

    // A flipped byte in the state: 422-class BackupError, nothing proposed, no undo archive.
    const bytes = await Deno.readFile(`${root}/mine.tar`);
    bytes[700]! ^= 0x01;
    await Deno.writeFile(`${root}/flipped.tar`, bytes);
    await assert.rejects(
      () => restorer.run(`${root}/flipped.tar`),
      (error: unknown) =>
        error instanceof BackupError && error.code === "ERR_BACKUP_CHECKSUM_MISMATCH",
    );
    // Another cluster's archive: refused without force.
    await assert.rejects(
      () => restorer.run(`${root}/other.tar`),
      (error: unknown) =>
        error instanceof RestoreConflictError && error.status === 409 &&
        /force=true/.test(error.hint) && error.message.includes(other.node.clusterId),
    );
    assert.equal(a.node.status().appliedIndex, appliedBefore, "nothing was proposed");
    await Deno.mkdir(restoreDir(a.dataDir), { recursive: true });
    assert.deepEqual([...Deno.readDirSync(restoreDir(a.dataDir))], [], "no undo archive");
    assert.equal(dec.decode((await a.node.get("k", "linearizable"))?.value), "mine");

    // With force it is restored.
    const result = await restorer.run(`${root}/other.tar`, { force: true });
    assert.equal(result.sourceClusterId, other.node.clusterId);
    assert.equal(dec.decode((await a.node.get("k", "linearizable"))?.value), "theirs");
    assert.equal((await a.node.get("o", "linearizable"))?.revision, result.index);
  } finally {
    await a.node.close();
    await other.node.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("no snapshot is taken while a restore is open; one follows its end", async () => {
  const root = await Deno.makeTempDir({ prefix: "edgeraft-restore-" });
  const { node } = await startNode(`${root}/n1`, { snapshotEntries: 5 });
  try {
    await putAll(node, Array.from({ length: 3 }, (_, i) => [`k/${i}`, "v"]));
    const source = node.stateMachine.snapshot();
    const bytes = new Uint8Array(await new Response(source.stream).arrayBuffer());
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    const begin = node.proposeRestoreCommand({
      op: "restore_begin",
      restoreId: "manual",
      size: bytes.length,
      sha256,
      sourceClusterId: node.clusterId,
      sourceIndex: source.appliedIndex,
    });
    assert.ok(begin.ok);
    await begin.applied;
    const snapshotBefore = node.status().lastSnapshot?.index ?? 0;
    assert.ok(snapshotBefore < begin.index);
    // Far more entries than snapshotEntries while the restore is open: no snapshot.
    await putAll(node, Array.from({ length: 20 }, (_, i) => [`w/${i}`, "v"]));
    await new Promise((resolve) => setTimeout(resolve, 100)); // ten ticks
    assert.equal(node.status().lastSnapshot?.index ?? 0, snapshotBefore);
    assert.equal(node.openRestore()?.restoreId, "manual");
    const chunk = node.proposeRestoreCommand({
      op: "restore_chunk",
      restoreId: "manual",
      seq: 0,
      bytes,
    });
    assert.ok(chunk.ok);
    const end = node.proposeRestoreCommand({ op: "restore_end", restoreId: "manual" });
    assert.ok(end.ok);
    const result = await end.applied;
    assert.equal(result.ok && result.restored?.keys, 3);
    assert.equal(node.openRestore(), null);
    await waitFor(() => (node.status().lastSnapshot?.index ?? 0) >= end.index);
    assert.equal(await node.get("w/1", "linearizable"), null, "writes during the restore replaced");
    assert.equal((await node.get("k/1", "linearizable"))?.revision, end.index);
  } finally {
    await node.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a restart with a restore open replays it from the log and the new term aborts it", async () => {
  const root = await Deno.makeTempDir({ prefix: "edgeraft-restore-" });
  const logs: TestNode["logs"] = [];
  let { node } = await startNode(`${root}/n1`, { snapshotEntries: 4, logs });
  try {
    await putAll(node, Array.from({ length: 10 }, (_, i) => [`k/${i}`, "before"]));
    await waitFor(() => node.status().lastSnapshot !== null);
    const bytes = new Uint8Array(
      await new Response(node.stateMachine.snapshot().stream).arrayBuffer(),
    );
    const begin = node.proposeRestoreCommand({
      op: "restore_begin",
      restoreId: "interrupted",
      size: bytes.length,
      sha256: createHash("sha256").update(bytes).digest("hex"),
      sourceClusterId: "x",
      sourceIndex: node.stateMachine.appliedIndex,
    });
    assert.ok(begin.ok);
    const chunk = node.proposeRestoreCommand({
      op: "restore_chunk",
      restoreId: "interrupted",
      seq: 0,
      bytes: bytes.subarray(0, 100),
    });
    assert.ok(chunk.ok);
    await chunk.applied;
    await putAll(node, [["k/0", "during"]]);
    const snapshotAtClose = node.status().lastSnapshot!.index;
    assert.ok(snapshotAtClose < begin.index, "no snapshot inside the open restore");
    await node.close({ transferLeadership: false });

    ({ node } = await startNode(`${root}/n1`, { snapshotEntries: 4, logs }));
    // Replayed from the snapshot before the begin; the restarted leader's no-op (a new term)
    // aborted the restore, exactly as it would on every node.
    assert.equal(node.openRestore(), null);
    const abort = logs.find((l) => l.msg === "restore aborted");
    assert.match(String(abort?.fields.reason), /leader changed/);
    assert.equal(dec.decode((await node.get("k/0", "linearizable"))?.value), "during");
    assert.equal(dec.decode((await node.get("k/5", "linearizable"))?.value), "before");
  } finally {
    await node.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("leftover upload and undo temporaries are removed at start-up", async () => {
  const root = await Deno.makeTempDir({ prefix: "edgeraft-restore-" });
  try {
    const dir = restoreDir(`${root}/d`);
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(`${dir}/upload-1.tmp`, "x");
    await Deno.writeTextFile(`${dir}/undo-edgeraft-c-5.tar.tmp`, "x");
    await Deno.writeTextFile(`${dir}/undo-edgeraft-c-4.tar`, "kept");
    assert.deepEqual(cleanRestoreDir(`${root}/d`), ["undo-edgeraft-c-5.tar.tmp", "upload-1.tmp"]);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["undo-edgeraft-c-4.tar"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("an archive changed after verification fails the restore; nothing changes, no undo kept", async () => {
  const root = await Deno.makeTempDir({ prefix: "edgeraft-restore-" });
  const { node, dataDir, logs } = await startNode(`${root}/n1`);
  try {
    await putAll(node, Array.from({ length: 50 }, (_, i) => [`a/${i}`, `A${i}`.repeat(50)]));
    await backup(node, `${root}/a.tar`);
    await putAll(node, [["b", "B"]]);
    const before = await contents(node);
    // Between verification and the second read (the undo point is taken in between), a byte
    // of the state changes on disk: the chunks no longer decode or match the begin's SHA-256.
    const tampering = {
      id: node.id,
      clusterId: node.clusterId,
      status: () => node.status(),
      restoreChunkBytes: () => 1024,
      restoreChunksInFlightMax: () => 2,
      proposeRestoreCommand: node.proposeRestoreCommand.bind(node),
      backupView: async (options: { stale: boolean }) => {
        const bytes = await Deno.readFile(`${root}/a.tar`);
        bytes[2000]! ^= 0x40;
        await Deno.writeFile(`${root}/a.tar`, bytes);
        return await node.backupView(options);
      },
    };
    const restorer = new OnlineRestore(tampering, { dataDir });
    await assert.rejects(
      () => restorer.run(`${root}/a.tar`),
      (error: unknown) =>
        error instanceof Error && "code" in error && error.code === "ERR_RESTORE_FAILED" &&
        /nothing was changed|does not decode|SHA-256/.test(error.message),
    );
    assert.equal(node.openRestore(), null, "the open restore was aborted");
    assert.ok(logs.some((l) => l.msg === "restore aborted"));
    const after = await contents(node);
    assert.deepEqual(after, before);
    assert.deepEqual([...Deno.readDirSync(restoreDir(dataDir))], [], "undo archive removed");
  } finally {
    await node.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("an upload is streamed to disk and refused beyond its limit, leaving nothing", async () => {
  const root = await Deno.makeTempDir({ prefix: "edgeraft-restore-" });
  const body = (chunks: number) =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < chunks; i++) controller.enqueue(new Uint8Array(10).fill(i));
        controller.close();
      },
    });
  try {
    const upload = await spoolUpload(root, body(3), 30);
    assert.equal(upload.size, 30);
    assert.deepEqual(
      (await Deno.readFile(upload.path)).subarray(18, 22),
      new Uint8Array([1, 1, 2, 2]),
    );
    assert.match(upload.path, /\/restore\/upload-[0-9a-f-]+\.tmp$/);
    await upload.remove();
    await assert.rejects(
      () => spoolUpload(root, body(4), 30),
      (error: unknown) => error instanceof PayloadTooLargeError && error.status === 413,
    );
    assert.deepEqual([...Deno.readDirSync(restoreDir(root))], []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a gzip archive restores like a plain one", async () => {
  const root = await Deno.makeTempDir({ prefix: "edgeraft-restore-" });
  const { node, dataDir } = await startNode(`${root}/n1`);
  try {
    await putAll(node, Array.from({ length: 30 }, (_, i) => [`g/${i}`, `G${i}`.repeat(100)]));
    const view = await node.backupView({ stale: false });
    const archive = writeBackupArchive({ ...view, state: view.snapshot, gzip: true });
    await Deno.writeFile(`${root}/g.tar.gz`, archive.stream);
    await archive.done;
    const before = await contents(node);
    await putAll(node, [["g/1", "changed"], ["extra", "x"]]);
    const result = await new OnlineRestore(node, { dataDir }).run(`${root}/g.tar.gz`);
    assert.equal(result.keys, 30);
    const after = await contents(node);
    assert.deepEqual(
      [...after.entries()].map(([k, v]) => [k, v.value]),
      [...before.entries()].map(([k, v]) => [k, v.value]),
    );
  } finally {
    await node.close();
    await Deno.remove(root, { recursive: true });
  }
});
