/**
 * The process helpers the release tests rely on: a node that dies at start-up fails
 * `waitHealthy` at once with its stderr, instead of costing the whole 20 s timeout per node.
 *
 * @module
 */

import assert from "node:assert/strict";
import { freePort, ROOT, ServeProcess, waitHealthy } from "./release_processes.ts";

Deno.test("waitHealthy fails at once with the stderr tail of a node that exits at start-up", async () => {
  const port = freePort();
  // A real node with a configuration it refuses (no --id, no --data-dir): it exits 2.
  const node = new ServeProcess("bad", [
    Deno.execPath(),
    "run",
    "--quiet",
    "--no-check",
    "-A",
    `${ROOT}/main.ts`,
    "serve",
    "--listen",
    `127.0.0.1:${port}`,
  ]);
  try {
    const started = Date.now();
    await assert.rejects(waitHealthy(node, `http://127.0.0.1:${port}`), (error: Error) => {
      assert.match(error.message, /^bad exited 2 before answering \/healthz/);
      assert.match(error.message, /--data-dir is required/);
      return true;
    });
    // waitFor's timeout is 20 s; the wait must end as soon as the exit is seen.
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 10_000, `waitHealthy took ${elapsed} ms`);
  } finally {
    await node.stop();
  }
});
