import assert from "node:assert/strict";
import { AssertionError } from "../../src/util/assert.ts";
import { createNodeMetrics, formatValue, MetricsRegistry } from "../../src/node/metrics.ts";

Deno.test("counters, gauges and histograms render in the 0.0.4 text format, sorted", () => {
  const registry = new MetricsRegistry();
  const requests = registry.counter("zz_requests_total", "Requests served.", {
    labelNames: ["code", "method"],
  });
  const temperature = registry.gauge("aa_temperature_celsius", "Current temperature.");
  const latency = registry.histogram("mm_latency_seconds", "Request latency.", {
    buckets: [0.1, 0.5, 1],
    labelNames: ["route"],
  });
  requests.inc(1, { method: "GET", code: "200" });
  requests.inc(2, { method: "PUT", code: "200" });
  requests.inc(1, { method: "GET", code: "404" });
  requests.inc(1, { method: "GET", code: "200" });
  temperature.set(-3.5);
  latency.observe(0.05, { route: "kv" });
  latency.observe(0.1, { route: "kv" });
  latency.observe(0.7, { route: "kv" });
  latency.observe(3, { route: "kv" });
  latency.observe(0.2, { route: "cluster" });

  assert.equal(
    registry.text(),
    [
      "# HELP aa_temperature_celsius Current temperature.",
      "# TYPE aa_temperature_celsius gauge",
      "aa_temperature_celsius -3.5",
      "# HELP mm_latency_seconds Request latency.",
      "# TYPE mm_latency_seconds histogram",
      'mm_latency_seconds_bucket{route="cluster",le="0.1"} 0',
      'mm_latency_seconds_bucket{route="cluster",le="0.5"} 1',
      'mm_latency_seconds_bucket{route="cluster",le="1"} 1',
      'mm_latency_seconds_bucket{route="cluster",le="+Inf"} 1',
      'mm_latency_seconds_sum{route="cluster"} 0.2',
      'mm_latency_seconds_count{route="cluster"} 1',
      'mm_latency_seconds_bucket{route="kv",le="0.1"} 2',
      'mm_latency_seconds_bucket{route="kv",le="0.5"} 2',
      'mm_latency_seconds_bucket{route="kv",le="1"} 3',
      'mm_latency_seconds_bucket{route="kv",le="+Inf"} 4',
      'mm_latency_seconds_sum{route="kv"} 3.85',
      'mm_latency_seconds_count{route="kv"} 4',
      "# HELP zz_requests_total Requests served.",
      "# TYPE zz_requests_total counter",
      'zz_requests_total{code="200",method="GET"} 2',
      'zz_requests_total{code="200",method="PUT"} 2',
      'zz_requests_total{code="404",method="GET"} 1',
      "",
    ].join("\n"),
  );
});

Deno.test("help text and label values are escaped", () => {
  const registry = new MetricsRegistry();
  const gauge = registry.gauge("g", 'Help with \\ backslash\nand "quotes".', {
    labelNames: ["path"],
  });
  gauge.set(1, { path: 'C:\\dir\n"x"' });
  assert.equal(
    registry.text(),
    '# HELP g Help with \\\\ backslash\\nand "quotes".\n' +
      "# TYPE g gauge\n" +
      'g{path="C:\\\\dir\\n\\"x\\""} 1\n',
  );
});

Deno.test("special values are written as +Inf, -Inf and NaN", () => {
  assert.equal(formatValue(Infinity), "+Inf");
  assert.equal(formatValue(-Infinity), "-Inf");
  assert.equal(formatValue(NaN), "NaN");
  assert.equal(formatValue(1e-7), "1e-7");
  assert.equal(formatValue(42), "42");
});

Deno.test("a registry without metrics renders empty text", () => {
  assert.equal(new MetricsRegistry().text(), "");
});

Deno.test("misuse is a programming error", () => {
  const registry = new MetricsRegistry();
  const counter = registry.counter("c_total", "C.", { labelNames: ["a"] });
  assert.throws(() => registry.gauge("c_total", "again"), AssertionError);
  assert.throws(() => registry.gauge("bad-name", "x"), AssertionError);
  assert.throws(() => registry.gauge("g", "x", { labelNames: ["__reserved"] }), AssertionError);
  assert.throws(() => registry.histogram("h", "x", { buckets: [1, 1] }), AssertionError);
  assert.throws(
    () => registry.histogram("h2", "x", { buckets: [1], labelNames: ["le"] }),
    AssertionError,
  );
  assert.throws(() => counter.inc(-1, { a: "x" }), AssertionError);
  assert.throws(() => counter.inc(1, { b: "x" }), AssertionError);
  assert.throws(() => counter.inc(1), AssertionError);
});

Deno.test("a removed series disappears from the output", () => {
  const registry = new MetricsRegistry();
  const gauge = registry.gauge("peer_up", "Up.", { labelNames: ["peer"] });
  gauge.set(1, { peer: "a" });
  gauge.set(0, { peer: "b" });
  gauge.remove({ peer: "a" });
  assert.equal(registry.text(), '# HELP peer_up Up.\n# TYPE peer_up gauge\npeer_up{peer="b"} 0\n');
});

Deno.test("a histogram timer observes elapsed seconds from the injected clock", () => {
  const registry = new MetricsRegistry();
  const histogram = registry.histogram("t_seconds", "T.", { buckets: [0.5] });
  let nowMs = 1_000;
  const stop = histogram.startTimer(() => nowMs);
  nowMs += 250;
  assert.equal(stop(), 0.25);
  assert.match(
    registry.text(),
    /t_seconds_bucket\{le="0\.5"\} 1\nt_seconds_bucket\{le="\+Inf"\} 1\nt_seconds_sum 0\.25\nt_seconds_count 1\n/,
  );
});

Deno.test("the node's metrics are registered with their names, types and labels", () => {
  const metrics = createNodeMetrics(new MetricsRegistry());
  metrics.setRole("leader");
  metrics.term.set(7);
  metrics.commitIndex.set(120);
  metrics.appliedIndex.set(118);
  metrics.proposals.inc(3, { result: "committed" });
  metrics.proposals.inc(1, { result: "rejected" });
  metrics.appendSeconds.observe(0.003);
  metrics.fsyncSeconds.observe(0.002);
  metrics.snapshots.inc();
  metrics.snapshotSeconds.observe(1.5);
  metrics.peerReachable.set(1, { peer: "n2" });
  metrics.peerReachable.set(0, { peer: "n3" });
  const text = metrics.registry.text();

  const types = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => `${m[1]} ${m[2]}`);
  assert.deepEqual(types, [
    "edgeraft_append_seconds histogram",
    "edgeraft_applied_index gauge",
    "edgeraft_commit_index gauge",
    "edgeraft_fsync_seconds histogram",
    "edgeraft_peer_reachable gauge",
    "edgeraft_proposals_total counter",
    "edgeraft_role gauge",
    "edgeraft_snapshot_seconds histogram",
    "edgeraft_snapshots_total counter",
    "edgeraft_term gauge",
  ]);
  for (
    const line of [
      'edgeraft_role{role="candidate"} 0',
      'edgeraft_role{role="follower"} 0',
      'edgeraft_role{role="leader"} 1',
      'edgeraft_role{role="pre_candidate"} 0',
      "edgeraft_term 7",
      "edgeraft_commit_index 120",
      "edgeraft_applied_index 118",
      'edgeraft_proposals_total{result="committed"} 3',
      'edgeraft_proposals_total{result="rejected"} 1',
      'edgeraft_append_seconds_bucket{le="0.0025"} 0',
      'edgeraft_append_seconds_bucket{le="0.005"} 1',
      "edgeraft_append_seconds_count 1",
      "edgeraft_fsync_seconds_sum 0.002",
      "edgeraft_snapshots_total 1",
      'edgeraft_snapshot_seconds_bucket{le="5"} 1',
      'edgeraft_peer_reachable{peer="n2"} 1',
      'edgeraft_peer_reachable{peer="n3"} 0',
    ]
  ) {
    assert.ok(text.split("\n").includes(line), `missing line: ${line}`);
  }
  metrics.setRole("follower");
  assert.ok(
    metrics.registry.text().includes(
      'edgeraft_role{role="follower"} 1\nedgeraft_role{role="leader"} 0',
    ),
  );
});
