/**
 * The typed errors edgeraft shows the world (STYLE.md item 12) and the one table that maps them to
 * HTTP: every expected failure (not leader, key missing, archive corrupt, disk full) is an
 * {@linkcode EdgeraftError} carrying a stable `ERR_*` code from {@linkcode ERROR_CODES}; the HTTP
 * edge turns it into `{"error": {"code", "message", "hint"}}` with the code's status, once, in one
 * place. Programming errors are `AssertionError`s (src/util/assert.ts) and are never mapped here:
 * the edge answers them with a bare `ERR_INTERNAL` and logs them.
 *
 * Invariants:
 * - the code → status mapping lives only in {@linkcode ERROR_CODES}; an error's `status` is
 *   always its code's status (codes and statuses are a public contract, docs/ERRORS.md);
 * - messages may be shown to clients: they never carry secrets or stack traces;
 * - `ERR_NOT_LEADER` is internal: the edge forwards the request to the leader or, when it cannot,
 *   answers `ERR_NO_LEADER`, so clients never see it.
 *
 * @module
 */

/** What every code carries: its HTTP status and a default hint for the operator. */
export interface ErrorCodeInfo {
  readonly status: number;
  readonly hint: string;
}

/**
 * Every error code edgeraft answers with, its HTTP status and its default hint. Stable: codes are
 * never renamed or reused, and docs/ERRORS.md mirrors this table (a test keeps them in step).
 */
export const ERROR_CODES = {
  ERR_BAD_REQUEST: {
    status: 400,
    hint: "The request is malformed; the message names the parameter or header at fault.",
  },
  ERR_UNAUTHORIZED: {
    status: 401,
    hint: 'Send "Authorization: Bearer <token>" with the token from the node\'s --token-file.',
  },
  ERR_FORBIDDEN: {
    status: 403,
    hint: "This operation needs the admin token (--admin-token-file).",
  },
  ERR_NOT_FOUND: {
    status: 404,
    hint: "No such endpoint; see the HTTP API in DESIGN.md (keys live under /v1/kv/).",
  },
  ERR_KEY_NOT_FOUND: {
    status: 404,
    hint: "The key does not exist (or was deleted); list keys with GET /v1/kv?prefix=...",
  },
  ERR_METHOD_NOT_ALLOWED: {
    status: 405,
    hint: "The endpoint exists but not with this method; the Allow header lists the methods.",
  },
  ERR_DATA_DIR_NOT_EMPTY: {
    status: 409,
    hint: "Restore into an empty data directory, or pass --force to replace its contents.",
  },
  ERR_RESTORE_CONFLICT: {
    status: 409,
    hint:
      "The archive is another cluster's: add ?force=true to restore it anyway; or a restore is running.",
  },
  ERR_REVISION_MISMATCH: {
    status: 412,
    hint: "The key changed since you read it: read it again (X-Edgeraft-Revision) and retry.",
  },
  ERR_VALUE_TOO_LARGE: {
    status: 413,
    hint: "Values are limited by the node's valueBytesMax (default 1 MiB); split the value.",
  },
  ERR_PAYLOAD_TOO_LARGE: {
    status: 413,
    hint: "The request body exceeds the node's requestBodyBytesMax.",
  },
  ERR_BACKUP_CHECKSUM_MISMATCH: {
    status: 422,
    hint:
      "A file in the archive does not match its SHA-256; the archive is damaged, take a new backup.",
  },
  ERR_BACKUP_MANIFEST_CORRUPT: {
    status: 422,
    hint: "manifest.json is missing or invalid; the archive is not a usable edgeraft backup.",
  },
  ERR_BACKUP_INCOMPLETE: {
    status: 422,
    hint: "The archive is truncated or misses a file; it was probably cut short in transfer.",
  },
  ERR_BACKUP_VERSION_UNSUPPORTED: {
    status: 422,
    hint: "The archive was written by a newer edgeraft; restore it with that version or later.",
  },
  ERR_RESTORE_FAILED: {
    status: 500,
    hint: "The restore did not complete and nothing was changed; the message says why.",
  },
  ERR_LOG_CORRUPT: {
    status: 500,
    hint:
      "A data file failed its checksum; see the message for file and offset, restore from a backup or a peer.",
  },
  ERR_INTERNAL: {
    status: 500,
    hint: "An unexpected error; the node logged the details. Please report it.",
  },
  ERR_NOT_LEADER: {
    status: 503,
    hint:
      "This node is not the leader; retry on the leader (internal: the node forwards writes itself).",
  },
  ERR_NO_LEADER: {
    status: 503,
    hint: "No leader is reachable (election in progress or quorum lost); retry after Retry-After.",
  },
  ERR_SHUTTING_DOWN: {
    status: 503,
    hint: "The node is shutting down; retry on another node or after Retry-After.",
  },
  ERR_TIMEOUT: {
    status: 504,
    hint:
      "The cluster did not answer in time; the write may or may not have been applied, read before retrying.",
  },
  ERR_DISK_FULL: {
    status: 507,
    hint: "The node's data directory is out of space; free space or grow the volume.",
  },
} as const satisfies Record<string, ErrorCodeInfo>;

/** One of the stable error codes. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** True when `code` is one of {@linkcode ERROR_CODES}. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === "string" && Object.hasOwn(ERROR_CODES, code);
}

/** Options of {@linkcode EdgeraftError}. */
export interface EdgeraftErrorOptions extends ErrorOptions {
  /** Overrides the code's default hint. */
  readonly hint?: string;
  /** Machine-readable context for logs (never secrets). Not sent to clients. */
  readonly details?: Readonly<Record<string, unknown>>;
  /** Extra response headers (`Retry-After`, `Allow`, `WWW-Authenticate`). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Base class of every error edgeraft expects from the world. */
export class EdgeraftError extends Error {
  override name = "EdgeraftError";
  readonly code: ErrorCode;
  readonly status: number;
  readonly hint: string;
  readonly details: Readonly<Record<string, unknown>> | undefined;
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: ErrorCode, message: string, options: EdgeraftErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.hint = options.hint ?? ERROR_CODES[code].hint;
    this.details = options.details;
    this.headers = options.headers ?? {};
  }
}

/** 400: a malformed request (bad key, bad query parameter, bad header). */
export class BadRequestError extends EdgeraftError {
  override name = "BadRequestError";
  constructor(message: string, options?: EdgeraftErrorOptions) {
    super("ERR_BAD_REQUEST", message, options);
  }
}

/** 401: no or a wrong bearer token, or a peer request that failed authentication. */
export class UnauthorizedError extends EdgeraftError {
  override name = "UnauthorizedError";
  constructor(message = "Missing or invalid bearer token", options: EdgeraftErrorOptions = {}) {
    super("ERR_UNAUTHORIZED", message, {
      ...options,
      headers: { "WWW-Authenticate": 'Bearer realm="edgeraft"', ...options.headers },
    });
  }
}

/** 403: authenticated, but the operation needs more (the admin token). */
export class ForbiddenError extends EdgeraftError {
  override name = "ForbiddenError";
  constructor(message = "This operation requires the admin token", options?: EdgeraftErrorOptions) {
    super("ERR_FORBIDDEN", message, options);
  }
}

/** 404: no such endpoint. */
export class NotFoundError extends EdgeraftError {
  override name = "NotFoundError";
  constructor(method: string, path: string) {
    super("ERR_NOT_FOUND", `No endpoint ${method} ${path}`);
  }
}

/** 405: the endpoint exists, but not with this method. */
export class MethodNotAllowedError extends EdgeraftError {
  override name = "MethodNotAllowedError";
  readonly allow: readonly string[];
  constructor(method: string, path: string, allow: readonly string[]) {
    super("ERR_METHOD_NOT_ALLOWED", `Method ${method} is not allowed on ${path}`, {
      headers: { Allow: allow.join(", ") },
    });
    this.allow = allow;
  }
}

/** 404: the key does not exist. */
export class KeyNotFoundError extends EdgeraftError {
  override name = "KeyNotFoundError";
  readonly key: string;
  constructor(key: string) {
    super("ERR_KEY_NOT_FOUND", `Key ${JSON.stringify(key)} not found`, { details: { key } });
    this.key = key;
  }
}

/** 412: a conditional write's `prev_revision` did not match the key's revision. */
export class RevisionMismatchError extends EdgeraftError {
  override name = "RevisionMismatchError";
  readonly key: string;
  readonly expected: number;
  /** The key's revision when the write was applied (0 = absent), when known. */
  readonly actual: number | null;
  constructor(key: string, expected: number, actual: number | null = null) {
    super(
      "ERR_REVISION_MISMATCH",
      `Key ${JSON.stringify(key)} is at revision ${actual ?? "?"}, expected ${expected}`,
      { details: { key, expected, actual } },
    );
    this.key = key;
    this.expected = expected;
    this.actual = actual;
  }
}

/** 413: a value larger than `valueBytesMax`. */
export class ValueTooLargeError extends EdgeraftError {
  override name = "ValueTooLargeError";
  readonly limitBytes: number;
  constructor(limitBytes: number, sizeBytes?: number) {
    super(
      "ERR_VALUE_TOO_LARGE",
      sizeBytes === undefined
        ? `Value exceeds the limit of ${limitBytes} bytes`
        : `Value of ${sizeBytes} bytes exceeds the limit of ${limitBytes} bytes`,
      { details: { limitBytes, sizeBytes } },
    );
    this.limitBytes = limitBytes;
  }
}

/** 413: a (non-value) request body larger than `requestBodyBytesMax`. */
export class PayloadTooLargeError extends EdgeraftError {
  override name = "PayloadTooLargeError";
  readonly limitBytes: number;
  constructor(limitBytes: number) {
    super("ERR_PAYLOAD_TOO_LARGE", `Request body exceeds the limit of ${limitBytes} bytes`, {
      details: { limitBytes },
    });
    this.limitBytes = limitBytes;
  }
}

/** 503 with `Retry-After`: no leader is known or reachable. */
export class NoLeaderError extends EdgeraftError {
  override name = "NoLeaderError";
  readonly retryAfterS: number;
  constructor(
    message = "No leader is reachable",
    options: { retryAfterS?: number; cause?: unknown } = {},
  ) {
    const retryAfterS = options.retryAfterS ?? 1;
    super("ERR_NO_LEADER", message, {
      cause: options.cause,
      headers: { "Retry-After": String(retryAfterS) },
    });
    this.retryAfterS = retryAfterS;
  }
}

/**
 * Internal: this node is not the leader. `leaderUrl` (the leader's advertised URL) lets the edge
 * forward the request; without it the edge answers {@linkcode NoLeaderError}.
 */
export class NotLeaderError extends EdgeraftError {
  override name = "NotLeaderError";
  readonly leaderId: string | null;
  readonly leaderUrl: string | null;
  constructor(leaderId: string | null, leaderUrl: string | null) {
    super(
      "ERR_NOT_LEADER",
      leaderId === null ? "This node is not the leader" : `The leader is ${leaderId}`,
      { details: { leaderId, leaderUrl }, headers: { "Retry-After": "1" } },
    );
    this.leaderId = leaderId;
    this.leaderUrl = leaderUrl;
  }
}

/** 504: the request did not complete within its deadline (its outcome is unknown). */
export class TimeoutError extends EdgeraftError {
  override name = "TimeoutError";
  constructor(message = "The request timed out", options?: EdgeraftErrorOptions) {
    super("ERR_TIMEOUT", message, options);
  }
}

/** 503 with `Retry-After`: the node is draining for shutdown. */
export class ShuttingDownError extends EdgeraftError {
  override name = "ShuttingDownError";
  constructor() {
    super("ERR_SHUTTING_DOWN", "The node is shutting down", { headers: { "Retry-After": "1" } });
  }
}

/** 500: an unexpected failure; the message shown to clients is generic. */
export class InternalError extends EdgeraftError {
  override name = "InternalError";
  constructor(message = "Internal error", options?: EdgeraftErrorOptions) {
    super("ERR_INTERNAL", message, options);
  }
}

/** 409: a restore target directory holds data. */
export class DataDirNotEmptyError extends EdgeraftError {
  override name = "DataDirNotEmptyError";
  readonly dir: string;
  constructor(dir: string) {
    super("ERR_DATA_DIR_NOT_EMPTY", `Data directory "${dir}" is not empty`, { details: { dir } });
    this.dir = dir;
  }
}

/** The codes of the backup archive checks (422 each) and of a failed restore or start-up. */
export type BackupErrorCode =
  | "ERR_BACKUP_CHECKSUM_MISMATCH"
  | "ERR_BACKUP_MANIFEST_CORRUPT"
  | "ERR_BACKUP_INCOMPLETE"
  | "ERR_BACKUP_VERSION_UNSUPPORTED";

/**
 * A backup archive failed a check. `file` names the archive member at fault (or null for the
 * archive as a whole) and `check` the failing check ("sha256", "size", "tar-header", ...).
 */
export class BackupError extends EdgeraftError {
  override name = "BackupError";
  readonly file: string | null;
  readonly check: string;
  constructor(code: BackupErrorCode, file: string | null, check: string, message: string) {
    super(code, message, { details: { file, check } });
    this.file = file;
    this.check = check;
  }
}

/** 500: a restore did not complete. */
export class RestoreFailedError extends EdgeraftError {
  override name = "RestoreFailedError";
  constructor(message: string, options?: EdgeraftErrorOptions) {
    super("ERR_RESTORE_FAILED", message, options);
  }
}

/**
 * 409: an online restore that conflicts with the cluster: an archive of another cluster
 * without `force`, or a restore already running.
 */
export class RestoreConflictError extends EdgeraftError {
  override name = "RestoreConflictError";
  constructor(message: string, options?: EdgeraftErrorOptions) {
    super("ERR_RESTORE_CONFLICT", message, options);
  }
}

/** 500: a data file failed a checksum or framing check. */
export class DataCorruptError extends EdgeraftError {
  override name = "DataCorruptError";
  constructor(message: string, options?: EdgeraftErrorOptions) {
    super("ERR_LOG_CORRUPT", message, options);
  }
}

/** 507: the data directory is out of space. */
export class DiskFullError extends EdgeraftError {
  override name = "DiskFullError";
  constructor(message = "No space left on device", options?: EdgeraftErrorOptions) {
    super("ERR_DISK_FULL", message, options);
  }
}

/**
 * Maps anything thrown to an {@linkcode EdgeraftError}: edgeraft errors as they are; errors of
 * other layers that carry a known `code` (the storage layer's `StorageError`s) with that code and
 * their message; invalid keys (`InvalidKeyError`, `KvCommandError`) to 400/413; everything else
 * to a generic `ERR_INTERNAL` whose message hides the original (the caller logs `cause`).
 */
export function toEdgeraftError(error: unknown): EdgeraftError {
  if (error instanceof EdgeraftError) return error;
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    if (isErrorCode(code)) return new EdgeraftError(code, error.message, { cause: error });
    if (error.name === "InvalidKeyError") {
      return new BadRequestError(error.message, { cause: error });
    }
    if (error.name === "KvCommandError") {
      const reason = (error as { reason?: unknown }).reason;
      if (reason === "value_too_large") {
        return new EdgeraftError("ERR_VALUE_TOO_LARGE", error.message, { cause: error });
      }
      if (reason === "invalid_key" || reason === "invalid_revision") {
        return new BadRequestError(error.message, { cause: error });
      }
    }
  }
  return new InternalError("Internal error", { cause: error });
}

/** The JSON body of an error response. */
export interface ErrorBody {
  readonly error: { readonly code: ErrorCode; readonly message: string; readonly hint: string };
}

/** The client-facing body of `error` (after {@linkcode toEdgeraftError}). */
export function errorBody(error: unknown): ErrorBody {
  const e = toEdgeraftError(error);
  return { error: { code: e.code, message: e.message, hint: e.hint } };
}
