import assert from "node:assert/strict";
import {
  decodeKvCommand,
  encodeKvCommand,
  type KvCommand,
  KvCommandError,
} from "../../src/kv/kv_command.ts";

function roundTrip(command: KvCommand): KvCommand {
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
  const cases: KvCommand[] = [
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
  const bad: [KvCommand, string, { valueBytesMax?: number }?][] = [
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
  assertMalformed(edit(put, 1, 2), /unsupported version 2/);
  assertMalformed(edit(put, 2, 3), /unknown op 3/);
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
