import assert from "node:assert/strict";
import {
  BackupError,
  BadRequestError,
  EdgeraftError,
  ERROR_CODES,
  errorBody,
  KeyNotFoundError,
  MethodNotAllowedError,
  NoLeaderError,
  NotLeaderError,
  RevisionMismatchError,
  toEdgeraftError,
  UnauthorizedError,
} from "../../src/errors.ts";
import { errorResponse } from "../../src/http/errors.ts";
import {
  DiskFullError as StorageDiskFullError,
  LogCorruptError,
} from "../../src/storage/errors.ts";
import { InvalidKeyError } from "../../src/kv/kv_key.ts";
import { createLogger } from "../../src/util/logger.ts";

Deno.test("every code DESIGN.md names is in the table with its documented status", () => {
  const expected: Record<string, number> = {
    ERR_BAD_REQUEST: 400,
    ERR_UNAUTHORIZED: 401,
    ERR_FORBIDDEN: 403,
    ERR_NOT_FOUND: 404,
    ERR_KEY_NOT_FOUND: 404,
    ERR_METHOD_NOT_ALLOWED: 405,
    ERR_DATA_DIR_NOT_EMPTY: 409,
    ERR_RESTORE_CONFLICT: 409,
    ERR_REVISION_MISMATCH: 412,
    ERR_VALUE_TOO_LARGE: 413,
    ERR_PAYLOAD_TOO_LARGE: 413,
    ERR_BACKUP_CHECKSUM_MISMATCH: 422,
    ERR_BACKUP_MANIFEST_CORRUPT: 422,
    ERR_BACKUP_INCOMPLETE: 422,
    ERR_BACKUP_VERSION_UNSUPPORTED: 422,
    ERR_RESTORE_FAILED: 500,
    ERR_LOG_CORRUPT: 500,
    ERR_INTERNAL: 500,
    ERR_NOT_LEADER: 503,
    ERR_NO_LEADER: 503,
    ERR_SHUTTING_DOWN: 503,
    ERR_TIMEOUT: 504,
    ERR_DISK_FULL: 507,
  };
  const actual = Object.fromEntries(
    Object.entries(ERROR_CODES).map(([code, info]) => [code, info.status]),
  );
  assert.deepEqual(actual, expected);
  for (const [code, info] of Object.entries(ERROR_CODES)) {
    assert.ok(info.hint.length > 20, `${code} has a useful hint`);
  }
});

Deno.test("docs/ERRORS.md lists exactly the table's codes, statuses and hints", async () => {
  const text = await Deno.readTextFile(new URL("../../docs/ERRORS.md", import.meta.url));
  const rows = text.split("\n")
    .filter((line) => /^\| `ERR_/.test(line))
    .map((line) => {
      const cells = line.split(/(?<!\\)\|/).slice(1, -1).map((cell) =>
        cell.trim().replace(/\\([|<>])/g, "$1")
      );
      return [cells[0]!.replace(/`/g, ""), Number(cells[1]), cells[2]];
    });
  assert.deepEqual(
    rows,
    Object.entries(ERROR_CODES).map(([code, info]) => [code, info.status, info.hint]),
  );
});

Deno.test("errorBody has exactly code, message and hint", () => {
  const body = errorBody(new RevisionMismatchError("a", 5, 7));
  assert.deepEqual(body, {
    error: {
      code: "ERR_REVISION_MISMATCH",
      message: 'Key "a" is at revision 7, expected 5',
      hint: ERROR_CODES.ERR_REVISION_MISMATCH.hint,
    },
  });
  assert.equal(errorBody(new BadRequestError("x", { hint: "custom" })).error.hint, "custom");
});

Deno.test("errors of other layers map by their code, unknown ones to a bare ERR_INTERNAL", () => {
  const corrupt = toEdgeraftError(new LogCorruptError("/d/log/00001.seg", 4096, "crc mismatch"));
  assert.equal(corrupt.code, "ERR_LOG_CORRUPT");
  assert.equal(corrupt.status, 500);
  assert.match(corrupt.message, /00001\.seg" at offset 4096/);
  assert.equal(toEdgeraftError(new StorageDiskFullError("/d/log")).status, 507);
  assert.equal(toEdgeraftError(new InvalidKeyError("Invalid key: empty")).code, "ERR_BAD_REQUEST");
  const kvTooLarge = Object.assign(new Error("value of 2 MiB"), {
    name: "KvCommandError",
    reason: "value_too_large",
  });
  assert.equal(toEdgeraftError(kvTooLarge).code, "ERR_VALUE_TOO_LARGE");
  const internal = toEdgeraftError(new TypeError("cannot read properties of undefined"));
  assert.equal(internal.code, "ERR_INTERNAL");
  assert.equal(internal.message, "Internal error");
  assert.equal(toEdgeraftError("a string").code, "ERR_INTERNAL");
  const own = new KeyNotFoundError("k");
  assert.equal(toEdgeraftError(own), own);
  assert.ok(own instanceof EdgeraftError);
});

Deno.test("errorResponse sets status, JSON body and the code's headers", async () => {
  const noLeader = errorResponse(new NoLeaderError("election", { retryAfterS: 2 }));
  assert.equal(noLeader.status, 503);
  assert.equal(noLeader.headers.get("retry-after"), "2");
  assert.match(noLeader.headers.get("content-type")!, /^application\/json/);
  assert.equal(
    ((await noLeader.json()) as { error: { code: string } }).error.code,
    "ERR_NO_LEADER",
  );

  const unauthorized = errorResponse(new UnauthorizedError());
  assert.equal(unauthorized.status, 401);
  assert.equal(unauthorized.headers.get("www-authenticate"), 'Bearer realm="edgeraft"');
  await unauthorized.body?.cancel();

  const notAllowed = errorResponse(
    new MethodNotAllowedError("POST", "/v1/status", ["GET", "HEAD"]),
  );
  assert.equal(notAllowed.status, 405);
  assert.equal(notAllowed.headers.get("allow"), "GET, HEAD");
  await notAllowed.body?.cancel();

  const backup = errorResponse(
    new BackupError(
      "ERR_BACKUP_CHECKSUM_MISMATCH",
      "kv.snap",
      "sha256",
      "kv.snap: sha256 mismatch",
    ),
  );
  assert.equal(backup.status, 422);
  await backup.body?.cancel();
});

Deno.test("a not-leader error that reaches a client becomes ERR_NO_LEADER with Retry-After", async () => {
  const res = errorResponse(new NotLeaderError("n2", "http://10.0.0.2:7070"));
  assert.equal(res.status, 503);
  assert.equal(res.headers.get("retry-after"), "1");
  assert.equal(((await res.json()) as { error: { code: string } }).error.code, "ERR_NO_LEADER");
});

Deno.test("unexpected errors are logged with their stack; client errors are not logged", async () => {
  const lines: string[] = [];
  const logger = createLogger({ sink: (line) => lines.push(line) });
  const res = errorResponse(new RangeError("index 7 out of range"), logger);
  const body = (await res.json()) as { error: { message: string } };
  assert.equal(body.error.message, "Internal error");
  assert.equal(lines.length, 1);
  const record = JSON.parse(lines[0]!);
  assert.equal(record.level, "error");
  assert.equal(record.error.message, "index 7 out of range");
  assert.match(record.error.stack, /RangeError/);
  await errorResponse(new KeyNotFoundError("k"), logger).body?.cancel();
  assert.equal(lines.length, 1);
});
