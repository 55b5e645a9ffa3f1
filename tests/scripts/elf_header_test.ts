import assert from "node:assert/strict";
import { ELF_MACHINE, parseElfHeader, readElfHeader } from "./elf_header.ts";

// The check compile_test.ts applies to dist/edgeraft-<target>, run on binaries that exist on
// every machine, so it is proven even where deno compile cannot run.
Deno.test("the ELF header check recognises this machine's deno and /bin/sh", async () => {
  const expected = Deno.build.arch === "x86_64"
    ? ELF_MACHINE["x86_64-unknown-linux-gnu"]
    : ELF_MACHINE["aarch64-unknown-linux-gnu"];
  for (const path of [Deno.execPath(), await Deno.realPath("/bin/sh")]) {
    assert.deepEqual(await readElfHeader(path), {
      is64Bit: true,
      littleEndian: true,
      machine: expected,
    }, path);
  }
  assert.equal(ELF_MACHINE["x86_64-unknown-linux-gnu"], 62);
  assert.equal(ELF_MACHINE["aarch64-unknown-linux-gnu"], 183);
});

Deno.test("the ELF header check refuses other files and reads 32-bit and big-endian headers", async () => {
  const script = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(script, "#!/bin/sh\necho edgeraft 0.0.0\n");
    await assert.rejects(readElfHeader(script), /no \\x7fELF magic/);
  } finally {
    await Deno.remove(script);
  }
  assert.throws(() => parseElfHeader(new Uint8Array([0x7f, 0x45, 0x4c, 0x46])), /only 4 bytes/);
  const header = (cls: number, data: number, machine: [number, number]) => {
    const bytes = new Uint8Array(20);
    bytes.set([0x7f, 0x45, 0x4c, 0x46, cls, data]);
    bytes.set(machine, 18);
    return bytes;
  };
  // EM_ARM (40), 32-bit little-endian: the 32-bit Raspberry Pi OS binary is no release target.
  assert.deepEqual(parseElfHeader(header(1, 1, [40, 0])), {
    is64Bit: false,
    littleEndian: true,
    machine: 40,
  });
  assert.deepEqual(parseElfHeader(header(2, 2, [0, 0xb7])), {
    is64Bit: true,
    littleEndian: false,
    machine: 0xb7,
  });
});
