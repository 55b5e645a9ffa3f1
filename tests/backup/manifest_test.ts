import assert from "node:assert/strict";
import {
  buildManifest,
  encodeManifest,
  type ManifestFields,
  parseManifest,
} from "../../src/backup/manifest.ts";
import { encodeSha256Sums, parseSha256Sums } from "../../src/backup/sha256sums.ts";
import { BackupError } from "../../src/errors.ts";
import { CREATED_AT, dec, enc, MEMBERSHIP } from "./helpers.ts";

const FIELDS: ManifestFields = {
  clusterId: "c-1",
  nodeId: "n1",
  index: 42,
  term: 3,
  membership: MEMBERSHIP,
  createdAt: CREATED_AT,
  edgeraftVersion: "0.1.0",
  keys: 10,
  valueBytes: 1000,
  stateSize: 2000,
  stateSha256: "ab".repeat(32),
};

function edited(edit: (m: Record<string, unknown>) => void): Uint8Array {
  const object = JSON.parse(dec.decode(encodeManifest(buildManifest(FIELDS))));
  edit(object);
  return enc.encode(JSON.stringify(object));
}

function rejects(bytes: Uint8Array, code: string, pattern: RegExp): void {
  assert.throws(() => parseManifest(bytes), (error: unknown) => {
    assert.ok(error instanceof BackupError);
    assert.equal(error.code, code, error.message);
    assert.equal(error.file, "manifest.json");
    assert.equal(error.check, "manifest schema");
    assert.match(error.message, pattern);
    return true;
  });
}

Deno.test("the manifest encodes with keys in the fixed order and parses back", () => {
  const manifest = buildManifest(FIELDS);
  const bytes = encodeManifest(manifest);
  const text = dec.decode(bytes);
  assert.ok(text.endsWith("}\n"));
  assert.ok(text.startsWith('{\n  "format": "edgeraft-backup",\n  "version": 1,\n'));
  assert.deepEqual(Object.keys(JSON.parse(text)), [
    "format",
    "version",
    "cluster_id",
    "node_id",
    "index",
    "term",
    "membership",
    "created_at",
    "kind",
    "edgeraft_version",
    "state",
    "files",
  ]);
  assert.deepEqual(parseManifest(bytes), manifest);
  // Order of the input object does not matter to the encoding.
  const shuffled = Object.fromEntries(Object.entries(manifest).reverse());
  assert.deepEqual(encodeManifest(shuffled as typeof manifest), bytes);
});

Deno.test("a newer format, state version or kind is ERR_BACKUP_VERSION_UNSUPPORTED", () => {
  const unsupported = "ERR_BACKUP_VERSION_UNSUPPORTED";
  rejects(edited((m) => m.version = 2), unsupported, /format version 2 is newer/);
  // A newer manifest may change any other field: the version is checked first.
  rejects(edited((m) => ((m.version = 2), (m.files = "elsewhere"))), unsupported, /version 2/);
  rejects(edited((m) => (m.state as Record<string, unknown>).version = 2), unsupported, /state/);
  rejects(edited((m) => m.kind = "incremental"), unsupported, /incremental/);
});

Deno.test("schema violations are ERR_BACKUP_MANIFEST_CORRUPT naming the field", () => {
  const corrupt = "ERR_BACKUP_MANIFEST_CORRUPT";
  rejects(enc.encode("{not json"), corrupt, /not valid JSON/);
  rejects(enc.encode("[]"), corrupt, /not a JSON object/);
  rejects(new Uint8Array([0xff, 0xfe]), corrupt, /not valid JSON/);
  const cases: [(m: Record<string, unknown>) => void, RegExp][] = [
    [(m) => m.format = "other", /"format"/],
    [(m) => m.version = 0, /"version"/],
    [(m) => m.version = "1", /"version"/],
    [(m) => delete m.cluster_id, /missing field "cluster_id"/],
    [(m) => m.extra = true, /unknown field "extra"/],
    [(m) => m.node_id = "", /"node_id" must not be empty/],
    [(m) => m.index = -1, /"index"/],
    [(m) => m.index = 1.5, /"index"/],
    [(m) => m.term = 0, /"term" must be positive/],
    [(m) => m.created_at = "yesterday", /"created_at"/],
    [(m) => m.kind = "partial", /"kind"/],
    [(m) => m.membership = { members: [] }, /"membership.members"/],
    [
      (m) =>
        (m.membership as { members: unknown[] }).members.push({
          id: "n1",
          address: "",
          voter: true,
        }),
      /"membership.members\[3\].id" "n1" appears twice/,
    ],
    [
      (m) => ((m.membership as { members: Record<string, unknown>[] }).members[1]!.voter = "yes"),
      /"membership.members\[1\].voter"/,
    ],
    [(m) => (m.state as Record<string, unknown>).keys = -3, /"state.keys"/],
    [(m) => (m.state as Record<string, unknown>).format = "x", /"state.format"/],
    [(m) => m.files = [], /"files"/],
    [(m) => (m.files as Record<string, unknown>[])[0]!.name = "other", /"files\[0\].name"/],
    [(m) => (m.files as Record<string, unknown>[])[0]!.sha256 = "AB".repeat(32), /sha256/],
    [(m) => (m.files as Record<string, unknown>[])[0]!.size = "1", /"files\[0\].size"/],
  ];
  for (const [edit, pattern] of cases) rejects(edited(edit), corrupt, pattern);
});

Deno.test("SHA256SUMS encodes in sha256sum format and parses strictly", () => {
  const sums = [{ name: "state.kvsnap", sha256: "0f".repeat(32) }, {
    name: "manifest.json",
    sha256: "a1".repeat(32),
  }];
  const bytes = encodeSha256Sums(sums);
  assert.equal(
    dec.decode(bytes),
    `${"0f".repeat(32)}  state.kvsnap\n${"a1".repeat(32)}  manifest.json\n`,
  );
  assert.deepEqual(parseSha256Sums(bytes), sums);
  const text = dec.decode(bytes);
  const bad = [
    "",
    text.slice(0, -1), // no final newline
    text.replace("\n", "\r\n"),
    text.toUpperCase(),
    text.replace("  ", " *"),
    text.replace("  ", " "),
    text + "\n",
    text + text, // duplicates
    "# comment\n" + text,
    text.replace("0f", "0g"),
  ];
  for (const variant of bad) {
    assert.throws(() => parseSha256Sums(enc.encode(variant)), (error: unknown) => {
      assert.ok(error instanceof BackupError);
      assert.equal(error.code, "ERR_BACKUP_CHECKSUM_MISMATCH");
      assert.equal(error.file, "SHA256SUMS");
      return true;
    }, JSON.stringify(variant));
  }
});
