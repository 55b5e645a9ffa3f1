/**
 * `edgeraft backup --from URL [-o FILE] [--stale] [--gzip] [--token-file FILE]`: the same as
 * `curl -o FILE URL/v1/backup`, plus the checks curl cannot do. The archive streams to
 * `FILE.partial`, is verified completely, and only then renamed to FILE (fsynced), so a FILE
 * that exists is a sound backup. Prints index, size, SHA-256 and elapsed time; shows progress
 * on a terminal.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { createHash } from "node:crypto";
import { verifyArchive } from "../backup/archive_verifier.ts";

/** Runs the command; returns the exit code (0 ok, 1 failed, 2 usage). */
export async function runBackup(args: string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args,
      options: {
        from: { type: "string" },
        output: { type: "string", short: "o" },
        stale: { type: "boolean" },
        gzip: { type: "boolean" },
        "max-lag-ms": { type: "string" },
        "token-file": { type: "string" },
      },
    }).values;
  } catch (error) {
    console.error(`edgeraft backup: ${(error as Error).message}`);
    return 2;
  }
  const from = values.from ?? Deno.env.get("EDGERAFT_FROM");
  if (from === undefined) {
    console.error("edgeraft backup: --from URL is required (e.g. --from http://127.0.0.1:7070)");
    return 2;
  }
  const query = new URLSearchParams();
  if (values.gzip) query.set("gzip", "true");
  if (values.stale) query.set("stale", "true");
  if (values["max-lag-ms"] !== undefined) query.set("max_lag_ms", values["max-lag-ms"]);
  const url = `${from.replace(/\/+$/, "")}/v1/backup${query.size > 0 ? `?${query}` : ""}`;

  const headers: Record<string, string> = {};
  const tokenFile = values["token-file"] ?? Deno.env.get("EDGERAFT_TOKEN_FILE");
  const started = performance.now();
  let response: Response;
  try {
    if (tokenFile !== undefined) {
      headers.authorization = `Bearer ${(await Deno.readTextFile(tokenFile)).trim()}`;
    }
    response = await fetch(url, { headers });
  } catch (error) {
    console.error(`edgeraft backup: cannot reach ${from}: ${(error as Error).message}`);
    return 1;
  }
  if (!response.ok) {
    const text = await response.text();
    let detail = text.trim();
    try {
      const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
      if (body.error?.code) detail = `${body.error.code}: ${body.error.message ?? ""}`;
    } catch {
      // not JSON: show the text
    }
    console.error(`edgeraft backup: ${response.status} ${detail}`);
    return 1;
  }
  const disposition = response.headers.get("content-disposition") ?? "";
  const suggested = /filename="([^"/]+)"/.exec(disposition)?.[1];
  const output = values.output ?? suggested ?? `edgeraft-backup${values.gzip ? ".tar.gz" : ".tar"}`;
  const partial = `${output}.partial`;

  const hash = createHash("sha256");
  let bytes = 0;
  const progress = Deno.stderr.isTerminal();
  let lastShown = 0;
  try {
    const file = await Deno.open(partial, { write: true, create: true, truncate: true });
    try {
      for await (const chunk of response.body!) {
        hash.update(chunk);
        bytes += chunk.length;
        let written = 0;
        while (written < chunk.length) written += await file.write(chunk.subarray(written));
        if (progress && performance.now() - lastShown > 200) {
          lastShown = performance.now();
          const mb = bytes / 1e6;
          const rate = mb / ((performance.now() - started) / 1000);
          Deno.stderr.writeSync(
            new TextEncoder().encode(`\r${mb.toFixed(1)} MB  ${rate.toFixed(0)} MB/s   `),
          );
        }
      }
      await file.syncData();
    } finally {
      file.close();
    }
    if (progress) Deno.stderr.writeSync(new TextEncoder().encode("\r\x1b[K"));
    const report = await verifyArchive((await Deno.open(partial)).readable);
    if (!report.ok) {
      const e = report.error!;
      console.error(
        `edgeraft backup: the download is unsound, kept as ${partial}: ${e.code} (${
          e.file ?? "archive"
        }: ${e.check}) ${e.message}`,
      );
      return 1;
    }
    await Deno.rename(partial, output);
    await syncParentDir(output);
  } catch (error) {
    await Deno.remove(partial).catch(() => {});
    console.error(`edgeraft backup: ${(error as Error).message}`);
    return 1;
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(`backup written: ${output}`);
  console.log(`index           ${response.headers.get("x-edgeraft-backup-index")}`);
  console.log(`term            ${response.headers.get("x-edgeraft-backup-term")}`);
  console.log(`size            ${bytes} bytes`);
  console.log(`sha256          ${hash.digest("hex")}`);
  console.log(
    `elapsed         ${seconds.toFixed(2)} s (${(bytes / 1e6 / seconds).toFixed(1)} MB/s)`,
  );
  return 0;
}

/** Makes a rename durable: fsync of the directory holding `path`. */
async function syncParentDir(path: string): Promise<void> {
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) || "/" : ".";
  const handle = await Deno.open(dir, { read: true });
  try {
    await handle.sync();
  } finally {
    handle.close();
  }
}
