import assert from "node:assert/strict";
import { Hono } from "hono";
import { bearerToken, createBearerAuth, timingSafeEqual } from "../../src/http/auth.ts";
import { installErrorHandlers } from "../../src/http/errors.ts";

const CLIENT = "client-token-0123456789";
const ADMIN = "admin-token-0123456789";

function app(token: string | null, adminToken: string | null) {
  const auth = createBearerAuth({ token, adminToken });
  const app = new Hono();
  installErrorHandlers(app);
  app.get("/v1/kv", auth.client, (c) => c.text("kv"));
  app.post("/v1/restore", auth.admin, (c) => c.text("restored"));
  return app;
}

async function status(
  a: Hono,
  method: string,
  path: string,
  token?: string,
): Promise<[number, string]> {
  const res = await a.request(path, {
    method,
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });
  const body = await res.text();
  const code = res.status >= 400
    ? (JSON.parse(body) as { error: { code: string } }).error.code
    : body;
  return [res.status, code];
}

Deno.test("the admin token opens admin routes; the client token gets 403 there", async () => {
  const a = app(CLIENT, ADMIN);
  assert.deepEqual(await status(a, "GET", "/v1/kv", CLIENT), [200, "kv"]);
  assert.deepEqual(await status(a, "GET", "/v1/kv", ADMIN), [200, "kv"]);
  assert.deepEqual(await status(a, "POST", "/v1/restore", ADMIN), [200, "restored"]);
  assert.deepEqual(await status(a, "POST", "/v1/restore", CLIENT), [403, "ERR_FORBIDDEN"]);
  assert.deepEqual(await status(a, "POST", "/v1/restore"), [401, "ERR_UNAUTHORIZED"]);
  assert.deepEqual(await status(a, "POST", "/v1/restore", "nope-nope-nope-nope"), [
    401,
    "ERR_UNAUTHORIZED",
  ]);
});

Deno.test("without an admin token the client token is admin; without tokens all is open", async () => {
  const a = app(CLIENT, null);
  assert.deepEqual(await status(a, "POST", "/v1/restore", CLIENT), [200, "restored"]);
  assert.deepEqual(await status(a, "POST", "/v1/restore"), [401, "ERR_UNAUTHORIZED"]);
  const open = app(null, null);
  assert.deepEqual(await status(open, "POST", "/v1/restore"), [200, "restored"]);
  assert.deepEqual(await status(open, "GET", "/v1/kv"), [200, "kv"]);
});

Deno.test("bearer tokens are parsed strictly and compared without early exit", () => {
  assert.equal(bearerToken("Bearer abc"), "abc");
  assert.equal(bearerToken("bearer abc"), "abc");
  assert.equal(bearerToken("Bearer"), null);
  assert.equal(bearerToken("Bearer a b"), null);
  assert.equal(bearerToken("Basic abc"), null);
  assert.equal(bearerToken(null), null);
  assert.equal(timingSafeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2])), true);
  assert.equal(timingSafeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3])), false);
  assert.equal(timingSafeEqual(new Uint8Array([1]), new Uint8Array([1, 2])), false);
});
