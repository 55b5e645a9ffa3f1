import assert from "node:assert/strict";
import { createLogger } from "../../src/util/logger.ts";

const NOW = () => new Date("2025-01-02T03:04:05.678Z");

Deno.test("json records are one object per line with ts, level, msg and fields in order", () => {
  const lines: string[] = [];
  const logger = createLogger({ sink: (l) => lines.push(l), now: NOW, fields: { node: "n1" } });
  logger.info("listening", { url: "http://127.0.0.1:7070", peers: 3 });
  logger.child({ component: "http" }).warn("slow\nrequest", { ms: 812 });
  assert.deepEqual(lines, [
    '{"ts":"2025-01-02T03:04:05.678Z","level":"info","msg":"listening","node":"n1","url":"http://127.0.0.1:7070","peers":3}',
    '{"ts":"2025-01-02T03:04:05.678Z","level":"warn","msg":"slow\\nrequest","node":"n1","component":"http","ms":812}',
  ]);
});

Deno.test("text records are readable and still one line each", () => {
  const lines: string[] = [];
  const logger = createLogger({ format: "text", sink: (l) => lines.push(l), now: NOW });
  logger.error("append failed", {
    file: "/d/log 1",
    code: "ERR_DISK_FULL",
    n: 2,
    ok: false,
    big: 10n,
  });
  logger.info("multi\nline", { note: 'say "hi"' });
  assert.deepEqual(lines, [
    '2025-01-02T03:04:05.678Z ERROR append failed file="/d/log 1" code=ERR_DISK_FULL n=2 ok=false big=10',
    '2025-01-02T03:04:05.678Z INFO multi\\nline note="say \\"hi\\""',
  ]);
});

Deno.test("records below the level are dropped", () => {
  const lines: string[] = [];
  const logger = createLogger({ level: "warn", sink: (l) => lines.push(l), now: NOW });
  logger.debug("d");
  logger.info("i");
  logger.warn("w");
  logger.error("e");
  assert.deepEqual(lines.map((l) => JSON.parse(l).level), ["warn", "error"]);
  assert.equal(logger.level, "warn");
});

Deno.test("errors become objects with name, message, code and cause; cycles do not throw", () => {
  const lines: string[] = [];
  const logger = createLogger({ sink: (l) => lines.push(l), now: NOW, stacks: false });
  const error = Object.assign(new Error("disk full", { cause: new Error("ENOSPC") }), {
    code: "ERR_DISK_FULL",
  });
  logger.error("write failed", { error, bytes: new Uint8Array(5) });
  assert.deepEqual(JSON.parse(lines[0]!), {
    ts: "2025-01-02T03:04:05.678Z",
    level: "error",
    msg: "write failed",
    error: {
      name: "Error",
      message: "disk full",
      code: "ERR_DISK_FULL",
      cause: { name: "Error", message: "ENOSPC" },
    },
    bytes: "<5 bytes>",
  });
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  logger.info("cyclic", { cyclic });
  assert.equal(lines.length, 2);
  assert.match(lines[1]!, /unserialisable log record/);
});

Deno.test("a throwing sink does not propagate", () => {
  const logger = createLogger({
    sink: () => {
      throw new Error("EPIPE");
    },
  });
  logger.error("still fine");
});
