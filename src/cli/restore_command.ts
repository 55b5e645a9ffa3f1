/**
 * `edgeraft restore FILE --data-dir DIR --id ID --peers ID=URL,... [--force]`: disaster
 * recovery into a new cluster ("restore first, then form the cluster"). Verifies the archive
 * completely, then builds DIR seeded with the backup's state at its index and the new
 * membership (src/node/restore_data_dir.ts). Run it on every new node with the same archive
 * and `--peers`, then start the nodes with `edgeraft serve`.
 *
 * What it gives up: the new cluster has a new cluster id, so nodes of the old cluster cannot
 * join it, and anything written to the old cluster after the backup's index is not in it.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { verifyArchive } from "../backup/archive_verifier.ts";
import { openArchiveState } from "../backup/archive_state.ts";
import { EdgeraftError } from "../errors.ts";
import { parsePeers } from "../node/config.ts";
import { restoreDataDir } from "../node/restore_data_dir.ts";

/** Runs the command; returns the exit code (0 ok, 1 failed, 2 usage). */
export async function runRestore(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        "data-dir": { type: "string" },
        id: { type: "string" },
        peers: { type: "string" },
        force: { type: "boolean" },
      },
    });
  } catch (error) {
    console.error(`edgeraft restore: ${(error as Error).message}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const file = positionals[0];
  const problems: string[] = [];
  if (file === undefined || positionals.length > 1) problems.push("give exactly one archive FILE");
  const dataDir = values["data-dir"] ?? Deno.env.get("EDGERAFT_DATA_DIR");
  const id = values.id ?? Deno.env.get("EDGERAFT_ID");
  if (dataDir === undefined) problems.push("--data-dir DIR is required");
  if (id === undefined) problems.push("--id ID is required");
  const peers = parsePeers(values.peers ?? Deno.env.get("EDGERAFT_PEERS"), "--peers", problems);
  if (peers.length === 0 && !problems.some((p) => p.startsWith("--peers"))) {
    problems.push("--peers ID=URL,... is required (the new cluster's members)");
  }
  if (id !== undefined && peers.length > 0 && !peers.some((p) => p.id === id)) {
    problems.push(`--peers does not name this node "${id}"`);
  }
  if (problems.length > 0) {
    for (const problem of problems) console.error(`edgeraft restore: ${problem}`);
    return 2;
  }

  const started = performance.now();
  let handle: Deno.FsFile;
  try {
    handle = await Deno.open(file!);
  } catch (error) {
    console.error(`edgeraft restore: cannot open ${file}: ${(error as Error).message}`);
    return 1;
  }
  const report = await verifyArchive(handle.readable);
  if (!report.ok || report.manifest === null) {
    const e = report.error;
    console.error(
      `edgeraft restore: refusing unsound archive ${file}: ${e?.code} (${
        e?.file ?? "archive"
      }: ${e?.check}) ${e?.message}; nothing was changed`,
    );
    return 1;
  }
  const manifest = report.manifest;
  const stateFile = manifest.files[0]!;
  try {
    const result = await restoreDataDir({
      clusterId: manifest.cluster_id,
      index: manifest.index,
      term: manifest.term,
      stateSize: stateFile.size,
      stateSha256: stateFile.sha256,
      openState: async () => (await openArchiveState((await Deno.open(file!)).readable)).body,
    }, {
      dataDir: dataDir!,
      id: id!,
      peers: peers.map((p) => ({ id: p.id, address: p.url, voter: true })),
      force: values.force === true,
    });
    const seconds = (performance.now() - started) / 1000;
    console.log(`restored ${file} into ${result.dataDir}`);
    console.log(`node            ${id}`);
    console.log(`cluster         ${result.clusterId} (new; restored from ${manifest.cluster_id})`);
    console.log(`index           ${result.index} (term ${result.term})`);
    console.log(`keys            ${manifest.state.keys}`);
    console.log(`elapsed         ${seconds.toFixed(2)} s`);
    console.log(
      `next: run this on every node of --peers, then start each with ` +
        `edgeraft serve --id ID --data-dir DIR --listen HOST:PORT`,
    );
    return 0;
  } catch (error) {
    const code = error instanceof EdgeraftError ? `${error.code}: ` : "";
    console.error(`edgeraft restore: ${code}${(error as Error).message}; nothing was changed`);
    return 1;
  }
}
