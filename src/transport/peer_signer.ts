/**
 * The seam between the peer transport and peer authentication: the sender asks for headers
 * that prove it holds the cluster secret; the receiver checks them. Implemented with HMAC
 * over method, path, timestamp, nonce, node id and body digest in `peer_auth.ts`.
 *
 * @module
 */

/** Produces the authentication headers of one outgoing peer request. */
export interface PeerSigner {
  /** Headers for a request of `method` to `path` whose body hashes to `bodySha256` (hex). */
  sign(method: string, path: string, bodySha256: string): Promise<Record<string, string>>;
}
