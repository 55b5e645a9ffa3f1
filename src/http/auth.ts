/**
 * Bearer-token authentication for the client API (`Authorization: Bearer <token>`).
 *
 * Two levels: the client token (`--token-file`) opens the key-value, cluster and metrics
 * endpoints; the admin token (`--admin-token-file`) additionally opens backup and restore. With
 * no admin token configured the client token is also the admin token; with no token at all the
 * node is open (the configuration only allows that on loopback or with `--insecure`).
 *
 * Tokens are compared in constant time: both sides are hashed with SHA-256 and the digests
 * compared byte by byte without early exit, so neither the content nor the length of the
 * configured token leaks through response timing.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { ForbiddenError, UnauthorizedError } from "../errors.ts";

/** Options of {@linkcode createBearerAuth}. */
export interface BearerAuthOptions {
  /** The client token, or null for an open node. */
  readonly token: string | null;
  /** The admin token, or null to let the client token act as admin. */
  readonly adminToken?: string | null;
}

/** The middleware pair of {@linkcode createBearerAuth}. */
export interface BearerAuth {
  /** Requires the client or the admin token. */
  readonly client: MiddlewareHandler;
  /** Requires the admin token: 401 without a valid token, 403 with the client token. */
  readonly admin: MiddlewareHandler;
  /** The level `authorization` (an `Authorization` header value or null) grants. */
  level(authorization: string | null): "none" | "client" | "admin";
}

function sha256(text: string): Uint8Array {
  return new Uint8Array(createHash("sha256").update(text, "utf8").digest());
}

/** Compares two equal-length byte arrays without an early exit. */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  let diff = 0;
  for (let i = 0; i < a.byteLength; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Extracts the token of a `Bearer` authorization header, or null. */
export function bearerToken(authorization: string | null): string | null {
  if (authorization === null) return null;
  const match = /^Bearer +([^\s]+) *$/i.exec(authorization);
  return match === null ? null : match[1]!;
}

/** Creates the client and admin middlewares for the configured tokens. */
export function createBearerAuth(options: BearerAuthOptions): BearerAuth {
  const token = options.token;
  const adminToken = options.adminToken ?? null;
  // Digest the configured tokens once (synchronously: no pending operation outlives a request).
  const clientDigest = token === null ? null : sha256(token);
  const adminDigest = adminToken === null ? null : sha256(adminToken);

  function level(authorization: string | null): "none" | "client" | "admin" {
    if (clientDigest === null && adminDigest === null) return "admin";
    const presented = bearerToken(authorization);
    if (presented === null) return "none";
    const digest = sha256(presented);
    // Compare against both, always, so timing does not tell which one matched.
    const isAdmin = adminDigest !== null && timingSafeEqual(digest, adminDigest);
    const isClient = clientDigest !== null && timingSafeEqual(digest, clientDigest);
    if (isAdmin || (isClient && adminDigest === null)) return "admin";
    return isClient ? "client" : "none";
  }

  return {
    level,
    client: async (c, next) => {
      if (level(c.req.header("authorization") ?? null) === "none") {
        throw new UnauthorizedError();
      }
      await next();
    },
    admin: async (c, next) => {
      const granted = level(c.req.header("authorization") ?? null);
      if (granted === "none") throw new UnauthorizedError();
      if (granted !== "admin") throw new ForbiddenError();
      await next();
    },
  };
}
