/**
 * `POST /v1/restore[?force=true]` with a backup archive (plain or gzip) as the body: replaces
 * the whole cluster's state with the archive's, through Raft (src/node/online_restore.ts,
 * docs/BACKUP.md "Online restore"). Needs the admin token when tokens are configured.
 *
 * The leader streams the body to `<data-dir>/restore/upload-<id>.tmp` (at most
 * `uploadBytesMax` bytes: `ERR_PAYLOAD_TOO_LARGE` beyond), verifies it, restores it and answers
 * 200 with the new index and the undo archive's path; the file is removed when the request
 * ends. A follower streams the request through to the leader and the answer back, buffering
 * neither. Answers: 422 `ERR_BACKUP_*` (unsound archive, nothing changed), 409
 * `ERR_RESTORE_CONFLICT` (another cluster's archive without `force`, or a restore already
 * running), 503 `ERR_NO_LEADER` (no leader, or leadership moved; nothing changed), 500
 * `ERR_RESTORE_FAILED` (nothing changed), 504 `ERR_TIMEOUT` (the outcome is unknown).
 *
 * @module
 */

import type { Hono, MiddlewareHandler } from "hono";
import { BadRequestError, NotLeaderError, PayloadTooLargeError } from "../errors.ts";
import type { NodeStatus } from "../node/node_api.ts";
import type { OnlineRestoreResult, RunRestoreOptions } from "../node/online_restore.ts";
import { cleanRestoreDir, spoolUpload } from "../node/restore_files.ts";
import { type Logger, nullLogger } from "../util/logger.ts";
import { parseQuery } from "./client_app.ts";
import { booleanParam, streamToLeader } from "./leader_forward.ts";

/** The default upload limit: 8 GiB (a tar member's limit, and far beyond a sensible state). */
export const RESTORE_UPLOAD_BYTES_MAX = 8 * 1024 * 1024 * 1024;

/** What the route needs: the node's status (leader URL) and the restore runner. */
export interface RestoreRouteTarget {
  status(): NodeStatus;
}

/** Runs a restore of an archive file (`OnlineRestore.run` in production). */
export interface Restorer {
  run(archivePath: string, options: RunRestoreOptions): Promise<OnlineRestoreResult>;
}

/** Options of {@linkcode registerRestoreRoute}. */
export interface RestoreRouteOptions {
  readonly nodeId: string;
  /** The node's data directory: uploads are spooled to `<dataDir>/restore/`. */
  readonly dataDir: string;
  /** Requires the admin token (from `createBearerAuth`). */
  readonly admin: MiddlewareHandler;
  readonly restorer: Restorer;
  /** Largest accepted archive in bytes. Default {@linkcode RESTORE_UPLOAD_BYTES_MAX}. */
  readonly uploadBytesMax?: number;
  /** `fetch` used to forward to the leader. */
  readonly fetch?: typeof fetch;
  readonly logger?: Logger;
}

/** The JSON answer of a completed restore. */
export function restoreAnswer(result: OnlineRestoreResult): Record<string, unknown> {
  return {
    index: result.index,
    term: result.term,
    source_cluster_id: result.sourceClusterId,
    source_index: result.sourceIndex,
    keys: result.keys,
    value_bytes: result.valueBytes,
    state_bytes: result.stateBytes,
    chunks: result.chunks,
    restore_id: result.restoreId,
    begin_index: result.beginIndex,
    undo_archive: result.undoArchive,
    undo_index: result.undoIndex,
    node: result.node,
    elapsed_ms: result.elapsedMs,
  };
}

/**
 * Adds `POST /v1/restore` to `app`. Removes what interrupted restores left in
 * `<dataDir>/restore/` first (call it once, before serving).
 */
export function registerRestoreRoute(
  // deno-lint-ignore no-explicit-any
  app: Hono<any, any, any>,
  node: RestoreRouteTarget,
  options: RestoreRouteOptions,
): void {
  const logger = options.logger ?? nullLogger();
  const doFetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const uploadBytesMax = options.uploadBytesMax ?? RESTORE_UPLOAD_BYTES_MAX;
  const removed = cleanRestoreDir(options.dataDir);
  if (removed.length > 0) logger.info("removed leftover restore files", { files: removed });

  app.post("/v1/restore", options.admin, async (c) => {
    const request = c.req.raw;
    const query = parseQuery(request.url, ["force"]);
    const force = booleanParam(query, "force");
    const body = request.body;
    if (body === null) throw new BadRequestError("Send the archive as the request body");
    const declared = request.headers.get("content-length");
    if (declared !== null && Number(declared) > uploadBytesMax) {
      await body.cancel().catch(() => {});
      throw new PayloadTooLargeError(uploadBytesMax);
    }
    const status = node.status();
    if (status.role !== "leader") {
      return await forward(request, body, new NotLeaderError(status.leader, status.leaderUrl));
    }
    const upload = await spoolUpload(options.dataDir, body, uploadBytesMax);
    try {
      const result = await options.restorer.run(upload.path, { force });
      return new Response(JSON.stringify(restoreAnswer(result), null, 2) + "\n", {
        status: 200,
        headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" },
      });
    } catch (error) {
      // Leadership moved before anything was proposed: hand the archive to the new leader.
      if (error instanceof NotLeaderError) {
        const file = await Deno.open(upload.path);
        return await forward(request, file.readable, error);
      }
      throw error;
    } finally {
      await upload.remove();
    }
  });

  /** Streams the request to the leader and its answer back; never buffers the archive. */
  function forward(
    request: Request,
    body: ReadableStream<Uint8Array>,
    notLeader: NotLeaderError,
  ): Promise<Response> {
    logger.info("forwarding restore to the leader", { leader: notLeader.leaderId });
    return streamToLeader(request, notLeader, {
      nodeId: options.nodeId,
      fetch: doFetch,
      what: "restore",
      body,
    });
  }
}
