/**
 * Runs a shipped form of edgeraft (the bundle under `deno run`, the compiled binary, or the
 * installed `/usr/local/bin/edgeraft` of a scratch root) as separate processes, for the release
 * tests in this folder. An "edgeraft command" is the argv prefix that stands for `edgeraft`:
 * `[deno, "run", ...flags, "edgeraft.js"]` or `["/path/to/edgeraft-x86_64-unknown-linux-gnu"]`.
 *
 * Rules (the test runner's sanitizers are on): every process started here is ended and
 * awaited (`stop()` sends SIGTERM, then SIGKILL after a deadline); every response body is
 * read; every request and command has a deadline, so a hung node fails a test instead of
 * hanging the suite.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { PERMISSION_FLAGS } from "../../scripts/build_info.ts";

/** Where the repository is (decoded: a checkout path may hold spaces or `%`). */
export const ROOT = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");

/** A free TCP port on 127.0.0.1 (bound and released). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Resolves after `ms`. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The outcome of a finished command. */
export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of {@linkcode runCommand}. */
export interface RunOptions {
  readonly cwd?: string;
  /** The whole environment of the child (default {@linkcode baseEnv}; nothing else is inherited). */
  readonly env?: Record<string, string>;
  /** Inherit this process's whole environment instead (builds: proxies, CA files, registry). */
  readonly inheritEnv?: boolean;
  readonly timeoutMs?: number;
}

/**
 * The environment children get by default: PATH, HOME (Deno's default cache lives under it)
 * and no colours. Nothing else is inherited, so no `EDGERAFT_*` of the caller leaks in.
 */
export function baseEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: Deno.env.get("HOME") ?? "/",
    NO_COLOR: "1",
    ...denoDirEnv(),
    ...extra,
  };
}

/** Runs `argv` to its exit (SIGKILL after `timeoutMs`). */
export async function runCommand(
  argv: readonly string[],
  options: RunOptions = {},
): Promise<CommandResult> {
  const [program, ...args] = argv;
  const child = new Deno.Command(program!, {
    args,
    cwd: options.cwd,
    env: options.inheritEnv ? { NO_COLOR: "1" } : options.env ?? baseEnv(),
    clearEnv: !options.inheritEnv,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // exited meanwhile
    }
  }, options.timeoutMs ?? 60_000);
  try {
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

/** Runs a shell command line with `sh -c` (how the README's commands are run). */
export function runShell(line: string, options: RunOptions = {}): Promise<CommandResult> {
  return runCommand(["sh", "-c", line], options);
}

/** Fails with the command's output unless it exited 0. */
export function assertSuccess(result: CommandResult, what: string): void {
  assert.equal(
    result.code,
    0,
    `${what} exited ${result.code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`,
  );
}

/** `deno run` of a bundle with exactly the release permissions (no -A), no config file. */
export function bundleCommand(bundle: string): string[] {
  return [Deno.execPath(), "run", "--quiet", "--no-config", ...PERMISSION_FLAGS, bundle];
}

/**
 * Builds the stamped bundle into `outDir/edgeraft.js` the way `deno task bundle` does (through
 * scripts/compile.ts, so the version stamp is the release build's). Uses the normal DENO_DIR
 * (the first run downloads esbuild from npm).
 */
export async function buildBundle(outDir: string): Promise<string> {
  const result = await runCommand([
    Deno.execPath(),
    "run",
    "--quiet",
    "--allow-read",
    "--allow-write",
    "--allow-run",
    `${ROOT}/scripts/compile.ts`,
    "--bundle",
    "--out-dir",
    outDir,
  ], { timeoutMs: 120_000, inheritEnv: true });
  assertSuccess(result, "scripts/compile.ts --bundle");
  return `${outDir}/edgeraft.js`;
}

/** DENO_DIR of this process's environment, if set (so children share its cache). */
function denoDirEnv(): Record<string, string> {
  const dir = Deno.env.get("DENO_DIR");
  return dir === undefined ? {} : { DENO_DIR: dir };
}

/** HTTP GET/PUT with a deadline; the body is always read. */
export async function http(
  url: string,
  init: { method?: string; body?: string; token?: string } = {},
): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = {};
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  const response = await fetch(url, {
    method: init.method ?? "GET",
    body: init.body,
    headers,
    signal: AbortSignal.timeout(5_000),
  });
  return { status: response.status, text: await response.text() };
}

/** One running `edgeraft serve` (or any long-running command), its output kept. */
export class ServeProcess {
  readonly name: string;
  #child: Deno.ChildProcess;
  #output: string[] = [];
  #stderr: string[] = [];
  #pumps: Promise<void>[];
  #status: Promise<Deno.CommandStatus>;
  #exited: Deno.CommandStatus | null = null;

  constructor(name: string, argv: readonly string[], options: RunOptions = {}) {
    this.name = name;
    const [program, ...args] = argv;
    this.#child = new Deno.Command(program!, {
      args,
      cwd: options.cwd,
      env: options.env ?? baseEnv(),
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#status = this.#child.status.then((status) => (this.#exited = status));
    this.#pumps = [
      this.#pump(this.#child.stdout, null),
      this.#pump(this.#child.stderr, this.#stderr),
    ];
  }

  async #pump(stream: ReadableStream<Uint8Array>, also: string[] | null): Promise<void> {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      this.#output.push(text);
      also?.push(text);
    }
  }

  /** Everything the process printed so far (stdout and stderr interleaved by arrival). */
  get output(): string {
    return this.#output.join("");
  }

  /** What the process printed on stderr so far. */
  get stderr(): string {
    return this.#stderr.join("");
  }

  /** The exit status if the process has ended by itself, else null. */
  get exited(): Deno.CommandStatus | null {
    return this.#exited;
  }

  /** Sends SIGTERM, waits up to `timeoutMs` (then SIGKILL), returns the exit status. */
  async stop(timeoutMs = 30_000): Promise<Deno.CommandStatus> {
    if (this.#exited === null) {
      try {
        this.#child.kill("SIGTERM");
      } catch {
        // exited meanwhile
      }
    }
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // exited meanwhile
      }
    }, timeoutMs);
    try {
      const status = await this.#status;
      await Promise.all(this.#pumps);
      return status;
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * Thrown by a `waitFor` check to stop waiting at once: the condition can no longer come true
 * (e.g. the process it waits for has exited). Other errors count as "not yet" and are retried.
 */
export class WaitAborted extends Error {
  override name = "WaitAborted";
}

/**
 * Polls `check` until it returns a value (not undefined) or `timeoutMs` passes. A
 * {@linkcode WaitAborted} from `check` ends the wait with that error.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      if (error instanceof WaitAborted) throw error;
      last = (error as Error).message;
    }
    await delay(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (${last})` : ""}`);
}

/** The last `lines` lines of `text`. */
function tail(text: string, lines = 20): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/**
 * Waits until `GET url/healthz` answers 200. A node that exits meanwhile (e.g. a configuration
 * it refuses) fails the wait at once with its exit code and the tail of its stderr, instead of
 * after the whole timeout.
 */
export async function waitHealthy(node: ServeProcess, url: string): Promise<void> {
  await waitFor(`${node.name} /healthz`, async () => {
    if (node.exited !== null) {
      const { code } = await node.stop(); // exited already: this collects the rest of its output
      throw new WaitAborted(
        `${node.name} exited ${code} before answering /healthz; its stderr ends:\n${
          tail(node.stderr)
        }`,
      );
    }
    const { status } = await http(`${url}/healthz`);
    return status === 200 ? true : undefined;
  });
}

/** Waits until every node reports the same leader in `/v1/status`; returns its id. */
export async function waitLeader(urls: readonly string[], token?: string): Promise<string> {
  return await waitFor("one leader known to every node", async () => {
    const leaders = new Set<string>();
    for (const url of urls) {
      const { status, text } = await http(`${url}/v1/status`, { token });
      if (status !== 200) return undefined;
      const leader = (JSON.parse(text) as { leader?: string | null }).leader;
      if (typeof leader !== "string") return undefined;
      leaders.add(leader);
    }
    return leaders.size === 1 ? [...leaders][0] : undefined;
  });
}

/** Writes a 0600 file. */
export async function writeSecret(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(path, text, { mode: 0o600 });
}

/**
 * The release scenario: three nodes from `edgeraft` (the argv prefix) with a token and a
 * cluster secret on loopback ports, a write through a follower, a read from another node,
 * `edgeraft status`, `edgeraft backup` to a file and `edgeraft verify` of it; then every node
 * stops on SIGTERM with exit 0. Data, secrets and the backup live in `dir`.
 */
export async function threeNodeScenario(
  edgeraft: readonly string[],
  dir: string,
  env: Record<string, string> = baseEnv(),
): Promise<void> {
  const token = "t".repeat(8) + crypto.randomUUID().replaceAll("-", "");
  const secret = crypto.randomUUID().replaceAll("-", "") + crypto.randomUUID().replaceAll("-", "");
  await writeSecret(`${dir}/token`, token);
  await writeSecret(`${dir}/cluster-secret`, secret);
  const ids = ["n1", "n2", "n3"];
  const ports = ids.map(() => freePort());
  const urls = ports.map((port) => `http://127.0.0.1:${port}`);
  const peers = ids.map((id, i) => `${id}=${urls[i]}`).join(",");
  const nodes: ServeProcess[] = [];
  try {
    for (const [i, id] of ids.entries()) {
      nodes.push(
        new ServeProcess(id, [
          ...edgeraft,
          "serve",
          "--id",
          id,
          "--data-dir",
          `${dir}/${id}`,
          "--listen",
          `127.0.0.1:${ports[i]}`,
          "--peers",
          peers,
          "--token-file",
          `${dir}/token`,
          "--cluster-secret-file",
          `${dir}/cluster-secret`,
          // 2 MiB segments: the default 64 MiB is preallocated, three times per cluster.
          "--segment-bytes",
          String(2 * 1024 * 1024),
        ], { cwd: dir, env }),
      );
    }
    for (const [i, node] of nodes.entries()) await waitHealthy(node, urls[i]!);
    const leader = await waitLeader(urls, token);
    const follower = ids.findIndex((id) => id !== leader);
    const other = ids.findIndex((id, i) => id !== leader && i !== follower);

    const denied = await http(`${urls[0]}/v1/kv/release`);
    assert.equal(denied.status, 401, "a node with a token refuses requests without it");
    const put = await http(`${urls[follower]}/v1/kv/release`, {
      method: "PUT",
      body: "shipped",
      token,
    });
    assert.equal(put.status, 200, put.text);
    const got = await http(`${urls[other]}/v1/kv/release`, { token });
    assert.deepEqual(got, { status: 200, text: "shipped" });

    const cli = (args: string[]) => runCommand([...edgeraft, ...args], { cwd: dir, env });
    const status = await cli(["status", "--from", urls[0]!, "--token-file", "token"]);
    assertSuccess(status, "edgeraft status");
    assert.match(status.stdout, new RegExp(`^leader\\s+${leader}$`, "m"));

    const backup = await cli([
      "backup",
      "--from",
      urls[0]!,
      "--token-file",
      "token",
      "-o",
      "b.tar",
    ]);
    assertSuccess(backup, "edgeraft backup");
    const verify = await cli(["verify", "b.tar"]);
    assertSuccess(verify, "edgeraft verify");

    for (const node of nodes.splice(0)) {
      const exit = await node.stop();
      assert.equal(exit.code, 0, `${node.name} after SIGTERM:\n${node.output}`);
    }
  } catch (error) {
    for (const node of nodes) console.error(`--- ${node.name} output ---\n${node.output}`);
    throw error;
  } finally {
    for (const node of nodes) await node.stop();
  }
}

/**
 * Writes an executable stand-in for the compiled binary: a shell script that runs the bundle
 * with `deno run` and exactly the release permissions, passing its arguments on.
 */
export async function writeBundleLauncher(path: string, bundle: string): Promise<void> {
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const argv = bundleCommand(bundle).map(quote).join(" ");
  await Deno.writeTextFile(path, `#!/bin/sh\nexec ${argv} "$@"\n`, { mode: 0o755 });
  await Deno.chmod(path, 0o755);
}
