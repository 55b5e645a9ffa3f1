import assert from "node:assert/strict";
import {
  decodeKvCommand,
  encodeKvCommand,
  type KvCommand,
  KvCommandError,
  type KvWriteCommand,
  RESTORE_CHUNK_OVERHEAD_BYTES,
} from "../../src/kv/kv_command.ts";

function roundTrip(command: KvWriteCommand): KvCommand {
  return decodeKvCommand(encodeKvCommand(command));
}

function assertMalformed(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(
    () => decodeKvCommand(bytes),
    (error: unknown) =>
      error instanceof KvCommandError && error.reason === "malformed" &&
      pattern.test(error.message),
  );
}

Deno.test("put and delete commands survive a round trip, with and without prev revision", () => {
  const value = new Uint8Array([0, 1, 2, 255]);
  const cases: KvWriteCommand[] = [
    { op: "put", key: "a", value },
    { op: "put", key: "users/ünïcødé/😀", value, prevRevision: 0 },
    { op: "put", key: "k", value: new Uint8Array(0), prevRevision: 2 ** 53 - 1 },
    { op: "put", key: "x".repeat(1024), value: new Uint8Array(100_000).fill(7) },
    { op: "delete", key: "a" },
    { op: "delete", key: "a", prevRevision: 0 },
    { op: "delete", key: "\u{10FFFF}", prevRevision: 42 },
  ];
  for (const command of cases) assert.deepEqual(roundTrip(command), command);
});

Deno.test("a decoded value is a copy that does not pin the entry buffer", () => {
  const data = encodeKvCommand({ op: "put", key: "k", value: new Uint8Array([9, 9]) });
  const command = decodeKvCommand(data);
  assert.equal(command.op, "put");
  if (command.op !== "put") return;
  assert.notEqual(command.value.buffer, data.buffer);
  assert.equal(command.value.byteLength, command.value.buffer.byteLength);
});

Deno.test("encoding rejects invalid keys, revisions and oversized values with typed errors", () => {
  const bad: [KvWriteCommand, string, { valueBytesMax?: number }?][] = [
    [{ op: "put", key: "", value: new Uint8Array() }, "invalid_key"],
    [{ op: "put", key: "x".repeat(1025), value: new Uint8Array() }, "invalid_key"],
    [{ op: "put", key: "é".repeat(513), value: new Uint8Array() }, "invalid_key"], // 1026 B
    [{ op: "delete", key: "\uD800" }, "invalid_key"],
    [{ op: "delete", key: "k", prevRevision: -1 }, "invalid_revision"],
    [{ op: "delete", key: "k", prevRevision: 1.5 }, "invalid_revision"],
    [{ op: "delete", key: "k", prevRevision: 2 ** 53 }, "invalid_revision"],
    [{ op: "put", key: "k", value: new Uint8Array(11) }, "value_too_large", {
      valueBytesMax: 10,
    }],
  ];
  for (const [command, reason, options] of bad) {
    assert.throws(
      () => encodeKvCommand(command, options),
      (error: unknown) => error instanceof KvCommandError && error.reason === reason,
      `${JSON.stringify(command.key.slice(0, 10))} → ${reason}`,
    );
  }
  // Exactly at the limit is fine, as is a 1024-byte key.
  encodeKvCommand({ op: "put", key: "é".repeat(512), value: new Uint8Array(10) }, {
    valueBytesMax: 10,
  });
});

Deno.test("every malformed command is rejected with a KvCommandError naming the problem", () => {
  const put = encodeKvCommand({ op: "put", key: "key", value: new Uint8Array([1, 2, 3]) });
  const withPrev = encodeKvCommand({ op: "delete", key: "key", prevRevision: 5 });
  const edit = (bytes: Uint8Array, at: number, value: number): Uint8Array => {
    const copy = bytes.slice();
    copy[at] = value;
    return copy;
  };
  assertMalformed(new Uint8Array(0), /too short/);
  assertMalformed(put.subarray(0, 5), /too short/);
  assertMalformed(edit(put, 0, 0x4c), /bad magic/);
  assertMalformed(edit(put, 1, 3), /unsupported version 3/);
  assertMalformed(edit(put, 1, 0), /unsupported version 0/);
  // Each op has one encoding: put and delete are version 1 only, restore ops version 2 only.
  assertMalformed(edit(put, 1, 2), /unknown op 1 in version 2/);
  assertMalformed(edit(put, 2, 3), /unknown op 3 in version 1/);
  assertMalformed(edit(put, 3, 0x02), /unknown flags/);
  assertMalformed(edit(edit(put, 4, 0), 5, 0), /key length 0/);
  assertMalformed(edit(edit(put, 4, 0x04), 5, 0x01), /key length 1025/);
  assertMalformed(edit(put, 5, 200), /truncated key/);
  assertMalformed(edit(put, 6, 0xff), /not valid UTF-8/);
  assertMalformed(edit(put, 6, 0xc3), /not valid UTF-8/); // lone lead byte
  assertMalformed(withPrev.subarray(0, withPrev.length - 1), /truncated prev revision/);
  assertMalformed(edit(withPrev, 9, 0x00_20), /exceeds 2\^53/);
  assertMalformed(put.subarray(0, 10), /truncated value length/);
  assertMalformed(put.subarray(0, put.length - 1), /truncated value/);
  assertMalformed(new Uint8Array([...put, 0]), /1 trailing bytes/);
  assertMalformed(new Uint8Array([...withPrev, 0]), /1 trailing bytes/);
  // A surrogate code point encoded in UTF-8 (CESU) is not valid UTF-8.
  const cesu = new Uint8Array([0x4b, 1, 2, 0, 0, 3, 0xed, 0xa0, 0x80]);
  assertMalformed(cesu, /not valid UTF-8/);
});

Deno.test("decoding never throws anything but KvCommandError on truncations and bit flips", () => {
  const samples = [
    encodeKvCommand({ op: "put", key: "alpha/β", value: new Uint8Array([1, 2, 3, 4]) }),
    encodeKvCommand({ op: "delete", key: "gamma", prevRevision: 77 }),
  ];
  for (const sample of samples) {
    for (let cut = 0; cut < sample.length; cut++) {
      assert.throws(() => decodeKvCommand(sample.subarray(0, cut)), KvCommandError);
    }
    for (let at = 0; at < sample.length; at++) {
      for (let bit = 0; bit < 8; bit++) {
        const copy = sample.slice();
        copy[at]! ^= 1 << bit;
        try {
          decodeKvCommand(copy);
        } catch (error) {
          assert.ok(error instanceof KvCommandError, String(error));
        }
      }
    }
  }
});

// ---- online restore ops (version 2) ------------------------------------------------------

const SHA = "0123456789abcdef".repeat(4);

Deno.test("restore commands survive a round trip and are written as version 2", () => {
  const cases: KvCommand[] = [
    {
      op: "restore_begin",
      restoreId: "0f3e2a10-9c1d-4c55-8e7b-3b1c2d4e5f60",
      size: 2 ** 53 - 1,
      sha256: SHA,
      sourceClusterId: "c1ünï",
      sourceIndex: 1234,
    },
    {
      op: "restore_begin",
      restoreId: "r",
      size: 0,
      sha256: "f".repeat(64),
      sourceClusterId: "x".repeat(1024),
      sourceIndex: 0,
    },
    { op: "restore_chunk", restoreId: "r_1-A", seq: 0, bytes: new Uint8Array([0, 1, 255]) },
    {
      op: "restore_chunk",
      restoreId: "r".repeat(64),
      seq: 0xffffffff,
      bytes: new Uint8Array(512 * 1024).fill(3),
    },
    { op: "restore_end", restoreId: "abc" },
    { op: "restore_abort", restoreId: "abc" },
  ];
  for (const command of cases) {
    const data = encodeKvCommand(command);
    assert.equal(data[0], 0x4b);
    assert.equal(data[1], 2, `${command.op} is version 2`);
    assert.deepEqual(decodeKvCommand(data), command);
  }
  // put and delete keep their version 1 bytes, so logs written before stay readable as they were.
  assert.equal(encodeKvCommand({ op: "put", key: "k", value: new Uint8Array(1) })[1], 1);
});

Deno.test("a chunk's overhead stays within RESTORE_CHUNK_OVERHEAD_BYTES", () => {
  const bytes = new Uint8Array(1000);
  const data = encodeKvCommand({ op: "restore_chunk", restoreId: "r".repeat(64), seq: 7, bytes });
  assert.equal(data.length - bytes.length, RESTORE_CHUNK_OVERHEAD_BYTES);
});

Deno.test("invalid restore commands are refused at encoding with reason invalid_restore", () => {
  const bad: KvCommand[] = [
    { op: "restore_end", restoreId: "" },
    { op: "restore_end", restoreId: "has space" },
    { op: "restore_end", restoreId: "r".repeat(65) },
    { op: "restore_chunk", restoreId: "r", seq: -1, bytes: new Uint8Array(1) },
    { op: "restore_chunk", restoreId: "r", seq: 2 ** 32, bytes: new Uint8Array(1) },
    { op: "restore_chunk", restoreId: "r", seq: 0, bytes: new Uint8Array(0) },
    {
      op: "restore_begin",
      restoreId: "r",
      size: -1,
      sha256: SHA,
      sourceClusterId: "c",
      sourceIndex: 1,
    },
    {
      op: "restore_begin",
      restoreId: "r",
      size: 1,
      sha256: SHA.toUpperCase(),
      sourceClusterId: "c",
      sourceIndex: 1,
    },
    {
      op: "restore_begin",
      restoreId: "r",
      size: 1,
      sha256: SHA,
      sourceClusterId: "",
      sourceIndex: 1,
    },
    {
      op: "restore_begin",
      restoreId: "r",
      size: 1,
      sha256: SHA,
      sourceClusterId: "x".repeat(1025),
      sourceIndex: 1,
    },
    {
      op: "restore_begin",
      restoreId: "r",
      size: 1,
      sha256: SHA,
      sourceClusterId: "c",
      sourceIndex: 0.5,
    },
  ];
  for (const command of bad) {
    assert.throws(
      () => encodeKvCommand(command),
      (error: unknown) => error instanceof KvCommandError && error.reason === "invalid_restore",
      JSON.stringify(command, (_k, v) => (v instanceof Uint8Array ? v.length : v)),
    );
  }
});

Deno.test("malformed restore commands are rejected with a KvCommandError naming the problem", () => {
  const begin = encodeKvCommand({
    op: "restore_begin",
    restoreId: "rid",
    size: 10,
    sha256: SHA,
    sourceClusterId: "c1",
    sourceIndex: 5,
  });
  const chunk = encodeKvCommand({
    op: "restore_chunk",
    restoreId: "rid",
    seq: 1,
    bytes: new Uint8Array([1, 2, 3]),
  });
  const end = encodeKvCommand({ op: "restore_end", restoreId: "rid" });
  const edit = (bytes: Uint8Array, at: number, value: number): Uint8Array => {
    const copy = bytes.slice();
    copy[at] = value;
    return copy;
  };
  assertMalformed(edit(end, 2, 7), /unknown op 7 in version 2/);
  assertMalformed(edit(end, 3, 1), /unknown flags/);
  assertMalformed(edit(end, 4, 0), /restore id length 0/);
  assertMalformed(edit(end, 4, 65), /restore id length 65/);
  assertMalformed(edit(end, 4, 9), /truncated restore id/);
  assertMalformed(edit(end, 5, 0x20), /invalid characters/);
  assertMalformed(edit(end, 5, 0xc3), /invalid characters/);
  assertMalformed(new Uint8Array([...end, 0]), /1 trailing bytes/);
  assertMalformed(begin.subarray(0, 20), /truncated restore_begin/);
  assertMalformed(edit(begin, 8, 0x40), /size exceeds 2\^53/); // u64 size starts at 8
  assertMalformed(begin.subarray(0, begin.length - 1), /truncated source cluster id/);
  assertMalformed(edit(edit(begin, 56, 0), 57, 0), /source cluster id length 0/);
  assertMalformed(edit(begin, 58, 0xff), /not valid UTF-8/);
  assertMalformed(new Uint8Array([...begin, 0]), /1 trailing bytes/);
  assertMalformed(chunk.subarray(0, 12), /truncated restore_chunk/);
  assertMalformed(chunk.subarray(0, chunk.length - 1), /truncated chunk bytes/);
  assertMalformed(new Uint8Array([...chunk, 9]), /1 trailing bytes/);
  const empty = chunk.slice(0, 16);
  empty[15] = 0; // length 0
  assertMalformed(empty, /empty restore chunk/);
  for (const sample of [begin, chunk, end]) {
    for (let cut = 0; cut < sample.length; cut++) {
      assert.throws(() => decodeKvCommand(sample.subarray(0, cut)), KvCommandError);
    }
    for (let at = 0; at < sample.length; at++) {
      for (let bit = 0; bit < 8; bit++) {
        const copy = sample.slice();
        copy[at]! ^= 1 << bit;
        try {
          decodeKvCommand(copy);
        } catch (error) {
          assert.ok(error instanceof KvCommandError, String(error));
        }
      }
    }
  }
});
