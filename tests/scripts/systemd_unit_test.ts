import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { parseServeConfig } from "../../src/node/config.ts";

const UNIT = fileURLToPath(new URL("../../scripts/edgeraft.service", import.meta.url));
const EXEC = "/usr/local/bin/edgeraft";

/** Why systemd-analyze cannot run here, or null when it can. */
function systemdAnalyzeMissing(): string | null {
  try {
    const { success } = new Deno.Command("systemd-analyze", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    })
      .outputSync();
    return success ? null : "systemd-analyze --version failed";
  } catch (error) {
    return error instanceof Deno.errors.NotFound
      ? "systemd-analyze is not installed (apt-get install systemd)"
      : `systemd-analyze cannot run: ${error instanceof Error ? error.message : String(error)}`;
  }
}

const missing = systemdAnalyzeMissing();
if (missing !== null) {
  console.warn(`SKIPPED systemd unit verification: ${missing}. The unit file was NOT verified.`);
}

/** Copies the unit to a temporary directory with ExecStart pointing at a real executable. */
async function stagedUnit(): Promise<{ dir: string; unit: string }> {
  const dir = await Deno.makeTempDir({ prefix: "edgeraft-unit-" });
  const exec = `${dir}/edgeraft`;
  await Deno.copyFile("/bin/true", exec);
  await Deno.chmod(exec, 0o755);
  const text = await Deno.readTextFile(UNIT);
  assert.ok(text.includes(`ExecStart=${EXEC} `), "the unit starts /usr/local/bin/edgeraft");
  const unit = `${dir}/edgeraft.service`;
  await Deno.writeTextFile(unit, text.replaceAll(EXEC, exec));
  return { dir, unit };
}

async function run(args: string[], cwd: string) {
  const output = await new Deno.Command("systemd-analyze", {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: { SYSTEMD_LOG_LEVEL: "info", NO_COLOR: "1" },
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

Deno.test({
  name: "systemd-analyze verify accepts the unit without a single warning",
  ignore: missing !== null,
  async fn() {
    const { dir, unit } = await stagedUnit();
    try {
      // verify exits 0 on unknown keys and unparsable values; its stderr is the signal.
      const result = await run(["verify", unit], dir);
      assert.equal(
        result.stderr.trim(),
        "",
        `systemd-analyze verify complained:\n${result.stderr}`,
      );
      assert.equal(result.code, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "systemd-analyze security rates the unit's exposure at most 2.0",
  ignore: missing !== null,
  async fn() {
    const { dir, unit } = await stagedUnit();
    try {
      const result = await run(
        ["security", "--offline=true", "--threshold=20", "--no-pager", unit],
        dir,
      );
      const overall = /Overall exposure level for edgeraft\.service: ([\d.]+)/.exec(result.stdout);
      assert.ok(overall, `no exposure level in:\n${result.stdout}\n${result.stderr}`);
      assert.ok(Number(overall[1]) <= 2.0, `exposure ${overall[1]}`);
      assert.equal(result.code, 0, result.stderr);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("the unit keeps the hardening and lifecycle settings the deployment relies on", async () => {
  const lines = (await Deno.readTextFile(UNIT)).split("\n").map((l) => l.trim());
  const settings = new Map<string, string[]>();
  for (const line of lines) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (match) settings.set(match[1]!, [...(settings.get(match[1]!) ?? []), match[2]!]);
  }
  const expect: Record<string, string> = {
    Type: "simple",
    User: "edgeraft",
    Group: "edgeraft",
    ExecStart: `${EXEC} serve --config /etc/edgeraft/edgeraft.json`,
    StateDirectory: "edgeraft",
    ConfigurationDirectory: "edgeraft",
    ProtectSystem: "strict",
    ProtectHome: "yes",
    PrivateTmp: "yes",
    PrivateDevices: "yes",
    NoNewPrivileges: "yes",
    Restart: "on-failure",
    KillSignal: "SIGTERM",
    CapabilityBoundingSet: "",
    UMask: "0077",
    MemoryDenyWriteExecute: "no",
  };
  for (const [key, value] of Object.entries(expect)) {
    assert.deepEqual(settings.get(key), [value], key);
  }
  assert.ok(settings.get("SystemCallFilter")?.includes("@system-service"));
  assert.match(settings.get("RestrictAddressFamilies")?.[0] ?? "", /AF_INET AF_INET6/);
  assert.match(settings.get("LimitNOFILE")?.[0] ?? "", /^\d+$/);
  assert.match(settings.get("RestartSec")?.[0] ?? "", /^\d+s$/);
  // Longer than the node's default shutdownTimeoutMs (20 s), so a clean shutdown is not killed.
  const stop = /^(\d+)s$/.exec(settings.get("TimeoutStopSec")?.[0] ?? "");
  assert.ok(stop && Number(stop[1]) > 20, "TimeoutStopSec exceeds shutdownTimeoutMs");
});

/** The unit's `Environment=` assignments as a record. */
function unitEnvironment(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const match = /^Environment=([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (match) env[match[1]!] = match[2]!;
  }
  return env;
}

Deno.test("edits of /etc/edgeraft/edgeraft.json take effect under the unit's environment", async () => {
  // The node takes EDGERAFT_* variables over the config file (flags > env > file): one in the
  // unit would silently win over the operator's edit of the file.
  const text = await Deno.readTextFile(UNIT);
  const env = unitEnvironment(text);
  assert.deepEqual(Object.keys(env).filter((name) => name.startsWith("EDGERAFT_")), []);
  const files: Record<string, string> = {
    "/etc/edgeraft/edgeraft.json": JSON.stringify({
      id: "n1",
      dataDir: "/srv/edited",
      listen: "127.0.0.1:7070",
      logFormat: "text",
      logLevel: "debug",
    }),
  };
  const result = await parseServeConfig(
    ["--config", "/etc/edgeraft/edgeraft.json"],
    env,
    {
      readTextFile: (path) =>
        files[path] === undefined
          ? Promise.reject(new Deno.errors.NotFound(path))
          : Promise.resolve(files[path]!),
    },
  );
  assert.ok(result.ok, result.ok ? "" : result.errors.join("\n"));
  assert.equal(result.config.dataDir, "/srv/edited");
  assert.equal(result.config.logFormat, "text");
  assert.equal(result.config.logLevel, "debug");
});

Deno.test("the unit's Documentation= points at nothing that is not there", async () => {
  const docs = (await Deno.readTextFile(UNIT)).split("\n").filter((l) =>
    l.startsWith("Documentation=")
  );
  // A file: URI must name a file the installer puts there; it installs none, so: none at all.
  for (const line of docs) assert.doesNotMatch(line, /file:/, line);
});
