/**
 * `edgeraft serve`: assembles one node from a validated {@linkcode ServeConfig} and runs it
 * until SIGTERM or SIGINT.
 *
 * One Hono app serves both audiences on one port: the client API (`/v1/*`, `/healthz`,
 * `/readyz`, `/metrics`; src/http/client_app.ts) and the peer transport (`/raft/*`;
 * src/transport/peer_routes.ts). The node driver (src/node/raft_node.ts) is the only place
 * with I/O and timers behind them.
 *
 * Shutdown order: stop accepting connections, hand leadership to the most caught-up
 * follower, snapshot when `snapshotOnClose`, sync and close storage, exit 0. A second signal,
 * or `shutdownTimeoutMs`, exits at once (non-zero).
 *
 * @module
 */

import { Hono } from "hono";
import { installErrorHandlers } from "./http/errors.ts";
import { registerClientRoutes } from "./http/client_app.ts";
import { type ServeConfig, toRaftConfig } from "./node/config.ts";
import { createNodeMetrics, MetricsRegistry } from "./node/metrics.ts";
import { openNode } from "./node/open_node.ts";
import type { RaftNode } from "./node/raft_node.ts";
import { HttpPeerTransport } from "./transport/http_peer_transport.ts";
import {
  importPeerKey,
  PEER_HEADERS,
  PeerVerifier,
  signPeerRequest,
} from "./transport/peer_auth.ts";
import type { PeerAuthenticator } from "./transport/peer_routes.ts";
import { createPeerRoutes } from "./transport/peer_routes.ts";
import type { PeerSigner } from "./transport/peer_signer.ts";
import { createLogger, type Logger } from "./util/logger.ts";
import { DenoFileSystem } from "./storage/fs.ts";
import { TimedFileSystem } from "./storage/timed_fs.ts";
import { writeBackupArchive } from "./backup/archive_writer.ts";
import { verifyArchive } from "./backup/archive_verifier.ts";
import { createBearerAuth } from "./http/auth.ts";
import { registerBackupRoutes } from "./http/backup_routes.ts";
import { registerRestoreRoute } from "./http/restore_route.ts";
import { OnlineRestore } from "./node/online_restore.ts";
import { VERSION } from "./version.ts";

/** A running server: the node, its HTTP listener, and how to stop both. */
export interface RunningServer {
  readonly node: RaftNode;
  readonly url: string;
  /** Stops cleanly (see the module documentation). */
  shutdown(): Promise<void>;
  /** Resolves when the server has stopped. */
  readonly finished: Promise<void>;
}

/** Opens the node of `config` and starts serving. */
export async function startServer(
  config: ServeConfig,
  options: { logger?: Logger } = {},
): Promise<RunningServer> {
  const logger = options.logger ??
    createLogger({ level: config.logLevel, format: config.logFormat, fields: { node: config.id } });
  const registry = new MetricsRegistry();
  const metrics = createNodeMetrics(registry);

  const node = await openNode({
    // Every fsync of the log, hard state and snapshots is timed for edgeraft_fsync_seconds.
    fs: new TimedFileSystem(
      new DenoFileSystem(),
      (seconds) => metrics.fsyncSeconds.observe(seconds),
    ),
    id: config.id,
    dataDir: config.dataDir,
    peers: config.peers.length === 0
      ? null
      : config.peers.map((p) => ({ id: p.id, address: p.url, voter: true })),
    join: config.join,
    clusterId: config.clusterId,
    tickMs: config.tickMs,
    raft: toRaftConfig(config),
    storage: {
      segmentBytes: config.segmentBytes,
      snapshotEntries: config.snapshotEntries,
      snapshotIntervalS: config.snapshotIntervalS,
      snapshotsKeep: config.snapshotsKeep,
      snapshotOnClose: config.snapshotOnClose,
    },
    // Keep some entries below each snapshot so a briefly lagging follower catches up from the
    // log, not a whole snapshot; half the snapshot interval, at most 1000.
    compactionMarginEntries: Math.min(1000, Math.floor(config.snapshotEntries / 2)),
    requestTimeoutMs: config.requestTimeoutMs,
    valueBytesMax: config.valueBytesMax,
    logger,
    metrics,
  });

  let signer: PeerSigner | undefined;
  let authenticator: PeerAuthenticator | undefined;
  if (config.clusterSecret !== null) {
    const key = await importPeerKey(config.clusterSecret);
    const verifier = new PeerVerifier(key, {
      isKnownNode: (id) => node.membership().members.some((m) => m.id === id),
    });
    signer = {
      sign: (method, path, bodySha256) =>
        signPeerRequest(
          { method, path, bodySha256, timestampMs: Date.now(), nodeId: config.id },
          key,
        ),
    };
    authenticator = {
      async authenticate(request, body) {
        const url = new URL(request.url);
        const result = await verifier.verify({
          method: request.method,
          path: url.pathname + url.search,
          headers: request.headers,
          body,
        });
        if (!result.ok) return result;
        // A streamed snapshot is checked against the snapshot digest header while it is
        // written; that digest must be the one the signature covers. (Message batches are
        // also authenticated before their body is read; the route checks the body digest.)
        if (
          body === "streamed" && url.pathname === "/raft/snapshot" &&
          request.headers.get("x-edgeraft-snapshot-sha256") !==
            request.headers.get(PEER_HEADERS.contentSha256)
        ) {
          return { ok: false, reason: "snapshot digest differs from the signed digest" };
        }
        return { ok: true, nodeId: result.nodeId };
      },
    };
  }

  const httpClient = config.tls?.ca
    ? Deno.createHttpClient({ caCerts: [config.tls.ca] })
    : undefined;
  const peerFetch: typeof fetch = httpClient === undefined
    ? fetch
    : (input, init) => fetch(input, { ...init, client: httpClient });

  const transport = new HttpPeerTransport({
    id: config.id,
    clusterId: node.clusterId,
    inbox: node,
    logger,
    signer,
    fetch: peerFetch,
    onReachability: (peer, reachable) => metrics.peerReachable.set(reachable ? 1 : 0, { peer }),
  });

  const app = new Hono();
  installErrorHandlers(app, logger);
  app.route(
    "/",
    createPeerRoutes({
      id: config.id,
      clusterId: node.clusterId,
      inbox: node,
      membership: () => node.membership(),
      logger,
      authenticator,
      batchBytesMax: config.requestBodyBytesMax,
    }),
  );
  // Backup routes go first, each behind the admin check (401 without a token, 403 with the
  // client token), since handlers registered before the client routes' middleware run alone.
  const auth = createBearerAuth({ token: config.token, adminToken: config.adminToken });
  registerBackupRoutes(app, node, {
    nodeId: config.id,
    admin: auth.admin,
    makeArchive: (view, { gzip, createdAt }) =>
      writeBackupArchive({
        ...view,
        state: view.snapshot,
        gzip,
        createdAt,
        edgeraftVersion: VERSION,
      }),
    verifyArchive: (stream) => verifyArchive(stream),
    fetch: peerFetch,
    logger,
  });
  registerRestoreRoute(app, node, {
    nodeId: config.id,
    dataDir: config.dataDir,
    admin: auth.admin,
    restorer: new OnlineRestore(node, { dataDir: config.dataDir, logger }),
    fetch: peerFetch,
    logger,
  });
  registerClientRoutes(app, node, {
    nodeId: config.id,
    token: config.token,
    adminToken: config.adminToken,
    valueBytesMax: config.valueBytesMax,
    listLimitMax: config.listLimitMax,
    fetch: peerFetch,
    forwardTimeoutMs: config.forwardTimeoutMs,
    logger,
  });

  const abort = new AbortController();
  let listening!: () => void;
  const listeningPromise = new Promise<void>((resolve) => (listening = resolve));
  const server = Deno.serve({
    hostname: config.listen.hostname,
    port: config.listen.port,
    signal: abort.signal,
    ...(config.tls === null ? {} : { cert: config.tls.cert, key: config.tls.key }),
    onListen: () => listening(),
    onError: (error) => {
      logger.error("request failed", { error: String(error) });
      return new Response(
        JSON.stringify({
          error: { code: "ERR_INTERNAL", message: "Internal error", hint: "See the node's log." },
        }),
        { status: 500, headers: { "content-type": "application/json" } },
      );
    },
  }, app.fetch);
  await listeningPromise;
  node.start(transport);
  logger.info("serving", {
    listen: `${config.listen.hostname}:${config.listen.port}`,
    advertise: config.advertiseUrl,
    cluster: node.clusterId,
    tls: config.tls !== null,
    auth: config.token !== null,
    peerAuth: config.clusterSecret !== null,
  });

  let stopping: Promise<void> | null = null;
  const shutdown = (): Promise<void> => {
    stopping ??= (async () => {
      logger.info("shutting down");
      await node.close();
      abort.abort();
      await server.finished;
      httpClient?.close();
      logger.info("stopped");
    })();
    return stopping;
  };
  return { node, url: config.advertiseUrl, shutdown, finished: server.finished };
}

/**
 * Runs `serve` until a signal; returns the process exit code (0 after a clean shutdown).
 */
export async function runServe(config: ServeConfig): Promise<number> {
  const logger = createLogger({
    level: config.logLevel,
    format: config.logFormat,
    fields: { node: config.id },
  });
  const running = await startServer(config, { logger });
  const stopped = new Promise<number>((resolve) => {
    let firstSignalAt: number | null = null;
    const onSignal = (signal: Deno.Signal) => {
      if (firstSignalAt !== null) {
        // The same stop often arrives twice at once (a terminal's Ctrl-C reaches the whole
        // process group, and supervisors forward it): only a later signal forces the exit.
        if (Date.now() - firstSignalAt < 1000) return;
        logger.warn("second signal: exiting without a clean shutdown", { signal });
        resolve(130);
        return;
      }
      firstSignalAt = Date.now();
      logger.info("signal received", { signal });
      const timer = setTimeout(() => {
        logger.error("shutdown timed out", { ms: config.shutdownTimeoutMs });
        resolve(1);
      }, config.shutdownTimeoutMs);
      running.shutdown().then(() => resolve(0), (error) => {
        logger.error("shutdown failed", { error: String(error) });
        resolve(1);
      }).finally(() => clearTimeout(timer));
    };
    Deno.addSignalListener("SIGTERM", () => onSignal("SIGTERM"));
    Deno.addSignalListener("SIGINT", () => onSignal("SIGINT"));
  });
  return await stopped;
}
