/**
 * The configuration of `edgeraft serve` (../shared/DESIGN.md, "Command line"), validated once
 * (STYLE.md item 14).
 *
 * Sources and precedence: command-line flags > environment (`EDGERAFT_<FLAG>`, e.g.
 * `EDGERAFT_DATA_DIR`) > the JSON config file (`--config FILE` or `EDGERAFT_CONFIG`) > defaults.
 * Config-file keys are camelCase (`"dataDir"`, canonical) or the flag name (`"data-dir"`); both
 * spellings of one option in the same file are an error. `peers` is `"ID=URL,..."` everywhere,
 * or in the file also an object `{"ID": "URL"}`. Relative paths are taken as given (relative to
 * the working directory, which is `/` under systemd): use absolute paths.
 *
 * {@linkcode parseServeConfig} reports every problem at once — unknown flags and keys, bad values,
 * and every broken relation between values — so an operator fixes a configuration in one round.
 * It reads the token, secret and TLS files itself (through the injected `readTextFile`, so tests
 * need no disk) and returns their trimmed contents; nothing downstream re-validates.
 *
 * Timing defaults (the target: after the leader is killed, the next write succeeds within a
 * median 600 ms). A tick is 50 ms; followers campaign after a random 6..12 ticks (300..600 ms)
 * without hearing from the leader, who heartbeats every tick (50 ms, six heartbeats per minimum
 * timeout, so one or two lost or delayed heartbeats do not depose a healthy leader). With two
 * surviving followers the first timer fires after the minimum of two uniform draws, a median of
 * about 390 ms after the last heartbeat; pre-vote, vote and the new leader's no-op take a few
 * round trips and fsyncs (~10-30 ms on a LAN), leaving ~150 ms for the client's retry. The
 * Raft core's own default of 10 ticks at 100 ms (1-2 s) would miss the target by far.
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { RaftConfig } from "../raft/types.ts";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from "../util/logger.ts";
import { isClusterId } from "./cluster_identity.ts";

/** One peer of the bootstrap membership. */
export interface PeerAddress {
  readonly id: string;
  /** The peer's advertised base URL (origin only, no trailing slash). */
  readonly url: string;
}

/** TLS material, read from the files named by `--tls-cert`, `--tls-key`, `--tls-ca`. */
export interface TlsConfig {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string | null;
  readonly cert: string;
  readonly key: string;
  /** PEM of the CA that signs peer certificates, or null for the system roots. */
  readonly ca: string | null;
}

/** The validated configuration of `edgeraft serve`. Durations and sizes carry their unit. */
export interface ServeConfig {
  readonly id: string;
  readonly dataDir: string;
  readonly listen: { readonly hostname: string; readonly port: number };
  /** Whether `listen` is a loopback address (then no token is required). */
  readonly listenIsLoopback: boolean;
  /** This node's URL as peers and forwarding clients reach it (origin, no trailing slash). */
  readonly advertiseUrl: string;
  /** Bootstrap membership, sorted by id; empty when the data directory is already initialised. */
  readonly peers: readonly PeerAddress[];
  /**
   * `--join`: bootstrap an empty data directory as a replacement member of an existing cluster
   * (same id as the node whose data was lost): it neither votes nor campaigns until it caught
   * up from the leader. Ignored, with a warning in the log, for an initialised data directory
   * (so it may stay in a unit file or config); docs/ARCHITECTURE.md, "Replacing a node".
   */
  readonly join: boolean;
  /**
   * `--cluster-id`: the cluster id to bootstrap an empty data directory with, instead of the
   * one derived from `--peers` (a node of a restored cluster, whose id the archive and the
   * peers determine). Checked against an initialised directory's id. 16 lowercase hex digits.
   */
  readonly clusterId: string | null;
  readonly configFile: string | null;
  /** Client bearer token, or null (open node: loopback or `--insecure` only). */
  readonly token: string | null;
  /** Admin bearer token (backup, restore), or null: then the client token is also admin. */
  readonly adminToken: string | null;
  /** Shared secret that authenticates peer requests (HMAC-SHA256), or null. */
  readonly clusterSecret: string | null;
  readonly tls: TlsConfig | null;
  readonly insecure: boolean;
  readonly logFormat: LogFormat;
  readonly logLevel: LogLevel;

  /** Length of one Raft tick. */
  readonly tickMs: number;
  /** Followers campaign after a random [electionTicks, 2·electionTicks) ticks of silence. */
  readonly electionTicks: number;
  /** The leader heartbeats every heartbeatTicks; less than electionTicks. */
  readonly heartbeatTicks: number;
  /** Deadline of a client request inside the node (then `ERR_TIMEOUT`). */
  readonly requestTimeoutMs: number;
  /** Deadline of a write forwarded to the leader; at least requestTimeoutMs. */
  readonly forwardTimeoutMs: number;
  /** Deadline of a graceful shutdown (drain, snapshot) before the process exits anyway. */
  readonly shutdownTimeoutMs: number;
  /** Take a snapshot after this many entries applied since the last one. */
  readonly snapshotEntries: number;
  /** Also take a snapshot this often when anything changed; 0 disables. */
  readonly snapshotIntervalS: number;
  /** Snapshots kept on disk (the newest ones). */
  readonly snapshotsKeep: number;
  /** Take a snapshot on clean shutdown (faster restart). */
  readonly snapshotOnClose: boolean;
  /** Largest value of a PUT (413 `ERR_VALUE_TOO_LARGE` beyond). */
  readonly valueBytesMax: number;
  /** Largest request body buffered in memory (peer messages, admin JSON); archives stream. */
  readonly requestBodyBytesMax: number;
  /** Size at which a log segment file is closed and a new one started. */
  readonly segmentBytes: number;
  /** Most entry bytes in one append message to a follower. */
  readonly appendBytesMax: number;
  /** Appends in flight per follower. */
  readonly inflightAppendsMax: number;
  /** Bytes of proposed but uncommitted entries the leader accepts before refusing writes. */
  readonly uncommittedBytesMax: number;
  /** Largest encoded KV command; at least valueBytesMax plus the largest key and framing. */
  readonly proposalBytesMax: number;
  /** Most keys one list request returns. */
  readonly listLimitMax: number;
}

/** Options of {@linkcode parseServeConfig}. */
export interface ParseServeConfigOptions {
  /** Reads a UTF-8 file (token, secret, TLS and config files); rejects when it cannot. */
  readonly readTextFile: (path: string) => Promise<string>;
}

/** The outcome of {@linkcode parseServeConfig}: a config or every problem found. */
export type ServeConfigResult =
  | { readonly ok: true; readonly config: ServeConfig; readonly warnings: readonly string[] }
  | {
    readonly ok: false;
    readonly errors: readonly string[];
    readonly warnings: readonly string[];
  };

type OptionType = "string" | "integer" | "boolean";

/** One option of `edgeraft serve`. */
export interface ServeOption {
  /** The flag without dashes, e.g. `data-dir`. */
  readonly flag: string;
  /** The config-file key and {@linkcode ServeConfig} field, e.g. `dataDir`. */
  readonly key: string;
  readonly type: OptionType;
  /** Default; `undefined` for required or absent-by-default options. */
  readonly default?: string | number | boolean;
  readonly min?: number;
  readonly max?: number;
  /** False for `--config` itself, which cannot come from the file. */
  readonly inFile: boolean;
  readonly help: string;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** Encoded KV command overhead beyond the value: the largest key (1024) plus header and revision. */
export const KV_COMMAND_OVERHEAD_BYTES = 1024 + 32;
/** Peer message framing allowed beyond the entry bytes of one append. */
export const PEER_FRAMING_BYTES = 64 * KiB;

function option(
  flag: string,
  type: OptionType,
  help: string,
  extra: { default?: string | number | boolean; min?: number; max?: number; inFile?: boolean } = {},
): ServeOption {
  const key = flag.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
  return { flag, key, type, help, inFile: extra.inFile ?? true, ...extra };
}

/** Every option of `edgeraft serve`, in help order. */
export const SERVE_OPTIONS: readonly ServeOption[] = [
  option("id", "string", "This node's id (letters, digits, '.', '_', '-'; at most 64)"),
  option("data-dir", "string", "Directory of the log, snapshots and hard state"),
  option("listen", "string", "HOST:PORT to serve HTTP on", { default: "127.0.0.1:7070" }),
  option(
    "advertise",
    "string",
    "URL peers and clients reach this node at (default from --peers or --listen)",
  ),
  option("peers", "string", "Bootstrap membership ID=URL,... (empty data directory only)"),
  option(
    "join",
    "boolean",
    "Bootstrap an empty data directory as a replacement member of an existing cluster; " +
      "it votes only once caught up from the leader",
    { default: false },
  ),
  option(
    "cluster-id",
    "string",
    "Cluster id (16 lowercase hex) for an empty data directory; default derived from --peers",
  ),
  option("config", "string", "JSON config file", { inFile: false }),
  option("token-file", "string", "File holding the client bearer token"),
  option("admin-token-file", "string", "File holding the admin bearer token (backup, restore)"),
  option("cluster-secret-file", "string", "File holding the secret that authenticates peers"),
  option("tls-cert", "string", "PEM certificate chain file (enables HTTPS)"),
  option("tls-key", "string", "PEM private key file"),
  option("tls-ca", "string", "PEM CA file to verify peers' certificates"),
  option("insecure", "boolean", "Allow a non-loopback listen address without token and secret", {
    default: false,
  }),
  option("log-format", "string", "json or text", { default: "json" }),
  option("log-level", "string", "debug, info, warn or error", { default: "info" }),
  option("tick-ms", "integer", "Raft tick length", { default: 50, min: 1, max: 10_000 }),
  option("election-ticks", "integer", "Election timeout in ticks (randomised up to twice that)", {
    default: 6,
    min: 2,
    max: 10_000,
  }),
  option("heartbeat-ticks", "integer", "Heartbeat interval in ticks", {
    default: 1,
    min: 1,
    max: 10_000,
  }),
  option("request-timeout-ms", "integer", "Deadline of a client request", {
    default: 5_000,
    min: 10,
    max: 600_000,
  }),
  option("forward-timeout-ms", "integer", "Deadline of a write forwarded to the leader", {
    default: 6_000,
    min: 10,
    max: 600_000,
  }),
  option("shutdown-timeout-ms", "integer", "Deadline of a graceful shutdown", {
    default: 20_000,
    min: 100,
    max: 600_000,
  }),
  option("snapshot-entries", "integer", "Snapshot after this many applied entries", {
    default: 10_000,
    min: 1,
    max: 1_000_000_000,
  }),
  option(
    "snapshot-interval-s",
    "integer",
    "Snapshot at least this often if anything changed; 0 = never",
    {
      default: 3_600,
      min: 0,
      max: 7 * 24 * 3_600,
    },
  ),
  option("snapshots-keep", "integer", "Snapshots kept on disk", { default: 2, min: 1, max: 100 }),
  option("snapshot-on-close", "boolean", "Snapshot on clean shutdown", { default: true }),
  option("value-bytes-max", "integer", "Largest value of a PUT", {
    default: MiB,
    min: 1,
    max: 64 * MiB,
  }),
  option("request-body-bytes-max", "integer", "Largest request body buffered in memory", {
    default: 4 * MiB,
    min: 64 * KiB,
    max: 1 * GiB,
  }),
  option("segment-bytes", "integer", "Log segment size", {
    default: 64 * MiB,
    min: MiB,
    max: 4 * GiB,
  }),
  option("append-bytes-max", "integer", "Most entry bytes per append message", {
    default: MiB,
    min: KiB,
    max: 256 * MiB,
  }),
  option("inflight-appends-max", "integer", "Appends in flight per follower", {
    default: 256,
    min: 1,
    max: 65_536,
  }),
  option("uncommitted-bytes-max", "integer", "Uncommitted bytes the leader accepts", {
    default: 64 * MiB,
    min: KiB,
    max: 16 * GiB,
  }),
  option(
    "proposal-bytes-max",
    "integer",
    "Largest encoded command (default valueBytesMax + 1056)",
    {
      min: 64,
      max: 1 * GiB,
    },
  ),
  option("list-limit-max", "integer", "Most keys one list request returns", {
    default: 10_000,
    min: 1,
    max: 1_000_000,
  }),
];

const BY_FLAG = new Map(SERVE_OPTIONS.map((o) => [o.flag, o]));
const BY_FILE_KEY = new Map<string, ServeOption>();
for (const o of SERVE_OPTIONS) {
  if (!o.inFile) continue;
  BY_FILE_KEY.set(o.key, o);
  BY_FILE_KEY.set(o.flag, o);
}

/** The environment variable of a flag: `data-dir` → `EDGERAFT_DATA_DIR`. */
export function envName(flag: string): string {
  return `EDGERAFT_${flag.toUpperCase().replace(/-/g, "_")}`;
}
const BY_ENV = new Map(SERVE_OPTIONS.map((o) => [envName(o.flag), o]));

type Value = string | number | boolean;
/** A raw value and where it came from, for error messages. */
interface Sourced {
  readonly value: unknown;
  readonly source: string;
}

const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const TOKEN_CHARS = /^[\x21-\x7e]+$/;
/** Shortest accepted bearer token and cluster secret, in characters. */
export const TOKEN_CHARS_MIN = 16;
export const SECRET_CHARS_MIN = 32;

/**
 * Parses and validates `edgeraft serve`'s arguments (without the `serve` word), environment and
 * config file. Never throws for bad input: every problem is in `errors`.
 */
export async function parseServeConfig(
  args: readonly string[],
  env: Readonly<Record<string, string>>,
  options: ParseServeConfigOptions,
): Promise<ServeConfigResult> {
  const errors: string[] = [];
  const warnings: string[] = [];
  const flags = parseFlags(args, errors);
  const fromEnv = parseEnv(env, warnings);

  // The config file: named by flag or environment only.
  const configRef = flags.get("config") ?? fromEnv.get("config");
  let configFile: string | null = null;
  let fromFile = new Map<string, Sourced>();
  if (configRef !== undefined) {
    if (typeof configRef.value !== "string" || configRef.value === "") {
      errors.push(`${configRef.source}: needs a file name`);
    } else {
      configFile = configRef.value;
      fromFile = await parseConfigFile(configFile, options.readTextFile, errors);
    }
  }

  // Merge: flags > env > file > defaults; coerce and range-check each value once.
  const values = new Map<string, Value | undefined>();
  const sources = new Map<string, string>();
  for (const o of SERVE_OPTIONS) {
    const raw = flags.get(o.flag) ?? fromEnv.get(o.flag) ?? fromFile.get(o.flag);
    if (raw === undefined) {
      values.set(o.flag, o.default);
      sources.set(o.flag, `--${o.flag} (default)`);
      continue;
    }
    sources.set(o.flag, raw.source);
    values.set(o.flag, coerce(o, raw, errors));
  }
  const str = (flag: string): string | undefined => {
    const v = values.get(flag);
    return typeof v === "string" && v !== "" ? v : undefined;
  };
  const int = (flag: string): number => {
    const v = values.get(flag);
    return typeof v === "number" ? v : NaN;
  };
  const bool = (flag: string): boolean => values.get(flag) === true;
  const src = (flag: string): string => sources.get(flag) ?? `--${flag}`;

  // Identity.
  const id = str("id");
  if (id === undefined) {
    errors.push('--id is required (or EDGERAFT_ID, or "id" in the config file)');
  } else if (!NODE_ID.test(id)) {
    errors.push(
      `${src("id")}: node id ${JSON.stringify(id)} must be 1-64 letters, digits, ".", "_" or "-"`,
    );
  }
  const dataDir = str("data-dir");
  if (dataDir === undefined) {
    errors.push('--data-dir is required (or EDGERAFT_DATA_DIR, or "dataDir" in the config file)');
  }

  // Listening address.
  const listen = parseListen(str("listen") ?? "", src("listen"), errors);

  // TLS.
  const tlsCert = str("tls-cert");
  const tlsKey = str("tls-key");
  const tlsCa = str("tls-ca");
  if (tlsCert !== undefined && tlsKey === undefined) {
    errors.push(`${src("tls-cert")} requires --tls-key`);
  }
  if (tlsKey !== undefined && tlsCert === undefined) {
    errors.push(`${src("tls-key")} requires --tls-cert`);
  }
  if (tlsCa !== undefined && tlsCert === undefined) {
    errors.push(`${src("tls-ca")} requires --tls-cert and --tls-key`);
  }
  let tls: TlsConfig | null = null;
  if (tlsCert !== undefined && tlsKey !== undefined) {
    const [cert, key, ca] = await Promise.all([
      readPem(tlsCert, src("tls-cert"), options.readTextFile, errors),
      readPem(tlsKey, src("tls-key"), options.readTextFile, errors),
      tlsCa === undefined ? null : readPem(tlsCa, src("tls-ca"), options.readTextFile, errors),
    ]);
    if (cert !== null && key !== null) {
      tls = { certFile: tlsCert, keyFile: tlsKey, caFile: tlsCa ?? null, cert, key, ca };
    }
  }
  const scheme = tlsCert !== undefined ? "https" : "http";

  // Peers and the advertised URL.
  const peers = parsePeers(values.get("peers"), src("peers"), errors);
  const advertiseGiven = str("advertise");
  let advertiseUrl: string | null = null;
  if (advertiseGiven !== undefined) {
    advertiseUrl = parseBaseUrl(advertiseGiven, src("advertise"), errors);
  } else if (id !== undefined && peers.some((p) => p.id === id)) {
    advertiseUrl = peers.find((p) => p.id === id)!.url;
  } else if (listen !== null) {
    if (isWildcard(listen.hostname)) {
      errors.push(
        `--advertise is required when ${
          src("listen")
        } is the wildcard address ${listen.hostname} (peers need a reachable URL)`,
      );
    } else {
      const host = listen.hostname.includes(":") ? `[${listen.hostname}]` : listen.hostname;
      advertiseUrl = `${scheme}://${host}:${listen.port}`;
    }
  }
  if (advertiseUrl !== null && !advertiseUrl.startsWith(`${scheme}:`)) {
    errors.push(
      `${src("advertise")}: ${advertiseUrl} must use ${scheme}:// ${
        scheme === "https" ? "because TLS is configured" : "without --tls-cert"
      }`,
    );
  }
  if (peers.length > 0 && id !== undefined) {
    const self = peers.find((p) => p.id === id);
    if (self === undefined) {
      errors.push(
        `${src("peers")}: this node's id ${JSON.stringify(id)} is not among the peers (${
          peers.map((p) => p.id).join(", ")
        })`,
      );
    } else if (advertiseGiven !== undefined && advertiseUrl !== null && self.url !== advertiseUrl) {
      errors.push(
        `${src("advertise")} ${advertiseUrl} differs from this node's entry in ${
          src("peers")
        } (${self.url})`,
      );
    }
  }
  for (const peer of peers) {
    if (!peer.url.startsWith(`${scheme}:`)) {
      errors.push(
        `${src("peers")}: peer ${peer.id} URL ${peer.url} must use ${scheme}:// like this node`,
      );
    }
  }

  // Bootstrap identity.
  const join = bool("join");
  const clusterId = str("cluster-id") ?? null;
  if (clusterId !== null && !isClusterId(clusterId)) {
    errors.push(
      `${src("cluster-id")}: ${
        JSON.stringify(clusterId)
      } is not a cluster id (16 lowercase hex digits, as in edgeraft status)`,
    );
  }

  // Secrets.
  const token = await readSecret(
    str("token-file"),
    src("token-file"),
    "token",
    TOKEN_CHARS_MIN,
    options,
    errors,
  );
  const adminToken = await readSecret(
    str("admin-token-file"),
    src("admin-token-file"),
    "admin token",
    TOKEN_CHARS_MIN,
    options,
    errors,
  );
  const clusterSecret = await readSecret(
    str("cluster-secret-file"),
    src("cluster-secret-file"),
    "cluster secret",
    SECRET_CHARS_MIN,
    options,
    errors,
  );
  if (token !== null && adminToken !== null && token === adminToken) {
    errors.push(`${src("admin-token-file")}: the admin token must differ from the client token`);
  }
  if (adminToken !== null && token === null && str("token-file") === undefined) {
    errors.push(`${src("admin-token-file")} requires --token-file (the client token)`);
  }
  const insecure = bool("insecure");
  const listenIsLoopback = listen !== null && isLoopback(listen.hostname);
  if (listen !== null && !listenIsLoopback && !insecure) {
    const missing = [
      str("token-file") === undefined ? "--token-file" : null,
      str("cluster-secret-file") === undefined ? "--cluster-secret-file" : null,
    ].filter((m) => m !== null);
    if (missing.length > 0) {
      errors.push(
        `${src("listen")}: listening on non-loopback ${listen.hostname} needs ${
          missing.join(" and ")
        } (or --insecure to run an open node deliberately)`,
      );
    }
  }
  if (insecure && listenIsLoopback) {
    warnings.push("--insecure has no effect on a loopback listen address");
  }

  // Logging.
  const logFormat = values.get("log-format");
  if (typeof logFormat === "string" && !(LOG_FORMATS as readonly string[]).includes(logFormat)) {
    errors.push(
      `${src("log-format")}: must be one of ${LOG_FORMATS.join(", ")}, got ${
        JSON.stringify(logFormat)
      }`,
    );
  }
  const logLevel = values.get("log-level");
  if (typeof logLevel === "string" && !(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    errors.push(
      `${src("log-level")}: must be one of ${LOG_LEVELS.join(", ")}, got ${
        JSON.stringify(logLevel)
      }`,
    );
  }

  // Relations between tunables (each reported with both values).
  const valueBytesMax = int("value-bytes-max");
  const proposalGiven = values.get("proposal-bytes-max");
  const proposalBytesMax = typeof proposalGiven === "number"
    ? proposalGiven
    : valueBytesMax + KV_COMMAND_OVERHEAD_BYTES;
  const relation = (ok: boolean, message: string) => {
    if (!ok) errors.push(message);
  };
  const electionTicks = int("election-ticks");
  const heartbeatTicks = int("heartbeat-ticks");
  relation(
    !(electionTicks <= heartbeatTicks),
    `electionTicks (${electionTicks}) must be greater than heartbeatTicks (${heartbeatTicks})`,
  );
  relation(
    !(int("forward-timeout-ms") < int("request-timeout-ms")),
    `forwardTimeoutMs (${int("forward-timeout-ms")}) must be at least requestTimeoutMs (${
      int("request-timeout-ms")
    }), or followers give up before the leader answers`,
  );
  relation(
    !(int("request-timeout-ms") <= electionTicks * int("tick-ms")),
    `requestTimeoutMs (${int("request-timeout-ms")}) must exceed the election timeout (${
      electionTicks * int("tick-ms")
    } ms), or writes time out during every election`,
  );
  relation(
    !(proposalBytesMax < valueBytesMax + KV_COMMAND_OVERHEAD_BYTES),
    `proposalBytesMax (${proposalBytesMax}) must be at least valueBytesMax (${valueBytesMax}) + ${KV_COMMAND_OVERHEAD_BYTES} (largest key and framing)`,
  );
  relation(
    !(proposalBytesMax > int("uncommitted-bytes-max")),
    `proposalBytesMax (${proposalBytesMax}) must not exceed uncommittedBytesMax (${
      int("uncommitted-bytes-max")
    })`,
  );
  const appendBodyMax = Math.max(int("append-bytes-max"), proposalBytesMax) + PEER_FRAMING_BYTES;
  relation(
    !(int("request-body-bytes-max") < appendBodyMax),
    `requestBodyBytesMax (${
      int("request-body-bytes-max")
    }) must be at least max(appendBytesMax, proposalBytesMax) + ${PEER_FRAMING_BYTES} (${appendBodyMax}) to receive one append`,
  );
  relation(
    !(int("segment-bytes") < proposalBytesMax + PEER_FRAMING_BYTES),
    `segmentBytes (${int("segment-bytes")}) must hold at least one largest entry (${
      proposalBytesMax + PEER_FRAMING_BYTES
    })`,
  );

  if (errors.length > 0) return { ok: false, errors, warnings };
  const config: ServeConfig = {
    id: id!,
    dataDir: dataDir!,
    listen: listen!,
    listenIsLoopback,
    advertiseUrl: advertiseUrl!,
    peers,
    join,
    clusterId,
    configFile,
    token,
    adminToken,
    clusterSecret,
    tls,
    insecure,
    logFormat: logFormat as LogFormat,
    logLevel: logLevel as LogLevel,
    tickMs: int("tick-ms"),
    electionTicks,
    heartbeatTicks,
    requestTimeoutMs: int("request-timeout-ms"),
    forwardTimeoutMs: int("forward-timeout-ms"),
    shutdownTimeoutMs: int("shutdown-timeout-ms"),
    snapshotEntries: int("snapshot-entries"),
    snapshotIntervalS: int("snapshot-interval-s"),
    snapshotsKeep: int("snapshots-keep"),
    snapshotOnClose: bool("snapshot-on-close"),
    valueBytesMax,
    requestBodyBytesMax: int("request-body-bytes-max"),
    segmentBytes: int("segment-bytes"),
    appendBytesMax: int("append-bytes-max"),
    inflightAppendsMax: int("inflight-appends-max"),
    uncommittedBytesMax: int("uncommitted-bytes-max"),
    proposalBytesMax,
    listLimitMax: int("list-limit-max"),
  };
  return { ok: true, config, warnings };
}

/** Reads the real command line, environment and files (the thin wrapper around the parser). */
export function loadServeConfig(
  args: readonly string[] = Deno.args,
  env: Readonly<Record<string, string>> = Deno.env.toObject(),
): Promise<ServeConfigResult> {
  return parseServeConfig(args, env, { readTextFile: (path) => Deno.readTextFile(path) });
}

/** The core's tunables for a validated configuration. */
export function toRaftConfig(config: ServeConfig): RaftConfig {
  return {
    id: config.id,
    electionTicks: config.electionTicks,
    heartbeatTicks: config.heartbeatTicks,
    preVote: true,
    checkQuorum: true,
    inflightAppendsMax: config.inflightAppendsMax,
    appendBytesMax: config.appendBytesMax,
    uncommittedBytesMax: config.uncommittedBytesMax,
    proposalBytesMax: config.proposalBytesMax,
    applyBytesMax: Math.max(4 * MiB, config.proposalBytesMax),
  };
}

/** `config` with secrets replaced, for the start-up log line. */
export function redactedConfig(config: ServeConfig): Record<string, unknown> {
  const redact = (secret: string | null) => (secret === null ? null : "<redacted>");
  return {
    ...config,
    token: redact(config.token),
    adminToken: redact(config.adminToken),
    clusterSecret: redact(config.clusterSecret),
    tls: config.tls === null
      ? null
      : { certFile: config.tls.certFile, keyFile: config.tls.keyFile, caFile: config.tls.caFile },
  };
}

/** Help text of `edgeraft serve`, generated from {@linkcode SERVE_OPTIONS}. */
export function serveUsage(): string {
  const lines = ["Usage: edgeraft serve --id ID --data-dir DIR [options]", "", "Options:"];
  for (const o of SERVE_OPTIONS) {
    const value = o.type === "boolean" ? "" : o.type === "integer" ? " N" : " VALUE";
    const def = o.default === undefined ? "" : ` (default ${o.default})`;
    lines.push(`  --${o.flag}${value}`.padEnd(34) + `${o.help}${def}  [${envName(o.flag)}]`);
  }
  lines.push(
    "",
    "Precedence: flags > EDGERAFT_* environment > config file (camelCase keys) > defaults.",
  );
  return lines.join("\n");
}

// --- sources --------------------------------------------------------------------------------

function parseFlags(args: readonly string[], errors: string[]): Map<string, Sourced> {
  const parseOptions: Record<string, { type: "string" | "boolean" }> = {};
  for (const o of SERVE_OPTIONS) {
    parseOptions[o.flag] = { type: o.type === "boolean" ? "boolean" : "string" };
  }
  // parseArgs would take "--next-flag" as the value of a value-taking flag given without one
  // ("--log-level --tick-ms=5"); mark such a flag as empty so the next flag is parsed on its own.
  const prepared = args.map((arg, i) => {
    const o = arg.startsWith("--") && !arg.includes("=") ? BY_FLAG.get(arg.slice(2)) : undefined;
    const next = args[i + 1];
    return o !== undefined && o.type !== "boolean" && (next === undefined || next.startsWith("--"))
      ? `${arg}=`
      : arg;
  });
  const { tokens } = parseArgs({
    args: prepared,
    options: parseOptions,
    strict: false,
    allowPositionals: true,
    allowNegative: true,
    tokens: true,
  });
  const out = new Map<string, Sourced>();
  for (const token of tokens) {
    if (token.kind === "positional") {
      errors.push(`unexpected argument ${JSON.stringify(token.value)}`);
      continue;
    }
    if (token.kind !== "option") continue;
    let o = BY_FLAG.get(token.name);
    let value: unknown = token.value;
    if (o === undefined && token.name.startsWith("no-")) {
      const positive = BY_FLAG.get(token.name.slice(3));
      if (positive?.type === "boolean" && token.value === undefined) {
        o = positive;
        value = false;
      }
    }
    if (o === undefined || !token.rawName.startsWith("--")) {
      errors.push(`unknown flag ${token.rawName}`);
      continue;
    }
    const source = `--${o.flag}`;
    if (out.has(o.flag)) {
      errors.push(`${source} given more than once`);
      continue;
    }
    if (o.type === "boolean") {
      if (value === undefined) value = true;
      else if (value === "true" || value === "false") value = value === "true";
      else if (value !== false) {
        errors.push(`${source}: is a switch; write --${o.flag} or --no-${o.flag}`);
        continue;
      }
    } else if (value === undefined || value === "") {
      errors.push(`${source} needs a value`);
      continue;
    }
    out.set(o.flag, { value, source });
  }
  return out;
}

function parseEnv(env: Readonly<Record<string, string>>, warnings: string[]): Map<string, Sourced> {
  const out = new Map<string, Sourced>();
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith("EDGERAFT_")) continue;
    const o = BY_ENV.get(name);
    if (o === undefined) {
      warnings.push(`ignoring unknown environment variable ${name}`);
      continue;
    }
    let value: unknown = env[name];
    if (o.type === "boolean") value = parseBooleanText(String(value)) ?? value;
    out.set(o.flag, { value, source: name });
  }
  return out;
}

async function parseConfigFile(
  path: string,
  readTextFile: (path: string) => Promise<string>,
  errors: string[],
): Promise<Map<string, Sourced>> {
  const out = new Map<string, Sourced>();
  let text: string;
  try {
    text = await readTextFile(path);
  } catch (error) {
    errors.push(`Cannot read config file "${path}": ${describe(error)}`);
    return out;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    errors.push(`Cannot parse config file "${path}": ${describe(error)}`);
    return out;
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    errors.push(`Config file "${path}" must hold a JSON object`);
    return out;
  }
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    const o = BY_FILE_KEY.get(key);
    const source = `config file "${path}" key "${key}"`;
    if (o === undefined) {
      errors.push(`${source}: unknown key${key === "config" ? " (config files do not nest)" : ""}`);
      continue;
    }
    if (out.has(o.flag)) {
      errors.push(`${source}: "${o.key}" and "${o.flag}" name the same option; keep one`);
      continue;
    }
    out.set(o.flag, { value, source });
  }
  return out;
}

function coerce(o: ServeOption, raw: Sourced, errors: string[]): Value | undefined {
  const { value, source } = raw;
  switch (o.type) {
    case "boolean":
      if (typeof value === "boolean") return value;
      errors.push(`${source}: must be true or false, got ${JSON.stringify(value)}`);
      return undefined;
    case "integer": {
      const n = typeof value === "number"
        ? value
        : typeof value === "string" && /^\d{1,16}$/.test(value.trim())
        ? Number(value.trim())
        : NaN;
      if (!Number.isSafeInteger(n)) {
        errors.push(`${source}: must be a whole number, got ${JSON.stringify(value)}`);
        return undefined;
      }
      if ((o.min !== undefined && n < o.min) || (o.max !== undefined && n > o.max)) {
        errors.push(`${source}: must be from ${o.min} to ${o.max}, got ${n}`);
        return undefined;
      }
      return n;
    }
    case "string":
      if (
        o.flag === "peers" && value !== null && typeof value === "object" && !Array.isArray(value)
      ) {
        // The config file may give peers as {"id": "url"}.
        const entries = Object.entries(value as Record<string, unknown>);
        if (entries.every(([, url]) => typeof url === "string")) {
          return entries.map(([id, url]) => `${id}=${url}`).join(",");
        }
      }
      if (typeof value === "string") return value;
      errors.push(`${source}: must be a string, got ${JSON.stringify(value)}`);
      return undefined;
  }
}

// --- values ---------------------------------------------------------------------------------

function parseListen(
  text: string,
  source: string,
  errors: string[],
): { hostname: string; port: number } | null {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s\[\]]+)):(\d{1,5})$/.exec(text);
  if (match === null) {
    errors.push(
      `${source}: expected HOST:PORT (e.g. 127.0.0.1:7070 or [::1]:7070), got ${
        JSON.stringify(text)
      }`,
    );
    return null;
  }
  const hostname = match[1] ?? match[2]!;
  const port = Number(match[3]);
  if (port < 1 || port > 65535) {
    errors.push(`${source}: port must be from 1 to 65535, got ${port}`);
    return null;
  }
  return { hostname, port };
}

/** Parses `--peers` (`ID=URL,...`), sorted by id; every problem is pushed to `errors`. */
export function parsePeers(
  value: Value | undefined,
  source: string,
  errors: string[],
): PeerAddress[] {
  if (typeof value !== "string" || value.trim() === "") return [];
  const peers: PeerAddress[] = [];
  const seenIds = new Set<string>();
  const seenUrls = new Map<string, string>();
  for (const part of value.split(",")) {
    const entry = part.trim();
    const eq = entry.indexOf("=");
    if (eq <= 0) {
      errors.push(`${source}: expected ID=URL, got ${JSON.stringify(entry)}`);
      continue;
    }
    const id = entry.slice(0, eq);
    if (!NODE_ID.test(id)) {
      errors.push(
        `${source}: peer id ${JSON.stringify(id)} must be 1-64 letters, digits, ".", "_" or "-"`,
      );
      continue;
    }
    const url = parseBaseUrl(entry.slice(eq + 1), `${source}: peer ${id}`, errors);
    if (seenIds.has(id)) {
      errors.push(`${source}: duplicate peer id ${JSON.stringify(id)}`);
      continue;
    }
    seenIds.add(id);
    if (url === null) continue;
    const other = seenUrls.get(url);
    if (other !== undefined) {
      errors.push(`${source}: peers ${other} and ${id} share the URL ${url}`);
      continue;
    }
    seenUrls.set(url, id);
    peers.push({ id, url });
  }
  return peers.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** A node's base URL: http(s), a host, no credentials, path, query or fragment. */
function parseBaseUrl(text: string, source: string, errors: string[]): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    errors.push(
      `${source}: ${JSON.stringify(text)} is not a URL (expected e.g. http://10.0.0.1:7070)`,
    );
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    errors.push(`${source}: ${JSON.stringify(text)} must be an http:// or https:// URL`);
    return null;
  }
  if (
    url.username !== "" || url.password !== "" || (url.pathname !== "/" && url.pathname !== "") ||
    url.search !== "" || url.hash !== ""
  ) {
    errors.push(
      `${source}: ${
        JSON.stringify(text)
      } must be a bare scheme://host:port without path, query or credentials`,
    );
    return null;
  }
  if (isWildcard(url.hostname.replace(/^\[|\]$/g, ""))) {
    errors.push(
      `${source}: ${JSON.stringify(text)} is a wildcard address that peers cannot connect to`,
    );
    return null;
  }
  return url.origin;
}

function isWildcard(hostname: string): boolean {
  return hostname === "0.0.0.0" || hostname === "::" || /^[0:]+$/.test(hostname);
}

/** Loopback: localhost, 127.0.0.0/8, ::1. */
export function isLoopback(hostname: string): boolean {
  const host = hostname.toLowerCase();
  return host === "localhost" || host === "::1" || /^0*:(0*:)*0*1$/.test(host) ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

async function readSecret(
  path: string | undefined,
  source: string,
  what: string,
  minChars: number,
  options: ParseServeConfigOptions,
  errors: string[],
): Promise<string | null> {
  if (path === undefined) return null;
  let text: string;
  try {
    text = (await options.readTextFile(path)).trim();
  } catch (error) {
    errors.push(`${source}: cannot read ${what} file "${path}": ${describe(error)}`);
    return null;
  }
  if (text === "") {
    errors.push(`${source}: ${what} file "${path}" is empty`);
    return null;
  }
  if (!TOKEN_CHARS.test(text)) {
    errors.push(
      `${source}: ${what} in "${path}" must be one line of printable ASCII without spaces`,
    );
    return null;
  }
  if (text.length < minChars) {
    errors.push(
      `${source}: ${what} in "${path}" is ${text.length} characters; use at least ${minChars} (e.g. openssl rand -hex 32)`,
    );
    return null;
  }
  return text;
}

async function readPem(
  path: string,
  source: string,
  readTextFile: (path: string) => Promise<string>,
  errors: string[],
): Promise<string | null> {
  let text: string;
  try {
    text = await readTextFile(path);
  } catch (error) {
    errors.push(`${source}: cannot read "${path}": ${describe(error)}`);
    return null;
  }
  if (!text.includes("-----BEGIN ")) {
    errors.push(`${source}: "${path}" is not a PEM file`);
    return null;
  }
  return text;
}

function parseBooleanText(text: string): boolean | undefined {
  const t = text.trim().toLowerCase();
  if (t === "true" || t === "1" || t === "yes" || t === "on") return true;
  if (t === "false" || t === "0" || t === "no" || t === "off" || t === "") return false;
  return undefined;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
