import assert from "node:assert/strict";
import { Hono } from "hono";
import {
  createSha256CheckStream,
  EMPTY_SHA256,
  importPeerKey,
  PEER_HEADERS,
  peerAuthMiddleware,
  type PeerAuthVariables,
  PeerVerifier,
  type PeerVerifierOptions,
  sha256Hex,
  signPeerRequest,
} from "../../src/transport/peer_auth.ts";

const SECRET = "cluster-secret-0123456789abcdef-0123456789";
const T0 = 1_700_000_000_000;
const encoder = new TextEncoder();
const BODY = encoder.encode('{"type":"append","entries":[]}');

async function setup(options: PeerVerifierOptions = {}) {
  const key = await importPeerKey(SECRET);
  let nowMs = T0;
  const verifier = new PeerVerifier(key, { now: () => nowMs, ...options });
  return {
    key,
    verifier,
    setNow: (ms: number) => {
      nowMs = ms;
    },
  };
}

let nonceCounter = 0;
function nextNonce(): string {
  nonceCounter += 1;
  return nonceCounter.toString(16).padStart(32, "0");
}

async function signed(
  key: CryptoKey,
  overrides: {
    method?: string;
    path?: string;
    body?: Uint8Array;
    timestampMs?: number;
    nodeId?: string;
    nonce?: string;
  } = {},
) {
  const request = {
    method: overrides.method ?? "POST",
    path: overrides.path ?? "/raft/append",
    body: overrides.body ?? BODY,
    timestampMs: overrides.timestampMs ?? T0,
    nodeId: overrides.nodeId ?? "n1",
    nonce: overrides.nonce ?? nextNonce(),
  };
  return { request, headers: new Headers(await signPeerRequest(request, key)) };
}

Deno.test("a correctly signed request is accepted and names its sender", async () => {
  const { key, verifier } = await setup();
  const { request, headers } = await signed(key);
  const result = await verifier.verify({
    method: "POST",
    path: "/raft/append",
    headers,
    body: request.body,
  });
  assert.deepEqual(result, { ok: true, nodeId: "n1", bodySha256: await sha256Hex(BODY) });
  for (const name of Object.values(PEER_HEADERS)) assert.ok(headers.has(name), name);
  assert.match(headers.get(PEER_HEADERS.signature)!, /^[0-9a-f]{64}$/);
  assert.equal(headers.get(PEER_HEADERS.timestamp), String(T0));
});

Deno.test("a random nonce is drawn when none is given, and differs per request", async () => {
  const { key } = await setup();
  const a = await signPeerRequest(
    { method: "GET", path: "/raft/x", timestampMs: T0, nodeId: "n1" },
    key,
  );
  const b = await signPeerRequest(
    { method: "GET", path: "/raft/x", timestampMs: T0, nodeId: "n1" },
    key,
  );
  assert.match(a[PEER_HEADERS.nonce]!, /^[0-9a-f]{32}$/);
  assert.notEqual(a[PEER_HEADERS.nonce], b[PEER_HEADERS.nonce]);
  assert.equal(a[PEER_HEADERS.contentSha256], EMPTY_SHA256);
});

Deno.test("a tampered body, path, method, node or timestamp is refused", async () => {
  const { key, verifier } = await setup();
  const cases: [string, (h: Headers) => { method: string; path: string; body: Uint8Array }][] = [
    [
      "body",
      () => ({
        method: "POST",
        path: "/raft/append",
        body: encoder.encode('{"type":"append","entries":[1]}'),
      }),
    ],
    ["path", () => ({ method: "POST", path: "/raft/vote", body: BODY })],
    ["query", () => ({ method: "POST", path: "/raft/append?x=1", body: BODY })],
    ["method", () => ({ method: "PUT", path: "/raft/append", body: BODY })],
    ["node", (h) => {
      h.set(PEER_HEADERS.node, "n2");
      return { method: "POST", path: "/raft/append", body: BODY };
    }],
    ["timestamp", (h) => {
      h.set(PEER_HEADERS.timestamp, String(T0 + 1));
      return { method: "POST", path: "/raft/append", body: BODY };
    }],
    ["declared digest and body together", (h) => {
      const other = encoder.encode("other");
      h.set(PEER_HEADERS.contentSha256, "0".repeat(64));
      return { method: "POST", path: "/raft/append", body: other };
    }],
  ];
  for (const [what, tamper] of cases) {
    const { headers } = await signed(key);
    const { method, path, body } = tamper(headers);
    const result = await verifier.verify({ method, path, headers, body });
    assert.equal(result.ok, false, `tampered ${what} must be refused`);
    assert.ok(
      !result.ok && /signature|SHA-256/.test(result.reason),
      `${what}: ${JSON.stringify(result)}`,
    );
  }
  assert.equal(verifier.nonceCount, 0, "refused requests leave no nonce behind");
});

Deno.test("a replayed nonce is refused within the window", async () => {
  const { key, verifier, setNow } = await setup();
  const { request, headers } = await signed(key);
  const input = { method: "POST", path: "/raft/append", headers, body: request.body };
  assert.equal((await verifier.verify(input)).ok, true);
  setNow(T0 + 10_000);
  const replay = await verifier.verify(input);
  assert.deepEqual(replay, { ok: false, reason: "nonce already used (replayed request)" });
  // Later, the timestamp check refuses it instead, after its nonce expired from the cache.
  setNow(T0 + 31_000);
  const late = await verifier.verify(input);
  assert.ok(!late.ok && /ms off this node's clock/.test(late.reason));
  assert.equal(verifier.nonceCount, 0, "expired nonces are dropped");
});

Deno.test("a timestamp outside ±30 s is refused, inside it is accepted", async () => {
  const { key, verifier } = await setup();
  for (
    const [offset, accepted] of [[-30_001, false], [30_001, false], [-30_000, true], [
      29_999,
      true,
    ]] as const
  ) {
    const { request, headers } = await signed(key, { timestampMs: T0 + offset });
    const result = await verifier.verify({
      method: "POST",
      path: "/raft/append",
      headers,
      body: request.body,
    });
    assert.equal(result.ok, accepted, `offset ${offset}: ${JSON.stringify(result)}`);
  }
});

Deno.test("a request signed with another secret is refused", async () => {
  const { verifier } = await setup();
  const otherKey = await importPeerKey("another-cluster-secret-0123456789abcdef");
  const { request, headers } = await signed(otherKey);
  const result = await verifier.verify({
    method: "POST",
    path: "/raft/append",
    headers,
    body: request.body,
  });
  assert.ok(!result.ok && /bad signature/.test(result.reason));
});

Deno.test("missing or malformed headers are refused and named", async () => {
  const { key, verifier } = await setup();
  const none = await verifier.verify({
    method: "POST",
    path: "/raft/append",
    headers: new Headers(),
    body: BODY,
  });
  assert.ok(!none.ok);
  assert.equal(
    none.reason,
    "missing headers X-Edgeraft-Node, X-Edgeraft-Timestamp, X-Edgeraft-Nonce, X-Edgeraft-Content-Sha256, X-Edgeraft-Signature",
  );
  for (const name of Object.values(PEER_HEADERS)) {
    const { headers } = await signed(key);
    headers.delete(name);
    const result = await verifier.verify({
      method: "POST",
      path: "/raft/append",
      headers,
      body: BODY,
    });
    assert.deepEqual(result, { ok: false, reason: `missing header ${name}` });
  }
  const { headers } = await signed(key);
  headers.set(PEER_HEADERS.signature, "zz");
  const malformed = await verifier.verify({
    method: "POST",
    path: "/raft/append",
    headers,
    body: BODY,
  });
  assert.deepEqual(malformed, { ok: false, reason: "malformed X-Edgeraft-Signature" });
});

Deno.test("a sender outside the membership is refused", async () => {
  const { key, verifier } = await setup({ isKnownNode: (id) => id === "n1" || id === "n2" });
  const { request, headers } = await signed(key, { nodeId: "n7" });
  const result = await verifier.verify({
    method: "POST",
    path: "/raft/append",
    headers,
    body: request.body,
  });
  assert.deepEqual(result, { ok: false, reason: 'unknown node "n7"' });
});

Deno.test("a saturated replay cache refuses old requests rather than accepting replays", async () => {
  const { key, verifier, setNow } = await setup({ nonceCacheMax: 2 });
  const first = await signed(key, { timestampMs: T0 - 3 });
  const inputs = [
    first,
    await signed(key, { timestampMs: T0 - 2 }),
    await signed(key, { timestampMs: T0 - 1 }),
  ];
  for (const { request, headers } of inputs) {
    const result = await verifier.verify({
      method: "POST",
      path: "/raft/append",
      headers,
      body: request.body,
    });
    assert.equal(result.ok, true);
  }
  assert.equal(verifier.nonceCount, 2);
  setNow(T0 + 1);
  // The first nonce was evicted: replaying it must still fail.
  const replay = await verifier.verify({
    method: "POST",
    path: "/raft/append",
    headers: first.headers,
    body: BODY,
  });
  assert.ok(!replay.ok && /saturated replay cache/.test(replay.reason));
  const fresh = await signed(key, { timestampMs: T0 + 1 });
  assert.equal(
    (await verifier.verify({
      method: "POST",
      path: "/raft/append",
      headers: fresh.headers,
      body: BODY,
    })).ok,
    true,
  );
});

Deno.test("a streamed body is checked against the signed digest after streaming", async () => {
  const { key, verifier } = await setup();
  const snapshot = encoder.encode("snapshot bytes ".repeat(1000));
  const digest = await sha256Hex(snapshot);
  const headers = new Headers(
    await signPeerRequest({
      method: "PUT",
      path: "/raft/snapshot",
      bodySha256: digest,
      timestampMs: T0,
      nodeId: "n1",
      nonce: nextNonce(),
    }, key),
  );
  const result = await verifier.verify({
    method: "PUT",
    path: "/raft/snapshot",
    headers,
    body: "streamed",
  });
  assert.ok(result.ok);

  const pipe = async (bytes: Uint8Array, expected: string) => {
    const chunks: Uint8Array[] = [];
    await ReadableStream.from([bytes.subarray(0, 100), bytes.subarray(100)])
      .pipeThrough(createSha256CheckStream(expected))
      .pipeTo(new WritableStream({ write: (c) => void chunks.push(c) }));
    return chunks.reduce((n, c) => n + c.byteLength, 0);
  };
  assert.equal(await pipe(snapshot, result.bodySha256), snapshot.byteLength);
  const truncated = snapshot.subarray(0, snapshot.byteLength - 1);
  await assert.rejects(() => pipe(truncated, result.bodySha256), /does not match the signed/);
});

Deno.test("the Hono middleware answers 401 ERR_UNAUTHORIZED JSON and passes verified bodies on", async () => {
  const { key, verifier } = await setup();
  const app = new Hono<{ Variables: PeerAuthVariables }>();
  app.use("/raft/*", peerAuthMiddleware(verifier, { bodyBytesMax: 1024 }));
  app.post(
    "/raft/append",
    (c) => c.json({ from: c.var.peerNodeId, bytes: c.var.peerBody?.byteLength }),
  );

  const { headers } = await signed(key);
  const ok = await app.request("/raft/append", { method: "POST", headers, body: BODY });
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), { from: "n1", bytes: BODY.byteLength });

  const unsigned = await app.request("/raft/append", { method: "POST", body: BODY });
  assert.equal(unsigned.status, 401);
  const body = (await unsigned.json()) as {
    error: { code: string; message: string; hint: string };
  };
  assert.equal(body.error.code, "ERR_UNAUTHORIZED");
  assert.match(body.error.message, /missing headers/);
  assert.match(body.error.hint, /cluster-secret-file/);

  const { headers: h2 } = await signed(key);
  const tampered = await app.request("/raft/append", {
    method: "POST",
    headers: h2,
    body: encoder.encode("{}"),
  });
  assert.equal(tampered.status, 401);
  assert.match(
    ((await tampered.json()) as { error: { message: string } }).error.message,
    /SHA-256/,
  );

  const big = new Uint8Array(2048);
  const { headers: h3 } = await signed(key, { body: big });
  const tooLarge = await app.request("/raft/append", { method: "POST", headers: h3, body: big });
  assert.equal(tooLarge.status, 413);
  assert.equal(
    ((await tooLarge.json()) as { error: { code: string } }).error.code,
    "ERR_PAYLOAD_TOO_LARGE",
  );
});
