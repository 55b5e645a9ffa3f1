/**
 * The seam between the node driver and the network to its peers. The driver hands over
 * messages and never waits on the network: `send` queues and returns at once, so a slow or
 * dead peer cannot stall the Ready loop. Delivery failures come back as `onUnreachable`
 * reports, which the driver turns into `Raft.reportUnreachable`.
 *
 * Implementations: `HttpPeerTransport` (src/transport/http_peer_transport.ts, Hono routes and
 * `fetch` between real processes) and an in-memory twin for in-process tests.
 *
 * @module
 */

import type { Member, Message, NodeId, SnapshotRequest } from "../raft/types.ts";
import type { OpenedSnapshot } from "../storage/types.ts";

/** What the transport delivers to the node it belongs to. */
export interface PeerInbox {
  /** Messages that arrived from peers (already authenticated and decoded). */
  receive(messages: readonly Message[]): void;
  /**
   * A snapshot streamed by the leader. Resolves once the node stored it (hashing while writing
   * and refusing on mismatch) and stepped the request into the core; rejects when refused.
   */
  receiveSnapshot(
    request: SnapshotRequest,
    data: ReadableStream<Uint8Array>,
    expected: { readonly sha256: string; readonly size: number },
  ): Promise<void>;
  /** The transport could not deliver to `peer`. */
  onUnreachable(peer: NodeId): void;
}

/** Sends Raft messages and snapshots to peers. */
export interface PeerTransport {
  /** Queues `messages` for delivery; returns at once. */
  send(messages: readonly Message[]): void;
  /** Streams `snapshot` to `request.to`; resolves true once the peer stored and accepted it. */
  sendSnapshot(request: SnapshotRequest, snapshot: OpenedSnapshot): Promise<boolean>;
  /** The current members with their peer URLs in `address` (membership may change). */
  setMembers(members: readonly Member[]): void;
  /** Stops sending; in-flight requests are abandoned. */
  close(): Promise<void>;
}
