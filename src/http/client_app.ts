/**
 * The client HTTP API of ../shared/DESIGN.md: key-value (`/v1/kv`), cluster and operations
 * endpoints (`/v1/status`, `/v1/cluster`, `/healthz`, `/readyz`, `/metrics`).
 *
 * The edge is thin (STYLE.md item 5): each handler decodes and validates the request, calls one
 * {@linkcode NodeApi} method and encodes the answer; the node never sees a Hono `Context`. Errors
 * are thrown as typed errors and turned into JSON once, by src/http/errors.ts.
 *
 * Forwarding: a write (PUT, DELETE) that the node rejects with `NotLeaderError` carrying the
 * leader's URL is sent on to the leader — same method, path and query, the body bytes already
 * read, the client's `Authorization`, plus `X-Edgeraft-Forwarded-By: <this node>` — and the
 * leader's status, body and API headers are relayed. A request that already carries
 * `X-Edgeraft-Forwarded-By` is never forwarded again (no loops while leadership moves). A
 * forward that cannot connect answers 503 `ERR_NO_LEADER` with `Retry-After`; one that times out
 * after being sent answers 504 `ERR_TIMEOUT`, because the leader may have applied the write.
 * Reads are not forwarded: a linearizable read on a follower goes to the leader through Raft's
 * ReadIndex, inside the node.
 *
 * Limits: a value is read with a byte limit (`valueBytesMax`); a list answers at most
 * `listLimitMax` keys per page.
 *
 * Composition: {@linkcode registerClientRoutes} adds the routes to any Hono app, so the node can
 * serve the client API, the peer routes (`/raft/*`) and the backup routes from one app;
 * {@linkcode createClientApp} is the stand-alone version used by tests.
 *
 * @module
 */

import { type Env, Hono, type Schema } from "hono";
import {
  BadRequestError,
  KeyNotFoundError,
  MethodNotAllowedError,
  NoLeaderError,
  NotLeaderError,
  TimeoutError,
  ValueTooLargeError,
} from "../errors.ts";
import { KEY_BYTES_MAX, keyProblem, utf8Length } from "../kv/kv_key.ts";
import type { NodeApi, NodeStatus, ReadConsistency, WriteResult } from "../node/node_api.ts";
import { PROMETHEUS_CONTENT_TYPE } from "../node/metrics.ts";
import { type Logger, nullLogger } from "../util/logger.ts";
import { createBearerAuth } from "./auth.ts";
import { bodyBytes, readBodyLimited } from "./body.ts";
import { installErrorHandlers } from "./errors.ts";

/** The header a forwarding node adds; a request carrying it is never forwarded again. */
export const FORWARDED_BY_HEADER = "X-Edgeraft-Forwarded-By";
/** The header naming the leader a response was relayed from. */
export const FORWARDED_TO_HEADER = "X-Edgeraft-Forwarded-To";
/** The revision of a read value. */
export const REVISION_HEADER = "X-Edgeraft-Revision";

/** Defaults of {@linkcode ClientAppOptions}. */
export const CLIENT_APP_DEFAULTS = {
  valueBytesMax: 1024 * 1024,
  listLimitDefault: 100,
  listLimitMax: 10_000,
  forwardTimeoutMs: 5_000,
} as const;

/** Options of {@linkcode createClientApp} and {@linkcode registerClientRoutes}. */
export interface ClientAppOptions {
  /** This node's id for `X-Edgeraft-Forwarded-By`. Default: `node.status().id`. */
  readonly nodeId?: string;
  /** The bearer token every `/v1` route and `/metrics` require; null or absent: open. */
  readonly token?: string | null;
  /** The admin token (backup/restore routes mounted by the node). */
  readonly adminToken?: string | null;
  /** The largest value accepted by PUT, in bytes. Default 1 MiB. */
  readonly valueBytesMax?: number;
  /** The most keys one list request may ask for. Default 10000. */
  readonly listLimitMax?: number;
  /** Used to forward writes to the leader. Default `globalThis.fetch`. */
  readonly fetch?: typeof fetch;
  /** Deadline of a forwarded request. Default 5000 ms. */
  readonly forwardTimeoutMs?: number;
  readonly logger?: Logger;
}

const KV_PREFIX = "/v1/kv/";
const JSON_TYPE = "application/json; charset=utf-8";
/** Response headers relayed from the leader to the client of a forwarded request. */
const RELAYED_HEADERS = ["content-type", "x-edgeraft-revision", "retry-after", "www-authenticate"];

/**
 * The stand-alone client app: routes, authentication and JSON error handling. The node may
 * instead call {@linkcode registerClientRoutes} and `installErrorHandlers` on its own app.
 */
export function createClientApp(node: NodeApi, options: ClientAppOptions = {}): Hono {
  const app = new Hono();
  installErrorHandlers(app, options.logger);
  registerClientRoutes(app, node, options);
  return app;
}

/**
 * Adds the client routes to `app`, with their bearer-token middleware on `/v1/*` and `/metrics`
 * (so routes added later under `/v1`, such as backup, are protected too).
 */
export function registerClientRoutes<E extends Env, S extends Schema, B extends string>(
  app: Hono<E, S, B>,
  node: NodeApi,
  options: ClientAppOptions = {},
): void {
  const logger = options.logger ?? nullLogger();
  const valueBytesMax = options.valueBytesMax ?? CLIENT_APP_DEFAULTS.valueBytesMax;
  const listLimitMax = options.listLimitMax ?? CLIENT_APP_DEFAULTS.listLimitMax;
  const forwarder = new Forwarder(
    options.fetch ?? ((input, init) => globalThis.fetch(input, init)),
    options.forwardTimeoutMs ?? CLIENT_APP_DEFAULTS.forwardTimeoutMs,
    () => options.nodeId ?? node.status().id,
    logger,
  );
  const auth = createBearerAuth({ token: options.token ?? null, adminToken: options.adminToken });

  app.use("/v1/*", auth.client);
  app.use("/metrics", auth.client);

  // Operations. /healthz and /readyz are for load balancers and systemd: no token.
  app.get("/healthz", () => json({ ok: true }));
  app.get("/readyz", () => {
    if (!node.ready()) {
      throw new NoLeaderError("Not ready: no leader known or not caught up with the commit index");
    }
    return json({ ok: true });
  });
  app.get("/metrics", () =>
    new Response(node.metricsText(), {
      headers: { "content-type": PROMETHEUS_CONTENT_TYPE, "cache-control": "no-store" },
    }));
  app.get("/v1/status", () => json(statusJson(node.status())));
  app.get("/v1/cluster", () => {
    const members = [...node.membership().members]
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((m) => ({ id: m.id, url: m.address, voter: m.voter }));
    return json({ leader: node.status().leader, members });
  });

  // Key-value.
  app.get("/v1/kv", async (c) => {
    const query = parseQuery(c.req.url, ["prefix", "after", "limit", "values", "consistency"]);
    const prefix = query.get("prefix") ?? "";
    if (utf8Length(prefix) > KEY_BYTES_MAX || !prefix.isWellFormed()) {
      throw new BadRequestError(
        `Query parameter "prefix" must be well-formed and at most ${KEY_BYTES_MAX} bytes`,
      );
    }
    const afterText = query.get("after");
    const after = afterText === undefined || afterText === "" ? undefined : afterText;
    if (after !== undefined && keyProblem(after) !== null) {
      throw new BadRequestError(`Query parameter "after": ${keyProblem(after)}`);
    }
    const limit = query.has("limit")
      ? parseInteger("limit", query.get("limit")!, 1, listLimitMax)
      : Math.min(CLIENT_APP_DEFAULTS.listLimitDefault, listLimitMax);
    const values = parseBoolean("values", query.get("values"));
    const result = await node.list(
      { prefix, ...(after === undefined ? {} : { after }), limit, values },
      parseConsistency(query.get("consistency")),
    );
    return json({
      items: result.items.map((item) =>
        item.value === undefined || !values
          ? { key: item.key, revision: item.revision }
          : { key: item.key, revision: item.revision, value: toBase64(item.value) }
      ),
      more: result.more,
    });
  });

  app.get("/v1/kv/*", async (c) => {
    const key = keyFromUrl(c.req.url);
    const query = parseQuery(c.req.url, ["consistency"]);
    const found = await node.get(key, parseConsistency(query.get("consistency")));
    if (found === null) throw new KeyNotFoundError(key);
    return new Response(bodyBytes(found.value), {
      headers: {
        "content-type": "application/octet-stream",
        [REVISION_HEADER]: String(found.revision),
        "cache-control": "no-store",
      },
    });
  });

  app.put("/v1/kv/*", async (c) => {
    const key = keyFromUrl(c.req.url, c.req.method);
    const prevRevision = prevRevisionOf(c.req.url);
    const value = await readBodyLimited(c.req.raw, {
      limitBytes: valueBytesMax,
      tooLarge: (size) => new ValueTooLargeError(valueBytesMax, size),
      badLength: (message) => new BadRequestError(message),
    });
    return await forwarder.writeOrForward(
      c.req.raw,
      value,
      () => node.put(key, value, prevRevision === undefined ? {} : { prevRevision }),
    );
  });

  app.delete("/v1/kv/*", async (c) => {
    const key = keyFromUrl(c.req.url, c.req.method);
    const prevRevision = prevRevisionOf(c.req.url);
    return await forwarder.writeOrForward(
      c.req.raw,
      null,
      () => node.delete(key, prevRevision === undefined ? {} : { prevRevision }),
    );
  });

  // Known paths with a method they do not take: 405 with Allow (HEAD is answered as GET).
  const allow: [string, string[]][] = [
    ["/healthz", ["GET", "HEAD"]],
    ["/readyz", ["GET", "HEAD"]],
    ["/metrics", ["GET", "HEAD"]],
    ["/v1/status", ["GET", "HEAD"]],
    ["/v1/cluster", ["GET", "HEAD"]],
    ["/v1/kv", ["GET", "HEAD"]],
    ["/v1/kv/*", ["GET", "HEAD", "PUT", "DELETE"]],
  ];
  for (const [path, methods] of allow) {
    app.all(path, (c) => {
      throw new MethodNotAllowedError(c.req.method, c.req.path, methods);
    });
  }
}

/** Sends writes to the node, and to the leader when the node is a follower. */
class Forwarder {
  readonly #fetch: typeof fetch;
  readonly #timeoutMs: number;
  readonly #nodeId: () => string;
  readonly #logger: Logger;

  constructor(fetchFn: typeof fetch, timeoutMs: number, nodeId: () => string, logger: Logger) {
    this.#fetch = fetchFn;
    this.#timeoutMs = timeoutMs;
    this.#nodeId = nodeId;
    this.#logger = logger;
  }

  async writeOrForward(
    request: Request,
    body: Uint8Array | null,
    write: () => Promise<WriteResult>,
  ): Promise<Response> {
    try {
      const result = await write();
      return json({ key: result.key, revision: result.revision });
    } catch (error) {
      if (!(error instanceof NotLeaderError)) throw error;
      return await this.#forward(request, body, error);
    }
  }

  async #forward(
    request: Request,
    body: Uint8Array | null,
    notLeader: NotLeaderError,
  ): Promise<Response> {
    const forwardedBy = request.headers.get(FORWARDED_BY_HEADER);
    if (forwardedBy !== null) {
      // The sender believed we lead; we do not. Forwarding again could loop while leadership moves.
      throw new NoLeaderError(
        `Request forwarded by ${
          JSON.stringify(forwardedBy)
        } reached a node that is not the leader either`,
        { cause: notLeader },
      );
    }
    if (notLeader.leaderUrl === null || notLeader.leaderId === null) {
      throw new NoLeaderError("No leader is known", { cause: notLeader });
    }
    const url = new URL(request.url);
    let target: URL;
    try {
      target = new URL(url.pathname + url.search, notLeader.leaderUrl);
    } catch (error) {
      throw new NoLeaderError(`Leader URL ${JSON.stringify(notLeader.leaderUrl)} is invalid`, {
        cause: error,
      });
    }
    const headers = new Headers({ [FORWARDED_BY_HEADER]: this.#nodeId() });
    for (const name of ["authorization", "content-type"]) {
      const value = request.headers.get(name);
      if (value !== null) headers.set(name, value);
    }
    let response: Response;
    let responseBody: Uint8Array<ArrayBuffer>;
    try {
      response = await this.#fetch(target, {
        method: request.method,
        headers,
        body: body === null ? undefined : bodyBytes(body),
        redirect: "manual",
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      responseBody = new Uint8Array(await response.arrayBuffer());
    } catch (error) {
      const timedOut = error instanceof DOMException && error.name === "TimeoutError";
      this.#logger.warn("forward to leader failed", {
        leader: notLeader.leaderId,
        url: target.href,
        timedOut,
        error,
      });
      if (timedOut) {
        throw new TimeoutError(
          `The leader ${notLeader.leaderId} did not answer within ${this.#timeoutMs} ms; the write may or may not have been applied`,
          { cause: error },
        );
      }
      throw new NoLeaderError(`The leader ${notLeader.leaderId} is not reachable`, {
        cause: error,
      });
    }
    const relayed = new Headers({ [FORWARDED_TO_HEADER]: notLeader.leaderId });
    for (const name of RELAYED_HEADERS) {
      const value = response.headers.get(name);
      if (value !== null) relayed.set(name, value);
    }
    return new Response(responseBody, { status: response.status, headers: relayed });
  }
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": JSON_TYPE, "cache-control": "no-store" },
  });
}

/** `/v1/status`'s JSON: the node's status with snake_case keys. */
export function statusJson(status: NodeStatus): Record<string, unknown> {
  return {
    id: status.id,
    cluster_id: status.clusterId,
    role: status.role,
    voting: status.voting,
    term: status.term,
    leader: status.leader,
    leader_url: status.leaderUrl,
    commit_index: status.commitIndex,
    applied_index: status.appliedIndex,
    last_log_index: status.lastLogIndex,
    last_snapshot: status.lastSnapshot === null ? null : {
      index: status.lastSnapshot.index,
      term: status.lastSnapshot.term,
      created_at: status.lastSnapshot.createdAt,
    },
    last_backup: status.lastBackup === null
      ? null
      : { index: status.lastBackup.index, created_at: status.lastBackup.createdAt },
    last_contact_ms: status.lastContactMs,
    storage_errors: status.storageErrors.map((e) => ({ code: e.code, message: e.message })),
    version: status.version,
  };
}

/**
 * The key of a `/v1/kv/{key}` URL: the raw path after the prefix, percent-decoded strictly
 * (a malformed escape or bytes that are not UTF-8 are a 400, never silently kept).
 */
export function keyFromUrl(requestUrl: string, method = "GET"): string {
  const pathname = new URL(requestUrl).pathname;
  // "/v1/kv/*" also matches "/v1/kv" itself: the listing, which only takes GET.
  if (!pathname.startsWith(KV_PREFIX)) {
    throw new MethodNotAllowedError(method, pathname, ["GET", "HEAD"]);
  }
  const raw = pathname.slice(KV_PREFIX.length);
  let key: string;
  try {
    key = decodeURIComponent(raw);
  } catch {
    throw new BadRequestError(`Invalid percent-encoding in key ${JSON.stringify(raw)}`, {
      hint: 'Encode the key with encodeURIComponent (UTF-8 percent-encoding); "%" itself is %25.',
    });
  }
  const problem = keyProblem(key);
  if (problem !== null) throw new BadRequestError(`Invalid key: ${problem}`);
  return key;
}

/**
 * The query parameters of `requestUrl`, decoded strictly (`+` is a space). Only `allowed` names
 * are accepted and each at most once: a misspelt `prev_revision` must not turn a conditional write
 * into an unconditional one.
 */
export function parseQuery(requestUrl: string, allowed: readonly string[]): Map<string, string> {
  const url = new URL(requestUrl);
  const params = new Map<string, string>();
  const search = url.search.startsWith("?") ? url.search.slice(1) : url.search;
  if (search === "") return params;
  for (const part of search.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const rawName = eq === -1 ? part : part.slice(0, eq);
    const rawValue = eq === -1 ? "" : part.slice(eq + 1);
    let name: string;
    let value: string;
    try {
      name = decodeURIComponent(rawName.replace(/\+/g, " "));
      value = decodeURIComponent(rawValue.replace(/\+/g, " "));
    } catch {
      throw new BadRequestError(
        `Invalid percent-encoding in query parameter ${JSON.stringify(part)}`,
      );
    }
    if (!allowed.includes(name)) {
      throw new BadRequestError(
        `Unknown query parameter ${JSON.stringify(name)}; this endpoint takes ${
          allowed.length === 0 ? "none" : allowed.join(", ")
        }`,
      );
    }
    if (params.has(name)) {
      throw new BadRequestError(`Query parameter "${name}" given more than once`);
    }
    params.set(name, value);
  }
  return params;
}

function prevRevisionOf(requestUrl: string): number | undefined {
  const value = parseQuery(requestUrl, ["prev_revision"]).get("prev_revision");
  return value === undefined
    ? undefined
    : parseInteger("prev_revision", value, 0, Number.MAX_SAFE_INTEGER);
}

function parseInteger(name: string, text: string, min: number, max: number): number {
  const value = /^\d{1,16}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new BadRequestError(
      `Query parameter "${name}" must be an integer from ${min} to ${max}, got ${
        JSON.stringify(text)
      }`,
    );
  }
  return value;
}

function parseBoolean(name: string, text: string | undefined): boolean {
  if (text === undefined || text === "false") return false;
  if (text === "true" || text === "") return true;
  throw new BadRequestError(
    `Query parameter "${name}" must be true or false, got ${JSON.stringify(text)}`,
  );
}

function parseConsistency(text: string | undefined): ReadConsistency {
  if (text === undefined || text === "linearizable") return "linearizable";
  if (text === "stale") return "stale";
  throw new BadRequestError(
    `Query parameter "consistency" must be "linearizable" or "stale", got ${JSON.stringify(text)}`,
  );
}

/** Standard base64 of `bytes`. */
export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  const chunk = 0x8000;
  for (let i = 0; i < bytes.byteLength; i += chunk) {
    binary += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return btoa(binary);
}
