/**
 * Streaming forwarding to the leader, for the routes whose bodies are archives (backup
 * downloads, restore uploads): the request body and the leader's answer stream through this
 * node without being buffered. (Key-value writes use the buffered forwarder in
 * client_app.ts, since their bodies are small and already read.)
 *
 * A request that already carries `X-Edgeraft-Forwarded-By` is never forwarded again: the
 * sender believed this node leads, and forwarding on could loop while leadership moves.
 *
 * @module
 */

import { BadRequestError, NoLeaderError, type NotLeaderError } from "../errors.ts";
import { FORWARDED_BY_HEADER, FORWARDED_TO_HEADER } from "./client_app.ts";

/** Response headers relayed from the leader. */
const RELAYED = new Set([
  "content-type",
  "content-disposition",
  "retry-after",
  "cache-control",
  "www-authenticate",
]);

/** Options of {@linkcode streamToLeader}. */
export interface StreamToLeaderOptions {
  /** This node's id, sent as `X-Edgeraft-Forwarded-By`. */
  readonly nodeId: string;
  readonly fetch: typeof fetch;
  /** What is forwarded, for error messages ("backup request", "restore"). */
  readonly what: string;
  /** The body to send on (a request's own stream, or a file's); none for a GET. */
  readonly body?: ReadableStream<Uint8Array> | null;
}

/** Forwards `request` to the leader `notLeader` names and streams the answer back. */
export async function streamToLeader(
  request: Request,
  notLeader: NotLeaderError,
  options: StreamToLeaderOptions,
): Promise<Response> {
  const body = options.body ?? null;
  const refuse = async (error: NoLeaderError): Promise<never> => {
    await body?.cancel().catch(() => {});
    throw error;
  };
  if (request.headers.get(FORWARDED_BY_HEADER) !== null) {
    await refuse(
      new NoLeaderError(`A forwarded ${options.what} reached a node that is not the leader`),
    );
  }
  if (notLeader.leaderUrl === null) await refuse(new NoLeaderError("No leader is known"));
  const url = new URL(request.url);
  const target = new URL(url.pathname + url.search, notLeader.leaderUrl!);
  const headers = new Headers({ [FORWARDED_BY_HEADER]: options.nodeId });
  for (const name of ["authorization", "content-type"]) {
    const value = request.headers.get(name);
    if (value !== null) headers.set(name, value);
  }
  let response: Response;
  try {
    response = await options.fetch(target, {
      method: request.method,
      headers,
      redirect: "manual",
      // A streamed request body needs `duplex: "half"` (Fetch standard).
      ...(body === null ? {} : { body, duplex: "half" }),
    } as RequestInit);
  } catch (error) {
    return await refuse(
      new NoLeaderError(`Cannot reach the leader at ${notLeader.leaderUrl}`, { cause: error }),
    );
  }
  const relayed = new Headers();
  for (const [name, value] of response.headers) {
    if (RELAYED.has(name) || name.startsWith("x-edgeraft-")) relayed.set(name, value);
  }
  relayed.set(FORWARDED_TO_HEADER, notLeader.leaderId ?? "");
  return new Response(response.body, { status: response.status, headers: relayed });
}

/** A `true`/`false` query parameter (also `1`/`0`, and empty for true); absent is false. */
export function booleanParam(query: Map<string, string>, name: string): boolean {
  const value = query.get(name);
  if (value === undefined || value === "false" || value === "0") return false;
  if (value === "true" || value === "1" || value === "") return true;
  throw new BadRequestError(`Query parameter "${name}" must be true or false`);
}
