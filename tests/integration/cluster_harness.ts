/**
 * Starts real `edgeraft serve` processes on free loopback ports for integration tests, and
 * ends every one of them. Each node's stderr (JSON log lines) is kept so a failing test can
 * print it, and so tests can look for a log message ("snapshot received").
 *
 * Rules the tests rely on (the test runner's sanitizers are on):
 * - every spawned process is ended and awaited (`destroy()` SIGKILLs what still runs);
 * - every response body is read or cancelled, every timer cleared;
 * - every request has a deadline (`AbortSignal.timeout`), so a hung node fails a test instead
 *   of hanging the suite.
 *
 * Segments are 2 MiB here (the node's default is 64 MiB, preallocated with zeros: 192 MiB of
 * writes per cluster start would dominate the suite's run time on a shared disk). Tests that
 * need other settings pass `extraArgs` (`serve` refuses a flag given twice, so an
 * `--segment-bytes` there replaces the harness's).
 *
 * @module
 */

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** A free TCP port on 127.0.0.1 (bound and released; the kernel will not hand it out again
 * at once). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

export interface NodeSpec {
  readonly id: string;
  readonly port: number;
  readonly dataDir: string;
  readonly url: string;
}

/** One parsed JSON log line of a node. */
export interface LogLine {
  readonly level?: string;
  readonly msg?: string;
  readonly [field: string]: unknown;
}

/** One running `edgeraft serve` process. */
export class NodeProcess {
  readonly spec: NodeSpec;
  #child: Deno.ChildProcess | null = null;
  #logs: string[] = [];
  #logPump: Promise<void> | null = null;
  #exit: Promise<Deno.CommandStatus> | null = null;
  /** Set as soon as the current process has exited (before anyone awaited it). */
  #exitedEarly: Deno.CommandStatus | null = null;
  #starts = 0;

  constructor(spec: NodeSpec) {
    this.spec = spec;
  }

  get id(): string {
    return this.spec.id;
  }

  get url(): string {
    return this.spec.url;
  }

  /** The operating system's process id of the current run, or null when not running. */
  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  /** True from `start()` until the exit was awaited (`stop`, `kill9`, `exited`). */
  get running(): boolean {
    return this.#child !== null;
  }

  /** True when the process was started and has exited by itself, not yet awaited. */
  get died(): boolean {
    return this.#child !== null && this.#exitedEarly !== null;
  }

  /** Every stderr line of every run of this node (the last 20 000), oldest first. */
  get logs(): readonly string[] {
    return this.#logs;
  }

  /** The JSON log lines (plain lines, e.g. `edgeraft storage: ...`, are skipped). */
  jsonLogs(): LogLine[] {
    const out: LogLine[] = [];
    for (const line of this.#logs) {
      if (!line.startsWith("{")) continue;
      try {
        out.push(JSON.parse(line) as LogLine);
      } catch {
        // a line cut by a kill -9
      }
    }
    return out;
  }

  /** True when some log line of this node (any run) has message `msg`. */
  logged(msg: string): boolean {
    return this.jsonLogs().some((l) => l.msg === msg);
  }

  /** Waits (a little: stderr is read asynchronously) until a line with message `msg` shows
   * up; true when it did. */
  async waitLogged(msg: string, timeoutMs = 3000): Promise<boolean> {
    return await waitFor(() => this.logged(msg), timeoutMs, 20);
  }

  /** Starts the process with `args` after `serve`. */
  start(args: readonly string[], env: Record<string, string> = {}): void {
    if (this.#child !== null) throw new Error(`${this.spec.id} already running`);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", MAIN, "serve", ...args],
      stdout: "null",
      stderr: "piped",
      stdin: "null",
      env: { NO_COLOR: "1", ...env },
    }).spawn();
    this.#child = child;
    this.#exitedEarly = null;
    this.#exit = child.status.then((status) => (this.#exitedEarly = status));
    this.#starts++;
    this.#logs.push(`[harness] start #${this.#starts} of ${this.spec.id}`);
    this.#logPump = (async () => {
      const decoder = new TextDecoderStream();
      let pending = "";
      for await (const text of child.stderr.pipeThrough(decoder)) {
        pending += text;
        const lines = pending.split("\n");
        pending = lines.pop() ?? "";
        for (const line of lines) {
          this.#logs.push(line);
          if (this.#logs.length > 20_000) this.#logs.shift();
        }
      }
      if (pending !== "") this.#logs.push(pending);
    })();
  }

  /** Sends `signal` and waits for the exit status. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    const child = this.#child;
    if (child === null) throw new Error(`${this.spec.id} is not running`);
    try {
      child.kill(signal);
    } catch {
      // already exited
    }
    return await this.exited();
  }

  /** Waits for the process to exit by itself (bad configuration, crash). */
  async exited(): Promise<Deno.CommandStatus> {
    const status = await this.#exit!;
    await this.#logPump;
    this.#child = null;
    this.#logs.push(
      `[harness] ${this.spec.id} exited: code ${status.code}, signal ${status.signal}`,
    );
    return status;
  }

  /** Sends `signal` without waiting (SIGSTOP / SIGCONT freeze and resume the process). */
  signal(signal: Deno.Signal): void {
    if (this.#child === null) throw new Error(`${this.spec.id} is not running`);
    this.#child.kill(signal);
  }

  /** kill -9: no shutdown, no final fsync. */
  kill9(): Promise<Deno.CommandStatus> {
    return this.stop("SIGKILL");
  }
}

/** Options of {@linkcode Cluster.create}. */
export interface ClusterOptions {
  /** More `serve` flags per node (after the harness's own, so they win). */
  readonly extraArgs?: (node: NodeSpec) => string[];
  /** Client bearer token: written to a file passed as `--token-file` to every node, and sent
   * by the harness's own requests (`cluster.headers`). */
  readonly token?: string;
  /** Cluster secret: written to a file passed as `--cluster-secret-file` to every node. */
  readonly clusterSecret?: string;
}

/** A local cluster of real processes. */
export class Cluster {
  readonly nodes: NodeProcess[];
  readonly root: string;
  /** Headers the harness sends with its own requests (the bearer token, when configured). */
  readonly headers: Record<string, string>;
  #extraArgs: (node: NodeSpec) => string[];
  #authArgs: string[];

  private constructor(
    root: string,
    nodes: NodeProcess[],
    extraArgs: (node: NodeSpec) => string[],
    authArgs: string[],
    headers: Record<string, string>,
  ) {
    this.root = root;
    this.nodes = nodes;
    this.#extraArgs = extraArgs;
    this.#authArgs = authArgs;
    this.headers = headers;
  }

  /** Creates (does not start) `size` nodes with fresh data directories under a temp root. */
  static async create(size = 3, options: ClusterOptions = {}): Promise<Cluster> {
    const root = await Deno.makeTempDir({ prefix: "edgeraft-it-" });
    const specs: NodeSpec[] = [];
    for (let i = 1; i <= size; i++) {
      const port = freePort();
      specs.push({
        id: `n${i}`,
        port,
        dataDir: `${root}/n${i}`,
        url: `http://127.0.0.1:${port}`,
      });
    }
    const authArgs: string[] = [];
    const headers: Record<string, string> = {};
    if (options.token !== undefined) {
      await Deno.writeTextFile(`${root}/token`, `${options.token}\n`);
      authArgs.push("--token-file", `${root}/token`);
      headers.authorization = `Bearer ${options.token}`;
    }
    if (options.clusterSecret !== undefined) {
      await Deno.writeTextFile(`${root}/cluster-secret`, `${options.clusterSecret}\n`);
      authArgs.push("--cluster-secret-file", `${root}/cluster-secret`);
    }
    return new Cluster(
      root,
      specs.map((s) => new NodeProcess(s)),
      options.extraArgs ?? (() => []),
      authArgs,
      headers,
    );
  }

  get peersFlag(): string {
    return this.nodes.map((n) => `${n.spec.id}=${n.spec.url}`).join(",");
  }

  /**
   * Like {@linkcode Cluster.create}, with the node ids given (`["r1", "r2", "r3"]`): data
   * directories `<root>/<id>`, fresh ports. For clusters built from restored data directories.
   */
  static async createNamed(
    ids: readonly string[],
    options: ClusterOptions = {},
  ): Promise<Cluster> {
    const base = await Cluster.create(ids.length, options);
    const nodes = base.nodes.map((n, i) =>
      new NodeProcess({ ...n.spec, id: ids[i]!, dataDir: `${base.root}/${ids[i]!}` })
    );
    return new Cluster(base.root, nodes, base.#extraArgs, base.#authArgs, base.headers);
  }

  /** The node called `id`. */
  node(id: string): NodeProcess {
    const found = this.nodes.find((n) => n.spec.id === id);
    if (found === undefined) throw new Error(`no node ${id}`);
    return found;
  }

  /** The running nodes other than `node`. */
  others(node: NodeProcess): NodeProcess[] {
    return this.nodes.filter((n) => n !== node && n.running);
  }

  /** The `serve` arguments of `node`. */
  args(node: NodeProcess): string[] {
    const extra = this.#extraArgs(node.spec);
    const segmentBytes = extra.includes("--segment-bytes")
      ? []
      : ["--segment-bytes", String(2 * 1024 * 1024)];
    return [
      "--id",
      node.spec.id,
      "--data-dir",
      node.spec.dataDir,
      "--listen",
      `127.0.0.1:${node.spec.port}`,
      "--peers",
      this.peersFlag,
      "--log-level",
      "info",
      ...segmentBytes,
      ...this.#authArgs,
      ...extra,
    ];
  }

  /** Starts every node that is not running and waits until each answers /healthz. */
  async start(): Promise<void> {
    for (const node of this.nodes) if (!node.running) node.start(this.args(node));
    await Promise.all(this.nodes.map((n) => waitHealthy(n)));
  }

  async startNode(node: NodeProcess): Promise<void> {
    node.start(this.args(node));
    await waitHealthy(node);
  }

  /** Waits until some node reports itself leader and every running node knows it. */
  async waitLeader(timeoutMs = 15_000): Promise<NodeProcess> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const statuses = await Promise.all(
        this.nodes.filter((n) => n.running).map(async (n) => ({
          n,
          s: await statusOf(n, this.headers),
        })),
      );
      const leaders = statuses.filter((x) => x.s?.role === "leader");
      if (
        leaders.length === 1 &&
        statuses.every((x) => x.s !== null && x.s.leader === leaders[0]!.n.spec.id)
      ) {
        return leaders[0]!.n;
      }
      await delay(50);
    }
    throw new Error(`no leader within ${timeoutMs} ms\n${this.dumpLogs()}`);
  }

  /** The running nodes that are not the leader (as the leader sees it). */
  async followers(): Promise<NodeProcess[]> {
    const leader = await this.waitLeader();
    return this.nodes.filter((n) => n.running && n !== leader);
  }

  /**
   * Waits until `node` has applied at least the leader's commit index (as read once, now),
   * so stale reads on it see every write acknowledged before the call.
   */
  async waitCaughtUp(node: NodeProcess, timeoutMs = 20_000): Promise<StatusJson> {
    const leader = await this.waitLeader(timeoutMs);
    const target = (await statusOf(leader, this.headers))?.commit_index;
    if (target === undefined) throw new Error(`leader ${leader.id} did not answer /v1/status`);
    let last: StatusJson | null = null;
    const ok = await waitFor(async () => {
      last = await statusOf(node, this.headers);
      return last !== null && last.applied_index >= target;
    }, timeoutMs);
    if (!ok) {
      throw new Error(
        `${node.id} did not apply index ${target} within ${timeoutMs} ms (status ${
          JSON.stringify(last)
        })\n${this.dumpLogs()}`,
      );
    }
    return last!;
  }

  /** The last log lines of every node, for failure messages. */
  dumpLogs(lines = 40): string {
    return this.nodes.map((n) => `--- ${n.spec.id} ---\n${n.logs.slice(-lines).join("\n")}`).join(
      "\n",
    );
  }

  /** Stops every running node (SIGKILL) and removes the data. Safe to call twice. */
  async destroy(): Promise<void> {
    await Promise.all(this.nodes.filter((n) => n.running).map((n) => n.kill9()));
    await Deno.remove(this.root, { recursive: true }).catch(() => {});
  }
}

export interface StatusJson {
  id: string;
  role: string;
  term: number;
  leader: string | null;
  commit_index: number;
  applied_index: number;
  last_log_index: number;
  last_snapshot: { index: number; term: number; created_at: string } | null;
  storage_errors: { code: string; message: string }[];
  [key: string]: unknown;
}

/** GET /v1/status, or null when the node does not answer. */
export async function statusOf(
  node: NodeProcess,
  headers: Record<string, string> = {},
): Promise<StatusJson | null> {
  try {
    const response = await fetch(`${node.spec.url}/v1/status`, {
      headers,
      signal: AbortSignal.timeout(2000),
    });
    if (!response.ok) {
      await response.body?.cancel();
      return null;
    }
    return await response.json() as StatusJson;
  } catch {
    return null;
  }
}

/** Waits until `node` answers /healthz (or its process exits). */
export async function waitHealthy(node: NodeProcess, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!node.running || node.died) {
      throw new Error(`${node.spec.id} exited\n${node.logs.join("\n")}`);
    }
    try {
      const response = await fetch(`${node.spec.url}/healthz`, {
        signal: AbortSignal.timeout(1000),
      });
      await response.body?.cancel();
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await delay(50);
  }
  throw new Error(`${node.spec.id} not healthy within ${timeoutMs} ms\n${node.logs.join("\n")}`);
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `condition` every `intervalMs` until it holds (true) or `timeoutMs` passed (false). */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 50,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() >= deadline) return false;
    await delay(intervalMs);
  }
}

/** An HTTP answer with its body read. */
export interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

/** Any request; the body is always read. */
export async function request(
  url: string,
  init: RequestInit & { timeoutMs?: number } = {},
): Promise<Answer> {
  const { timeoutMs, ...rest } = init;
  const response = await fetch(url, {
    ...rest,
    signal: AbortSignal.timeout(timeoutMs ?? 10_000),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text };
}

/** The `{"error": {...}}` of an error answer (asserting its shape). */
export function errorOf(answer: { text: string }): { code: string; message: string; hint: string } {
  const body = JSON.parse(answer.text) as { error?: Record<string, unknown> };
  const error = body.error;
  if (
    error === undefined || typeof error.code !== "string" || typeof error.message !== "string" ||
    typeof error.hint !== "string" || error.message === "" || error.hint === ""
  ) {
    throw new Error(`not an error body: ${answer.text}`);
  }
  return error as { code: string; message: string; hint: string };
}

/** PUT a value; returns status and parsed JSON body. */
export async function put(
  url: string,
  key: string,
  value: string | Uint8Array,
  options: { query?: string; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${url}/v1/kv/${encodeURIComponent(key)}${options.query ?? ""}`, {
    method: "PUT",
    body: typeof value === "string" ? value : value as Uint8Array<ArrayBuffer>,
    headers: options.headers,
    signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
  });
  const text = await response.text();
  let body: Record<string, unknown>;
  try {
    body = text === "" ? {} : JSON.parse(text);
  } catch {
    body = { text };
  }
  return { status: response.status, body };
}

/** GET a value; returns status, text and revision header. */
export async function get(
  url: string,
  key: string,
  options: { query?: string; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ status: number; text: string; revision: number | null }> {
  const response = await fetch(`${url}/v1/kv/${encodeURIComponent(key)}${options.query ?? ""}`, {
    headers: options.headers,
    signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
  });
  const text = await response.text();
  const revision = response.headers.get("x-edgeraft-revision");
  return { status: response.status, text, revision: revision === null ? null : Number(revision) };
}

/** One item of a listing. */
export interface ListItem {
  key: string;
  revision: number;
  value?: string;
}

/** GET /v1/kv?... (query without the "?"); throws unless 200. */
export async function list(
  url: string,
  query: string,
  options: { headers?: Record<string, string> } = {},
): Promise<{ items: ListItem[]; more: boolean }> {
  const answer = await request(`${url}/v1/kv?${query}`, { headers: options.headers });
  if (answer.status !== 200) throw new Error(`list ${query}: ${answer.status} ${answer.text}`);
  return JSON.parse(answer.text);
}

/** Every key under `prefix`, following `more` pages. */
export async function listAll(
  url: string,
  prefix: string,
  options: {
    consistency?: "stale" | "linearizable";
    values?: boolean;
    headers?: Record<string, string>;
  } = {},
): Promise<ListItem[]> {
  const out: ListItem[] = [];
  let after: string | null = null;
  for (;;) {
    const params = new URLSearchParams({ prefix, limit: "1000" });
    if (after !== null) params.set("after", after);
    if (options.consistency !== undefined) params.set("consistency", options.consistency);
    if (options.values) params.set("values", "true");
    const page = await list(url, params.toString(), options);
    out.push(...page.items);
    if (!page.more || page.items.length === 0) return out;
    after = page.items[page.items.length - 1]!.key;
  }
}

/** Retries `put` through transient failures (leader changes) until `deadlineMs`. */
export async function putEventually(
  url: string | readonly string[],
  key: string,
  value: string,
  deadlineMs = 10_000,
  options: { headers?: Record<string, string> } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const urls = typeof url === "string" ? [url] : url;
  const deadline = Date.now() + deadlineMs;
  let last: { status: number; body: Record<string, unknown> } = { status: 0, body: {} };
  for (let attempt = 0; Date.now() < deadline; attempt++) {
    try {
      last = await put(urls[attempt % urls.length]!, key, value, {
        headers: options.headers,
        timeoutMs: 3000,
      });
      if (last.status === 200) return last;
    } catch (error) {
      last = { status: 0, body: { error: String(error) } };
    }
    await delay(20);
  }
  return last;
}

/** Runs `jobs` with at most `width` at once; resolves with their results in order. */
export async function pool<T>(
  count: number,
  width: number,
  job: (i: number) => Promise<T>,
): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  const workers = Array.from({ length: Math.min(width, count) }, async () => {
    while (next < count) {
      const i = next++;
      results[i] = await job(i);
    }
  });
  await Promise.all(workers);
  return results;
}

/** A real `curl` run: status, headers and body of the final response. */
export async function curl(
  args: readonly string[],
): Promise<{ status: number; headers: Headers; body: string; stderr: string }> {
  const output = await new Deno.Command("curl", {
    args: ["-sS", "-i", "--max-time", "10", ...args],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  const decoder = new TextDecoder();
  let raw = decoder.decode(output.stdout);
  const stderr = decoder.decode(output.stderr);
  if (!output.success) throw new Error(`curl ${args.join(" ")} failed: ${stderr}`);
  for (;;) {
    const end = raw.indexOf("\r\n\r\n");
    if (end === -1) throw new Error(`curl: no header block in ${JSON.stringify(raw)}`);
    const [statusLine, ...headerLines] = raw.slice(0, end).split("\r\n");
    const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(statusLine ?? "")?.[1]);
    raw = raw.slice(end + 4);
    if (status >= 100 && status < 200) continue; // 100 Continue before the real answer
    const headers = new Headers();
    for (const line of headerLines) {
      const colon = line.indexOf(":");
      if (colon > 0) headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    }
    return { status, headers, body: raw, stderr };
  }
}

/** Runs `edgeraft serve args` to its exit (bad configuration), with a deadline. */
export async function serveOnce(
  args: readonly string[],
  timeoutMs = 15_000,
): Promise<{ code: number; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, "serve", ...args],
    stdout: "null",
    stderr: "piped",
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // exited meanwhile
    }
  }, timeoutMs);
  try {
    const output = await child.output();
    return { code: output.code, stderr: new TextDecoder().decode(output.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

/** The `.log` segment files of a data directory, oldest first. */
export async function segmentFiles(dataDir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(`${dataDir}/log`)) {
    if (entry.isFile && /^\d{20}\.log$/.test(entry.name)) names.push(entry.name);
  }
  return names.sort().map((n) => `${dataDir}/log/${n}`);
}

/** One record of a log segment (docs/STORAGE.md, "Log segment, version 1"). */
export interface SegmentRecord {
  /** Offset of the record header in the file. */
  readonly offset: number;
  /** Header plus payload bytes. */
  readonly size: number;
  readonly type: number;
  readonly payloadLength: number;
  readonly index: number;
  readonly term: number;
}

const SEGMENT_HEADER_BYTES = 32;
const RECORD_HEADER_BYTES = 32;

/**
 * The records of a segment file, read by the documented format: a 32-byte segment header
 * (magic `ERLS`), then records of a 32-byte header (magic `ER`, version, type, payload length,
 * index, term, two CRCs) and the payload; zeros after the last record (preallocation).
 * Checksums are not checked: this only finds where records are.
 */
export function segmentRecords(bytes: Uint8Array): SegmentRecord[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < SEGMENT_HEADER_BYTES || view.getUint32(0, true) !== 0x534C5245) {
    throw new Error("not a log segment (magic ERLS missing)");
  }
  const out: SegmentRecord[] = [];
  let at = SEGMENT_HEADER_BYTES;
  while (at + RECORD_HEADER_BYTES <= bytes.length && view.getUint16(at, true) === 0x5245) {
    const payloadLength = view.getUint32(at + 4, true);
    const size = RECORD_HEADER_BYTES + payloadLength;
    if (at + size > bytes.length) break;
    out.push({
      offset: at,
      size,
      type: view.getUint8(at + 3),
      payloadLength,
      index: Number(view.getBigUint64(at + 8, true)),
      term: Number(view.getBigUint64(at + 16, true)),
    });
    at += size;
  }
  return out;
}

/** What a finished command printed. */
export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a program (`curl`, `tar`, `sha256sum`, ...) to its exit with a deadline (SIGKILL
 * after `timeoutMs`); stdin from `stdin` bytes or nothing.
 */
export async function runTool(
  program: string,
  args: readonly string[],
  options: { cwd?: string; timeoutMs?: number; stdin?: Uint8Array; env?: Record<string, string> } =
    {},
): Promise<CommandResult> {
  const child = new Deno.Command(program, {
    args: [...args],
    cwd: options.cwd,
    stdout: "piped",
    stderr: "piped",
    stdin: options.stdin === undefined ? "null" : "piped",
    env: options.env,
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // exited meanwhile
    }
  }, options.timeoutMs ?? 60_000);
  try {
    if (options.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(options.stdin).catch(() => {});
      await writer.close().catch(() => {});
    }
    const output = await child.output();
    const decoder = new TextDecoder();
    return {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `edgeraft <args>` (any command but `serve`) to its exit, with a deadline. */
export async function runEdgeraft(
  args: readonly string[],
  options: { cwd?: string; timeoutMs?: number } = {},
): Promise<CommandResult> {
  return await runTool(Deno.execPath(), ["run", "-A", "--quiet", MAIN, ...args], {
    ...options,
    env: { NO_COLOR: "1" },
  });
}

/** A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`), or null when unreadable. */
export function procStatusKib(pid: number, field: string): number | null {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/status`);
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text);
    return match === null ? null : Number(match[1]);
  } catch {
    return null;
  }
}
