/**
 * `deno task cluster`: starts a local three-node cluster on 127.0.0.1 for trying edgeraft,
 * prints the curl commands to try, and stops every node on Ctrl-C.
 *
 * Data lives in `.cluster/` (git-ignored) and survives restarts of this command; pass
 * `--fresh` to start from empty directories, `--base-port N` to move the ports (N+1..N+3).
 *
 * @module
 */

import { parseArgs } from "node:util";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const ROOT = new URL("../.cluster/", import.meta.url).pathname;

async function main(args: string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args,
      options: { fresh: { type: "boolean" }, "base-port": { type: "string", default: "7070" } },
    }).values;
  } catch (error) {
    console.error(`cluster: ${(error as Error).message}`);
    return 2;
  }
  const base = Number(values["base-port"]);
  if (!Number.isInteger(base) || base < 1 || base > 65532) {
    console.error(`cluster: --base-port must be an integer from 1 to 65532`);
    return 2;
  }
  if (values.fresh) await Deno.remove(ROOT, { recursive: true }).catch(() => {});
  await Deno.mkdir(ROOT, { recursive: true });

  const nodes = [1, 2, 3].map((i) => ({
    id: `n${i}`,
    port: base + i,
    url: `http://127.0.0.1:${base + i}`,
    dataDir: `${ROOT}n${i}`,
  }));
  const peers = nodes.map((n) => `${n.id}=${n.url}`).join(",");
  const children = nodes.map((n) =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        MAIN,
        "serve",
        "--id",
        n.id,
        "--data-dir",
        n.dataDir,
        "--listen",
        `127.0.0.1:${n.port}`,
        "--peers",
        peers,
        "--log-format",
        "text",
      ],
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn()
  );

  // Ctrl-C in a terminal reaches the whole process group, children included; forwarding it
  // again would count as a second signal (exit without a clean shutdown) in each node.
  const stop = (signal: Deno.Signal) => {
    if (signal === "SIGINT" && Deno.stdin.isTerminal()) return;
    for (const child of children) {
      try {
        child.kill("SIGTERM");
      } catch {
        // already gone
      }
    }
  };
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));

  const first = nodes[0]!.url;
  const second = nodes[1]!.url;
  const third = nodes[2]!.url;
  setTimeout(() => {
    console.log(`
edgeraft: three nodes on ${nodes.map((n) => n.url).join(", ")} (data in .cluster/)
Try:
  curl -X PUT --data-binary 'hello' ${first}/v1/kv/greeting
  curl -i ${second}/v1/kv/greeting                       # linearizable read from a follower
  curl '${third}/v1/kv?prefix=gr&values=true'
  curl -X PUT --data-binary 'x' '${first}/v1/kv/greeting?prev_revision=0'   # 412: it exists
  curl -OJ ${second}/v1/backup && tar -xf edgeraft-*.tar && sha256sum -c SHA256SUMS
  curl ${first}/v1/status
Ctrl-C stops all three (each hands off leadership and snapshots on the way out).
`);
  }, 1500);

  const statuses = await Promise.all(children.map((c) => c.status));
  return statuses.every((s) => s.success) ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
