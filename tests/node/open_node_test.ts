/**
 * Bootstrapping a data directory: `--join` (node replacement) persists the joining marker
 * before the directory counts as initialised, `--cluster-id` overrides the derived id and is
 * checked against an initialised directory (docs/ARCHITECTURE.md, "Replacing a node").
 */

import assert from "node:assert/strict";
import { DataDirError, openNode, type OpenNodeOptions } from "../../src/node/open_node.ts";
import { deriveClusterId, readClusterIdentity } from "../../src/node/cluster_identity.ts";
import { JOINING_LOST_AFTER } from "../../src/raft/types.ts";
import { FileHardStateStore } from "../../src/storage/file_hard_state_store.ts";
import { DenoFileSystem } from "../../src/storage/fs.ts";
import { createLogger } from "../../src/util/logger.ts";

const PEERS = [
  { id: "n1", address: "http://127.0.0.1:7071", voter: true },
  { id: "n2", address: "http://127.0.0.1:7072", voter: true },
  { id: "n3", address: "http://127.0.0.1:7073", voter: true },
];

function options(dataDir: string, lines: string[], extra: Partial<OpenNodeOptions> = {}) {
  return {
    id: "n2",
    dataDir,
    peers: PEERS,
    tickMs: 50,
    requestTimeoutMs: 1000,
    valueBytesMax: 1024,
    storage: { segmentBytes: 64 * 1024, preallocateSegments: false },
    logger: createLogger({ level: "info", sink: (line) => lines.push(line) }),
    ...extra,
  } satisfies OpenNodeOptions;
}

function messages(lines: readonly string[]): string[] {
  return lines.map((line) => JSON.parse(line).msg as string);
}

async function withDir(run: (dir: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "edgeraft-open-node-" });
  try {
    await run(`${root}/data`);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

function storedLostAfter(dir: string): number {
  const store = FileHardStateStore.open(new DenoFileSystem(), dir);
  const lostAfter = store.load().lostAfter;
  store.close();
  return lostAfter;
}

Deno.test("--join bootstraps an empty data directory with the joining marker, kept across restarts", async () => {
  await withDir(async (dir) => {
    const lines: string[] = [];
    const node = await openNode(options(dir, lines, { join: true }));
    const status = node.status();
    assert.equal(status.voting, false, "not eligible to vote before it caught up");
    assert.equal(status.clusterId, deriveClusterId({ members: PEERS }));
    await node.close();
    assert.equal(storedLostAfter(dir), JOINING_LOST_AFTER);
    assert.ok(
      messages(lines).includes(
        "joining an existing cluster: no vote until caught up from the leader",
      ),
    );

    // A restart without --join (the flag only bootstraps) is still joining: the marker is on
    // disk until the node caught up.
    const again = await openNode(options(dir, lines, { join: false }));
    assert.equal(again.status().voting, false);
    await again.close();
    assert.equal(storedLostAfter(dir), JOINING_LOST_AFTER);
  });
});

Deno.test("--join on an initialised data directory is ignored with a warning", async () => {
  await withDir(async (dir) => {
    const lines: string[] = [];
    const first = await openNode(options(dir, lines));
    assert.equal(first.status().voting, true);
    await first.close();
    const again = await openNode(options(dir, lines, { join: true }));
    assert.equal(again.status().voting, true, "an initialised node keeps voting");
    await again.close();
    assert.equal(storedLostAfter(dir), 0);
    const warning = lines.map((l) => JSON.parse(l)).find((l) => l.level === "warn");
    assert.match(warning?.msg ?? "", /--join ignored: the data directory is already initialised/);
  });
});

Deno.test("--cluster-id replaces the derived id at bootstrap and must match afterwards", async () => {
  await withDir(async (dir) => {
    const lines: string[] = [];
    const node = await openNode(options(dir, lines, { join: true, clusterId: "0123456789abcdef" }));
    assert.equal(node.clusterId, "0123456789abcdef");
    assert.equal(node.status().clusterId, "0123456789abcdef");
    await node.close();
    assert.equal(readClusterIdentity(new DenoFileSystem(), dir)?.clusterId, "0123456789abcdef");

    const same = await openNode(options(dir, lines, { clusterId: "0123456789abcdef" }));
    await same.close();
    const unset = await openNode(options(dir, lines, { clusterId: null }));
    assert.equal(unset.clusterId, "0123456789abcdef");
    await unset.close();
    await assert.rejects(
      openNode(options(dir, lines, { clusterId: "fedcba9876543210" })),
      (error: Error) =>
        error instanceof DataDirError &&
        /belongs to cluster 0123456789abcdef, not --cluster-id fedcba9876543210/.test(
          error.message,
        ),
    );
  });
});

Deno.test("an empty data directory with --join needs --peers; an interrupted bootstrap is refused", async () => {
  await withDir(async (dir) => {
    const lines: string[] = [];
    await assert.rejects(
      openNode(options(dir, lines, { join: true, peers: null })),
      /is empty: give --peers to bootstrap it as a member of the existing cluster/,
    );
    // A crash after the marker, before the identity file: the directory is not used as is.
    await Deno.mkdir(dir, { recursive: true });
    FileHardStateStore.open(new DenoFileSystem(), dir).close();
    await assert.rejects(
      openNode(options(dir, lines, { join: true })),
      /holds files but no cluster identity; its bootstrap was interrupted: empty it/,
    );
  });
});
