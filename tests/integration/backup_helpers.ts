/**
 * Helpers of the backup integration tests (`backup_*_test.ts`): loading large values, taking a
 * backup with real `curl`, reading an extracted `state.kvsnap` back key by key, and locating the
 * members of a ustar archive so tests can damage exactly one of them.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readSnapshot } from "../../src/kv/snapshot_decoder.ts";
import { pool, put, runTool } from "./cluster_harness.ts";

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** `n` random bytes (incompressible, so gzip cannot hide a size). */
export function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  for (let at = 0; at < n; at += 65536) {
    crypto.getRandomValues(out.subarray(at, Math.min(n, at + 65536)));
  }
  return out;
}

/** One key as a restore or an archive must hold it. */
export interface Expected {
  readonly sha256: string;
  readonly revision: number;
}

/**
 * PUTs `count` random values of `bytes` each as `<prefix>/<i>` through `url`, `width` at a
 * time; returns key → value hash and revision. Every PUT must answer 200.
 */
export async function loadValues(
  url: string,
  options: { prefix: string; count: number; bytes: number; width?: number },
): Promise<Map<string, Expected>> {
  const out = new Map<string, Expected>();
  await pool(options.count, options.width ?? 8, async (i) => {
    const key = `${options.prefix}/${String(i).padStart(6, "0")}`;
    const value = randomBytes(options.bytes);
    const answer = await put(url, key, value, { timeoutMs: 30_000 });
    assert.equal(answer.status, 200, `PUT ${key}: ${JSON.stringify(answer.body)}`);
    out.set(key, { sha256: sha256Hex(value), revision: answer.body.revision as number });
  });
  return out;
}

/** One key read back from a KV snapshot. */
export interface SnapshotEntry {
  readonly revision: number;
  readonly sha256: string;
  readonly bytes: number;
  /** The value as text when it is at most 256 bytes (small values only). */
  readonly text: string | null;
}

/**
 * Decodes a KV snapshot file (an extracted `state.kvsnap`) with the project's decoder: every
 * key with its revision and its value's hash. Throws on any damage.
 */
export async function readStateFile(
  path: string,
): Promise<{ appliedIndex: number; keys: Map<string, SnapshotEntry> }> {
  const keys = new Map<string, SnapshotEntry>();
  const decoder = new TextDecoder();
  const file = await Deno.open(path);
  const summary = await readSnapshot(file.readable, {
    record(key, _keyBytes, revision, value) {
      keys.set(key, {
        revision,
        sha256: sha256Hex(value),
        bytes: value.length,
        text: value.length <= 256 ? decoder.decode(value) : null,
      });
    },
  });
  return { appliedIndex: summary.appliedIndex, keys };
}

/** A member of a ustar archive: where its header and body are. */
export interface TarMember {
  readonly name: string;
  readonly headerOffset: number;
  readonly bodyOffset: number;
  readonly size: number;
}

/** The members of an uncompressed ustar archive (names and sizes from the headers). */
export function tarMembers(bytes: Uint8Array): TarMember[] {
  const out: TarMember[] = [];
  const decoder = new TextDecoder();
  let at = 0;
  while (at + 512 <= bytes.length && bytes[at] !== 0) {
    const field = (from: number, length: number) =>
      decoder.decode(bytes.subarray(at + from, at + from + length)).replace(/\0.*$/s, "");
    const name = field(0, 100);
    const size = parseInt(field(124, 12).trim(), 8);
    out.push({ name, headerOffset: at, bodyOffset: at + 512, size });
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

/** The member called `name` (asserting it is there). */
export function member(members: readonly TarMember[], name: string): TarMember {
  const found = members.find((m) => m.name === name);
  assert.ok(found !== undefined, `no member ${name} in ${members.map((m) => m.name)}`);
  return found;
}

/** A real `curl` download of `url` to `output`, response headers into `headersFile`. */
export async function curlDownload(
  url: string,
  output: string,
  options: { headersFile: string; extra?: readonly string[]; timeoutMs?: number },
): Promise<{ status: number; headers: Headers; elapsedMs: number }> {
  const started = performance.now();
  const result = await runTool("curl", [
    "-sS",
    "--max-time",
    String(Math.ceil((options.timeoutMs ?? 60_000) / 1000)),
    "-D",
    options.headersFile,
    "-o",
    output,
    ...(options.extra ?? []),
    url,
  ], { timeoutMs: (options.timeoutMs ?? 60_000) + 5000 });
  const elapsedMs = performance.now() - started;
  assert.equal(result.code, 0, `curl ${url}: ${result.stderr}`);
  return { ...parseHeaderFile(await Deno.readTextFile(options.headersFile)), elapsedMs };
}

/** The status and headers of the last response in a `curl -D` file. */
export function parseHeaderFile(text: string): { status: number; headers: Headers } {
  const blocks = text.split(/\r\n\r\n/).filter((b) => b.trim() !== "");
  const last = blocks[blocks.length - 1] ?? "";
  const [statusLine, ...lines] = last.split("\r\n");
  const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(statusLine ?? "")?.[1]);
  const headers = new Headers();
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return { status, headers };
}

/** `tar -x[z]f archive` into `dir`, then `sha256sum -c SHA256SUMS` there; asserts both pass. */
export async function extractAndCheck(
  archive: string,
  dir: string,
  options: { gzip?: boolean } = {},
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const tar = await runTool("tar", [options.gzip ? "-xzf" : "-xf", archive, "-C", dir]);
  assert.equal(tar.code, 0, `tar: ${tar.stderr}`);
  const sums = await runTool("sha256sum", ["-c", "SHA256SUMS"], { cwd: dir });
  assert.equal(sums.code, 0, `sha256sum -c: ${sums.stdout}${sums.stderr}`);
  assert.match(sums.stdout, /^state\.kvsnap: OK$/m);
  assert.match(sums.stdout, /^manifest\.json: OK$/m);
}

/** The manifest fields the tests look at. */
export interface ManifestJson {
  format: string;
  version: number;
  cluster_id: string;
  node_id: string;
  index: number;
  term: number;
  membership: { members: { id: string; address: string; voter: boolean }[] };
  created_at: string;
  state: { keys: number; value_bytes: number };
  files: { name: string; size: number; sha256: string }[];
  [field: string]: unknown;
}

export async function readManifest(dir: string): Promise<ManifestJson> {
  return JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`)) as ManifestJson;
}

/** True when `path` exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Every file under `dir` (relative path → SHA-256 of its bytes), to show a tree unchanged. */
export async function treeDigest(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (path: string, rel: string) => {
    for await (const entry of Deno.readDir(path)) {
      const full = `${path}/${entry.name}`;
      const name = rel === "" ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory) await walk(full, name);
      else out.set(name, sha256Hex(await Deno.readFile(full)));
    }
  };
  await walk(dir, "");
  return out;
}
