import assert from "node:assert/strict";
import { FaultFileSystem, MachineStoppedError } from "../../src/storage/fault_fs.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("fault fs: unsynced writes and unsynced directory entries are lost in a crash", () => {
  const fs = new FaultFileSystem();
  fs.mkdir("/d");
  fs.syncDir("/");
  const h = fs.open("/d/a", { create: true });
  h.write(bytes("hello"), 0);
  h.sync();
  fs.syncDir("/d");
  h.write(bytes("HELLO world"), 0);
  fs.crash("drop");
  assert.equal(text(fs.readFile("/d/a")), "hello");
  const g = fs.open("/d/b", { create: true });
  g.write(bytes("x"), 0);
  g.sync(); // contents durable, directory entry not
  fs.rename("/d/a", "/d/c");
  fs.crash("drop");
  assert.equal(fs.stat("/d/b"), null);
  assert.equal(text(fs.readFile("/d/a")), "hello");
  assert.equal(fs.stat("/d/c"), null);
});

Deno.test("fault fs: the machine stops after k operations and tear keeps a prefix", () => {
  const fs = new FaultFileSystem();
  fs.mkdir("/d");
  fs.syncDir("/");
  const h = fs.open("/d/a", { create: true });
  fs.syncDir("/d");
  fs.crashAfter(2);
  h.write(bytes("abcd"), 0);
  h.write(bytes("efgh"), 4);
  assert.throws(() => h.sync(), MachineStoppedError);
  assert.throws(() => fs.readDir("/d"), MachineStoppedError);
  fs.crash("tear", () => 0.99);
  const after = text(fs.readFile("/d/a"));
  assert.ok("abcdefgh".startsWith(after), after);
  fs.crash("keep");
  assert.equal(fs.opCount, 0);
});
