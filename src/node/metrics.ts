/**
 * A tiny Prometheus registry (text exposition format 0.0.4) and the metrics the node exports.
 *
 * Deliberately small: counters, gauges and histograms with fixed buckets (in seconds, the
 * Prometheus base unit), each optionally labelled. No summaries, no timestamps, no exemplars.
 *
 * Invariants:
 * - output is deterministic: families sorted by name, series by their label values, histogram
 *   buckets ascending with `+Inf` last; `HELP` text and label values are escaped as the format
 *   requires (`\\`, `\n`, and `"` in label values);
 * - names are validated at registration; registering a name twice or using a label set that does
 *   not match the declared label names is a programming error (`AssertionError`);
 * - counters never decrease; a histogram's buckets are cumulative and `_count` equals the `+Inf`
 *   bucket.
 *
 * @module
 */

import { assert } from "../util/assert.ts";
import type { Role } from "../raft/types.ts";

/** Label values of one series, by label name. */
export type Labels = Readonly<Record<string, string>>;

/** The content type of {@linkcode MetricsRegistry.text}. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Options shared by every metric kind. */
export interface MetricOptions {
  /** The label names every series of this metric carries (in this order in the output). */
  readonly labelNames?: readonly string[];
}

/** Options of {@linkcode MetricsRegistry.histogram}. */
export interface HistogramOptions extends MetricOptions {
  /** Upper bounds, strictly increasing, finite (`+Inf` is implicit). */
  readonly buckets: readonly number[];
}

/** Latency buckets for disk and replication work, in seconds (0.5 ms .. 5 s). */
export const LATENCY_BUCKETS_S: readonly number[] = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
];

/** Buckets for long operations such as snapshots, in seconds (10 ms .. 5 min). */
export const LONG_BUCKETS_S: readonly number[] = [0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300];

type Kind = "counter" | "gauge" | "histogram";

interface Family {
  readonly name: string;
  readonly help: string;
  readonly kind: Kind;
  readonly labelNames: readonly string[];
  /** Lines of the family's samples, in order. */
  samples(): string[];
}

abstract class Metric<Series> implements Family {
  abstract readonly kind: Kind;
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  protected readonly series = new Map<string, { labels: string[]; data: Series }>();

  constructor(name: string, help: string, labelNames: readonly string[]) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
  }

  protected abstract create(): Series;
  abstract samples(): string[];

  /** The series for `labels`, created on first use. */
  protected at(labels: Labels): Series {
    const values = this.#values(labels);
    const key = JSON.stringify(values);
    let entry = this.series.get(key);
    if (entry === undefined) {
      entry = { labels: values, data: this.create() };
      this.series.set(key, entry);
    }
    return entry.data;
  }

  /** Forgets the series for `labels` (e.g. a peer that left the cluster). */
  remove(labels: Labels = {}): void {
    this.series.delete(JSON.stringify(this.#values(labels)));
  }

  /** The series in deterministic order (by label values). */
  protected sorted(): { labels: string[]; data: Series }[] {
    return [...this.series.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, entry]) => entry);
  }

  protected labelText(values: readonly string[], extra?: readonly [string, string]): string {
    const pairs = this.labelNames.map((name, i) => `${name}="${escapeLabel(values[i] ?? "")}"`);
    if (extra !== undefined) pairs.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
    return pairs.length === 0 ? "" : `{${pairs.join(",")}}`;
  }

  #values(labels: Labels): string[] {
    const names = Object.keys(labels);
    assert(
      names.length === this.labelNames.length && names.every((n) => this.labelNames.includes(n)),
      `metric ${this.name} takes labels [${this.labelNames.join(", ")}], got [${names.join(", ")}]`,
    );
    return this.labelNames.map((name) => labels[name] ?? "");
  }
}

/** A monotonically increasing count. */
export class Counter extends Metric<{ value: number }> {
  readonly kind = "counter";
  protected create(): { value: number } {
    return { value: 0 };
  }
  /** Adds `amount` (≥ 0, default 1). */
  inc(amount = 1, labels: Labels = {}): void {
    assert(amount >= 0 && Number.isFinite(amount), `counter ${this.name}: bad increment ${amount}`);
    this.at(labels).value += amount;
  }
  /** The current value (tests, status pages). */
  get(labels: Labels = {}): number {
    return this.at(labels).value;
  }
  samples(): string[] {
    return this.sorted().map((s) =>
      `${this.name}${this.labelText(s.labels)} ${formatValue(s.data.value)}`
    );
  }
}

/** A value that goes up and down. */
export class Gauge extends Metric<{ value: number }> {
  readonly kind = "gauge";
  protected create(): { value: number } {
    return { value: 0 };
  }
  set(value: number, labels: Labels = {}): void {
    this.at(labels).value = value;
  }
  inc(amount = 1, labels: Labels = {}): void {
    this.at(labels).value += amount;
  }
  dec(amount = 1, labels: Labels = {}): void {
    this.at(labels).value -= amount;
  }
  get(labels: Labels = {}): number {
    return this.at(labels).value;
  }
  samples(): string[] {
    return this.sorted().map((s) =>
      `${this.name}${this.labelText(s.labels)} ${formatValue(s.data.value)}`
    );
  }
}

interface HistogramSeries {
  /** Non-cumulative counts per bucket; the last slot is `+Inf`. */
  readonly counts: number[];
  sum: number;
  count: number;
}

/** Observations counted into fixed buckets. */
export class Histogram extends Metric<HistogramSeries> {
  readonly kind = "histogram";
  readonly buckets: readonly number[];

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    buckets: readonly number[],
  ) {
    super(name, help, labelNames);
    assert(buckets.length > 0, `histogram ${name}: needs at least one bucket`);
    for (let i = 0; i < buckets.length; i++) {
      const b = buckets[i]!;
      assert(Number.isFinite(b), `histogram ${name}: bucket ${b} must be finite`);
      assert(i === 0 || b > buckets[i - 1]!, `histogram ${name}: buckets must increase`);
    }
    assert(!labelNames.includes("le"), `histogram ${name}: "le" is a reserved label`);
    this.buckets = [...buckets];
  }

  protected create(): HistogramSeries {
    return { counts: new Array(this.buckets.length + 1).fill(0), sum: 0, count: 0 };
  }

  /** Records one observation (seconds for the node's latency metrics). */
  observe(value: number, labels: Labels = {}): void {
    const series = this.at(labels);
    let i = this.buckets.findIndex((bound) => value <= bound);
    if (i === -1) i = this.buckets.length;
    series.counts[i] = (series.counts[i] ?? 0) + 1;
    series.sum += value;
    series.count += 1;
  }

  /** Starts a timer; calling the result observes the elapsed seconds. */
  startTimer(now: () => number, labels: Labels = {}): () => number {
    const start = now();
    return () => {
      const seconds = (now() - start) / 1000;
      this.observe(seconds, labels);
      return seconds;
    };
  }

  samples(): string[] {
    const lines: string[] = [];
    for (const s of this.sorted()) {
      let cumulative = 0;
      for (let i = 0; i <= this.buckets.length; i++) {
        cumulative += s.data.counts[i] ?? 0;
        const le = i < this.buckets.length ? formatValue(this.buckets[i]!) : "+Inf";
        lines.push(`${this.name}_bucket${this.labelText(s.labels, ["le", le])} ${cumulative}`);
      }
      lines.push(`${this.name}_sum${this.labelText(s.labels)} ${formatValue(s.data.sum)}`);
      lines.push(`${this.name}_count${this.labelText(s.labels)} ${s.data.count}`);
    }
    return lines;
  }
}

/** A set of metric families and their text exposition. */
export class MetricsRegistry {
  readonly #families = new Map<string, Family>();

  counter(name: string, help: string, options: MetricOptions = {}): Counter {
    return this.#register(new Counter(name, help, this.#labels(name, options)));
  }

  gauge(name: string, help: string, options: MetricOptions = {}): Gauge {
    return this.#register(new Gauge(name, help, this.#labels(name, options)));
  }

  histogram(name: string, help: string, options: HistogramOptions): Histogram {
    return this.#register(new Histogram(name, help, this.#labels(name, options), options.buckets));
  }

  /** The Prometheus text format 0.0.4 of every family, sorted by name; ends with a newline. */
  text(): string {
    const names = [...this.#families.keys()].sort();
    let out = "";
    for (const name of names) {
      const family = this.#families.get(name)!;
      out += `# HELP ${name} ${escapeHelp(family.help)}\n`;
      out += `# TYPE ${name} ${family.kind}\n`;
      for (const line of family.samples()) out += `${line}\n`;
    }
    return out;
  }

  #labels(name: string, options: MetricOptions): readonly string[] {
    assert(METRIC_NAME.test(name), `invalid metric name ${JSON.stringify(name)}`);
    const labelNames = options.labelNames ?? [];
    for (const label of labelNames) {
      assert(
        LABEL_NAME.test(label) && !label.startsWith("__"),
        `metric ${name}: invalid label name ${JSON.stringify(label)}`,
      );
    }
    assert(new Set(labelNames).size === labelNames.length, `metric ${name}: duplicate label names`);
    return [...labelNames];
  }

  #register<T extends Family>(family: T): T {
    assert(!this.#families.has(family.name), `metric ${family.name} registered twice`);
    this.#families.set(family.name, family);
    return family;
  }
}

/** Number formatting of the text format: `+Inf`, `-Inf`, `NaN`, else shortest round-trip. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function escapeLabel(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

/** The roles in `edgeraft_role`'s `role` label, in output order. */
export const ROLES: readonly Role[] = ["candidate", "follower", "leader", "pre_candidate"];

/** Typed handles to the node's metrics (see {@linkcode createNodeMetrics}). */
export interface NodeMetrics {
  readonly registry: MetricsRegistry;
  /** Sets `edgeraft_role{role=...}` to 1 for `role` and 0 for every other role. */
  setRole(role: Role): void;
  readonly term: Gauge;
  readonly commitIndex: Gauge;
  readonly appliedIndex: Gauge;
  /** Labelled by `result`: `committed`, `rejected` (not leader, too large, overloaded), `failed`. */
  readonly proposals: Counter;
  readonly appendSeconds: Histogram;
  readonly fsyncSeconds: Histogram;
  readonly snapshots: Counter;
  readonly snapshotSeconds: Histogram;
  /** `edgeraft_peer_reachable{peer}`: 1 when the last message to the peer was delivered. */
  readonly peerReachable: Gauge;
}

/** The outcomes counted by `edgeraft_proposals_total`. */
export type ProposalResult = "committed" | "rejected" | "failed";

/** Registers the node's metrics on `registry` and returns typed handles to them. */
export function createNodeMetrics(registry: MetricsRegistry): NodeMetrics {
  const role = registry.gauge(
    "edgeraft_role",
    "The role this node plays in its current term (1 for the current role, 0 otherwise).",
    { labelNames: ["role"] },
  );
  const metrics: NodeMetrics = {
    registry,
    setRole(current: Role): void {
      for (const r of ROLES) role.set(r === current ? 1 : 0, { role: r });
    },
    term: registry.gauge("edgeraft_term", "The node's current Raft term."),
    commitIndex: registry.gauge(
      "edgeraft_commit_index",
      "The highest log index known to be committed.",
    ),
    appliedIndex: registry.gauge(
      "edgeraft_applied_index",
      "The highest log index applied to the state machine.",
    ),
    proposals: registry.counter(
      "edgeraft_proposals_total",
      "Client proposals by result (committed, rejected, failed).",
      { labelNames: ["result"] },
    ),
    appendSeconds: registry.histogram(
      "edgeraft_append_seconds",
      "Time to append a batch of entries to the local log, including fsync.",
      { buckets: LATENCY_BUCKETS_S },
    ),
    fsyncSeconds: registry.histogram(
      "edgeraft_fsync_seconds",
      "Time spent in fsync of log segments and hard state.",
      { buckets: LATENCY_BUCKETS_S },
    ),
    snapshots: registry.counter("edgeraft_snapshots_total", "Snapshots taken by this node."),
    snapshotSeconds: registry.histogram(
      "edgeraft_snapshot_seconds",
      "Time to write a snapshot, from start to published file.",
      { buckets: LONG_BUCKETS_S },
    ),
    peerReachable: registry.gauge(
      "edgeraft_peer_reachable",
      "1 when the last message to the peer was delivered, else 0.",
      { labelNames: ["peer"] },
    ),
  };
  metrics.setRole("follower");
  return metrics;
}
