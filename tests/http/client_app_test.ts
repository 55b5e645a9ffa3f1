import assert from "node:assert/strict";
import { Hono } from "hono";
import { createClientApp, registerClientRoutes } from "../../src/http/client_app.ts";
import { installErrorHandlers } from "../../src/http/errors.ts";
import type { ClientAppOptions } from "../../src/http/client_app.ts";
import { createLogger } from "../../src/util/logger.ts";
import { FakeNode } from "./fake_node.ts";

const TOKEN = "client-token-0123456789";
const AUTH = { authorization: `Bearer ${TOKEN}` };
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function setup(options: ClientAppOptions = {}, node = new FakeNode()) {
  const logs: string[] = [];
  const logger = createLogger({ level: "debug", sink: (line) => logs.push(line) });
  const app = createClientApp(node, { token: TOKEN, logger, ...options });
  return { app, node, logs };
}

interface ErrorJson {
  error: { code: string; message: string; hint: string };
}

async function errorOf(response: Response): Promise<ErrorJson["error"]> {
  assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
  const body = (await response.json()) as ErrorJson;
  assert.deepEqual(Object.keys(body), ["error"]);
  assert.deepEqual(Object.keys(body.error).sort(), ["code", "hint", "message"]);
  assert.ok(body.error.hint.length > 0, "every error carries a hint");
  return body.error;
}

async function expectError(
  response: Response,
  status: number,
  code: string,
): Promise<ErrorJson["error"]> {
  const error = await errorOf(response);
  assert.equal(response.status, status, `status for ${code}: ${JSON.stringify(error)}`);
  assert.equal(error.code, code);
  return error;
}

function put(
  body: string | Uint8Array<ArrayBuffer>,
  headers: Record<string, string> = AUTH,
): RequestInit {
  return { method: "PUT", headers, body: typeof body === "string" ? encoder.encode(body) : body };
}

// --- key-value -----------------------------------------------------------------------------

Deno.test("PUT stores the body bytes and answers the key and its revision", async () => {
  const { app, node } = setup();
  const res = await app.request("/v1/kv/config/db/url", put("postgres://x"));
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { key: "config/db/url", revision: 1 });
  assert.equal(decoder.decode(node.store.get("config/db/url")!.value), "postgres://x");
});

Deno.test("GET returns the raw value, its revision header and octet-stream", async () => {
  const { app } = setup();
  const bytes = new Uint8Array([0, 255, 10, 13, 128]);
  await app.request("/v1/kv/bin", put(bytes));
  const res = await app.request("/v1/kv/bin", { headers: AUTH });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/octet-stream");
  assert.equal(res.headers.get("x-edgeraft-revision"), "1");
  assert.deepEqual(new Uint8Array(await res.arrayBuffer()), bytes);
});

Deno.test("a key is the rest of the path, percent-decoded, and may contain slashes", async () => {
  const { app, node } = setup();
  const res = await app.request("/v1/kv/a/b%2Fc/%E2%82%AC%20x+y%3F", put("v"));
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { key: "a/b/c/€ x+y?", revision: 1 });
  assert.ok(node.store.has("a/b/c/€ x+y?"));
  const get = await app.request("/v1/kv/a%2Fb/c/%E2%82%AC%20x%2By%3f", { headers: AUTH });
  assert.equal(get.status, 200);
  assert.equal(await get.text(), "v");
});

Deno.test("GET reads linearizably by default and stale on request", async () => {
  const { app, node } = setup();
  await app.request("/v1/kv/k", put("v"));
  await (await app.request("/v1/kv/k", { headers: AUTH })).arrayBuffer();
  await (await app.request("/v1/kv/k?consistency=stale", { headers: AUTH })).arrayBuffer();
  await (await app.request("/v1/kv/k?consistency=linearizable", { headers: AUTH })).arrayBuffer();
  assert.deepEqual(
    node.calls.filter((c) => c.method === "get").map((c) => c.consistency),
    ["linearizable", "stale", "linearizable"],
  );
  await expectError(
    await app.request("/v1/kv/k?consistency=eventual", { headers: AUTH }),
    400,
    "ERR_BAD_REQUEST",
  );
});

Deno.test("GET of a missing key is 404 ERR_KEY_NOT_FOUND", async () => {
  const { app } = setup();
  const error = await expectError(
    await app.request("/v1/kv/nope", { headers: AUTH }),
    404,
    "ERR_KEY_NOT_FOUND",
  );
  assert.match(error.message, /nope/);
});

Deno.test("HEAD of a key answers its headers without a body", async () => {
  const { app } = setup();
  await app.request("/v1/kv/k", put("value"));
  const res = await app.request("/v1/kv/k", { method: "HEAD", headers: AUTH });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("x-edgeraft-revision"), "1");
  assert.equal(res.body, null);
});

Deno.test("DELETE removes the key and answers the deleting revision", async () => {
  const { app, node } = setup();
  await app.request("/v1/kv/k", put("v"));
  const res = await app.request("/v1/kv/k", { method: "DELETE", headers: AUTH });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { key: "k", revision: 2 });
  assert.equal(node.store.has("k"), false);
  await expectError(
    await app.request("/v1/kv/k", { method: "DELETE", headers: AUTH }),
    404,
    "ERR_KEY_NOT_FOUND",
  );
});

Deno.test("prev_revision makes PUT and DELETE conditional; 0 means only if absent", async () => {
  const { app, node } = setup();
  assert.equal((await app.request("/v1/kv/k?prev_revision=0", put("a"))).status, 200);
  await expectError(
    await app.request("/v1/kv/k?prev_revision=0", put("b")),
    412,
    "ERR_REVISION_MISMATCH",
  );
  const ok = await app.request("/v1/kv/k?prev_revision=1", put("c"));
  assert.deepEqual(await ok.json(), { key: "k", revision: 2 });
  await expectError(
    await app.request("/v1/kv/k?prev_revision=1", { method: "DELETE", headers: AUTH }),
    412,
    "ERR_REVISION_MISMATCH",
  );
  const del = await app.request("/v1/kv/k?prev_revision=2", { method: "DELETE", headers: AUTH });
  assert.equal(del.status, 200);
  assert.deepEqual(
    node.calls.filter((c) => c.method !== "get").map((c) => c.prevRevision),
    [0, 0, 1, 1, 2],
  );
});

Deno.test("a bad prev_revision is 400 and never reaches the node", async () => {
  const { app, node } = setup();
  for (const bad of ["-1", "1.5", "abc", "", "1e3", "99999999999999999", "0x10", " 1"]) {
    const res = await app.request(`/v1/kv/k?prev_revision=${encodeURIComponent(bad)}`, put("v"));
    const error = await expectError(res, 400, "ERR_BAD_REQUEST");
    assert.match(error.message, /prev_revision/);
  }
  assert.equal(node.calls.length, 0);
});

Deno.test("a misspelt or repeated query parameter is 400, not silently ignored", async () => {
  const { app, node } = setup();
  const misspelt = await app.request("/v1/kv/k?prevRevision=3", put("v"));
  assert.match((await expectError(misspelt, 400, "ERR_BAD_REQUEST")).message, /prevRevision/);
  const twice = await app.request("/v1/kv/k?prev_revision=1&prev_revision=2", put("v"));
  assert.match((await expectError(twice, 400, "ERR_BAD_REQUEST")).message, /more than once/);
  assert.equal(node.calls.length, 0);
});

Deno.test("an empty key, a key over 1024 bytes and bad percent-encoding are 400", async () => {
  const { app, node } = setup();
  await expectError(await app.request("/v1/kv/", put("v")), 400, "ERR_BAD_REQUEST");
  await expectError(await app.request("/v1/kv/", { headers: AUTH }), 400, "ERR_BAD_REQUEST");
  const long = "k".repeat(1025);
  const tooLong = await expectError(
    await app.request(`/v1/kv/${long}`, put("v")),
    400,
    "ERR_BAD_REQUEST",
  );
  assert.match(tooLong.message, /1024 bytes/);
  // 1024 bytes exactly is fine, counted in UTF-8 bytes (3 bytes per "€").
  assert.equal((await app.request(`/v1/kv/${"k".repeat(1024)}`, put("v"))).status, 200);
  const euros = encodeURIComponent("€".repeat(342)); // 1026 bytes
  await expectError(await app.request(`/v1/kv/${euros}`, put("v")), 400, "ERR_BAD_REQUEST");
  for (const bad of ["%ZZ", "abc%", "%E2%82", "%ED%A0%80", "%C0%AF"]) {
    const error = await expectError(
      await app.request(`/v1/kv/${bad}`, { headers: AUTH }),
      400,
      "ERR_BAD_REQUEST",
    );
    assert.match(error.message, /percent-encoding/, bad);
  }
  assert.deepEqual(node.calls.map((c) => c.key?.length), [1024]);
});

Deno.test("a value over valueBytesMax is 413 ERR_VALUE_TOO_LARGE, at the limit it is stored", async () => {
  const { app, node } = setup({ valueBytesMax: 16 });
  assert.equal((await app.request("/v1/kv/k", put(new Uint8Array(16)))).status, 200);
  const error = await expectError(
    await app.request("/v1/kv/k", put(new Uint8Array(17))),
    413,
    "ERR_VALUE_TOO_LARGE",
  );
  assert.match(error.message, /16 bytes/);
  assert.equal(node.calls.length, 1);
});

Deno.test("a streamed body is cut off once it passes the limit instead of being buffered", async () => {
  const { app, node } = setup({ valueBytesMax: 1000 });
  let pulled = 0;
  let cancelled = false;
  const endless = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled += 1;
      controller.enqueue(new Uint8Array(300));
    },
    cancel() {
      cancelled = true;
    },
  });
  const res = await app.request("/v1/kv/k", {
    method: "PUT",
    headers: AUTH,
    body: endless,
    duplex: "half",
  } as RequestInit);
  await expectError(res, 413, "ERR_VALUE_TOO_LARGE");
  assert.ok(cancelled, "the body stream is cancelled");
  assert.ok(pulled <= 6, `read ${pulled} chunks of an endless body`);
  assert.equal(node.calls.length, 0);
});

Deno.test("a declared Content-Length over the limit is refused before reading", async () => {
  const { app } = setup({ valueBytesMax: 10 });
  let pulled = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled += 1;
      controller.enqueue(new Uint8Array(5));
      controller.close();
    },
  }, { highWaterMark: 0 });
  const request = new Request("http://localhost/v1/kv/k", {
    method: "PUT",
    headers: { ...AUTH, "content-length": "5000000" },
    body,
    duplex: "half",
  } as RequestInit);
  assert.equal(request.headers.get("content-length"), "5000000");
  const error = await expectError(await app.request(request), 413, "ERR_VALUE_TOO_LARGE");
  assert.match(error.message, /5000000/);
  assert.equal(pulled, 0);
  await body.cancel();
});

Deno.test("the key listing pages with prefix, after, limit and a more flag", async () => {
  const { app, node } = setup();
  for (const key of ["app/a", "app/b", "app/c", "app/d", "other/x"]) {
    await app.request(`/v1/kv/${key}`, put(key.toUpperCase()));
  }
  const first = await app.request("/v1/kv?prefix=app/&limit=2", { headers: AUTH });
  assert.equal(first.status, 200);
  assert.deepEqual(await first.json(), {
    items: [{ key: "app/a", revision: 1 }, { key: "app/b", revision: 2 }],
    more: true,
  });
  const second = await app.request("/v1/kv?prefix=app%2F&limit=2&after=app%2Fb", { headers: AUTH });
  assert.deepEqual(await second.json(), {
    items: [{ key: "app/c", revision: 3 }, { key: "app/d", revision: 4 }],
    more: false,
  });
  const all = await app.request("/v1/kv", { headers: AUTH });
  assert.deepEqual(((await all.json()) as { items: unknown[] }).items.length, 5);
  const listCall = node.calls.filter((c) => c.method === "list").at(-1)!;
  assert.deepEqual(listCall.list, { prefix: "", limit: 100, values: false });
  assert.equal(listCall.consistency, "linearizable");
});

Deno.test("the key listing includes base64 values with values=true", async () => {
  const { app } = setup();
  await app.request("/v1/kv/b", put(new Uint8Array([0, 1, 254, 255])));
  await app.request("/v1/kv/t", put("hi"));
  const res = await app.request("/v1/kv?values=true&consistency=stale", { headers: AUTH });
  assert.deepEqual(await res.json(), {
    items: [{ key: "b", revision: 1, value: "AAH+/w==" }, { key: "t", revision: 2, value: "aGk=" }],
    more: false,
  });
});

Deno.test("the key listing rejects a bad limit, values flag or prefix", async () => {
  const { app, node } = setup();
  for (
    const query of [
      "limit=0",
      "limit=10001",
      "limit=-5",
      "limit=ten",
      "values=yes",
      "prefix=%ZZ",
      `after=${"k".repeat(1025)}`,
      "page=2",
    ]
  ) {
    await expectError(
      await app.request(`/v1/kv?${query}`, { headers: AUTH }),
      400,
      "ERR_BAD_REQUEST",
    );
  }
  assert.equal((await app.request("/v1/kv?limit=10000", { headers: AUTH })).status, 200);
  assert.equal(node.calls.length, 1);
});

// --- node failures ---------------------------------------------------------------------------

Deno.test("no leader is 503 ERR_NO_LEADER with Retry-After", async () => {
  const { app, node } = setup();
  node.writeFailure = { kind: "no_leader" };
  const res = await app.request("/v1/kv/k", put("v"));
  await expectError(res, 503, "ERR_NO_LEADER");
  assert.equal(res.headers.get("retry-after"), "1");
});

Deno.test("a node timeout is 504 ERR_TIMEOUT", async () => {
  const { app, node } = setup();
  node.readFailure = { kind: "timeout" };
  await expectError(await app.request("/v1/kv/k", { headers: AUTH }), 504, "ERR_TIMEOUT");
});

Deno.test("a read on a node that is not the leader is 503 ERR_NO_LEADER, not forwarded", async () => {
  let fetched = 0;
  const { app, node } = setup({
    fetch: () => {
      fetched += 1;
      return Promise.resolve(new Response("{}"));
    },
  });
  node.readFailure = { kind: "not_leader", leaderId: "n2", leaderUrl: "http://10.0.0.2:7070" };
  const res = await app.request("/v1/kv/k", { headers: AUTH });
  await expectError(res, 503, "ERR_NO_LEADER");
  assert.equal(res.headers.get("retry-after"), "1");
  assert.equal(fetched, 0);
});

Deno.test("an unexpected error is 500 ERR_INTERNAL without internals, and is logged", async () => {
  const { app, node, logs } = setup();
  node.writeFailure = { kind: "bug" };
  const res = await app.request("/v1/kv/k", put("v"));
  const error = await expectError(res, 500, "ERR_INTERNAL");
  assert.doesNotMatch(JSON.stringify(error), /secret internal detail|at /);
  const logged = logs.map((line) => JSON.parse(line)).find((r) => r.level === "error");
  assert.ok(logged, "the error is logged");
  assert.match(JSON.stringify(logged), /secret internal detail/);
});

// --- routes, methods, auth -------------------------------------------------------------------

Deno.test("an unknown route is 404 ERR_NOT_FOUND in JSON", async () => {
  const { app } = setup();
  const error = await expectError(
    await app.request("/v2/kv/x", { headers: AUTH }),
    404,
    "ERR_NOT_FOUND",
  );
  assert.match(error.message, /\/v2\/kv\/x/);
  await expectError(await app.request("/v1/nothing", { headers: AUTH }), 404, "ERR_NOT_FOUND");
  await expectError(await app.request("/", { headers: AUTH }), 404, "ERR_NOT_FOUND");
});

Deno.test("a wrong method is 405 ERR_METHOD_NOT_ALLOWED with an Allow header", async () => {
  const { app } = setup();
  const cases: [string, string, string][] = [
    ["POST", "/v1/kv/k", "GET, HEAD, PUT, DELETE"],
    ["PATCH", "/v1/kv/k", "GET, HEAD, PUT, DELETE"],
    ["DELETE", "/v1/kv", "GET, HEAD"],
    ["POST", "/v1/status", "GET, HEAD"],
    ["PUT", "/v1/cluster", "GET, HEAD"],
    ["POST", "/healthz", "GET, HEAD"],
    ["POST", "/metrics", "GET, HEAD"],
  ];
  for (const [method, path, allow] of cases) {
    const res = await app.request(path, { method, headers: AUTH });
    await expectError(res, 405, "ERR_METHOD_NOT_ALLOWED");
    assert.equal(res.headers.get("allow"), allow, `${method} ${path}`);
  }
});

Deno.test("every /v1 route and /metrics need the bearer token", async () => {
  const { app, node } = setup();
  const routes: [string, string][] = [
    ["GET", "/v1/kv/k"],
    ["PUT", "/v1/kv/k"],
    ["DELETE", "/v1/kv/k"],
    ["GET", "/v1/kv"],
    ["GET", "/v1/status"],
    ["GET", "/v1/cluster"],
    ["GET", "/metrics"],
    ["GET", "/v1/unknown"],
  ];
  const badHeaders: Record<string, string>[] = [
    {},
    { authorization: "Bearer wrong-token-0123456789" },
    { authorization: `Bearer ${TOKEN}x` },
    { authorization: `Basic ${btoa(`user:${TOKEN}`)}` },
    { authorization: TOKEN },
    { authorization: "Bearer " },
  ];
  for (const [method, path] of routes) {
    for (const headers of badHeaders) {
      const res = await app.request(path, { method, headers });
      await expectError(res, 401, "ERR_UNAUTHORIZED");
      assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer/);
    }
  }
  assert.equal(node.calls.length, 0);
  assert.equal(
    (await app.request("/v1/status", { headers: { authorization: `bearer ${TOKEN}` } })).status,
    200,
  );
});

Deno.test("/healthz and /readyz need no token", async () => {
  const { app, node } = setup();
  const health = await app.request("/healthz");
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { ok: true });
  const ready = await app.request("/readyz");
  assert.equal(ready.status, 200);
  assert.deepEqual(await ready.json(), { ok: true });
  node.isReady = false;
  const notReady = await app.request("/readyz");
  await expectError(notReady, 503, "ERR_NO_LEADER");
  assert.equal(notReady.headers.get("retry-after"), "1");
  // /healthz stays 200 whatever the node's state.
  assert.equal((await app.request("/healthz")).status, 200);
});

Deno.test("without a configured token the API is open", async () => {
  const { app } = setup({ token: null });
  assert.equal((await app.request("/v1/kv/k", put("v", {}))).status, 200);
  assert.equal((await app.request("/v1/status")).status, 200);
});

Deno.test("/v1/status shows the node status with snake_case keys", async () => {
  const { app } = setup();
  const res = await app.request("/v1/status", { headers: AUTH });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), {
    id: "n1",
    cluster_id: "c-test",
    role: "leader",
    term: 3,
    leader: "n1",
    leader_url: "http://n1:7070",
    commit_index: 0,
    applied_index: 0,
    last_log_index: 0,
    last_snapshot: { index: 0, term: 0, created_at: "2025-01-01T00:00:00.000Z" },
    last_backup: null,
    last_contact_ms: 0,
    storage_errors: [],
    version: "0.1.0",
  });
});

Deno.test("/v1/cluster lists the members sorted by id with url and voter", async () => {
  const { app } = setup();
  const res = await app.request("/v1/cluster", { headers: AUTH });
  assert.deepEqual(await res.json(), {
    leader: "n1",
    members: [
      { id: "n1", url: "http://10.0.0.1:7070", voter: true },
      { id: "n2", url: "http://10.0.0.2:7070", voter: true },
      { id: "n3", url: "http://10.0.0.3:7070", voter: false },
    ],
  });
});

Deno.test("/metrics serves the node's Prometheus text", async () => {
  const { app, node } = setup();
  const res = await app.request("/metrics", { headers: AUTH });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  assert.equal(await res.text(), node.metrics);
});

// --- forwarding ------------------------------------------------------------------------------

interface Captured {
  url: string;
  method: string;
  headers: Headers;
  body: Uint8Array;
}

function follower(leaderFetch: typeof fetch, options: ClientAppOptions = {}) {
  const { app, node, logs } = setup(
    { fetch: leaderFetch, nodeId: "n2", ...options },
    new FakeNode("n2"),
  );
  node.writeFailure = { kind: "not_leader", leaderId: "n1", leaderUrl: "http://10.0.0.1:7070" };
  return { app, node, logs };
}

Deno.test("a write on a follower is forwarded to the leader and answered as the leader answers", async () => {
  const leader = setup({}, new FakeNode("n1"));
  const captured: Captured[] = [];
  const leaderFetch: typeof fetch = async (input, init) => {
    const request = new Request(input, init);
    captured.push({
      url: request.url,
      method: request.method,
      headers: request.headers,
      body: new Uint8Array(await request.clone().arrayBuffer()),
    });
    return await leader.app.request(request);
  };
  const { app, node } = follower(leaderFetch);

  const res = await app.request("/v1/kv/a%2Fb/c?prev_revision=0", put("forwarded"));
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { key: "a/b/c", revision: 1 });
  assert.equal(res.headers.get("x-edgeraft-forwarded-to"), "n1");
  assert.equal(decoder.decode(leader.node.store.get("a/b/c")!.value), "forwarded");
  assert.equal(node.store.size, 0);

  const [sent] = captured;
  assert.ok(sent);
  assert.equal(sent.url, "http://10.0.0.1:7070/v1/kv/a%2Fb/c?prev_revision=0");
  assert.equal(sent.method, "PUT");
  assert.equal(sent.headers.get("authorization"), AUTH.authorization);
  assert.equal(sent.headers.get("x-edgeraft-forwarded-by"), "n2");
  assert.equal(decoder.decode(sent.body), "forwarded");

  // The leader's errors are relayed too, with their status and headers.
  const mismatch = await app.request("/v1/kv/a%2Fb/c?prev_revision=0", put("again"));
  await expectError(mismatch, 412, "ERR_REVISION_MISMATCH");

  const del = await app.request("/v1/kv/a%2Fb/c", { method: "DELETE", headers: AUTH });
  assert.deepEqual(await del.json(), { key: "a/b/c", revision: 2 });
  assert.equal(captured.at(-1)!.method, "DELETE");
  assert.equal(captured.at(-1)!.body.byteLength, 0);
});

Deno.test("the leader's wrong-token answer is relayed with WWW-Authenticate", async () => {
  const leader = setup({ token: "another-token-0123456789" }, new FakeNode("n1"));
  const { app } = follower(async (input, init) =>
    await leader.app.request(new Request(input, init))
  );
  const res = await app.request("/v1/kv/k", put("v"));
  await expectError(res, 401, "ERR_UNAUTHORIZED");
  assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer/);
});

Deno.test("a forwarded request is never forwarded again", async () => {
  let fetched = 0;
  const { app } = follower(() => {
    fetched += 1;
    return Promise.resolve(new Response("{}"));
  });
  const res = await app.request("/v1/kv/k", put("v", { ...AUTH, "x-edgeraft-forwarded-by": "n3" }));
  const error = await expectError(res, 503, "ERR_NO_LEADER");
  assert.match(error.message, /n3/);
  assert.equal(res.headers.get("retry-after"), "1");
  assert.equal(fetched, 0);
});

Deno.test("a forward that cannot connect is 503 ERR_NO_LEADER with Retry-After", async () => {
  const { app, logs } = follower(() =>
    Promise.reject(new TypeError("error sending request: Connection refused"))
  );
  const res = await app.request("/v1/kv/k", put("v"));
  await expectError(res, 503, "ERR_NO_LEADER");
  assert.equal(res.headers.get("retry-after"), "1");
  assert.ok(logs.some((line) => /forward to leader failed/.test(line)));
});

Deno.test("a forward that times out is 504 ERR_TIMEOUT: the write may have been applied", async () => {
  const hanging: typeof fetch = (_input, init) =>
    new Promise((_resolve, reject) => {
      init?.signal?.addEventListener("abort", () => reject(init.signal!.reason), { once: true });
    });
  const { app } = follower(hanging, { forwardTimeoutMs: 30 });
  const started = performance.now();
  const res = await app.request("/v1/kv/k", put("v"));
  const error = await expectError(res, 504, "ERR_TIMEOUT");
  assert.match(error.message, /may or may not/);
  assert.ok(performance.now() - started < 2000);
});

Deno.test("not leader without a known leader is 503 ERR_NO_LEADER", async () => {
  const { app, node } = follower(() => Promise.reject(new Error("must not be called")));
  node.writeFailure = { kind: "not_leader", leaderId: null, leaderUrl: null };
  const res = await app.request("/v1/kv/k", { method: "DELETE", headers: AUTH });
  await expectError(res, 503, "ERR_NO_LEADER");
  assert.equal(res.headers.get("retry-after"), "1");
});

Deno.test("a value too large is refused on the follower before forwarding", async () => {
  let fetched = 0;
  const { app } = follower(() => {
    fetched += 1;
    return Promise.resolve(new Response("{}"));
  }, { valueBytesMax: 4 });
  await expectError(await app.request("/v1/kv/k", put("12345")), 413, "ERR_VALUE_TOO_LARGE");
  assert.equal(fetched, 0);
});

// --- composition -----------------------------------------------------------------------------

Deno.test("the client routes compose with other routes in one app", async () => {
  const node = new FakeNode();
  const root = new Hono();
  installErrorHandlers(root);
  registerClientRoutes(root, node, { token: TOKEN });
  root.post("/raft/append", (c) => c.json({ ok: true }));
  root.get("/v1/backup", () => new Response("archive"));
  assert.equal((await root.request("/v1/kv/k", put("v"))).status, 200);
  assert.equal((await root.request("/raft/append", { method: "POST" })).status, 200);
  // A route added later under /v1 is behind the same token.
  await expectError(await root.request("/v1/backup"), 401, "ERR_UNAUTHORIZED");
  assert.equal(await (await root.request("/v1/backup", { headers: AUTH })).text(), "archive");
  await expectError(await root.request("/nowhere"), 404, "ERR_NOT_FOUND");

  // The stand-alone app can also be mounted with route().
  const outer = new Hono();
  installErrorHandlers(outer);
  outer.route("/", createClientApp(node, { token: TOKEN }));
  const got = await outer.request("/v1/kv/k", { headers: AUTH });
  assert.equal(await got.text(), "v");
  await expectError(
    await outer.request("/v1/kv/missing", { headers: AUTH }),
    404,
    "ERR_KEY_NOT_FOUND",
  );
});
