/**
 * Starts real `edgeraft serve` processes on free loopback ports for integration tests, and
 * ends every one of them. Each node's stderr (JSON log lines) is kept so a failing test can
 * print it.
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

/** One running `edgeraft serve` process. */
export class NodeProcess {
  readonly spec: NodeSpec;
  #child: Deno.ChildProcess | null = null;
  #logs: string[] = [];
  #logPump: Promise<void> | null = null;
  #exit: Promise<Deno.CommandStatus> | null = null;

  constructor(spec: NodeSpec) {
    this.spec = spec;
  }

  get running(): boolean {
    return this.#child !== null;
  }

  get logs(): readonly string[] {
    return this.#logs;
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
    this.#exit = child.status;
    this.#logPump = (async () => {
      const decoder = new TextDecoderStream();
      let pending = "";
      for await (const text of child.stderr.pipeThrough(decoder)) {
        pending += text;
        const lines = pending.split("\n");
        pending = lines.pop() ?? "";
        for (const line of lines) {
          this.#logs.push(line);
          if (this.#logs.length > 5000) this.#logs.shift();
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
    const status = await this.#exit!;
    await this.#logPump;
    this.#child = null;
    return status;
  }

  /** Waits for the process to exit by itself (bad configuration, crash). */
  async exited(): Promise<Deno.CommandStatus> {
    const status = await this.#exit!;
    await this.#logPump;
    this.#child = null;
    return status;
  }

  /** kill -9: no shutdown, no final fsync. */
  kill9(): Promise<Deno.CommandStatus> {
    return this.stop("SIGKILL");
  }
}

/** A local cluster of real processes. */
export class Cluster {
  readonly nodes: NodeProcess[];
  readonly root: string;
  #extraArgs: (node: NodeSpec) => string[];

  private constructor(root: string, nodes: NodeProcess[], extraArgs: (node: NodeSpec) => string[]) {
    this.root = root;
    this.nodes = nodes;
    this.#extraArgs = extraArgs;
  }

  /** Creates (does not start) `size` nodes with fresh data directories under a temp root. */
  static async create(
    size = 3,
    options: { extraArgs?: (node: NodeSpec) => string[] } = {},
  ): Promise<Cluster> {
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
    return new Cluster(root, specs.map((s) => new NodeProcess(s)), options.extraArgs ?? (() => []));
  }

  get peersFlag(): string {
    return this.nodes.map((n) => `${n.spec.id}=${n.spec.url}`).join(",");
  }

  /** The `serve` arguments of `node`. */
  args(node: NodeProcess): string[] {
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
      ...this.#extraArgs(node.spec),
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
        this.nodes.filter((n) => n.running).map(async (n) => ({ n, s: await statusOf(n) })),
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

  /** The last log lines of every node, for failure messages. */
  dumpLogs(lines = 25): string {
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
    if (!node.running) throw new Error(`${node.spec.id} exited\n${node.logs.join("\n")}`);
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

/** PUT a value; returns status and parsed JSON body. */
export async function put(
  url: string,
  key: string,
  value: string | Uint8Array,
  options: { query?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${url}/v1/kv/${encodeURIComponent(key)}${options.query ?? ""}`, {
    method: "PUT",
    body: typeof value === "string" ? value : value as Uint8Array<ArrayBuffer>,
    headers: options.headers,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  return { status: response.status, body: text === "" ? {} : JSON.parse(text) };
}

/** GET a value; returns status, text and revision header. */
export async function get(
  url: string,
  key: string,
  options: { query?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; text: string; revision: number | null }> {
  const response = await fetch(`${url}/v1/kv/${encodeURIComponent(key)}${options.query ?? ""}`, {
    headers: options.headers,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  const revision = response.headers.get("x-edgeraft-revision");
  return { status: response.status, text, revision: revision === null ? null : Number(revision) };
}

/** Retries `put` through transient 503s (leader changes) until `deadlineMs`. */
export async function putEventually(
  url: string,
  key: string,
  value: string,
  deadlineMs = 10_000,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const deadline = Date.now() + deadlineMs;
  let last: { status: number; body: Record<string, unknown> } = { status: 0, body: {} };
  while (Date.now() < deadline) {
    try {
      last = await put(url, key, value);
      if (last.status === 200) return last;
    } catch (error) {
      last = { status: 0, body: { error: String(error) } };
    }
    await delay(25);
  }
  return last;
}
