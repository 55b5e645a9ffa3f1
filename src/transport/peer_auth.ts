/**
 * Authentication of peer requests (`/raft/*`) with the cluster secret (`--cluster-secret-file`).
 *
 * The sender signs each request with HMAC-SHA256 (Web Crypto; the key is imported once) over
 * a canonical string of, one per line:
 *
 * ```
 * EDGERAFT-HMAC-SHA256
 * <METHOD>            upper case
 * <path and query>    exactly as sent, e.g. /raft/append?x=1
 * <timestamp>         sender's clock, ms since the epoch, decimal
 * <nonce>             32 hex digits, random per request
 * <node id>           the sender's --id
 * <body sha-256>      64 hex digits (of the empty string for no body)
 * ```
 *
 * and sends the parts and the signature in headers ({@linkcode PEER_HEADERS}). The receiver
 * ({@linkcode PeerVerifier}) checks, in order: all headers present and well-formed; the
 * timestamp within ±`windowMs` of its own clock (default 30 s; clocks must be roughly in sync,
 * e.g. NTP); the body's SHA-256 against the declared one when the body is at hand; the
 * signature (constant time, `crypto.subtle.verify`); and only then that the nonce was not seen
 * within the window (so unauthenticated traffic cannot fill the replay cache).
 *
 * Streamed bodies (InstallSnapshot): the body digest is declared up front in
 * `X-Edgeraft-Content-Sha256` and covered by the signature, but the receiver cannot check it
 * before the stream ends. It verifies the headers with `verify(..., { body: "streamed" })`, then
 * hashes the bytes while writing them to a temporary file ({@linkcode createSha256CheckStream})
 * and refuses to install the snapshot when the digest differs — the stream errors at its end, so
 * the snapshot sink's `cancel()` discards the temporary file.
 *
 * Replay cache: nonces of accepted requests are kept until their timestamp leaves the window,
 * at most `nonceCacheMax`. When it is full the oldest nonce is evicted and the verifier from
 * then on refuses every request whose timestamp is not newer than the evicted one's, so an
 * evicted nonce can never be replayed (a saturated cache degrades to "reject old requests",
 * never to "accept replays").
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { BadRequestError, PayloadTooLargeError, UnauthorizedError } from "../errors.ts";
import { readBodyLimited } from "../http/body.ts";
import { errorResponse } from "../http/errors.ts";

/** The headers of a signed peer request. */
export const PEER_HEADERS = {
  node: "X-Edgeraft-Node",
  timestamp: "X-Edgeraft-Timestamp",
  nonce: "X-Edgeraft-Nonce",
  contentSha256: "X-Edgeraft-Content-Sha256",
  signature: "X-Edgeraft-Signature",
} as const;

const SCHEME = "EDGERAFT-HMAC-SHA256";
const encoder = new TextEncoder();
const HEX64 = /^[0-9a-f]{64}$/;
const HEX32 = /^[0-9a-f]{32}$/;
const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** SHA-256 of zero bytes. */
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** Imports the cluster secret as an HMAC-SHA256 key, once per process. */
export async function importPeerKey(secret: string): Promise<CryptoKey> {
  return await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign", "verify"],
  );
}

/** Lower-case hex SHA-256 of `bytes`. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const copy = bytes.buffer instanceof ArrayBuffer
    ? (bytes as Uint8Array<ArrayBuffer>)
    : new Uint8Array(bytes);
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", copy)));
}

/** What {@linkcode signPeerRequest} signs. */
export interface PeerRequestToSign {
  readonly method: string;
  /** Path and query as sent, starting with "/". */
  readonly path: string;
  /** The body bytes, or its SHA-256 in hex (streamed bodies); neither means an empty body. */
  readonly body?: Uint8Array;
  readonly bodySha256?: string;
  /** The sender's clock, ms since the epoch. */
  readonly timestampMs: number;
  readonly nodeId: string;
  /** 32 hex digits; random when omitted (tests pass one). */
  readonly nonce?: string;
}

/** Computes the authentication headers of a peer request. */
export async function signPeerRequest(
  request: PeerRequestToSign,
  key: CryptoKey,
): Promise<Record<string, string>> {
  const bodySha256 = request.bodySha256 ??
    (request.body === undefined ? EMPTY_SHA256 : await sha256Hex(request.body));
  const nonce = request.nonce ?? toHex(crypto.getRandomValues(new Uint8Array(16)));
  if (!HEX64.test(bodySha256)) throw new TypeError("bodySha256 must be 64 lower-case hex digits");
  if (!HEX32.test(nonce)) throw new TypeError("nonce must be 32 lower-case hex digits");
  if (!NODE_ID.test(request.nodeId)) {
    throw new TypeError(`Invalid node id ${JSON.stringify(request.nodeId)}`);
  }
  if (!request.path.startsWith("/") || /[\r\n]/.test(request.path)) {
    throw new TypeError(`Invalid path ${JSON.stringify(request.path)}`);
  }
  const timestamp = String(Math.trunc(request.timestampMs));
  const signature = await crypto.subtle.sign(
    "HMAC",
    key,
    canonical(request.method, request.path, timestamp, nonce, request.nodeId, bodySha256),
  );
  return {
    [PEER_HEADERS.node]: request.nodeId,
    [PEER_HEADERS.timestamp]: timestamp,
    [PEER_HEADERS.nonce]: nonce,
    [PEER_HEADERS.contentSha256]: bodySha256,
    [PEER_HEADERS.signature]: toHex(new Uint8Array(signature)),
  };
}

/** Options of {@linkcode PeerVerifier}. */
export interface PeerVerifierOptions {
  /** The receiver's clock, ms since the epoch. Default `Date.now`. */
  readonly now?: () => number;
  /** Accepted clock difference either way. Default 30 000 ms. */
  readonly windowMs?: number;
  /** Most nonces remembered. Default 100 000 (3 300 requests/s at the default window). */
  readonly nonceCacheMax?: number;
  /** Accept only these senders (the current members); default: any well-formed id. */
  readonly isKnownNode?: (nodeId: string) => boolean;
}

/** What the receiver knows of a request it checks. */
export interface PeerRequestToVerify {
  readonly method: string;
  /** Path and query as received. */
  readonly path: string;
  readonly headers: Headers;
  /** The body bytes, or "streamed" to check the declared digest after streaming. */
  readonly body: Uint8Array | "streamed";
}

/** The outcome of {@linkcode PeerVerifier.verify}. */
export type PeerVerifyResult =
  | { readonly ok: true; readonly nodeId: string; readonly bodySha256: string }
  | { readonly ok: false; readonly reason: string };

/** Checks peer requests: signature, clock window, body digest and nonce replay. */
export class PeerVerifier {
  readonly #key: CryptoKey;
  readonly #now: () => number;
  readonly #windowMs: number;
  readonly #nonceCacheMax: number;
  readonly #isKnownNode: (nodeId: string) => boolean;
  /** nonce → timestamp, in insertion order. */
  readonly #nonces = new Map<string, number>();
  /** Requests with a timestamp ≤ this are refused: their nonce may have been evicted. */
  #floorMs = -Infinity;

  constructor(key: CryptoKey, options: PeerVerifierOptions = {}) {
    this.#key = key;
    this.#now = options.now ?? Date.now;
    this.#windowMs = options.windowMs ?? 30_000;
    this.#nonceCacheMax = options.nonceCacheMax ?? 100_000;
    this.#isKnownNode = options.isKnownNode ?? (() => true);
  }

  /** Number of nonces remembered (tests, metrics). */
  get nonceCount(): number {
    return this.#nonces.size;
  }

  /** Checks `request`; on success its nonce is remembered and cannot be used again. */
  async verify(request: PeerRequestToVerify): Promise<PeerVerifyResult> {
    const h = request.headers;
    const nodeId = h.get(PEER_HEADERS.node);
    const timestamp = h.get(PEER_HEADERS.timestamp);
    const nonce = h.get(PEER_HEADERS.nonce);
    const bodySha256 = h.get(PEER_HEADERS.contentSha256);
    const signature = h.get(PEER_HEADERS.signature);
    const missing = Object.entries(PEER_HEADERS)
      .filter(([field]) => h.get(PEER_HEADERS[field as keyof typeof PEER_HEADERS]) === null)
      .map(([, name]) => name);
    if (
      nodeId === null || timestamp === null || nonce === null || bodySha256 === null ||
      signature === null
    ) {
      return fail(`missing header${missing.length > 1 ? "s" : ""} ${missing.join(", ")}`);
    }
    if (!NODE_ID.test(nodeId)) return fail(`malformed ${PEER_HEADERS.node}`);
    if (!/^\d{1,16}$/.test(timestamp)) return fail(`malformed ${PEER_HEADERS.timestamp}`);
    if (!HEX32.test(nonce)) return fail(`malformed ${PEER_HEADERS.nonce}`);
    if (!HEX64.test(bodySha256)) return fail(`malformed ${PEER_HEADERS.contentSha256}`);
    if (!HEX64.test(signature)) return fail(`malformed ${PEER_HEADERS.signature}`);
    if (!this.#isKnownNode(nodeId)) return fail(`unknown node ${JSON.stringify(nodeId)}`);

    const now = this.#now();
    this.#expire(now);
    const timestampMs = Number(timestamp);
    if (Math.abs(now - timestampMs) > this.#windowMs) {
      return fail(
        `timestamp ${timestampMs} is ${
          now - timestampMs
        } ms off this node's clock (window ${this.#windowMs} ms)`,
      );
    }
    if (request.body !== "streamed" && (await sha256Hex(request.body)) !== bodySha256) {
      return fail("body does not match its declared SHA-256");
    }
    const valid = await crypto.subtle.verify(
      "HMAC",
      this.#key,
      fromHex(signature),
      canonical(request.method, request.path, timestamp, nonce, nodeId, bodySha256),
    );
    if (!valid) return fail("bad signature (different cluster secret, or the request was altered)");

    if (timestampMs <= this.#floorMs) {
      return fail("request too old for the saturated replay cache; retry");
    }
    if (this.#nonces.has(nonce)) return fail("nonce already used (replayed request)");
    this.#nonces.set(nonce, timestampMs);
    if (this.#nonces.size > this.#nonceCacheMax) {
      const [oldest, oldestMs] = this.#nonces.entries().next().value!;
      this.#nonces.delete(oldest);
      this.#floorMs = Math.max(this.#floorMs, oldestMs);
    }
    return { ok: true, nodeId, bodySha256 };
  }

  /** Drops nonces whose timestamp left the window: a replay of them fails the clock check. */
  #expire(now: number): void {
    for (const [nonce, timestampMs] of this.#nonces) {
      if (timestampMs >= now - this.#windowMs) {
        // Insertion order is roughly timestamp order; stop at the first live one (a few stale
        // entries behind a skewed sender only cost memory until they come up).
        break;
      }
      this.#nonces.delete(nonce);
    }
  }
}

function fail(reason: string): PeerVerifyResult {
  return { ok: false, reason };
}

/** Hono variables set by {@linkcode peerAuthMiddleware}. */
export interface PeerAuthVariables {
  /** The authenticated sender. */
  peerNodeId: string;
  /** The body bytes, read and verified; null on streamed routes. */
  peerBody: Uint8Array | null;
  /** The declared body SHA-256; on streamed routes the handler must check it after streaming. */
  peerBodySha256: string;
}

/** Options of {@linkcode peerAuthMiddleware}. */
export interface PeerAuthMiddlewareOptions {
  /** The largest body read into memory (`requestBodyBytesMax`). */
  readonly bodyBytesMax: number;
  /** Routes whose body is streamed and checked afterwards (snapshot transfer). */
  readonly isStreamed?: (method: string, path: string) => boolean;
}

/**
 * Hono middleware for the peer routes: verifies every request and answers 401
 * `ERR_UNAUTHORIZED` (JSON) when it fails. The signature is checked before the body is read;
 * then non-streamed bodies are read (bounded by `bodyBytesMax`, 413 beyond), checked against the
 * signed digest and handed to the handler in `c.var.peerBody`. Streamed routes get
 * `c.var.peerBodySha256` to check while streaming ({@linkcode createSha256CheckStream}).
 */
export function peerAuthMiddleware(
  verifier: PeerVerifier,
  options: PeerAuthMiddlewareOptions,
): MiddlewareHandler<{ Variables: PeerAuthVariables }> {
  const unauthorized = (reason: string) =>
    errorResponse(
      new UnauthorizedError(`Peer authentication failed: ${reason}`, {
        hint: "Every node must use the same --cluster-secret-file and a synchronised clock (NTP).",
        headers: { "WWW-Authenticate": SCHEME },
      }),
    );
  return async (c, next) => {
    const url = new URL(c.req.url);
    // Headers and signature first (over the declared digest): an unauthenticated sender cannot
    // make this node read its body.
    const result = await verifier.verify({
      method: c.req.method,
      path: url.pathname + url.search,
      headers: c.req.raw.headers,
      body: "streamed",
    });
    if (!result.ok) return unauthorized(result.reason);
    let body: Uint8Array | null = null;
    if (!(options.isStreamed?.(c.req.method, url.pathname) ?? false)) {
      try {
        body = await readBodyLimited(c.req.raw, {
          limitBytes: options.bodyBytesMax,
          tooLarge: () => new PayloadTooLargeError(options.bodyBytesMax),
          badLength: (message) => new BadRequestError(message),
        });
      } catch (error) {
        return errorResponse(error);
      }
      if ((await sha256Hex(body)) !== result.bodySha256) {
        return unauthorized("body does not match its declared SHA-256");
      }
    }
    c.set("peerNodeId", result.nodeId);
    c.set("peerBody", body);
    c.set("peerBodySha256", result.bodySha256);
    await next();
  };
}

/**
 * A pass-through stream that hashes what flows through it and errors at the end when the
 * SHA-256 differs from `expectedHex` (or when more than `limitBytes` arrive), so a sink fed
 * through it never publishes a body that does not match its signed digest.
 */
export function createSha256CheckStream(
  expectedHex: string,
  limitBytes = Number.MAX_SAFE_INTEGER,
): TransformStream<Uint8Array, Uint8Array> {
  const hash = createHash("sha256");
  let total = 0;
  return new TransformStream({
    transform(chunk, controller) {
      total += chunk.byteLength;
      if (total > limitBytes) {
        controller.error(new PayloadTooLargeError(limitBytes));
        return;
      }
      hash.update(chunk);
      controller.enqueue(chunk);
    },
    flush(controller) {
      const actual = hash.digest("hex");
      if (actual !== expectedHex) {
        controller.error(
          new UnauthorizedError(
            `Streamed body SHA-256 ${actual} does not match the signed ${expectedHex}`,
          ),
        );
      }
    },
  });
}

function canonical(
  method: string,
  path: string,
  timestamp: string,
  nonce: string,
  nodeId: string,
  bodySha256: string,
): Uint8Array<ArrayBuffer> {
  return encoder.encode(
    [SCHEME, method.toUpperCase(), path, timestamp, nonce, nodeId, bodySha256].join("\n"),
  );
}

function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

function fromHex(hex: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
