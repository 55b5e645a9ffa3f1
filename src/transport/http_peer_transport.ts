/**
 * Sends Raft messages and snapshots to peers over HTTP (the client half of the peer
 * transport; the server half is `peer_routes.ts`).
 *
 * Messages to one peer queue up and leave as one binary batch (`wire_codec.ts`) per POST to
 * `<peer>/raft/messages`. Up to `inflightMax` POSTs per peer run at once (pipelining), so a
 * heartbeat never waits behind a large append; whatever queues meanwhile leaves together in
 * the next POST (batching). `fetch` keeps connections alive, so a warm cluster pays no
 * connection set-up per message. Raft tolerates loss and reordering, so a failed POST is not
 * retried here: the core re-sends, and the failure is reported as unreachable.
 *
 * Snapshots stream as the request body of `POST <peer>/raft/snapshot`, straight from the
 * snapshot store's verifying stream (constant memory); the receiver hashes while writing.
 *
 * @module
 */

import type { Member, Message, NodeId, SnapshotRequest } from "../raft/types.ts";
import type { OpenedSnapshot } from "../storage/types.ts";
import type { Logger } from "../util/logger.ts";
import type { PeerInbox, PeerTransport } from "../node/peer_transport.ts";
import { encodeBatch, encodeMessage, frameBytes } from "./wire_codec.ts";
import type { PeerSigner } from "./peer_signer.ts";
import { sha256Hex, toBase64 } from "../util/encoding.ts";

/** Options of {@linkcode HttpPeerTransport}. */
export interface HttpPeerTransportOptions {
  readonly id: NodeId;
  readonly clusterId: string;
  readonly inbox: PeerInbox;
  readonly logger: Logger;
  /** Signs peer requests with the cluster secret; absent when no secret is configured. */
  readonly signer?: PeerSigner;
  /** POSTs in flight per peer. Default 4. */
  readonly inflightMax?: number;
  /** Upper bound on one batch body; a single larger message still goes alone. Default 4 MiB. */
  readonly batchBytesMax?: number;
  /** Messages queued per peer before the oldest are dropped (the core re-sends). Default 4096. */
  readonly queueMessagesMax?: number;
  /** Deadline of one message POST. Default 5000 ms. */
  readonly requestTimeoutMs?: number;
  /** `fetch` to use (a TLS client with the cluster CA, or a fake in tests). */
  readonly fetch?: typeof fetch;
  /** Called with a peer's reachability after every request. */
  readonly onReachability?: (peer: NodeId, reachable: boolean) => void;
}

interface PeerQueue {
  readonly id: NodeId;
  address: string;
  messages: Message[];
  inflight: number;
  reachable: boolean;
}

/** Response header a peer sets when it refuses a batch, read only for logs. */
const ERROR_CODE_HEADER = "x-edgeraft-error";

/** HTTP client for peer traffic; see the module documentation. */
export class HttpPeerTransport implements PeerTransport {
  #options: HttpPeerTransportOptions;
  #fetch: typeof fetch;
  #peers = new Map<NodeId, PeerQueue>();
  #closed = false;
  #abort = new AbortController();
  #inflightMax: number;
  #batchBytesMax: number;
  #queueMessagesMax: number;

  constructor(options: HttpPeerTransportOptions) {
    this.#options = options;
    this.#fetch = options.fetch ?? fetch;
    this.#inflightMax = options.inflightMax ?? 4;
    this.#batchBytesMax = options.batchBytesMax ?? 4 * 1024 * 1024;
    this.#queueMessagesMax = options.queueMessagesMax ?? 4096;
  }

  setMembers(members: readonly Member[]): void {
    const seen = new Set<NodeId>();
    for (const member of members) {
      if (member.id === this.#options.id) continue;
      seen.add(member.id);
      const address = member.address.replace(/\/+$/, "");
      const queue = this.#peers.get(member.id);
      if (queue === undefined) {
        this.#peers.set(member.id, {
          id: member.id,
          address,
          messages: [],
          inflight: 0,
          reachable: true,
        });
      } else {
        queue.address = address;
      }
    }
    for (const id of [...this.#peers.keys()]) if (!seen.has(id)) this.#peers.delete(id);
  }

  send(messages: readonly Message[]): void {
    if (this.#closed) return;
    const touched = new Set<PeerQueue>();
    for (const message of messages) {
      const queue = this.#peers.get(message.to);
      if (queue === undefined) {
        this.#options.logger.debug("message to unknown peer dropped", { to: message.to });
        continue;
      }
      queue.messages.push(message);
      if (queue.messages.length > this.#queueMessagesMax) queue.messages.shift();
      touched.add(queue);
    }
    for (const queue of touched) this.#pump(queue);
  }

  #pump(queue: PeerQueue): void {
    while (!this.#closed && queue.inflight < this.#inflightMax && queue.messages.length > 0) {
      const batch = this.#takeBatch(queue);
      queue.inflight++;
      this.#post(queue, batch).finally(() => {
        queue.inflight--;
        if (queue.messages.length > 0) this.#pump(queue);
      });
    }
  }

  #takeBatch(queue: PeerQueue): Message[] {
    let bytes = 0;
    let count = 0;
    for (const message of queue.messages) {
      const size = frameBytes(message);
      if (count > 0 && bytes + size > this.#batchBytesMax) break;
      bytes += size;
      count++;
    }
    return queue.messages.splice(0, count);
  }

  async #post(queue: PeerQueue, messages: Message[]): Promise<void> {
    const peer = queue.id;
    const body = encodeBatch(messages, { clusterId: this.#options.clusterId });
    const path = "/raft/messages";
    try {
      const headers: Record<string, string> = { "content-type": "application/octet-stream" };
      if (this.#options.signer !== undefined) {
        Object.assign(headers, await this.#options.signer.sign("POST", path, sha256Hex(body)));
      }
      const response = await this.#fetch(queue.address + path, {
        method: "POST",
        headers,
        // encodeBatch allocates a fresh ArrayBuffer; the cast only narrows the type.
        body: body as Uint8Array<ArrayBuffer>,
        signal: AbortSignal.any([
          this.#abort.signal,
          AbortSignal.timeout(this.#options.requestTimeoutMs ?? 5000),
        ]),
      });
      await response.body?.cancel();
      if (!response.ok) {
        throw new Error(
          `HTTP ${response.status} ${response.headers.get(ERROR_CODE_HEADER) ?? ""}`.trim(),
        );
      }
      this.#setReachable(peer, queue, true);
    } catch (error) {
      if (this.#closed) return;
      this.#setReachable(peer, queue, false, error);
      this.#options.inbox.onUnreachable(peer);
    }
  }

  #setReachable(peer: NodeId, queue: PeerQueue, reachable: boolean, error?: unknown): void {
    if (queue.reachable !== reachable) {
      queue.reachable = reachable;
      if (reachable) this.#options.logger.info("peer reachable", { peer });
      else this.#options.logger.warn("peer unreachable", { peer, error: String(error) });
    }
    this.#options.onReachability?.(peer, reachable);
  }

  async sendSnapshot(request: SnapshotRequest, snapshot: OpenedSnapshot): Promise<boolean> {
    const queue = this.#peers.get(request.to);
    if (queue === undefined || this.#closed) return false;
    const path = "/raft/snapshot";
    const encoded = encodeMessage(request);
    const headers: Record<string, string> = {
      "content-type": "application/octet-stream",
      "x-edgeraft-cluster": encodeURIComponent(this.#options.clusterId),
      "x-edgeraft-snapshot-request": toBase64(encoded),
      "x-edgeraft-snapshot-sha256": snapshot.info.sha256,
      "x-edgeraft-snapshot-size": String(snapshot.info.size),
    };
    if (this.#options.signer !== undefined) {
      // The body digest is declared up front and checked by the receiver as it streams.
      Object.assign(headers, await this.#options.signer.sign("POST", path, snapshot.info.sha256));
    }
    const started = performance.now();
    try {
      const response = await this.#fetch(queue.address + path, {
        method: "POST",
        headers,
        body: snapshot.stream(),
        signal: this.#abort.signal,
      });
      const text = await response.text();
      if (!response.ok) {
        this.#options.logger.warn("snapshot refused by peer", {
          peer: request.to,
          status: response.status,
          body: text.slice(0, 200),
        });
        return false;
      }
      this.#options.logger.info("snapshot sent", {
        peer: request.to,
        index: snapshot.info.index,
        size: snapshot.info.size,
        ms: Math.round(performance.now() - started),
      });
      return true;
    } catch (error) {
      if (!this.#closed) {
        this.#options.logger.warn("snapshot send failed", {
          peer: request.to,
          error: String(error),
        });
      }
      return false;
    }
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#abort.abort();
    for (const queue of this.#peers.values()) queue.messages.length = 0;
    return Promise.resolve();
  }
}
