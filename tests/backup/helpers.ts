/**
 * Shared helpers of the backup tests: a filled state machine, archives as bytes, a plain
 * member map of a tar (parsed here independently of the reader under test) and re-packing.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { writeBackupArchive } from "../../src/backup/archive_writer.ts";
import { tarStream } from "../../src/backup/tar_writer.ts";
import { encodeKvCommand } from "../../src/kv/kv_command.ts";
import { KvStateMachine } from "../../src/kv/kv_state_machine.ts";

export const enc = new TextEncoder();
export const dec = new TextDecoder();

export const CREATED_AT = "2025-03-04T05:06:07Z";
export const MEMBERSHIP = {
  members: [
    { id: "n1", address: "http://127.0.0.1:7071", voter: true },
    { id: "n2", address: "http://127.0.0.1:7072", voter: true },
    { id: "n3", address: "http://127.0.0.1:7073", voter: false },
  ],
};

/** `count` keys over three prefixes ("user/", "cfg:", none) with values of varied sizes. */
export function filledKv(count: number): KvStateMachine {
  const kv = new KvStateMachine();
  for (let i = 1; i <= count; i++) {
    const key = i % 3 === 0 ? `cfg:${i}` : i % 3 === 1 ? `user/${i}` : `plain${i}`;
    const value = new Uint8Array((i * 37) % 700).fill(i & 0xff);
    kv.apply(i, encodeKvCommand({ op: "put", key, value }));
  }
  // A no-op entry after the last write: the applied index is past every revision.
  kv.markApplied(count + 1);
  return kv;
}

export async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let n = 0;
  for await (const chunk of stream) {
    chunks.push(chunk);
    n += chunk.length;
  }
  const out = new Uint8Array(n);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

/** The archive of `kv` as bytes. */
export async function archiveBytes(kv: KvStateMachine, gzip = false): Promise<Uint8Array> {
  const archive = writeBackupArchive({
    clusterId: "test-cluster",
    nodeId: "n1",
    index: kv.appliedIndex,
    term: 7,
    membership: MEMBERSHIP,
    state: kv.snapshot(),
    createdAt: CREATED_AT,
    gzip,
  });
  const bytes = await collect(archive.stream);
  await archive.done;
  return bytes;
}

/** A stream of `bytes` in pieces of `piece` bytes (fresh copies). */
export function streamOf(bytes: Uint8Array, piece = 65536): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      const n = typeof piece === "number" ? piece : 1;
      controller.enqueue(bytes.slice(offset, offset + n));
      offset += n;
    },
  });
}

/** Where a member sits in a plain tar. */
export interface MemberSpan {
  readonly name: string;
  readonly headerOffset: number;
  readonly dataOffset: number;
  readonly size: number;
}

/** The members of a plain ustar archive (stops at the first zero block). */
export function memberSpans(tar: Uint8Array): MemberSpan[] {
  const spans: MemberSpan[] = [];
  let offset = 0;
  while (offset + 512 <= tar.length && tar.subarray(offset, offset + 512).some((b) => b !== 0)) {
    const header = tar.subarray(offset, offset + 512);
    const nameEnd = header.indexOf(0);
    const name = dec.decode(header.subarray(0, nameEnd < 0 || nameEnd > 100 ? 100 : nameEnd));
    const size = parseInt(dec.decode(header.subarray(124, 135)), 8);
    spans.push({ name, headerOffset: offset, dataOffset: offset + 512, size });
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return spans;
}

/** The members of a plain archive as name → bytes, in order. */
export function membersOf(tar: Uint8Array): { name: string; body: Uint8Array }[] {
  return memberSpans(tar).map((s) => ({
    name: s.name,
    body: tar.slice(s.dataOffset, s.dataOffset + s.size),
  }));
}

/** A tar of the given members (mtime fixed). */
export function repack(members: { name: string; body: Uint8Array }[]): Promise<Uint8Array> {
  return collect(tarStream(members.map((m) => ({
    name: m.name,
    size: m.body.length,
    mtime: 1_700_000_000,
    body: m.body,
  }))));
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** SHA256SUMS for the given state and manifest bytes. */
export function sumsFor(state: Uint8Array, manifest: Uint8Array): Uint8Array {
  return enc.encode(`${sha256(state)}  state.kvsnap\n${sha256(manifest)}  manifest.json\n`);
}

/**
 * The archive with its manifest replaced by `edit(manifest object)` (pretty-printed) or by
 * raw bytes, and SHA256SUMS recomputed so only the manifest's own checks can fail.
 */
export function withManifest(
  tar: Uint8Array,
  edit: ((manifest: Record<string, unknown>) => void) | Uint8Array,
): Promise<Uint8Array> {
  const [state, manifest] = membersOf(tar);
  let bytes: Uint8Array;
  if (edit instanceof Uint8Array) {
    bytes = edit;
  } else {
    const object = JSON.parse(dec.decode(manifest!.body));
    edit(object);
    bytes = enc.encode(JSON.stringify(object, null, 2) + "\n");
  }
  return repack([
    state!,
    { name: "manifest.json", body: bytes },
    { name: "SHA256SUMS", body: sumsFor(state!.body, bytes) },
  ]);
}

/** A copy of `bytes` with the byte at `offset` XOR-ed with `mask`. */
export function flipped(bytes: Uint8Array, offset: number, mask = 0x01): Uint8Array {
  const copy = bytes.slice();
  copy[offset]! ^= mask;
  return copy;
}

/** Runs a real command; returns its exit code and output. */
export async function run(
  cmd: string,
  args: string[],
  cwd?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
