import assert from "node:assert/strict";
import { verifyArchive, type VerifyReport } from "../../src/backup/archive_verifier.ts";
import { openArchiveState } from "../../src/backup/archive_state.ts";
import { backupFileName, writeBackupArchive } from "../../src/backup/archive_writer.ts";
import { BackupError } from "../../src/errors.ts";
import { encodeKvCommand } from "../../src/kv/kv_command.ts";
import { KvStateMachine } from "../../src/kv/kv_state_machine.ts";
import {
  archiveBytes,
  collect,
  CREATED_AT,
  dec,
  enc,
  filledKv,
  flipped,
  MEMBERSHIP,
  membersOf,
  memberSpans,
  repack,
  run,
  sha256,
  streamOf,
  sumsFor,
  withManifest,
} from "./helpers.ts";

const KEYS = 3000;
const kv = filledKv(KEYS);
const plain = await archiveBytes(kv);
const gzipped = await archiveBytes(kv, true);

async function verify(bytes: Uint8Array, piece = 65536): Promise<VerifyReport> {
  return await verifyArchive(streamOf(bytes, piece));
}

/** Asserts the archive fails with `code`, naming `file` and `check`. */
async function assertFails(
  bytes: Uint8Array,
  expected: { code: string; file: string | null; check: string; message?: RegExp },
): Promise<VerifyReport> {
  const report = await verify(bytes);
  assert.equal(report.ok, false);
  assert.ok(report.error !== null);
  const { code, file, check } = report.error;
  assert.deepEqual({ code, file, check }, {
    code: expected.code,
    file: expected.file,
    check: expected.check,
  }, report.error.message);
  if (expected.message) assert.match(report.error.message, expected.message);
  const last = report.checks.at(-1)!;
  assert.equal(last.ok, false);
  assert.equal(last.name, check);
  assert.ok(report.checks.slice(0, -1).every((c) => c.ok));
  return report;
}

Deno.test("real tar extracts the archive and sha256sum -c SHA256SUMS passes (plain and gzip)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "edgeraft-backup-test-" });
  try {
    const name = backupFileName("test-cluster", kv.appliedIndex);
    assert.equal(name, `edgeraft-test-cluster-${KEYS + 1}.tar`);
    await Deno.writeFile(`${dir}/${name}`, plain);
    await Deno.writeFile(`${dir}/${name}.gz`, gzipped);

    const list = await run("tar", ["-tvf", name], dir);
    assert.equal(list.code, 0, list.stderr);
    const lines = list.stdout.trim().split("\n");
    assert.deepEqual(lines.map((l) => l.split(/\s+/).at(-1)), [
      "state.kvsnap",
      "manifest.json",
      "SHA256SUMS",
    ]);
    for (const line of lines) {
      assert.match(line, /^-rw-r--r-- edgeraft\/edgeraft\s+\d+ 2025-03-04 \d\d:\d\d /);
    }

    for (const [archive, flags] of [[name, "-xf"], [`${name}.gz`, "-xzf"]] as const) {
      const out = `${dir}/out-${flags}`;
      await Deno.mkdir(out);
      const x = await run("tar", [flags, `../${archive}`], out);
      assert.equal(x.code, 0, x.stderr);
      const check = await run("sha256sum", ["-c", "SHA256SUMS"], out);
      assert.equal(check.code, 0, check.stderr);
      assert.equal(check.stdout, "state.kvsnap: OK\nmanifest.json: OK\n");
      // The extracted state restores into an identical machine.
      const restored = new KvStateMachine();
      const file = await Deno.open(`${out}/state.kvsnap`);
      await restored.restore(file.readable);
      assert.deepEqual(restored.stats(), kv.stats());
    }
    const gz = await run("gzip", ["-t", `${name}.gz`], dir);
    assert.equal(gz.code, 0, gz.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a written archive verifies and its statistics match the state machine", async () => {
  for (const [bytes, gzip] of [[plain, false], [gzipped, true]] as const) {
    const report = await verify(bytes);
    assert.equal(report.ok, true, JSON.stringify(report.error));
    assert.equal(report.error, null);
    assert.deepEqual(report.checks.map((c) => c.name), [
      ...(gzip ? ["gzip stream"] : []),
      "tar framing",
      "member layout",
      "SHA256SUMS format",
      "manifest.json sha256 (SHA256SUMS)",
      "manifest schema",
      "state.kvsnap size (manifest)",
      "state.kvsnap sha256 (manifest)",
      "state.kvsnap sha256 (SHA256SUMS)",
      "state.kvsnap decodes",
      "state matches manifest",
    ]);
    const stats = kv.stats();
    const m = report.manifest!;
    assert.equal(m.index, kv.appliedIndex);
    assert.equal(m.term, 7);
    assert.equal(m.created_at, CREATED_AT);
    assert.deepEqual(m.membership, MEMBERSHIP);
    assert.equal(m.state.keys, stats.keys);
    assert.equal(m.state.value_bytes, stats.valueBytes);
    const s = report.stats!;
    assert.equal(s.gzip, gzip);
    assert.equal(s.archiveBytes, bytes.length);
    assert.equal(s.tarBytes, plain.length);
    assert.equal(s.keys, stats.keys);
    assert.equal(s.keyBytes, stats.keyBytes);
    assert.equal(s.valueBytes, stats.valueBytes);
    assert.equal(s.appliedIndex, kv.appliedIndex);
    assert.equal(s.stateBytes, m.files[0]!.size);
    assert.equal(s.largestValue, 699);
    assert.equal(s.maxRevision, KEYS);
    // Prefixes: "user/" (i % 3 == 1), "cfg:" (i % 3 == 0), no delimiter (i % 3 == 2).
    assert.deepEqual(s.prefixes.map((p) => p.prefix).sort(), ["", "cfg:", "user/"]);
    assert.equal(s.prefixes.reduce((n, p) => n + p.keys, 0), KEYS);
    assert.equal(s.prefixes.reduce((n, p) => n + p.valueBytes, 0), stats.valueBytes);
    assert.ok(s.prefixes[0]!.bytes >= s.prefixes[1]!.bytes);
  }
});

Deno.test("the archive verifies whatever the input's chunk boundaries", async () => {
  const small = await archiveBytes(filledKv(50));
  for (const piece of [1, 3, 511, 513, 4096]) {
    const report = await verify(small, piece);
    assert.equal(report.ok, true, `${piece}: ${report.error?.message}`);
  }
  const smallGz = await archiveBytes(filledKv(50), true);
  assert.equal((await verify(smallGz, 1)).ok, true);
});

Deno.test("done resolves with the state's SHA-256, the archive size and the manifest", async () => {
  for (const gzip of [false, true]) {
    const snapshot = kv.snapshot();
    const archive = writeBackupArchive({
      clusterId: "c/1 x",
      nodeId: "n1",
      index: snapshot.appliedIndex,
      term: 2,
      membership: MEMBERSHIP,
      state: snapshot,
      gzip,
    });
    const bytes = await collect(archive.stream);
    const result = await archive.done;
    assert.equal(result.archiveBytes, bytes.length);
    const tar = gzip
      ? await collect(
        streamOf(bytes).pipeThrough(
          new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
        ),
      )
      : bytes;
    const [state] = membersOf(tar);
    assert.equal(result.sha256OfState, sha256(state!.body));
    assert.equal(result.manifest.files[0]!.size, snapshot.byteLength);
    assert.match(result.manifest.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  }
  assert.equal(backupFileName("c/1 x", 9, true), "edgeraft-c_1_x-9.tar.gz");
});

Deno.test("cancelling the archive stream rejects done and stops the snapshot", async () => {
  const archive = writeBackupArchive({
    clusterId: "c",
    nodeId: "n1",
    index: kv.appliedIndex,
    term: 1,
    membership: MEMBERSHIP,
    state: kv.snapshot(),
  });
  const reader = archive.stream.getReader();
  await reader.read();
  await reader.cancel(new Error("client went away"));
  await assert.rejects(archive.done, /client went away/);
});

Deno.test("a state stream shorter than its byteLength errors the archive", async () => {
  const snapshot = kv.snapshot();
  const archive = writeBackupArchive({
    clusterId: "c",
    nodeId: "n1",
    index: snapshot.appliedIndex,
    term: 1,
    membership: MEMBERSHIP,
    state: { ...snapshot, byteLength: snapshot.byteLength + 1 },
  });
  await assert.rejects(collect(archive.stream), /ended after/);
  await assert.rejects(archive.done, /ended after/);
});

// Damage: every case fails with its code, naming the file and the check.

Deno.test("a flipped byte in state.kvsnap is a checksum mismatch of state.kvsnap", async () => {
  const [state] = memberSpans(plain);
  for (const at of [0, 100, Math.floor(state!.size / 2), state!.size - 1]) {
    await assertFails(flipped(plain, state!.dataOffset + at), {
      code: "ERR_BACKUP_CHECKSUM_MISMATCH",
      file: "state.kvsnap",
      check: "state.kvsnap sha256 (manifest)",
    });
  }
});

Deno.test("a flipped byte in manifest.json is a checksum mismatch of manifest.json", async () => {
  const manifest = memberSpans(plain)[1]!;
  // A letter of a value (still valid JSON) and a brace (no longer JSON): both are damage.
  const text = dec.decode(plain.subarray(manifest.dataOffset, manifest.dataOffset + manifest.size));
  for (const at of [text.indexOf("test-cluster") + 2, 0]) {
    await assertFails(flipped(plain, manifest.dataOffset + at), {
      code: "ERR_BACKUP_CHECKSUM_MISMATCH",
      file: "manifest.json",
      check: "manifest.json sha256 (SHA256SUMS)",
    });
  }
});

Deno.test("a flipped byte in SHA256SUMS names SHA256SUMS", async () => {
  const sums = memberSpans(plain)[2]!;
  const first = plain[sums.dataOffset]!;
  // Another hex digit in the state's line: the state agrees with the manifest, not the list.
  const other = plain.slice();
  other[sums.dataOffset] = first === 0x30 ? 0x31 : 0x30;
  await assertFails(other, {
    code: "ERR_BACKUP_CHECKSUM_MISMATCH",
    file: "SHA256SUMS",
    check: "state.kvsnap sha256 (SHA256SUMS)",
  });
  // A byte that breaks the format.
  await assertFails(flipped(plain, sums.dataOffset + 64, 0x40), {
    code: "ERR_BACKUP_CHECKSUM_MISMATCH",
    file: "SHA256SUMS",
    check: "SHA256SUMS format",
  });
});

Deno.test("a flipped byte in a tar header fails the tar framing check", async () => {
  const spans = memberSpans(plain);
  for (const span of spans) {
    for (const field of [5, 125, 140, 300]) {
      const report = await assertFails(flipped(plain, span.headerOffset + field), {
        code: "ERR_BACKUP_CHECKSUM_MISMATCH",
        file: null,
        check: "tar framing",
        message: new RegExp(`offset ${span.headerOffset}.*checksum mismatch`),
      });
      assert.equal(report.manifest, null);
    }
  }
});

Deno.test("a truncated archive is ERR_BACKUP_INCOMPLETE at every offset", async () => {
  const [state, manifest, sums] = memberSpans(plain);
  const cases: [number, string | null, RegExp][] = [
    [0, null, /at the start/],
    [200, null, /inside the header/],
    [state!.dataOffset + 1000, "state.kvsnap", /inside member "state.kvsnap"/],
    [state!.dataOffset + state!.size - 1, "state.kvsnap", /inside member "state.kvsnap"/],
    [manifest!.dataOffset + 10, "manifest.json", /inside member "manifest.json"/],
    [sums!.dataOffset + 10, "SHA256SUMS", /inside member "SHA256SUMS"/],
    [plain.length - 1024, null, /after member "SHA256SUMS" without the end-of-archive blocks/],
    [plain.length - 700, null, /inside the header at offset/],
    [plain.length - 1, null, /after one end-of-archive block/],
  ];
  for (const [cut, file, message] of cases) {
    await assertFails(plain.slice(0, cut), {
      code: "ERR_BACKUP_INCOMPLETE",
      file,
      check: "tar framing",
      message,
    });
  }
  for (let cut = 1; cut < plain.length; cut += 9973) {
    const report = await verify(plain.slice(0, cut));
    assert.equal(report.error?.code, "ERR_BACKUP_INCOMPLETE", `cut at ${cut}`);
  }
});

Deno.test("an edited manifest with SHA256SUMS recomputed fails only the manifest↔file check", async () => {
  await assertFails(
    await withManifest(plain, (m) => {
      (m.files as { sha256: string }[])[0]!.sha256 = "0".repeat(64);
    }),
    {
      code: "ERR_BACKUP_CHECKSUM_MISMATCH",
      file: "state.kvsnap",
      check: "state.kvsnap sha256 (manifest)",
    },
  );
  await assertFails(
    await withManifest(plain, (m) => {
      (m.files as { size: number }[])[0]!.size += 1;
    }),
    {
      code: "ERR_BACKUP_CHECKSUM_MISMATCH",
      file: "state.kvsnap",
      check: "state.kvsnap size (manifest)",
    },
  );
  await assertFails(await withManifest(plain, (m) => (m.index = 5)), {
    code: "ERR_BACKUP_MANIFEST_CORRUPT",
    file: "manifest.json",
    check: "state matches manifest",
    message: /index 3001 ≠ manifest 5/,
  });
  await assertFails(
    await withManifest(plain, (m) => ((m.state as { keys: number }).keys = 1)),
    {
      code: "ERR_BACKUP_MANIFEST_CORRUPT",
      file: "manifest.json",
      check: "state matches manifest",
      message: /keys 3000 ≠ manifest 1/,
    },
  );
  // An edit of a field nothing else records (the node id) is undetectable by design: the
  // manifest is vouched for only by SHA256SUMS, which was recomputed.
  assert.equal((await verify(await withManifest(plain, (m) => (m.node_id = "n9")))).ok, true);
});

Deno.test("a manifest of version 2 is ERR_BACKUP_VERSION_UNSUPPORTED, even in another layout", async () => {
  const v2 = await withManifest(plain, (m) => (m.version = 2));
  await assertFails(v2, {
    code: "ERR_BACKUP_VERSION_UNSUPPORTED",
    file: "manifest.json",
    check: "manifest schema",
  });
  const [state, manifest, sums] = membersOf(v2);
  const newLayout = await repack([
    { name: "manifest.json", body: manifest!.body },
    state!,
    { name: "index.bin", body: enc.encode("new in v2") },
    sums!,
  ]);
  await assertFails(newLayout, {
    code: "ERR_BACKUP_VERSION_UNSUPPORTED",
    file: "manifest.json",
    check: "manifest schema",
  });
});

Deno.test("malformed manifest JSON is ERR_BACKUP_MANIFEST_CORRUPT", async () => {
  await assertFails(await withManifest(plain, enc.encode('{"format": "edgeraft-backup",')), {
    code: "ERR_BACKUP_MANIFEST_CORRUPT",
    file: "manifest.json",
    check: "manifest schema",
    message: /not valid JSON/,
  });
  await assertFails(await withManifest(plain, (m) => delete m.term), {
    code: "ERR_BACKUP_MANIFEST_CORRUPT",
    file: "manifest.json",
    check: "manifest schema",
    message: /"term"/,
  });
});

Deno.test("an extra member, a missing one or the wrong order fails the member layout", async () => {
  const [state, manifest, sums] = membersOf(plain);
  const extra = { name: "notes.txt", body: enc.encode("hi") };
  await assertFails(await repack([state!, manifest!, sums!, extra]), {
    code: "ERR_BACKUP_MANIFEST_CORRUPT",
    file: "notes.txt",
    check: "member layout",
  });
  await assertFails(await repack([manifest!, state!, sums!]), {
    code: "ERR_BACKUP_MANIFEST_CORRUPT",
    file: "manifest.json",
    check: "member layout",
    message: /in this order/,
  });
  await assertFails(await repack([state!, manifest!]), {
    code: "ERR_BACKUP_INCOMPLETE",
    file: "SHA256SUMS",
    check: "member layout",
  });
  await assertFails(await repack([state!, sums!]), {
    code: "ERR_BACKUP_MANIFEST_CORRUPT",
    file: "manifest.json",
    check: "member layout",
  });
  await assertFails(await repack([state!, manifest!, sums!, sums!]), {
    code: "ERR_BACKUP_MANIFEST_CORRUPT",
    file: "SHA256SUMS",
    check: "member layout",
  });
  await assertFails(await repack([]), {
    code: "ERR_BACKUP_INCOMPLETE",
    file: "state.kvsnap",
    check: "member layout",
  });
});

Deno.test("garbage after the end-of-archive blocks fails; zero padding does not", async () => {
  const padded = new Uint8Array(plain.length + 8192);
  padded.set(plain);
  assert.equal((await verify(padded)).ok, true);
  padded[plain.length + 100] = 0x41;
  await assertFails(padded, {
    code: "ERR_BACKUP_CHECKSUM_MISMATCH",
    file: null,
    check: "tar framing",
    message: new RegExp(`offset ${plain.length + 100}`),
  });
});

Deno.test("a truncated or damaged gzip archive fails the gzip check", async () => {
  for (const cut of [1, 10, Math.floor(gzipped.length / 2), gzipped.length - 4]) {
    const report = await verify(gzipped.slice(0, cut));
    assert.equal(report.error?.code, "ERR_BACKUP_INCOMPLETE", `cut ${cut}`);
    assert.ok(["gzip stream", "tar framing"].includes(report.error.check));
  }
  await assertFails(gzipped.slice(0, gzipped.length - 4), {
    code: "ERR_BACKUP_INCOMPLETE",
    file: null,
    check: "gzip stream",
    message: /truncated/,
  });
  // The gzip trailer's CRC-32 catches a change in the data.
  await assertFails(flipped(gzipped, gzipped.length - 6), {
    code: "ERR_BACKUP_CHECKSUM_MISMATCH",
    file: null,
    check: "gzip stream",
  });
  const appended = new Uint8Array(gzipped.length + 3);
  appended.set(gzipped);
  appended.set([1, 2, 3], gzipped.length);
  assert.equal((await verify(appended)).error?.code, "ERR_BACKUP_CHECKSUM_MISMATCH");
  const middle = await verify(flipped(gzipped, Math.floor(gzipped.length / 2)));
  assert.equal(middle.error?.code, "ERR_BACKUP_CHECKSUM_MISMATCH");
});

Deno.test("a state that fails to decode although its hashes match", async () => {
  const [state] = membersOf(plain);
  const manifestOf = (body: Uint8Array, edit: (m: Record<string, unknown>) => void) => {
    const object = JSON.parse(dec.decode(membersOf(plain)[1]!.body));
    (object.files as { size: number; sha256: string }[])[0] = {
      name: "state.kvsnap",
      size: body.length,
      sha256: sha256(body),
    } as never;
    edit(object);
    return enc.encode(JSON.stringify(object, null, 2) + "\n");
  };
  const rebuild = (body: Uint8Array) => {
    const manifest = manifestOf(body, () => {});
    return repack([
      { name: "state.kvsnap", body },
      { name: "manifest.json", body: manifest },
      { name: "SHA256SUMS", body: sumsFor(body, manifest) },
    ]);
  };
  // A block damaged before it was hashed: the snapshot's own CRC catches it.
  await assertFails(await rebuild(flipped(state!.body, 5000)), {
    code: "ERR_BACKUP_CHECKSUM_MISMATCH",
    file: "state.kvsnap",
    check: "state.kvsnap decodes",
    message: /checksum mismatch in block/,
  });
  // A state cut short before it was hashed.
  await assertFails(await rebuild(state!.body.slice(0, 10_000)), {
    code: "ERR_BACKUP_INCOMPLETE",
    file: "state.kvsnap",
    check: "state.kvsnap decodes",
  });
  // A state in a snapshot format version this build does not read.
  const v2 = state!.body.slice();
  v2[11] = 2;
  await assertFails(await rebuild(v2), {
    code: "ERR_BACKUP_VERSION_UNSUPPORTED",
    file: "state.kvsnap",
    check: "state.kvsnap decodes",
  });
});

Deno.test("anything that is not an archive fails without throwing", async () => {
  const empty = await verify(new Uint8Array(0));
  assert.equal(empty.error?.code, "ERR_BACKUP_INCOMPLETE");
  const text = await verify(enc.encode("hello world\n".repeat(100)));
  assert.equal(text.error?.code, "ERR_BACKUP_CHECKSUM_MISMATCH");
  assert.equal(text.error?.check, "tar framing");
  const gz = await verify(new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0]));
  assert.equal(gz.error?.code, "ERR_BACKUP_INCOMPLETE");
  const failing = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(plain.slice(0, 4096));
    },
    pull(controller) {
      controller.error(new Error("disk on fire"));
    },
  });
  const io = await verifyArchive(failing);
  assert.equal(io.error?.code, "ERR_BACKUP_INCOMPLETE");
  assert.match(io.error.message, /disk on fire/);
});

Deno.test("an empty state at index 0 archives and verifies", async () => {
  const empty = new KvStateMachine();
  const archive = writeBackupArchive({
    clusterId: "c",
    nodeId: "n1",
    index: 0,
    term: 0,
    membership: MEMBERSHIP,
    state: empty.snapshot(),
  });
  const report = await verifyArchive(archive.stream);
  assert.equal(report.ok, true, report.error?.message);
  assert.equal(report.stats?.keys, 0);
  assert.deepEqual(report.stats?.prefixes, []);
  const one = new KvStateMachine();
  one.apply(1, encodeKvCommand({ op: "put", key: "k", value: new Uint8Array(3) }));
  const report2 = await verifyArchive(
    writeBackupArchive({
      clusterId: "c",
      nodeId: "n1",
      index: 1,
      term: 1,
      membership: MEMBERSHIP,
      state: one.snapshot(),
      gzip: true,
    }).stream,
  );
  assert.equal(report2.ok, true, report2.error?.message);
  assert.equal(report2.stats?.largestValueKey, "k");
});

Deno.test("openArchiveState streams the state member of a plain or gzip archive", async () => {
  const [state, manifest, sums] = membersOf(plain);
  for (const bytes of [plain, gzipped]) {
    const opened = await openArchiveState(streamOf(bytes, 1000));
    assert.equal(opened.size, state!.body.length);
    assert.deepEqual(await collect(opened.body), state!.body);
  }
  // Restoring from it rebuilds the same state.
  const restored = new KvStateMachine();
  await restored.restore((await openArchiveState(streamOf(gzipped))).body);
  assert.deepEqual(restored.stats(), kv.stats());
  // Truncated inside the state: the body errors with ERR_BACKUP_INCOMPLETE.
  const cut = await openArchiveState(streamOf(plain.slice(0, 20_000)));
  await assert.rejects(collect(cut.body), (error: unknown) => {
    assert.ok(error instanceof BackupError);
    assert.equal(error.code, "ERR_BACKUP_INCOMPLETE");
    assert.equal(error.file, "state.kvsnap");
    return true;
  });
  // Not starting with the state.
  await assert.rejects(
    openArchiveState(streamOf(await repack([manifest!, state!, sums!]))),
    (error: unknown) =>
      error instanceof BackupError && error.code === "ERR_BACKUP_MANIFEST_CORRUPT",
  );
  await assert.rejects(
    openArchiveState(streamOf(new Uint8Array(0))),
    (error: unknown) => error instanceof BackupError && error.code === "ERR_BACKUP_INCOMPLETE",
  );
  // Cancelling the body releases the input.
  let cancelled = false;
  const source = streamOf(plain, 4096);
  const tracked = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const reader = source.getReader();
      const { done, value } = await reader.read();
      reader.releaseLock();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel() {
      cancelled = true;
    },
  });
  const opened = await openArchiveState(tracked);
  const reader = opened.body.getReader();
  await reader.read();
  await reader.cancel();
  assert.equal(cancelled, true);
});
