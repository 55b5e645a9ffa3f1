import assert from "node:assert/strict";
import { type CliIo, runInspect, runVerify } from "../../src/backup/cli.ts";
import { archiveBytes, filledKv, flipped, memberSpans } from "./helpers.ts";

const kv = filledKv(500);
const plain = await archiveBytes(kv);
const gzipped = await archiveBytes(kv, true);

function capture(): CliIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (l) => out.push(l), stderr: (l) => err.push(l) };
}

async function withFiles(
  fn: (paths: { good: string; goodGz: string; damaged: string; dir: string }) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "edgeraft-cli-test-" });
  try {
    const paths = {
      dir,
      good: `${dir}/good.tar`,
      goodGz: `${dir}/good.tar.gz`,
      damaged: `${dir}/damaged.tar`,
    };
    await Deno.writeFile(paths.good, plain);
    await Deno.writeFile(paths.goodGz, gzipped);
    const state = memberSpans(plain)[0]!;
    await Deno.writeFile(paths.damaged, flipped(plain, state.dataOffset + 777));
    await fn(paths);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("verify prints one line per check and exits 0 for a sound archive", async () => {
  await withFiles(async ({ good, goodGz }) => {
    for (const file of [good, goodGz]) {
      const io = capture();
      assert.equal(await runVerify([file], io), 0);
      assert.deepEqual(io.err, []);
      const lines = io.out.join("\n").split("\n");
      assert.match(lines[0]!, /^ok {4}(gzip stream|tar framing) /);
      assert.ok(lines.slice(0, -1).every((l) => l.startsWith("ok    ")), lines.join("\n"));
      assert.match(
        lines.at(-1)!,
        /^sound: cluster test-cluster, node n1, index 501, term 7, 500 keys/,
      );
    }
  });
});

Deno.test("verify exits 1 with a one-line reason naming file, check and code", async () => {
  await withFiles(async ({ damaged }) => {
    const io = capture();
    assert.equal(await runVerify([damaged], io), 1);
    assert.equal(io.err.length, 1);
    assert.ok(!io.err[0]!.includes("\n"));
    assert.match(
      io.err[0]!,
      /^edgeraft verify: ".*damaged\.tar" is unsound: ERR_BACKUP_CHECKSUM_MISMATCH in state\.kvsnap, check "state\.kvsnap sha256 \(manifest\)": /,
    );
    const text = io.out.join("\n");
    assert.match(text, /\nFAIL {2}state\.kvsnap sha256 \(manifest\) /);
    assert.match(text, /UNSOUND: ERR_BACKUP_CHECKSUM_MISMATCH$/);
  });
});

Deno.test("verify --json prints the report", async () => {
  await withFiles(async ({ good, damaged }) => {
    const io = capture();
    assert.equal(await runVerify([good, "--json"], io), 0);
    const report = JSON.parse(io.out.join("\n"));
    assert.equal(report.ok, true);
    assert.equal(report.manifest.index, 501);
    assert.equal(report.stats.keys, 500);
    const bad = capture();
    assert.equal(await runVerify(["--json", damaged], bad), 1);
    const failed = JSON.parse(bad.out.join("\n"));
    assert.equal(failed.ok, false);
    assert.deepEqual(
      { code: failed.error.code, file: failed.error.file },
      { code: "ERR_BACKUP_CHECKSUM_MISMATCH", file: "state.kvsnap" },
    );
    assert.equal(bad.err.length, 1);
  });
});

Deno.test("verify of a truncated file names the truncation", async () => {
  await withFiles(async ({ dir }) => {
    const path = `${dir}/cut.tar`;
    await Deno.writeFile(path, plain.slice(0, 5000));
    const io = capture();
    assert.equal(await runVerify([path], io), 1);
    assert.match(io.err[0]!, /ERR_BACKUP_INCOMPLETE in state\.kvsnap, check "tar framing"/);
  });
});

Deno.test("usage errors exit 2 and a missing file exits 2, each with one line", async () => {
  const cases: [string[], RegExp][] = [
    [[], /missing FILE/],
    [["a", "b"], /more than one FILE/],
    [["--bogus", "a"], /unknown option --bogus/],
    [["/nonexistent/backup.tar"], /cannot open "\/nonexistent\/backup\.tar": no such file/],
    [["/"], /not a regular file/],
  ];
  for (const run of [runVerify, runInspect]) {
    for (const [args, pattern] of cases) {
      const io = capture();
      assert.equal(await run(args, io), 2, args.join(" "));
      assert.equal(io.err.length, 1);
      assert.match(io.err[0]!, pattern);
      assert.deepEqual(io.out, []);
    }
    const help = capture();
    assert.equal(await run(["--help"], help), 0);
    assert.match(help.out[0]!, /^usage: edgeraft (verify|inspect) FILE \[--json\]$/);
  }
});

Deno.test("inspect prints the manifest, the state's statistics and the top prefixes", async () => {
  await withFiles(async ({ good, goodGz }) => {
    for (const file of [good, goodGz]) {
      const io = capture();
      assert.equal(await runInspect([file], io), 0);
      const text = io.out.join("\n");
      assert.match(
        text,
        /^Manifest\n {2}format {10}edgeraft-backup version 1\n {2}cluster {9}test-cluster/,
      );
      assert.match(text, /\n {2}members {9}n1 voter http:\/\/127\.0\.0\.1:7071\n {18}n2 voter/);
      assert.match(text, /\n {2}n3 learner|\n {18}n3 learner/);
      assert.match(text, /\n {2}keys {12}500\n/);
      assert.match(text, /\n {2}largest value {3}699 B, key "/);
      assert.match(text, /Top prefixes by size \(3 prefixes/);
      assert.match(text, /\n {2}user\/ +\d+ +\d+ +\d+\.\d%/);
      assert.match(text, /\n {2}cfg: +\d+/);
      assert.match(text, /\n {2}\(no prefix\) +\d+/);
      assert.match(text, /Verification: sound \(1\d checks passed\)$/);
      assert.equal(text.includes("gzip (tar"), file === goodGz);
    }
  });
});

Deno.test("inspect exits 1 for an unsound archive and --json carries the stats", async () => {
  await withFiles(async ({ good, damaged }) => {
    const io = capture();
    assert.equal(await runInspect([damaged], io), 1);
    assert.equal(io.err.length, 1);
    assert.match(io.err[0]!, /^edgeraft inspect: .* ERR_BACKUP_CHECKSUM_MISMATCH in state\.kvsnap/);
    assert.match(io.out.join("\n"), /Verification: UNSOUND: ERR_BACKUP_CHECKSUM_MISMATCH/);
    const json = capture();
    assert.equal(await runInspect([good, "--json"], json), 0);
    const parsed = JSON.parse(json.out.join("\n"));
    assert.equal(parsed.ok, true);
    assert.equal(parsed.stats.keys, 500);
    assert.equal(parsed.stats.prefixes.length, 3);
    assert.equal(parsed.manifest.cluster_id, "test-cluster");
  });
});
