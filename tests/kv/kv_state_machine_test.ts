import assert from "node:assert/strict";
import { encodeKvCommand } from "../../src/kv/kv_command.ts";
import { InvalidKeyError } from "../../src/kv/kv_key.ts";
import { KvStateMachine } from "../../src/kv/kv_state_machine.ts";
import { AssertionError } from "../../src/util/assert.ts";
import { createPrng, randomInt } from "../../src/util/prng.ts";

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (value: Uint8Array | undefined): string => new TextDecoder().decode(value);

function put(key: string, value: string, prevRevision?: number): Uint8Array {
  return encodeKvCommand(
    prevRevision === undefined
      ? { op: "put", key, value: bytes(value) }
      : { op: "put", key, value: bytes(value), prevRevision },
  );
}

function del(key: string, prevRevision?: number): Uint8Array {
  return encodeKvCommand(
    prevRevision === undefined ? { op: "delete", key } : { op: "delete", key, prevRevision },
  );
}

async function contentOf(kv: KvStateMachine): Promise<Uint8Array> {
  return new Uint8Array(await new Response(kv.snapshot().stream).arrayBuffer());
}

Deno.test("a key's revision is the index of the entry that last wrote it", () => {
  const kv = new KvStateMachine();
  assert.deepEqual(kv.apply(1, put("a", "one")), { ok: true, revision: 1 });
  kv.markApplied(2); // a no-op entry
  assert.deepEqual(kv.apply(3, put("b", "two")), { ok: true, revision: 3 });
  assert.deepEqual(kv.apply(4, put("a", "three")), { ok: true, revision: 4 });
  assert.equal(text(kv.get("a")?.value), "three");
  assert.equal(kv.get("a")?.revision, 4);
  assert.equal(kv.get("b")?.revision, 3);
  assert.equal(kv.get("c"), null);
  assert.equal(kv.appliedIndex, 4);
  assert.deepEqual(kv.stats(), { appliedIndex: 4, keys: 2, keyBytes: 2, valueBytes: 8 });
});

Deno.test("prev_revision 0 writes only if the key is absent", () => {
  const kv = new KvStateMachine();
  assert.deepEqual(kv.apply(1, put("k", "v", 0)), { ok: true, revision: 1 });
  assert.deepEqual(kv.apply(2, put("k", "w", 0)), {
    ok: false,
    code: "revision_mismatch",
    current: 1,
  });
  assert.equal(text(kv.get("k")?.value), "v");
  assert.equal(kv.appliedIndex, 2, "a failed condition still advances the applied index");
});

Deno.test("prev_revision N writes only if the key's revision is N", () => {
  const kv = new KvStateMachine();
  kv.apply(1, put("k", "v"));
  assert.deepEqual(kv.apply(2, put("k", "x", 5)), {
    ok: false,
    code: "revision_mismatch",
    current: 1,
  });
  assert.deepEqual(kv.apply(3, put("k", "y", 1)), { ok: true, revision: 3 });
  assert.deepEqual(kv.apply(4, put("absent", "z", 3)), {
    ok: false,
    code: "revision_mismatch",
    current: 0,
  });
  assert.deepEqual(kv.apply(5, del("k", 1)), { ok: false, code: "revision_mismatch", current: 3 });
  assert.deepEqual(kv.apply(6, del("k", 3)), { ok: true, revision: 6 });
  assert.equal(kv.get("k"), null);
});

Deno.test("deleting a missing key is a deterministic not_found", () => {
  const kv = new KvStateMachine();
  assert.deepEqual(kv.apply(1, del("nope")), { ok: false, code: "not_found" });
  assert.deepEqual(kv.apply(2, del("nope", 0)), { ok: false, code: "not_found" });
  assert.deepEqual(kv.apply(3, del("nope", 2)), {
    ok: false,
    code: "revision_mismatch",
    current: 0,
  });
  kv.apply(4, put("k", "v"));
  assert.deepEqual(kv.apply(5, del("k", 0)), { ok: false, code: "revision_mismatch", current: 4 });
  assert.deepEqual(kv.apply(6, del("k")), { ok: true, revision: 6 });
  assert.deepEqual(kv.apply(7, del("k")), { ok: false, code: "not_found" });
  assert.deepEqual(kv.stats(), { appliedIndex: 7, keys: 0, keyBytes: 0, valueBytes: 0 });
});

Deno.test("an undecodable command is a result, not an exception, and changes nothing", () => {
  const kv = new KvStateMachine();
  kv.apply(1, put("k", "v"));
  const result = kv.apply(2, new Uint8Array([1, 2, 3]));
  assert.equal(result.ok, false);
  assert.equal(!result.ok && result.code, "invalid_command");
  assert.equal(kv.appliedIndex, 2);
  assert.equal(kv.stats().keys, 1);
});

Deno.test("applying out of order is a bug caught by an assertion", () => {
  const kv = new KvStateMachine();
  kv.apply(5, put("k", "v"));
  assert.throws(() => kv.apply(5, put("k", "v")), AssertionError);
  assert.throws(() => kv.markApplied(3), AssertionError);
});

Deno.test("two machines applying the same entries reach identical state and results", async () => {
  const random = createPrng(20240601);
  const entries: Uint8Array[] = [];
  for (let i = 0; i < 3000; i++) {
    const key = `k/${randomInt(random, 0, 200)}`;
    const roll = random();
    const prev = random() < 0.3 ? randomInt(random, 0, i) : undefined;
    entries.push(
      roll < 0.7
        ? put(key, "v".repeat(randomInt(random, 0, 40)), prev)
        : roll < 0.95
        ? del(key, prev)
        : new Uint8Array([randomInt(random, 0, 255)]),
    );
  }
  const a = new KvStateMachine();
  const b = new KvStateMachine();
  const resultsA = entries.map((data, i) => a.apply(i + 1, data));
  const resultsB = entries.map((data, i) => b.apply(i + 1, data));
  assert.deepEqual(resultsA, resultsB);
  assert.deepEqual(a.stats(), b.stats());
  assert.deepEqual(await contentOf(a), await contentOf(b));
  assert.ok(resultsA.some((r) => r.ok) && resultsA.some((r) => !r.ok));
});

Deno.test("list returns keys in UTF-8 byte order with prefix, after, limit and values", () => {
  const kv = new KvStateMachine();
  // U+FF5E (3 UTF-8 bytes, EF BD 9E) sorts before U+1F600 (4 bytes, F0 9F 98 80) in byte
  // order, although its UTF-16 code unit is larger than the surrogate D83D.
  const keys = ["b", "a/2", "a/1", "a/10", "a", "ab", "\u{1F600}", "\uFF5E", "é", "a/\u{1F600}"];
  keys.forEach((key, i) => kv.apply(i + 1, put(key, `value of ${key}`)));
  const sorted = [...keys].sort((x, y) => Buffer.compare(bytes(x), bytes(y)));
  assert.deepEqual(kv.list().items.map((i) => i.key), sorted);
  assert.deepEqual(
    kv.list({ prefix: "a/" }).items.map((i) => i.key),
    ["a/1", "a/10", "a/2", "a/\u{1F600}"],
  );
  const page1 = kv.list({ prefix: "a/", limit: 2 });
  assert.deepEqual(page1.items.map((i) => i.key), ["a/1", "a/10"]);
  assert.equal(page1.more, true);
  const page2 = kv.list({ prefix: "a/", limit: 2, after: "a/10" });
  assert.deepEqual(page2.items.map((i) => i.key), ["a/2", "a/\u{1F600}"]);
  assert.equal(page2.more, false);
  assert.deepEqual(kv.list({ after: "\uFF5E" }).items.map((i) => i.key), ["\u{1F600}"]);
  assert.deepEqual(kv.list({ after: "\u{10FFFF}" }).items, []);
  assert.deepEqual(kv.list({ prefix: "a/", after: "0" }).items.length, 4);
  assert.deepEqual(kv.list({ prefix: "q" }), { items: [], more: false });
  const withValues = kv.list({ prefix: "b", values: true }).items;
  assert.deepEqual(withValues.map((i) => [i.key, i.revision, text(i.value)]), [
    ["b", 1, "value of b"],
  ]);
  assert.equal(kv.list({ prefix: "b" }).items[0]?.value, undefined);
  assert.throws(() => kv.list({ prefix: "\uD800" }), InvalidKeyError);
});

Deno.test("list and get agree with a model under many random inserts and deletes", () => {
  const random = createPrng(7);
  const kv = new KvStateMachine();
  const model = new Map<string, number>();
  for (let i = 1; i <= 20_000; i++) {
    const key = `p${randomInt(random, 0, 9)}/${randomInt(random, 0, 3000)}`;
    if (random() < 0.65) {
      kv.apply(i, put(key, "x"));
      model.set(key, i);
    } else {
      kv.apply(i, del(key));
      model.delete(key);
    }
  }
  const expected = [...model.keys()].sort();
  const listed: string[] = [];
  let after: string | undefined;
  for (;;) {
    const page = kv.list(after === undefined ? { limit: 777 } : { limit: 777, after });
    listed.push(...page.items.map((i) => i.key));
    if (!page.more) break;
    after = page.items.at(-1)!.key;
  }
  assert.deepEqual(listed, expected);
  assert.deepEqual(
    kv.list({ prefix: "p3/", limit: 100_000 }).items.map((i) => i.key),
    expected.filter((k) => k.startsWith("p3/")),
  );
  for (const [key, revision] of model) assert.equal(kv.get(key)?.revision, revision);
  assert.equal(kv.stats().keys, model.size);
});
