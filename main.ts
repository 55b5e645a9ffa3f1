/**
 * edgeraft command line: `serve`, `backup`, `verify`, `inspect`, `restore`, `status`,
 * `version` (../shared/DESIGN.md, "Command line"). Every failure is a one-line message on
 * stderr and a non-zero exit: 1 when the operation failed, 2 for a usage error.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { loadServeConfig, serveUsage } from "./src/node/config.ts";
import { runServe } from "./src/server.ts";
import { runBackup } from "./src/cli/backup_command.ts";
import { runRestore } from "./src/cli/restore_command.ts";
import { runInspect, runVerify } from "./src/backup/cli.ts";
import { VERSION } from "./src/version.ts";

const USAGE = `Usage: edgeraft <command> [options]

Commands:
  serve     run a node (edgeraft serve --help for its options)
  backup    download a verified backup: edgeraft backup --from URL [-o FILE] [--stale] [--gzip]
  verify    check an archive offline: edgeraft verify FILE [--json] (exit 0 only if sound)
  inspect   show an archive's manifest, counts and sizes: edgeraft inspect FILE [--json]
  restore   build a new node's data dir from an archive:
            edgeraft restore FILE --data-dir DIR --id ID --peers ID=URL,... [--force]
  status    print a node's status: edgeraft status --from URL [--token-file FILE]
  version   print the version
`;

async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  switch (command) {
    case "version":
    case "--version":
      console.log(`edgeraft ${VERSION}`);
      return 0;
    case "serve":
      return await serve(rest);
    case "status":
      return await status(rest);
    case "backup":
      return await runBackup(rest);
    case "verify":
      return await runVerify(rest);
    case "inspect":
      return await runInspect(rest);
    case "restore":
      return await runRestore(rest);
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    default:
      console.error(`edgeraft: unknown command "${command}"; try "edgeraft --help"`);
      return 2;
  }
}

async function serve(args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(serveUsage());
    return 0;
  }
  const result = await loadServeConfig(args);
  for (const warning of result.warnings) console.error(`edgeraft serve: warning: ${warning}`);
  if (!result.ok) {
    for (const error of result.errors) console.error(`edgeraft serve: ${error}`);
    return 2;
  }
  try {
    return await runServe(result.config);
  } catch (error) {
    console.error(`edgeraft serve: ${(error as Error).message ?? String(error)}`);
    return 1;
  }
}

async function status(args: string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args,
      options: {
        from: { type: "string" },
        "token-file": { type: "string" },
        json: { type: "boolean" },
      },
      allowPositionals: false,
    }).values;
  } catch (error) {
    console.error(`edgeraft status: ${(error as Error).message}`);
    return 2;
  }
  const from = values.from ?? Deno.env.get("EDGERAFT_FROM");
  if (from === undefined) {
    console.error("edgeraft status: --from URL is required (e.g. --from http://127.0.0.1:7070)");
    return 2;
  }
  const headers: Record<string, string> = {};
  const tokenFile = values["token-file"] ?? Deno.env.get("EDGERAFT_TOKEN_FILE");
  try {
    if (tokenFile !== undefined) {
      headers.authorization = `Bearer ${(await Deno.readTextFile(tokenFile)).trim()}`;
    }
    const response = await fetch(`${from.replace(/\/+$/, "")}/v1/status`, {
      headers,
      signal: AbortSignal.timeout(5000),
    });
    const text = await response.text();
    if (!response.ok) {
      console.error(`edgeraft status: ${response.status} ${text.trim()}`);
      return 1;
    }
    if (values.json) {
      console.log(text.trim());
      return 0;
    }
    const s = JSON.parse(text) as Record<string, unknown>;
    const rows: [string, unknown][] = [
      ["id", s.id],
      ["cluster", s.cluster_id],
      ["role", s.role],
      ["term", s.term],
      ["leader", s.leader],
      ["commit index", s.commit_index],
      ["applied index", s.applied_index],
      ["last snapshot", JSON.stringify(s.last_snapshot ?? null)],
      ["storage errors", JSON.stringify(s.storage_errors ?? [])],
      ["version", s.version],
    ];
    for (const [name, value] of rows) console.log(`${name.padEnd(15)} ${value ?? "-"}`);
    return 0;
  } catch (error) {
    console.error(`edgeraft status: cannot reach ${from}: ${(error as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
