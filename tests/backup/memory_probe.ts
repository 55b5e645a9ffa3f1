/**
 * Memory probe for tests/backup/memory_test.ts, run in a child process with
 * `--v8-flags=--expose-gc`: builds a state of `<MB>` megabytes, streams its archive (plain,
 * then gzip) straight into the verifier and samples live memory (heap + external buffers,
 * right after a full GC) every 4 MB of state streamed and every 20 ms. Prints JSON `{ plain, gzip }`:
 * the peak growth in bytes over the baseline taken after the state was built.
 *
 * Values are `half` (half pseudo-random, half zeros: gzip halves them, so the compressed
 * archive is sampled as often as the plain one) or `zeros` (gzip shrinks them a thousandfold:
 * the verifier's gunzip must not inflate a small input into memory). With `buffer`, the
 * archive is collected into memory before it is verified: the probe's own check that it sees
 * buffering.
 *
 * Usage: deno run --v8-flags=--expose-gc tests/backup/memory_probe.ts MB half|zeros
 * [stream|buffer] [trace]
 *
 * @module
 */

import { verifyArchive } from "../../src/backup/archive_verifier.ts";
import { writeBackupArchive } from "../../src/backup/archive_writer.ts";
import { encodeKvCommand } from "../../src/kv/kv_command.ts";
import { KvStateMachine } from "../../src/kv/kv_state_machine.ts";
import { collect, MEMBERSHIP, streamOf } from "./helpers.ts";

const SAMPLE_EVERY_BYTES = 4 * 1024 * 1024;

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("memory_probe: run with --v8-flags=--expose-gc");

function live(): number {
  gc!();
  const m = Deno.memoryUsage();
  return m.heapUsed + m.external;
}

const [mbArg, kind = "half", mode = "stream", traceArg] = Deno.args;
const mb = Number(mbArg);
const buffer = mode === "buffer";
const trace = traceArg === "trace";

const kv = new KvStateMachine();
const value = new Uint8Array(8192);
let x = 0x9e3779b9;
for (let i = 1; i * value.length <= mb * 1e6; i++) {
  if (kind === "half") {
    for (let j = 0; j < value.length / 2; j++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      value[j] = x & 0xff;
    }
  } else {
    value[0] = i & 0xff;
  }
  kv.apply(i, encodeKvCommand({ op: "put", key: `k/${i}`, value }));
}

const result: Record<string, number> = {};
for (const gzip of [false, true]) {
  const label = gzip ? "gzip" : "plain";
  const baseline = live();
  let peak = baseline;
  const sample = (): void => {
    const now = live();
    if (trace) console.error(`${label} ${((now - baseline) / 1e6).toFixed(1)} MB`);
    peak = Math.max(peak, now);
  };
  const timer = setInterval(sample, 20);
  let since = 0;
  const probe = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      since += chunk.length;
      if (since >= SAMPLE_EVERY_BYTES) {
        since = 0;
        sample();
      }
      controller.enqueue(chunk);
    },
  });
  try {
    // Sampled on the state's side: it flows at the pace of the whole pipeline (every stage
    // pulls), whatever the compression ratio.
    const snapshot = kv.snapshot();
    const archive = writeBackupArchive({
      clusterId: "probe",
      nodeId: "n1",
      index: kv.appliedIndex,
      term: 1,
      membership: MEMBERSHIP,
      state: { ...snapshot, stream: snapshot.stream.pipeThrough(probe) },
      gzip,
    });
    let input = archive.stream;
    if (buffer) {
      const bytes = await collect(input);
      sample();
      input = streamOf(bytes);
    }
    const report = await verifyArchive(input);
    if (!report.ok) throw new Error(`memory_probe: unsound: ${report.error?.message}`);
    // zlib's native buffers are released a turn of the event loop after its stream ends.
    await new Promise((resolve) => setTimeout(resolve, 50));
    sample();
  } finally {
    clearInterval(timer);
  }
  result[label] = peak - baseline;
}
console.log(JSON.stringify(result));
