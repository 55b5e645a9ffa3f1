/**
 * The server half of the peer transport: Hono routes under `/raft/`.
 *
 * - `POST /raft/messages`: body = one wire batch (`wire_codec.ts`). Authenticated (with a
 *   cluster secret), size-limited, decoded strictly (version, checksum, cluster id), then
 *   handed to the node. Answers 204 at once: responses travel as separate messages, so the
 *   sender's connection is free for the next batch.
 * - `POST /raft/snapshot`: body = the snapshot file, streamed. The request message travels in
 *   a header; the node hashes the body while writing and installs only on a match.
 *
 * Bad peer input (wrong version, bad checksum, truncated body, unknown node, another
 * cluster) is answered with a JSON error and one log line, and changes nothing.
 *
 * @module
 */

import { Hono } from "hono";
import type { Membership, Message, NodeId, SnapshotRequest } from "../raft/types.ts";
import type { Logger } from "../util/logger.ts";
import type { PeerInbox } from "../node/peer_transport.ts";
import { decodeBatch, decodeMessage, WireDecodeError } from "./wire_codec.ts";
import { fromBase64, sha256Hex } from "../util/encoding.ts";
import { PEER_HEADERS } from "./peer_auth.ts";

/** Checks a peer request's authentication headers. */
export interface PeerAuthenticator {
  /**
   * Resolves with the authenticated sender id, or a reason it is refused. `body` is the body
   * already read, or "streamed" (then only the headers and the signature over the declared
   * digest are checked, before any body byte is read; the route checks the body against the
   * digest: `/raft/messages` once read, `/raft/snapshot` while writing).
   */
  authenticate(
    request: Request,
    body: Uint8Array | "streamed",
  ): Promise<{ ok: true; nodeId: NodeId } | { ok: false; reason: string }>;
}

/** Options of {@linkcode createPeerRoutes}. */
export interface PeerRoutesOptions {
  readonly id: NodeId;
  readonly clusterId: string;
  readonly inbox: PeerInbox;
  readonly membership: () => Membership;
  readonly logger: Logger;
  /** Absent when no cluster secret is configured (loopback or `--insecure` only). */
  readonly authenticator?: PeerAuthenticator;
  /** Largest message batch accepted. Default 64 MiB. */
  readonly batchBytesMax?: number;
}

/** Builds the `/raft/*` routes. */
export function createPeerRoutes(options: PeerRoutesOptions): Hono {
  const app = new Hono();
  const limit = options.batchBytesMax ?? 64 * 1024 * 1024;

  const refuse = (status: 400 | 401 | 403 | 409 | 413, code: string, message: string) => {
    options.logger.warn("peer request refused", { code, message });
    return new Response(
      JSON.stringify({ error: { code, message, hint: hintFor(code) } }),
      { status, headers: { "content-type": "application/json", "x-edgeraft-error": code } },
    );
  };

  app.post("/raft/messages", async (c) => {
    // Headers and signature (over the declared body digest) first: an unauthenticated sender
    // cannot make this node read and buffer a batch. The body is then checked against the
    // signed digest.
    if (options.authenticator !== undefined) {
      const auth = await options.authenticator.authenticate(c.req.raw, "streamed");
      if (!auth.ok) {
        await c.req.raw.body?.cancel();
        return refuse(401, "ERR_UNAUTHORIZED", auth.reason);
      }
    }
    const body = await readLimited(c.req.raw, limit);
    if (body === null) return refuse(413, "ERR_PAYLOAD_TOO_LARGE", `batch over ${limit} bytes`);
    if (
      options.authenticator !== undefined &&
      sha256Hex(body) !== c.req.raw.headers.get(PEER_HEADERS.contentSha256)
    ) {
      return refuse(401, "ERR_UNAUTHORIZED", "body does not match its signed SHA-256");
    }
    let messages: Message[];
    try {
      messages = decodeBatch(body, { clusterId: options.clusterId, frameBytesMax: limit })
        .messages;
    } catch (error) {
      if (error instanceof WireDecodeError) {
        const status = error.reason === "cluster_mismatch" ? 409 : 400;
        return refuse(status, "ERR_BAD_REQUEST", `bad peer batch: ${error.message}`);
      }
      throw error;
    }
    const problem = checkSenders(messages, options);
    if (problem !== null) return refuse(403, "ERR_FORBIDDEN", problem);
    options.inbox.receive(messages);
    return c.body(null, 204);
  });

  app.post("/raft/snapshot", async (c) => {
    const headers = c.req.raw.headers;
    const cluster = decodeURIComponent(headers.get("x-edgeraft-cluster") ?? "");
    if (cluster !== options.clusterId) {
      await c.req.raw.body?.cancel();
      return refuse(409, "ERR_BAD_REQUEST", `snapshot from another cluster "${cluster}"`);
    }
    const sha256 = headers.get("x-edgeraft-snapshot-sha256") ?? "";
    const size = Number(headers.get("x-edgeraft-snapshot-size") ?? "NaN");
    if (!/^[0-9a-f]{64}$/.test(sha256) || !Number.isSafeInteger(size) || size < 0) {
      await c.req.raw.body?.cancel();
      return refuse(400, "ERR_BAD_REQUEST", "snapshot size or sha256 header missing or bad");
    }
    if (options.authenticator !== undefined) {
      const auth = await options.authenticator.authenticate(c.req.raw, "streamed");
      if (!auth.ok) {
        await c.req.raw.body?.cancel();
        return refuse(401, "ERR_UNAUTHORIZED", auth.reason);
      }
    }
    let request: SnapshotRequest;
    try {
      const decoded = decodeMessage(fromBase64(headers.get("x-edgeraft-snapshot-request") ?? ""));
      if (decoded.type !== "snapshot") throw new Error(`expected a snapshot, got ${decoded.type}`);
      request = decoded;
    } catch (error) {
      await c.req.raw.body?.cancel();
      return refuse(400, "ERR_BAD_REQUEST", `bad snapshot request header: ${String(error)}`);
    }
    const problem = checkSenders([request], options);
    if (problem !== null) {
      await c.req.raw.body?.cancel();
      return refuse(403, "ERR_FORBIDDEN", problem);
    }
    const data = c.req.raw.body;
    if (data === null) return refuse(400, "ERR_BAD_REQUEST", "snapshot body missing");
    try {
      await options.inbox.receiveSnapshot(request, data, { sha256, size });
    } catch (error) {
      options.logger.warn("snapshot refused", { from: request.from, error: String(error) });
      return c.json({
        error: {
          code: "ERR_BAD_REQUEST",
          message: `snapshot refused: ${String(error)}`,
          hint: "The leader will send a fresh snapshot.",
        },
      }, 422);
    }
    return c.body(null, 204);
  });

  return app;
}

function checkSenders(messages: readonly Message[], options: PeerRoutesOptions): string | null {
  const members = options.membership().members;
  for (const message of messages) {
    if (message.to !== options.id) return `message for "${message.to}" sent to "${options.id}"`;
    if (members.length > 0 && !members.some((m) => m.id === message.from)) {
      return `message from unknown node "${message.from}"`;
    }
  }
  return null;
}

function hintFor(code: string): string {
  switch (code) {
    case "ERR_UNAUTHORIZED":
      return "Every node of a cluster needs the same cluster secret and a clock within 30 s.";
    case "ERR_FORBIDDEN":
      return "The sender is not a member of this node's cluster configuration.";
    case "ERR_PAYLOAD_TOO_LARGE":
      return "Lower appendBytesMax on the sender.";
    default:
      return "Check that every node runs the same edgeraft version and cluster.";
  }
}

/** Reads a request body up to `limit` bytes; null when it is larger. */
async function readLimited(request: Request, limit: number): Promise<Uint8Array | null> {
  const declared = Number(request.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > limit) {
    await request.body?.cancel();
    return null;
  }
  if (request.body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of request.body) {
    total += chunk.length;
    if (total > limit) return null;
    chunks.push(chunk);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
