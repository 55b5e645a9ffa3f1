import assert from "node:assert/strict";
import { crc32c, crc32cUpdate } from "../../src/util/crc32c.ts";

Deno.test("crc32c matches the RFC 3720 check values", () => {
  const enc = new TextEncoder();
  assert.equal(crc32c(enc.encode("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(new Uint8Array(0)), 0);
});

Deno.test("crc32c continues across buffers and ranges", () => {
  const data = new Uint8Array(1000).map((_, i) => (i * 7) & 0xff);
  for (const cut of [0, 1, 7, 8, 9, 500, 999, 1000]) {
    const a = crc32cUpdate(crc32cUpdate(0, data, 0, cut), data, cut);
    assert.equal(a, crc32c(data));
  }
  assert.equal(crc32c(data, 3, 77), crc32c(data.slice(3, 77)));
});
