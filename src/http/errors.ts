/**
 * The one place where thrown errors become HTTP responses (STYLE.md item 12): every error answer
 * of the node, on every route, is `{"error": {"code", "message", "hint"}}` with the code's status
 * and headers (`Retry-After` on `ERR_NO_LEADER`, `WWW-Authenticate` on `ERR_UNAUTHORIZED`, `Allow`
 * on `ERR_METHOD_NOT_ALLOWED`).
 *
 * Unexpected errors (anything that is not an {@linkcode EdgeraftError} and carries no known code)
 * are logged with their stack and answered with a generic `ERR_INTERNAL`: no stack, no internal
 * message reaches the client. The internal `ERR_NOT_LEADER` becomes `ERR_NO_LEADER` here, so a
 * client never sees it.
 *
 * @module
 */

import type { Env, Hono, Schema } from "hono";
import {
  type EdgeraftError,
  errorBody,
  NoLeaderError,
  NotFoundError,
  NotLeaderError,
  toEdgeraftError,
} from "../errors.ts";
import type { Logger } from "../util/logger.ts";

/** Builds the error response for anything thrown. */
export function errorResponse(error: unknown, logger?: Logger): Response {
  let e: EdgeraftError = toEdgeraftError(error);
  if (e instanceof NotLeaderError || e.code === "ERR_NOT_LEADER") {
    e = new NoLeaderError("This node is not the leader and cannot forward this request", {
      cause: e,
    });
  }
  if (e.code === "ERR_INTERNAL") {
    logger?.error("unexpected error", { error: e.cause ?? e });
  } else if (e.status >= 500) {
    logger?.warn("request failed", { code: e.code, error: e });
  }
  const headers = new Headers(e.headers);
  headers.set("content-type", "application/json; charset=utf-8");
  headers.set("cache-control", "no-store");
  if (e.code === "ERR_NO_LEADER" && !headers.has("retry-after")) headers.set("retry-after", "1");
  return new Response(JSON.stringify(errorBody(e)), { status: e.status, headers });
}

/**
 * Makes `app` answer unknown routes with 404 `ERR_NOT_FOUND` and thrown errors with
 * {@linkcode errorResponse}. Call it on the outermost app (the one passed to `Deno.serve`);
 * sub-apps mounted with `app.route()` inherit it.
 */
export function installErrorHandlers<E extends Env, S extends Schema, B extends string>(
  app: Hono<E, S, B>,
  logger?: Logger,
): void {
  app.notFound((c) => errorResponse(new NotFoundError(c.req.method, c.req.path), logger));
  app.onError((error) => errorResponse(error, logger));
}
