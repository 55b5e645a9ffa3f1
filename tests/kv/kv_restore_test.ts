import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { encodeKvCommand, type KvRestoreCommand } from "../../src/kv/kv_command.ts";
import { type ApplyResult, KvStateMachine } from "../../src/kv/kv_state_machine.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

async function bytesOf(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A state machine with `count` keys `a/<i>` written at indexes 1..count, then a no-op. */
function source(count: number, valueBytes = 100): KvStateMachine {
  const kv = new KvStateMachine();
  for (let i = 0; i < count; i++) {
    const value = new Uint8Array(valueBytes).fill(i % 251);
    kv.apply(i + 1, encodeKvCommand({ op: "put", key: `a/${i}`, value }), 1);
  }
  kv.markApplied(count + 1, 1);
  return kv;
}

/** The state of a source as a restore would carry it. */
async function staged(kv: KvStateMachine): Promise<{
  bytes: Uint8Array;
  sha256: string;
  index: number;
}> {
  const snapshot = kv.snapshot();
  const bytes = await bytesOf(snapshot.stream);
  return {
    bytes,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    index: snapshot.appliedIndex,
  };
}

/** The restore commands for `state` in chunks of `chunkBytes`. */
function restoreCommands(
  state: { bytes: Uint8Array; sha256: string; index: number },
  restoreId: string,
  chunkBytes: number,
): KvRestoreCommand[] {
  const commands: KvRestoreCommand[] = [{
    op: "restore_begin",
    restoreId,
    size: state.bytes.length,
    sha256: state.sha256,
    sourceClusterId: "src",
    sourceIndex: state.index,
  }];
  for (let at = 0, seq = 0; at < state.bytes.length; at += chunkBytes, seq++) {
    commands.push({
      op: "restore_chunk",
      restoreId,
      seq,
      bytes: state.bytes.subarray(at, at + chunkBytes),
    });
  }
  commands.push({ op: "restore_end", restoreId });
  return commands;
}

/** A target holding other data: keys b/0..9 and an overwritten a/0, at indexes 1..11. */
function target(): KvStateMachine {
  const kv = new KvStateMachine();
  for (let i = 0; i < 10; i++) {
    kv.apply(i + 1, encodeKvCommand({ op: "put", key: `b/${i}`, value: enc.encode("B") }), 1);
  }
  kv.apply(11, encodeKvCommand({ op: "put", key: "a/0", value: enc.encode("new") }), 1);
  return kv;
}

class Log {
  index: number;
  constructor(readonly kv: KvStateMachine, from: number) {
    this.index = from;
  }
  apply(command: KvRestoreCommand | Uint8Array, term: number): ApplyResult {
    const data = command instanceof Uint8Array ? command : encodeKvCommand(command);
    return this.kv.apply(++this.index, data, term);
  }
}

async function contentOf(kv: KvStateMachine): Promise<Uint8Array> {
  return await bytesOf(kv.snapshot().stream);
}

Deno.test("restore_end replaces the whole state; every key's revision is the end index", async () => {
  const from = source(300);
  const state = await staged(from);
  const kv = target();
  const log = new Log(kv, kv.appliedIndex);
  const commands = restoreCommands(state, "r1", 4096);
  assert.ok(commands.length > 4, "several chunks");
  const begin = log.apply(commands[0]!, 2);
  assert.deepEqual(begin, { ok: true, revision: 12 });
  assert.equal(kv.openRestore?.restoreId, "r1");
  assert.equal(kv.openRestore?.beginIndex, 12);
  for (const command of commands.slice(1, -1)) assert.equal(log.apply(command, 2).ok, true);
  // A write between begin and end: applied now, replaced by the restore.
  const write = log.apply(encodeKvCommand({ op: "put", key: "c", value: enc.encode("x") }), 2);
  assert.equal(write.ok, true);
  assert.equal(dec.decode(kv.get("c")?.value), "x");
  assert.equal(kv.get("a/1"), null, "nothing staged is visible before the end");
  assert.equal(kv.openRestore?.receivedBytes, state.bytes.length);
  const end = log.apply(commands.at(-1)!, 2);
  const endIndex = log.index;
  assert.deepEqual(end, {
    ok: true,
    revision: endIndex,
    restored: {
      restoreId: "r1",
      sourceClusterId: "src",
      sourceIndex: 301,
      keys: 300,
      valueBytes: 30_000,
      beginIndex: 12,
    },
  });
  assert.equal(kv.openRestore, null);
  assert.equal(kv.appliedIndex, endIndex);
  assert.deepEqual(kv.stats(), {
    appliedIndex: endIndex,
    keys: 300,
    keyBytes: from.stats().keyBytes,
    valueBytes: 30_000,
  });
  assert.equal(kv.get("c"), null, "the write between begin and end is gone");
  assert.equal(kv.get("b/0"), null);
  const all = kv.list({ limit: 1000, values: true });
  assert.equal(all.items.length, 300);
  for (const item of all.items) {
    assert.equal(item.revision, endIndex, item.key);
    assert.deepEqual(item.value, from.get(item.key)?.value);
  }
  // New writes continue above the restore.
  assert.deepEqual(log.apply(encodeKvCommand({ op: "delete", key: "a/7" }), 2), {
    ok: true,
    revision: endIndex + 1,
  });
  assert.deepEqual(
    log.apply(
      encodeKvCommand({ op: "put", key: "a/8", value: enc.encode("v"), prevRevision: endIndex }),
      2,
    ),
    { ok: true, revision: endIndex + 2 },
  );
});

Deno.test("two machines applying the same entries end byte-for-byte equal", async () => {
  const state = await staged(source(500, 37));
  const a = target();
  const b = target();
  const la = new Log(a, a.appliedIndex);
  const lb = new Log(b, b.appliedIndex);
  const entries: Uint8Array[] = [];
  const commands = restoreCommands(state, "same", 1000);
  for (const [i, command] of commands.entries()) {
    entries.push(encodeKvCommand(command));
    if (i % 3 === 0) {
      entries.push(encodeKvCommand({ op: "put", key: `w/${i}`, value: enc.encode(String(i)) }));
    }
  }
  entries.push(encodeKvCommand({ op: "put", key: "after", value: enc.encode("1") }));
  for (const data of entries) {
    assert.deepEqual(la.apply(data, 3), lb.apply(data, 3));
  }
  assert.deepEqual(await contentOf(a), await contentOf(b));
  assert.equal(a.stats().keys, 501);
});

Deno.test("an empty archive state restores to an empty store", async () => {
  const state = await staged(new KvStateMachine());
  const kv = target();
  const log = new Log(kv, kv.appliedIndex);
  for (const command of restoreCommands(state, "empty", 1 << 20)) {
    assert.equal(log.apply(command, 1).ok, true);
  }
  assert.deepEqual(kv.stats(), { appliedIndex: log.index, keys: 0, keyBytes: 0, valueBytes: 0 });
});

async function assertAborted(
  run: (log: Log, commands: KvRestoreCommand[]) => void,
  reason: RegExp,
): Promise<void> {
  const state = await staged(source(50));
  const kv = target();
  const before = await contentOf(kv);
  const log = new Log(kv, kv.appliedIndex);
  const commands = restoreCommands(state, "r", 512);
  run(log, commands);
  assert.equal(kv.openRestore, null);
  assert.match(kv.lastRestoreAbort?.reason ?? "", reason);
  // The state did not change (only the applied index moved).
  const after = kv.snapshot();
  assert.equal(after.keys, 11);
  assert.deepEqual(kv.list({ limit: 100 }).items.map((i) => i.key).slice(0, 2), ["a/0", "b/0"]);
  assert.equal(dec.decode(kv.get("a/0")?.value), "new");
  await after.stream.cancel();
  assert.ok(before.length > 0);
  // Whatever follows for that restore fails deterministically and changes nothing.
  const end = log.apply({ op: "restore_end", restoreId: "r" }, 1);
  assert.equal(end.ok, false);
  assert.equal(!end.ok && end.code, "restore_failed");
  assert.equal(kv.stats().keys, 11);
}

Deno.test("an entry of another term aborts the open restore (a new leader)", async () => {
  await assertAborted((log, commands) => {
    log.apply(commands[0]!, 1);
    log.apply(commands[1]!, 1);
    log.kv.markApplied(++log.index, 2); // the new leader's no-op
  }, /leader changed/);
  // Also a Normal entry of the next term (the old leader's entries are applied before it).
  await assertAborted((log, commands) => {
    log.apply(commands[0]!, 1);
    log.apply(commands[1]!, 1);
    log.apply(encodeKvCommand({ op: "put", key: "b/0", value: enc.encode("B") }), 4);
  }, /term 4/);
});

Deno.test("a gap in the chunk sequence, a foreign chunk or a new begin abort the restore", async () => {
  await assertAborted((log, commands) => {
    log.apply(commands[0]!, 1);
    log.apply(commands[1]!, 1);
    const result = log.apply(commands[3]!, 1); // chunk 2 skipped
    assert.equal(!result.ok && result.code, "restore_failed");
    assert.match(
      !result.ok && "message" in result ? result.message : "",
      /chunk 2 arrived where chunk 1/,
    );
  }, /chunk 2 arrived where chunk 1 was due/);
  await assertAborted((log, commands) => {
    log.apply(commands[0]!, 1);
    log.apply(commands[1]!, 1);
    log.apply(commands[1]!, 1); // repeated
  }, /chunk 0 arrived where chunk 1/);
  await assertAborted((log, commands) => {
    log.apply(commands[0]!, 1);
    const result = log.apply({
      op: "restore_chunk",
      restoreId: "other",
      seq: 1,
      bytes: new Uint8Array(1),
    }, 1);
    assert.equal(!result.ok && result.code, "restore_failed");
  }, /a chunk of restore other arrived/);
  await assertAborted((log, commands) => {
    log.apply(commands[0]!, 1);
    log.apply({ ...commands[0]!, restoreId: "second" } as KvRestoreCommand, 1);
    log.apply({ op: "restore_abort", restoreId: "second" }, 1);
  }, /aborted by the leader/);
  await assertAborted((log, commands) => {
    log.apply(commands[0]!, 1);
    log.apply(commands[1]!, 1);
    assert.deepEqual(log.apply({ op: "restore_abort", restoreId: "r" }, 1), {
      ok: true,
      revision: log.index,
    });
  }, /aborted by the leader/);
});

Deno.test("a restore whose bytes differ from its begin fails at the end and changes nothing", async () => {
  // Wrong SHA-256: every chunk applies, the end finds the mismatch.
  await assertAborted((log, commands) => {
    const begin = commands[0] as Extract<KvRestoreCommand, { op: "restore_begin" }>;
    log.apply({ ...begin, sha256: "0".repeat(64) }, 1);
    for (const command of commands.slice(1, -1)) assert.equal(log.apply(command, 1).ok, true);
    const end = log.apply(commands.at(-1)!, 1);
    assert.equal(!end.ok && end.code, "restore_failed");
    assert.match(!end.ok && "message" in end ? end.message : "", /SHA-256/);
  }, /the staged bytes have SHA-256/);
  // Fewer bytes than announced.
  await assertAborted((log, commands) => {
    log.apply(commands[0]!, 1);
    log.apply(commands[1]!, 1);
    log.apply(commands.at(-1)!, 1);
  }, /received 512 of the announced/);
  // More bytes than announced.
  await assertAborted((log, commands) => {
    const begin = commands[0] as Extract<KvRestoreCommand, { op: "restore_begin" }>;
    log.apply({ ...begin, size: 100 }, 1);
    log.apply(commands[1]!, 1);
  }, /exceed the announced 100 bytes/);
  // Bytes that are not a KV snapshot: refused as soon as they fail to decode.
  await assertAborted((log, commands) => {
    log.apply(commands[0]!, 1);
    log.apply({ op: "restore_chunk", restoreId: "r", seq: 0, bytes: new Uint8Array(512) }, 1);
  }, /does not decode/);
  // A snapshot of another index than the begin announced.
  await assertAborted((log, commands) => {
    const begin = commands[0] as Extract<KvRestoreCommand, { op: "restore_begin" }>;
    log.apply({ ...begin, sourceIndex: 7 }, 1);
    log.apply(commands[1]!, 1);
  }, /snapshot is at index 51, the restore announced 7/);
});

Deno.test("installing a snapshot drops an open restore", async () => {
  const state = await staged(source(20));
  const kv = target();
  const log = new Log(kv, kv.appliedIndex);
  const commands = restoreCommands(state, "r", 256);
  log.apply(commands[0]!, 1);
  log.apply(commands[1]!, 1);
  assert.notEqual(kv.openRestore, null);
  const other = source(5);
  other.markApplied(100, 1);
  await kv.restore(other.snapshot().stream);
  assert.equal(kv.openRestore, null);
  assert.equal(kv.appliedIndex, 100);
  const chunk = kv.apply(101, encodeKvCommand(commands[2]!), 1);
  assert.equal(!chunk.ok && chunk.code, "restore_failed");
});

Deno.test("without terms (callers that do not pass them) no leader-change rule applies", async () => {
  const state = await staged(source(10));
  const kv = new KvStateMachine();
  let index = 0;
  for (const command of restoreCommands(state, "r", 300)) {
    kv.markApplied(++index);
    assert.equal(kv.apply(++index, encodeKvCommand(command)).ok, true);
  }
  assert.equal(kv.stats().keys, 10);
  assert.equal(kv.get("a/3")?.revision, index);
});
