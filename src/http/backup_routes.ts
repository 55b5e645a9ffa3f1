/**
 * Backup endpoints (DESIGN.md "Backup and restore"):
 *
 * - `GET /v1/backup[?gzip=true][&stale=true[&max_lag_ms=N]]` streams a backup archive. By
 *   default the leader serves it at a linearizable point (ReadIndex); a follower forwards the
 *   request to the leader and streams the answer through. `stale=true` serves this node's own
 *   applied state without a leader, with `X-Edgeraft-Last-Contact`.
 * - `POST /v1/backup/verify` with an archive as the body answers the verification report as
 *   JSON: 200 when sound, 422 with the failing check's code when not.
 *
 * Both need the admin token when tokens are configured. Nothing here buffers an archive: the
 * state streams from the state machine's point-in-time view through the archive writer to the
 * socket, and uploads stream through the verifier.
 *
 * @module
 */

import type { Hono, MiddlewareHandler } from "hono";
import { NotLeaderError } from "../errors.ts";
import type { BackupView } from "../node/raft_node.ts";
import type { Logger } from "../util/logger.ts";
import { nullLogger } from "../util/logger.ts";
import { parseQuery } from "./client_app.ts";
import { booleanParam, streamToLeader } from "./leader_forward.ts";
import { BadRequestError } from "../errors.ts";

/** What the backup routes need from the node. */
export interface BackupSource {
  backupView(options: { stale: boolean; maxLagMs?: number }): Promise<BackupView>;
  noteBackup(index: number, createdAt: string): void;
}

/** Builds the archive stream of a view (src/backup/archive_writer.ts in production). */
export type ArchiveFactory = (
  view: BackupView,
  options: { gzip: boolean; createdAt: string },
) => { stream: ReadableStream<Uint8Array>; done: Promise<unknown> };

/** Verifies an uploaded archive (src/backup/archive_verifier.ts in production). */
export type ArchiveVerifier = (
  stream: ReadableStream<Uint8Array>,
) => Promise<{ ok: boolean; error: { code: string } | null } & Record<string, unknown>>;

/** Options of {@linkcode registerBackupRoutes}. */
export interface BackupRoutesOptions {
  readonly nodeId: string;
  /** Requires the admin token (from `createBearerAuth`). */
  readonly admin: MiddlewareHandler;
  readonly makeArchive: ArchiveFactory;
  readonly verifyArchive: ArchiveVerifier;
  /** `fetch` used to forward to the leader. */
  readonly fetch?: typeof fetch;
  readonly logger?: Logger;
  /** Clock for `created_at`. */
  readonly now?: () => number;
}

/** Adds the backup routes to `app`. */
export function registerBackupRoutes(
  // deno-lint-ignore no-explicit-any
  app: Hono<any, any, any>,
  node: BackupSource,
  options: BackupRoutesOptions,
): void {
  const logger = options.logger ?? nullLogger();
  const doFetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const now = options.now ?? Date.now;

  app.get("/v1/backup", options.admin, async (c) => {
    const query = parseQuery(c.req.url, ["gzip", "stale", "max_lag_ms"]);
    const gzip = booleanParam(query, "gzip");
    const stale = booleanParam(query, "stale");
    let maxLagMs: number | undefined;
    if (query.has("max_lag_ms")) {
      if (!stale) throw new BadRequestError('"max_lag_ms" applies only with "stale=true"');
      const text = query.get("max_lag_ms")!;
      maxLagMs = Number(text);
      if (!/^\d{1,12}$/.test(text)) {
        throw new BadRequestError('Query parameter "max_lag_ms" must be a non-negative integer');
      }
    }
    let view: BackupView;
    try {
      view = await node.backupView({ stale, maxLagMs });
    } catch (error) {
      if (error instanceof NotLeaderError) return await forward(c.req.raw, error);
      throw error;
    }
    const createdAt = new Date(now()).toISOString();
    const archive = options.makeArchive(view, { gzip, createdAt });
    archive.done.then(
      () => node.noteBackup(view.index, createdAt),
      (error) => logger.warn("backup stream failed", { index: view.index, error: String(error) }),
    );
    const name = `edgeraft-${view.clusterId}-${view.index}.tar${gzip ? ".gz" : ""}`;
    const headers: Record<string, string> = {
      "content-type": gzip ? "application/gzip" : "application/x-tar",
      "content-disposition": `attachment; filename="${name}"`,
      "x-edgeraft-backup-index": String(view.index),
      "x-edgeraft-backup-term": String(view.term),
      "x-edgeraft-backup-node": view.nodeId,
      "cache-control": "no-store",
    };
    if (stale) headers["x-edgeraft-last-contact"] = String(view.lastContactMs ?? -1);
    logger.info("backup started", { index: view.index, term: view.term, stale, gzip });
    return new Response(archive.stream, { status: 200, headers });
  });

  app.post("/v1/backup/verify", options.admin, async (c) => {
    const body = c.req.raw.body;
    if (body === null) throw new BadRequestError("Send the archive as the request body");
    const report = await options.verifyArchive(body);
    return new Response(JSON.stringify(report, null, 2), {
      status: report.ok ? 200 : 422,
      headers: { "content-type": "application/json; charset=utf-8" },
    });
  });

  /** Streams the leader's answer through; never buffers the archive. */
  function forward(request: Request, notLeader: NotLeaderError): Promise<Response> {
    return streamToLeader(request, notLeader, {
      nodeId: options.nodeId,
      fetch: doFetch,
      what: "backup request",
    });
  }
}
