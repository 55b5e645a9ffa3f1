import assert from "node:assert/strict";
import { dec } from "./helpers.ts";

// DESIGN.md: "a backup's memory use does not grow with the data size". The probe streams an
// archive of a 10 MB and of a 100 MB state into the verifier in a child process (it needs
// --expose-gc to sample live memory) and reports the peak growth of live memory (heap and
// external buffers, measured right after a full GC) over the state itself.

const MB = 1e6;

async function probe(
  mb: number,
  values: "half" | "zeros",
  mode: "stream" | "buffer",
): Promise<{ plain: number; gzip: number }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-check",
      "--v8-flags=--expose-gc",
      new URL("./memory_probe.ts", import.meta.url).pathname,
      String(mb),
      values,
      mode,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, dec.decode(out.stderr));
  return JSON.parse(dec.decode(out.stdout));
}

Deno.test("writing and verifying an archive 10× larger does not need more memory", async () => {
  const small = await probe(10, "half", "stream");
  const large = await probe(100, "half", "stream");
  const detail = `growth 10 MB: ${JSON.stringify(small)}, 100 MB: ${JSON.stringify(large)}`;
  for (const kind of ["plain", "gzip"] as const) {
    assert.ok(large[kind] < 2 * small[kind] + 16 * MB, detail);
    // Far below the 100 MB a buffered state would cost.
    assert.ok(large[kind] < 40 * MB, detail);
  }
});

Deno.test("verifying a gzip archive that compresses 1000:1 does not inflate it in memory", async () => {
  // 100 MB of zero-filled values compress to about 100 KB: one 64 KiB input chunk would
  // expand to tens of MB if the gunzip output ignored backpressure.
  const zeros = await probe(100, "zeros", "stream");
  assert.ok(zeros.gzip < 40 * MB, JSON.stringify(zeros));
  assert.ok(zeros.plain < 40 * MB, JSON.stringify(zeros));
});

Deno.test("the memory probe sees an archive that is buffered", async () => {
  // The control: the same measurement with the archive collected in memory first must show
  // the archive's size, or the test above could not fail.
  const buffered = await probe(100, "half", "buffer");
  assert.ok(buffered.plain > 90 * MB, JSON.stringify(buffered));
});
