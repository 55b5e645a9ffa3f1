import assert from "node:assert/strict";
import {
  envName,
  parseServeConfig,
  redactedConfig,
  SERVE_OPTIONS,
  type ServeConfig,
  type ServeConfigResult,
  serveUsage,
  toRaftConfig,
} from "../../src/node/config.ts";
import { validateRaftConfig } from "../../src/raft/config.ts";

const TOKEN = "client-token-0123456789abcdef";
const ADMIN = "admin-token-0123456789abcdef";
const SECRET = "s".repeat(40);
const PEM_CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const PEM_KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";

function files(entries: Record<string, string>) {
  const read: string[] = [];
  return {
    read,
    readTextFile(path: string): Promise<string> {
      read.push(path);
      const text = entries[path];
      return text === undefined
        ? Promise.reject(new Error(`No such file or directory (os error 2): readfile '${path}'`))
        : Promise.resolve(text);
    },
  };
}

async function parse(
  args: string[],
  env: Record<string, string> = {},
  fileMap: Record<string, string> = {},
): Promise<ServeConfigResult> {
  return await parseServeConfig(args, env, files(fileMap));
}

async function ok(
  args: string[],
  env: Record<string, string> = {},
  fileMap: Record<string, string> = {},
): Promise<ServeConfig> {
  const result = await parse(args, env, fileMap);
  assert.ok(result.ok, `expected a valid config, got ${JSON.stringify(result)}`);
  return result.config;
}

async function errorsOf(
  args: string[],
  env: Record<string, string> = {},
  fileMap: Record<string, string> = {},
): Promise<readonly string[]> {
  const result = await parse(args, env, fileMap);
  assert.ok(!result.ok, "expected errors");
  return result.errors;
}

function assertErrors(errors: readonly string[], patterns: RegExp[]): void {
  for (const pattern of patterns) {
    assert.ok(
      errors.some((e) => pattern.test(e)),
      `no error matches ${pattern}:\n  ${errors.join("\n  ")}`,
    );
  }
  assert.equal(errors.length, patterns.length, `unexpected errors:\n  ${errors.join("\n  ")}`);
}

Deno.test("the minimal command line gives safe defaults", async () => {
  const config = await ok(["--id", "n1", "--data-dir", "/var/lib/edgeraft"]);
  assert.equal(config.id, "n1");
  assert.equal(config.dataDir, "/var/lib/edgeraft");
  assert.deepEqual(config.listen, { hostname: "127.0.0.1", port: 7070 });
  assert.equal(config.listenIsLoopback, true);
  assert.equal(config.advertiseUrl, "http://127.0.0.1:7070");
  assert.deepEqual(config.peers, []);
  assert.equal(config.token, null);
  assert.equal(config.clusterSecret, null);
  assert.equal(config.tls, null);
  assert.equal(config.insecure, false);
  assert.equal(config.logFormat, "json");
  assert.equal(config.logLevel, "info");
  assert.equal(config.tickMs, 50);
  assert.equal(config.electionTicks, 6);
  assert.equal(config.heartbeatTicks, 1);
  assert.equal(config.valueBytesMax, 1024 * 1024);
  assert.equal(config.proposalBytesMax, 1024 * 1024 + 1056);
  assert.equal(config.snapshotOnClose, true);
  assert.equal(config.listLimitMax, 10_000);
});

Deno.test("the default election timeout keeps failover within the 600 ms target", async () => {
  const config = await ok(["--id", "n1", "--data-dir", "d"]);
  // Followers campaign after [electionTicks, 2·electionTicks) ticks of silence.
  assert.ok(2 * config.electionTicks * config.tickMs <= 600);
  assert.ok(config.electionTicks * config.tickMs >= 5 * config.heartbeatTicks * config.tickMs);
  assert.deepEqual(validateRaftConfig(toRaftConfig(config)), []);
});

Deno.test("flags win over the environment, which wins over the config file", async () => {
  const file = JSON.stringify({
    id: "from-file",
    dataDir: "/file/data",
    "tick-ms": 40,
    electionTicks: 9,
    logLevel: "debug",
    snapshotsKeep: 5,
  });
  const config = await ok(
    ["--config", "/etc/edgeraft.json", "--id", "from-flag", "--election-ticks=8"],
    {
      EDGERAFT_ID: "from-env",
      EDGERAFT_DATA_DIR: "/env/data",
      EDGERAFT_ELECTION_TICKS: "7",
      EDGERAFT_TICK_MS: "30",
    },
    { "/etc/edgeraft.json": file },
  );
  assert.equal(config.id, "from-flag");
  assert.equal(config.dataDir, "/env/data");
  assert.equal(config.electionTicks, 8);
  assert.equal(config.tickMs, 30);
  assert.equal(config.logLevel, "debug");
  assert.equal(config.snapshotsKeep, 5);
  assert.equal(config.configFile, "/etc/edgeraft.json");
});

Deno.test("the config file can be named by EDGERAFT_CONFIG", async () => {
  const config = await ok(
    [],
    { EDGERAFT_CONFIG: "/c.json" },
    {
      "/c.json": JSON.stringify({
        id: "n1",
        "data-dir": "/d",
        peers: { n1: "http://127.0.0.1:7070" },
      }),
    },
  );
  assert.equal(config.id, "n1");
  assert.deepEqual(config.peers, [{ id: "n1", url: "http://127.0.0.1:7070" }]);
});

Deno.test("every flag has an EDGERAFT_ environment variable and a camelCase file key", async () => {
  assert.equal(envName("data-dir"), "EDGERAFT_DATA_DIR");
  assert.equal(envName("snapshot-interval-s"), "EDGERAFT_SNAPSHOT_INTERVAL_S");
  const keys = SERVE_OPTIONS.map((o) => o.key);
  for (
    const required of [
      "id",
      "dataDir",
      "listen",
      "advertise",
      "peers",
      "tokenFile",
      "clusterSecretFile",
      "tlsCert",
      "tlsKey",
      "tlsCa",
      "insecure",
      "logFormat",
      "logLevel",
      "valueBytesMax",
      "requestBodyBytesMax",
      "snapshotEntries",
      "snapshotIntervalS",
      "snapshotsKeep",
      "snapshotOnClose",
      "segmentBytes",
    ]
  ) {
    assert.ok(keys.includes(required), required);
  }
  const usage = serveUsage();
  for (const o of SERVE_OPTIONS) {
    assert.ok(usage.includes(`--${o.flag}`), o.flag);
    assert.ok(usage.includes(envName(o.flag)), o.flag);
  }
  // Booleans from the environment.
  const config = await ok([], {
    EDGERAFT_ID: "n1",
    EDGERAFT_DATA_DIR: "/d",
    EDGERAFT_SNAPSHOT_ON_CLOSE: "false",
    EDGERAFT_INSECURE: "1",
  });
  assert.equal(config.snapshotOnClose, false);
  assert.equal(config.insecure, true);
});

Deno.test("boolean flags take --flag, --no-flag and --flag=false", async () => {
  const base = ["--id", "n1", "--data-dir", "d"];
  assert.equal((await ok([...base, "--no-snapshot-on-close"])).snapshotOnClose, false);
  assert.equal((await ok([...base, "--snapshot-on-close=false"])).snapshotOnClose, false);
  assert.equal((await ok([...base, "--insecure"])).insecure, true);
  assertErrors(await errorsOf([...base, "--insecure=maybe"]), [/--insecure: is a switch/]);
});

Deno.test("peers give the membership and this node's advertised URL", async () => {
  const config = await ok([
    "--id=b",
    "--data-dir=/d",
    "--listen=0.0.0.0:7070",
    "--insecure",
    "--peers",
    "c=http://10.0.0.3:7070,a=http://10.0.0.1:7070/,b=http://10.0.0.2:7070",
  ]);
  assert.deepEqual(config.peers.map((p) => p.id), ["a", "b", "c"]);
  assert.equal(config.peers[0]!.url, "http://10.0.0.1:7070");
  assert.equal(config.advertiseUrl, "http://10.0.0.2:7070");
  assert.equal(config.listenIsLoopback, false);
});

Deno.test("a non-loopback node with token, admin token and secret reads them trimmed", async () => {
  const f = files({ "/t": `${TOKEN}\n`, "/a": `  ${ADMIN}\n`, "/s": `${SECRET}\n` });
  const result = await parseServeConfig(
    [
      "--id=n1",
      "--data-dir=/d",
      "--listen=10.0.0.1:7070",
      "--token-file=/t",
      "--admin-token-file=/a",
      "--cluster-secret-file=/s",
    ],
    {},
    f,
  );
  assert.ok(result.ok, JSON.stringify(result));
  assert.equal(result.config.token, TOKEN);
  assert.equal(result.config.adminToken, ADMIN);
  assert.equal(result.config.clusterSecret, SECRET);
  assert.equal(result.config.advertiseUrl, "http://10.0.0.1:7070");
  assert.deepEqual([...f.read].sort(), ["/a", "/s", "/t"]);
  const shown = JSON.stringify(redactedConfig(result.config));
  assert.ok(!shown.includes(TOKEN) && !shown.includes(SECRET) && !shown.includes(ADMIN));
});

Deno.test("TLS reads the PEM files and makes the node https", async () => {
  const config = await ok(
    ["--id=n1", "--data-dir=/d", "--tls-cert=/c.pem", "--tls-key=/k.pem", "--tls-ca=/ca.pem"],
    {},
    { "/c.pem": PEM_CERT, "/k.pem": PEM_KEY, "/ca.pem": PEM_CERT },
  );
  assert.equal(config.advertiseUrl, "https://127.0.0.1:7070");
  assert.equal(config.tls?.cert, PEM_CERT);
  assert.equal(config.tls?.key, PEM_KEY);
  assert.equal(config.tls?.ca, PEM_CERT);
});

Deno.test("IPv6 listen addresses are bracketed in the advertised URL", async () => {
  const config = await ok(["--id=n1", "--data-dir=/d", "--listen=[::1]:7443"]);
  assert.deepEqual(config.listen, { hostname: "::1", port: 7443 });
  assert.equal(config.listenIsLoopback, true);
  assert.equal(config.advertiseUrl, "http://[::1]:7443");
});

Deno.test("unknown environment variables are warnings, not errors", async () => {
  const result = await parse(["--id=n1", "--data-dir=/d"], { EDGERAFT_FROM: "x", PATH: "/bin" });
  assert.ok(result.ok);
  assert.deepEqual(result.warnings, ["ignoring unknown environment variable EDGERAFT_FROM"]);
});

Deno.test("every command-line problem is reported at once", async () => {
  const errors = await errorsOf([
    "--id",
    "bad id!",
    "--bogus",
    "--listen=localhost:99999",
    "-x",
    "--log-format=xml",
    "--log-level",
    "--tick-ms=fast",
    "--snapshots-keep=0",
    "stray",
  ]);
  assertErrors(errors, [
    /--id: node id "bad id!" must be/,
    /unknown flag --bogus/,
    /unknown flag -x/,
    /--listen: port must be from 1 to 65535, got 99999/,
    /--log-format: must be one of json, text, got "xml"/,
    /--log-level needs a value/,
    /--tick-ms: must be a whole number, got "fast"/,
    /--snapshots-keep: must be from 1 to 100, got 0/,
    /unexpected argument "stray"/,
    /--data-dir is required/,
  ]);
});

Deno.test("repeated flags and a flag missing its value are errors", async () => {
  assertErrors(await errorsOf(["--id=a", "--id=b", "--data-dir", "--listen=127.0.0.1:1"]), [
    /--id given more than once/,
    /--data-dir needs a value/,
    /--data-dir is required/,
  ]);
});

Deno.test("peer problems are all reported: syntax, duplicates, bad URLs, missing self", async () => {
  const errors = await errorsOf([
    "--id=n9",
    "--data-dir=/d",
    "--peers=n1=http://10.0.0.1:7070,n1=http://10.0.0.5:7070,n2=ftp://x,n3,n4=http://10.0.0.1:7070,n5=http://h:1/path,bad*id=http://h:2",
  ]);
  assertErrors(errors, [
    /duplicate peer id "n1"/,
    /peer n2: "ftp:\/\/x" must be an http/,
    /expected ID=URL, got "n3"/,
    /peers n1 and n4 share the URL http:\/\/10\.0\.0\.1:7070/,
    /peer n5: "http:\/\/h:1\/path" must be a bare scheme/,
    /peer id "bad\*id" must be/,
    /this node's id "n9" is not among the peers/,
  ]);
});

Deno.test("a non-loopback listen address needs a token and a cluster secret unless --insecure", async () => {
  assertErrors(await errorsOf(["--id=n1", "--data-dir=/d", "--listen=10.0.0.1:7070"]), [
    /listening on non-loopback 10\.0\.0\.1 needs --token-file and --cluster-secret-file \(or --insecure/,
  ]);
  assertErrors(
    await errorsOf(["--id=n1", "--data-dir=/d", "--listen=10.0.0.1:7070", "--token-file=/t"], {}, {
      "/t": TOKEN,
    }),
    [/needs --cluster-secret-file/],
  );
  await ok(["--id=n1", "--data-dir=/d", "--listen=10.0.0.1:7070", "--insecure"]);
});

Deno.test("a wildcard listen address needs --advertise", async () => {
  assertErrors(
    await errorsOf(["--id=n1", "--data-dir=/d", "--listen=0.0.0.0:7070", "--insecure"]),
    [
      /--advertise is required when --listen .*wildcard address 0\.0\.0\.0/,
    ],
  );
  const config = await ok([
    "--id=n1",
    "--data-dir=/d",
    "--listen=0.0.0.0:7070",
    "--insecure",
    "--advertise=http://edge-1.lan:7070",
  ]);
  assert.equal(config.advertiseUrl, "http://edge-1.lan:7070");
});

Deno.test("secret files that are unreadable, empty, short or multi-line are errors", async () => {
  const errors = await errorsOf(
    [
      "--id=n1",
      "--data-dir=/d",
      "--token-file=/missing",
      "--cluster-secret-file=/empty",
      "--admin-token-file=/short",
    ],
    {},
    { "/empty": "  \n", "/short": "abc" },
  );
  assertErrors(errors, [
    /--token-file: cannot read token file "\/missing": No such file/,
    /--cluster-secret-file: cluster secret file "\/empty" is empty/,
    /--admin-token-file: admin token in "\/short" is 3 characters; use at least 16/,
  ]);
  assertErrors(
    await errorsOf(["--id=n1", "--data-dir=/d", "--token-file=/t"], {}, {
      "/t": "two words here and more",
    }),
    [/must be one line of printable ASCII without spaces/],
  );
  assertErrors(
    await errorsOf(["--id=n1", "--data-dir=/d", "--token-file=/t", "--admin-token-file=/t"], {}, {
      "/t": TOKEN,
    }),
    [/the admin token must differ from the client token/],
  );
});

Deno.test("TLS flags must come in pairs and the files must be PEM", async () => {
  assertErrors(
    await errorsOf(["--id=n1", "--data-dir=/d", "--tls-cert=/c"], {}, { "/c": PEM_CERT }),
    [
      /--tls-cert requires --tls-key/,
    ],
  );
  assertErrors(await errorsOf(["--id=n1", "--data-dir=/d", "--tls-key=/k", "--tls-ca=/ca"]), [
    /--tls-key requires --tls-cert/,
    /--tls-ca requires --tls-cert and --tls-key/,
  ]);
  assertErrors(
    await errorsOf(["--id=n1", "--data-dir=/d", "--tls-cert=/c", "--tls-key=/k"], {}, {
      "/c": "junk",
      "/k": PEM_KEY,
    }),
    [/--tls-cert: "\/c" is not a PEM file/],
  );
});

Deno.test("URL schemes must match TLS: https with it, http without", async () => {
  const errors = await errorsOf(
    [
      "--id=n1",
      "--data-dir=/d",
      "--tls-cert=/c",
      "--tls-key=/k",
      "--peers=n1=https://10.0.0.1:7070,n2=http://10.0.0.2:7070",
      "--advertise=https://10.0.0.1:7070",
    ],
    {},
    { "/c": PEM_CERT, "/k": PEM_KEY },
  );
  assertErrors(errors, [/peer n2 URL http:\/\/10\.0\.0\.2:7070 must use https:\/\//]);
  assertErrors(await errorsOf(["--id=n1", "--data-dir=/d", "--advertise=https://127.0.0.1:7070"]), [
    /--advertise: https:\/\/127\.0\.0\.1:7070 must use http:\/\/ without --tls-cert/,
  ]);
});

Deno.test("an advertised URL that contradicts the peers entry is an error", async () => {
  assertErrors(
    await errorsOf([
      "--id=n1",
      "--data-dir=/d",
      "--advertise=http://127.0.0.1:7070",
      "--peers=n1=http://127.0.0.1:7071",
    ]),
    [/--advertise http:\/\/127\.0\.0\.1:7070 differs from this node's entry in --peers/],
  );
});

Deno.test("every broken relation between tunables is reported with both values", async () => {
  const errors = await errorsOf([
    "--id=n1",
    "--data-dir=/d",
    "--election-ticks=3",
    "--heartbeat-ticks=3",
    "--request-timeout-ms=9000",
    "--forward-timeout-ms=8000",
    "--value-bytes-max=2097152",
    "--proposal-bytes-max=1048576",
    "--uncommitted-bytes-max=524288",
    "--request-body-bytes-max=65536",
    "--segment-bytes=1048576",
  ]);
  assertErrors(errors, [
    /electionTicks \(3\) must be greater than heartbeatTicks \(3\)/,
    /forwardTimeoutMs \(8000\) must be at least requestTimeoutMs \(9000\)/,
    /proposalBytesMax \(1048576\) must be at least valueBytesMax \(2097152\) \+ 1056/,
    /proposalBytesMax \(1048576\) must not exceed uncommittedBytesMax \(524288\)/,
    /requestBodyBytesMax \(65536\) must be at least max\(appendBytesMax, proposalBytesMax\)/,
    /segmentBytes \(1048576\) must hold at least one largest entry/,
  ]);
  assertErrors(
    await errorsOf([
      "--id=n1",
      "--data-dir=/d",
      "--tick-ms=100",
      "--request-timeout-ms=500",
      "--forward-timeout-ms=500",
    ]),
    [/requestTimeoutMs \(500\) must exceed the election timeout \(600 ms\)/],
  );
});

Deno.test("config file problems are reported with the file, the key and the source", async () => {
  const errors = await errorsOf(
    ["--config=/c.json"],
    { EDGERAFT_VALUE_BYTES_MAX: "lots" },
    {
      "/c.json": JSON.stringify({
        id: "n1",
        dataDir: "/a",
        "data-dir": "/b",
        tickMS: 10,
        snapshotOnClose: "yes",
        electionTicks: 2.5,
        config: "/other.json",
      }),
    },
  );
  assertErrors(errors, [
    /config file "\/c\.json" key "data-dir": "dataDir" and "data-dir" name the same option/,
    /config file "\/c\.json" key "tickMS": unknown key/,
    /key "snapshotOnClose": must be true or false, got "yes"/,
    /key "electionTicks": must be a whole number, got 2\.5/,
    /key "config": unknown key \(config files do not nest\)/,
    /EDGERAFT_VALUE_BYTES_MAX: must be a whole number, got "lots"/,
  ]);
  assertErrors(await errorsOf(["--config=/nope.json"]), [
    /Cannot read config file "\/nope\.json"/,
    /--id is required/,
    /--data-dir is required/,
  ]);
  assertErrors(
    await errorsOf(["--config=/bad.json", "--id=n1", "--data-dir=/d"], {}, {
      "/bad.json": "{ id: ",
    }),
    [
      /Cannot parse config file "\/bad\.json"/,
    ],
  );
  assertErrors(
    await errorsOf(["--config=/arr.json", "--id=n1", "--data-dir=/d"], {}, { "/arr.json": "[]" }),
    [
      /must hold a JSON object/,
    ],
  );
});

Deno.test("the Raft configuration follows the tunables", async () => {
  const config = await ok([
    "--id=n1",
    "--data-dir=/d",
    "--election-ticks=10",
    "--heartbeat-ticks=2",
  ]);
  const raft = toRaftConfig(config);
  assert.equal(raft.id, "n1");
  assert.equal(raft.electionTicks, 10);
  assert.equal(raft.heartbeatTicks, 2);
  assert.equal(raft.preVote, true);
  assert.equal(raft.checkQuorum, true);
  assert.equal(raft.proposalBytesMax, config.proposalBytesMax);
  assert.deepEqual(validateRaftConfig(raft), []);
});

Deno.test("--join and --cluster-id default to off and come from flags, environment or file", async () => {
  const base = ["--id", "n1", "--data-dir", "/d"];
  const plain = await ok(base);
  assert.equal(plain.join, false);
  assert.equal(plain.clusterId, null);

  const flagged = await ok([
    ...base,
    "--join",
    "--cluster-id",
    "0123456789abcdef",
    "--peers",
    "n1=http://127.0.0.1:7070,n2=http://127.0.0.1:7071",
  ]);
  assert.equal(flagged.join, true);
  assert.equal(flagged.clusterId, "0123456789abcdef");

  const fromEnv = await ok(base, {
    EDGERAFT_JOIN: "true",
    EDGERAFT_CLUSTER_ID: "fedcba9876543210",
  });
  assert.deepEqual([fromEnv.join, fromEnv.clusterId], [true, "fedcba9876543210"]);

  const fromFile = await ok(["--config", "/c.json"], {}, {
    "/c.json": JSON.stringify({
      id: "n1",
      dataDir: "/d",
      join: true,
      "cluster-id": "00ff00ff00ff00ff",
    }),
  });
  assert.deepEqual([fromFile.join, fromFile.clusterId], [true, "00ff00ff00ff00ff"]);
  assert.equal((await ok([...base, "--no-join"], { EDGERAFT_JOIN: "1" })).join, false);
  assert.ok(serveUsage().includes("--join"));
  assert.ok(serveUsage().includes("EDGERAFT_CLUSTER_ID"));
});

Deno.test("--cluster-id must be 16 lowercase hex digits, like the ids edgeraft derives", async () => {
  const base = ["--id", "n1", "--data-dir", "/d"];
  for (const bad of ["0123456789ABCDEF", "0123456789abcde", "0123456789abcdef0", "c-test", "xyz"]) {
    assertErrors(await errorsOf([...base, "--cluster-id", bad]), [
      new RegExp(`--cluster-id: "${bad}" is not a cluster id \\(16 lowercase hex digits`),
    ]);
  }
  assertErrors(
    await errorsOf(base, { EDGERAFT_CLUSTER_ID: "nope" }),
    [/EDGERAFT_CLUSTER_ID: "nope" is not a cluster id/],
  );
  assertErrors(await errorsOf([...base, "--join=maybe"]), [/--join: is a switch/]);
});
