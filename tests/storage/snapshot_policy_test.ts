import assert from "node:assert/strict";
import { snapshotDue, SnapshotPolicy } from "../../src/storage/snapshot_policy.ts";

const base = { appliedIndex: 100, lastSnapshotIndex: 90, elapsedMs: 0, closing: false };

Deno.test("snapshot policy: entries, interval and close triggers", () => {
  const p = new SnapshotPolicy({ snapshotEntries: 10, snapshotIntervalS: 60 });
  assert.equal(p.reason(base), "entries");
  assert.equal(p.reason({ ...base, appliedIndex: 95 }), null);
  assert.equal(p.reason({ ...base, appliedIndex: 95, elapsedMs: 60_000 }), "interval");
  assert.equal(p.reason({ ...base, appliedIndex: 91, closing: true }), "close");
  assert.ok(p.shouldSnapshot(base));
});

Deno.test("snapshot policy: nothing applied since the last snapshot means no snapshot", () => {
  const p = new SnapshotPolicy();
  assert.equal(p.reason({ ...base, appliedIndex: 90, elapsedMs: 1e9, closing: true }), null);
});

Deno.test("snapshot policy: zero turns a trigger off and snapshotOnClose false skips close", () => {
  const config = { snapshotEntries: 0, snapshotIntervalS: 0, snapshotOnClose: false };
  assert.equal(snapshotDue(config, { ...base, appliedIndex: 1e6, elapsedMs: 1e9 }), null);
  assert.equal(snapshotDue(config, { ...base, closing: true }), null);
  assert.equal(new SnapshotPolicy().config.snapshotOnClose, true);
});
