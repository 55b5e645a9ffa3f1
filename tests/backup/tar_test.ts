import assert from "node:assert/strict";
import { encodeTarHeader } from "../../src/backup/tar_header.ts";
import { TarReader } from "../../src/backup/tar_reader.ts";
import { type TarMember, tarStream, TarWriteError } from "../../src/backup/tar_writer.ts";
import { BackupError } from "../../src/errors.ts";
import { collect, dec, enc, flipped, run, streamOf } from "./helpers.ts";

function bytesOf(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

const SIZES = [0, 1, 511, 512, 513, 1024, 70_000];

function sampleMembers(): TarMember[] {
  return SIZES.map((size, i) => ({
    name: `file-${i}.bin`,
    size,
    mtime: 1_700_000_000 + i,
    // Alternate buffer and stream bodies.
    body: i % 2 === 0 ? bytesOf(size, i) : streamOf(bytesOf(size, i), 4000),
  }));
}

async function readAll(
  stream: ReadableStream<Uint8Array>,
): Promise<{ name: string; body: Uint8Array; mtime: number }[]> {
  const reader = new TarReader(stream);
  const out = [];
  try {
    for (;;) {
      const entry = await reader.next();
      if (entry === null) break;
      out.push({ name: entry.name, body: await collect(entry.body), mtime: entry.mtime });
    }
  } catch (error) {
    await reader.cancel();
    throw error;
  }
  return out;
}

async function rejects(
  stream: ReadableStream<Uint8Array>,
  code: string,
  pattern: RegExp,
): Promise<BackupError> {
  let caught: unknown = null;
  try {
    await readAll(stream);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof BackupError, `expected a BackupError, got ${caught}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.check, "tar framing");
  assert.match(caught.message, pattern);
  return caught;
}

Deno.test("tar writer and reader round-trip members of sizes around block boundaries", async () => {
  const tar = await collect(tarStream(sampleMembers()));
  assert.equal(tar.length % 512, 0);
  // Two zero blocks end it.
  assert.ok(tar.subarray(tar.length - 1024).every((b) => b === 0));
  for (const piece of [1, 7, 512, 100_000]) {
    const members = await readAll(streamOf(tar, piece));
    assert.deepEqual(members.map((m) => m.name), SIZES.map((_, i) => `file-${i}.bin`));
    members.forEach((m, i) => {
      assert.deepEqual(m.body, bytesOf(SIZES[i]!, i));
      assert.equal(m.mtime, 1_700_000_000 + i);
    });
  }
});

Deno.test("real tar lists and extracts what the writer wrote, byte for byte", async () => {
  const dir = await Deno.makeTempDir({ prefix: "edgeraft-tar-test-" });
  try {
    await Deno.writeFile(`${dir}/a.tar`, await collect(tarStream(sampleMembers())));
    const list = await run("tar", ["-tvf", "a.tar"], dir);
    assert.equal(list.code, 0, list.stderr);
    const lines = list.stdout.trim().split("\n");
    assert.equal(lines.length, SIZES.length);
    assert.match(
      lines[0]!,
      /^-rw-r--r-- edgeraft\/edgeraft\s+0 2023-11-1\d \d\d:\d\d file-0\.bin$/,
    );
    const extract = await run("tar", ["-xf", "a.tar"], dir);
    assert.equal(extract.code, 0, extract.stderr);
    for (let i = 0; i < SIZES.length; i++) {
      assert.deepEqual(await Deno.readFile(`${dir}/file-${i}.bin`), bytesOf(SIZES[i]!, i));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the reader reads archives made by real tar (ustar and GNU formats)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "edgeraft-tar-test-" });
  try {
    await Deno.writeFile(`${dir}/one`, bytesOf(1000, 1));
    await Deno.writeFile(`${dir}/two`, bytesOf(0, 2));
    for (const format of ["ustar", "gnu"]) {
      const made = await run("tar", [`--format=${format}`, "-cf", "x.tar", "one", "two"], dir);
      assert.equal(made.code, 0, made.stderr);
      const members = await readAll((await Deno.open(`${dir}/x.tar`)).readable);
      assert.deepEqual(members.map((m) => m.name), ["one", "two"]);
      assert.deepEqual(members[0]!.body, bytesOf(1000, 1));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the reader refuses links, directories and pax headers from real tar", async () => {
  const dir = await Deno.makeTempDir({ prefix: "edgeraft-tar-test-" });
  try {
    await Deno.writeFile(`${dir}/target`, bytesOf(10, 1));
    await Deno.symlink("target", `${dir}/link`);
    await Deno.mkdir(`${dir}/sub`);
    const cases: [string[], RegExp][] = [
      [["--format=ustar", "-cf", "x.tar", "link"], /symbolic link/],
      [["--format=ustar", "-cf", "x.tar", "sub"], /directory/],
      [["--format=posix", "-cf", "x.tar", "target"], /pax extended header/],
    ];
    for (const [args, pattern] of cases) {
      const made = await run("tar", args, dir);
      assert.equal(made.code, 0, made.stderr);
      await rejects(
        (await Deno.open(`${dir}/x.tar`)).readable,
        "ERR_BACKUP_MANIFEST_CORRUPT",
        pattern,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A header for `name` with the name field written raw (bypassing the writer's checks). */
function rawHeader(name: string, typeflag = "0", size = 0): Uint8Array {
  const block = encodeTarHeader({ name: "x", size, mtime: 0 });
  block.fill(0, 0, 100);
  block.set(enc.encode(name), 0);
  block[156] = typeflag.charCodeAt(0);
  // Recompute the checksum.
  block.fill(0x20, 148, 156);
  const sum = block.reduce((a, b) => a + b, 0);
  block.set(enc.encode(sum.toString(8).padStart(6, "0")), 148);
  block[154] = 0;
  block[155] = 0x20;
  return block;
}

function archiveOf(...blocks: Uint8Array[]): Uint8Array {
  const total = blocks.reduce((n, b) => n + b.length, 0) + 1024;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const b of blocks) {
    out.set(b, offset);
    offset += b.length;
  }
  return out;
}

Deno.test("the reader refuses absolute paths, '..' and hard links", async () => {
  await rejects(
    streamOf(archiveOf(rawHeader("/etc/passwd"))),
    "ERR_BACKUP_MANIFEST_CORRUPT",
    /absolute/,
  );
  await rejects(
    streamOf(archiveOf(rawHeader("a/../../b"))),
    "ERR_BACKUP_MANIFEST_CORRUPT",
    /"\.\."/,
  );
  await rejects(
    streamOf(archiveOf(rawHeader("x", "1"))),
    "ERR_BACKUP_MANIFEST_CORRUPT",
    /hard link/,
  );
  await rejects(streamOf(archiveOf(rawHeader("x", "3"))), "ERR_BACKUP_MANIFEST_CORRUPT", /device/);
});

Deno.test("a damaged header fails its checksum", async () => {
  const tar = await collect(tarStream(sampleMembers()));
  // Each field of the first header: name, mode, size, mtime, checksum, magic, uname.
  for (const offset of [0, 101, 130, 140, 150, 258, 266]) {
    await rejects(streamOf(flipped(tar, offset)), "ERR_BACKUP_CHECKSUM_MISMATCH", /checksum/);
  }
  // Random bytes are not a tar.
  await rejects(streamOf(bytesOf(4096, 9)), "ERR_BACKUP_CHECKSUM_MISMATCH", /checksum/);
});

Deno.test("truncation anywhere is ERR_BACKUP_INCOMPLETE naming the member", async () => {
  const tar = await collect(tarStream(sampleMembers()));
  // Empty input, inside the first header, inside a body, in padding, between members,
  // inside the end blocks and with no end blocks at all.
  const cases: [number, RegExp][] = [
    [0, /at the start without the end-of-archive/],
    [300, /inside the header at offset 0/],
    [512 + 512 + 100, /inside member "file-2\.bin"|in the padding after member "file-1\.bin"/],
    [tar.length - 1024, /without the end-of-archive blocks/],
    [tar.length - 512, /after one end-of-archive block/],
    [tar.length - 1, /after one end-of-archive block/],
  ];
  for (const [cut, pattern] of cases) {
    await rejects(streamOf(tar.subarray(0, cut), 777), "ERR_BACKUP_INCOMPLETE", pattern);
  }
  // Every 997th cut point.
  for (let cut = 0; cut < tar.length; cut += 997) {
    await rejects(streamOf(tar.subarray(0, cut), 333), "ERR_BACKUP_INCOMPLETE", /truncated/);
  }
  const inBody = await rejects(
    streamOf(tar.slice(0, tar.length - 1024 - 70_000)),
    "ERR_BACKUP_INCOMPLETE",
    /inside member/,
  );
  assert.equal(inBody.file, "file-6.bin");
});

Deno.test("bytes after the end-of-archive blocks must be zeros", async () => {
  const tar = await collect(tarStream(sampleMembers()));
  // GNU tar pads archives to 10 KiB records with zeros: accepted.
  const padded = new Uint8Array(tar.length + 10_240);
  padded.set(tar);
  assert.equal((await readAll(streamOf(padded))).length, SIZES.length);
  padded[padded.length - 5] = 1;
  await rejects(streamOf(padded), "ERR_BACKUP_CHECKSUM_MISMATCH", /after the end-of-archive/);
  // Non-zero padding after a body is damage too.
  // file-0 (empty) has its header at 0; file-1 (1 byte) its header at 512 and body at 1024.
  await rejects(streamOf(flipped(tar, 1024 + 100)), "ERR_BACKUP_CHECKSUM_MISMATCH", /padding/);
});

Deno.test("the writer errors when a body is longer or shorter than its size", async () => {
  const cases: [TarMember, RegExp][] = [
    [{ name: "a", size: 10, mtime: 0, body: streamOf(bytesOf(11, 0), 4) }, /more than its size/],
    [{ name: "a", size: 10, mtime: 0, body: streamOf(bytesOf(9, 0), 4) }, /ended after 9/],
    [{ name: "a", size: 10, mtime: 0, body: bytesOf(12, 0) }, /12 bytes, size 10/],
  ];
  for (const [member, pattern] of cases) {
    await assert.rejects(collect(tarStream([member])), (error: unknown) => {
      assert.ok(error instanceof TarWriteError);
      assert.match(error.message, pattern);
      return true;
    });
  }
  await assert.rejects(
    collect(tarStream([{ name: "dir/a", size: 0, mtime: 0, body: new Uint8Array() }])),
    RangeError,
  );
});

Deno.test("cancelling the tar stream cancels the member body being read", async () => {
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      controller.enqueue(new Uint8Array(100));
    },
    cancel() {
      cancelled = true;
    },
  });
  const stream = tarStream([{ name: "endless", size: 1_000_000, mtime: 0, body }]);
  const reader = stream.getReader();
  await reader.read();
  await reader.read();
  await reader.cancel();
  assert.equal(cancelled, true);
});

Deno.test("header names decode as UTF-8", async () => {
  const tar = await collect(
    tarStream([{ name: "é-ü.txt", size: 3, mtime: 0, body: enc.encode("abc") }]),
  );
  const members = await readAll(streamOf(tar));
  assert.equal(members[0]!.name, "é-ü.txt");
  assert.equal(dec.decode(members[0]!.body), "abc");
});
