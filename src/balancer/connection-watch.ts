// Per-connection listeners on an upstream pool that tell the proxy what undici's errors leave out: whether a failed
// HTTP/1 connection was a reused keep-alive one or broke while the request body was being written, and whether an
// HTTP/2 GOAWAY proves that nothing was processed.
// Attached once per connection (undici's 'connect' event), never per request: the success path pays nothing.
import type { ClientHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';
import { markBodyWriteError, markReusedConnectionError, UnprocessedGoaway } from '../proxy/upstream-error.js';
import { undiciSymbols } from './undici.js';

const { kSocket, kHTTP2Session, kError, kCounter, kWriting } = undiciSymbols;

/**
 * An HTTP/1 socket error, seen before undici's own listener (prepended) and so before undici fails the request with
 * it (node's ECONNRESET and EPIPE carry nothing about the connection, hence the listener). Two facts are read there:
 *
 * - Reuse: the socket had carried an earlier request, whose response was complete (pipelining is 1: undici writes
 *   a request only once the previous response has ended). undici counts the requests it writes on a socket
 *   (kCounter, from 0 at each connection; counted because the pool sets maxRequestsPerClient, see createPool). Not
 *   bytesRead: that also counts part of an answer to the failing request itself, and an upstream that sends half a
 *   head then resets every fresh connection would pass for a stale keep-alive race (free retry, no health report).
 *   Without the counter (a new undici), nothing is marked reused: the failure counts as on a fresh connection.
 * - Body still being written (undici's kWriting, set as it starts writing a streamed body, cleared at the body's
 *   end): the upstream broke the connection while the gateway was still sending the request body, as a server that
 *   refuses an upload early (413 and close, without reading it) does. What the client sent decided that, not the
 *   upstream's health.
 */
function onSocketError(this: Socket, err: Error): void {
  const socket = this as unknown as Record<symbol, unknown>;
  if (kCounter !== undefined) {
    const written = socket[kCounter];
    if (typeof written === 'number' && written > 1) markReusedConnectionError(err);
  }
  if (kWriting !== undefined && socket[kWriting] === true) markBodyWriteError(err);
}

/** node's per-session state symbol, found once: its `streams` map holds the open streams by id (node 20). */
let nodeStateSymbol: symbol | null | undefined;

/** The lowest id among the session's open streams; null when none is open; undefined when node hides it. */
function lowestOpenStream(session: ClientHttp2Session): number | null | undefined {
  if (nodeStateSymbol === undefined) {
    nodeStateSymbol = Object.getOwnPropertySymbols(session).find((s) => s.description === 'state') ?? null;
  }
  if (nodeStateSymbol === null) return undefined;
  // A SafeMap: node's primordial maps have a null-prototype chain, so `instanceof Map` is false; duck-typed instead.
  const streams = (session as unknown as Record<symbol, { streams?: { keys?: unknown } } | undefined>)[nodeStateSymbol]?.streams;
  if (typeof streams?.keys !== 'function') return undefined;
  let lowest: number | null = null;
  for (const id of (streams as Map<unknown, unknown>).keys()) if (typeof id === 'number' && (lowest === null || id < lowest)) lowest = id;
  return lowest;
}

/**
 * A GOAWAY, seen before undici's listener (prepended). undici fails the oldest open request with an error that has
 * lost the last stream id; when every open stream is above it (RFC 9113 §6.8: none was processed), the session's
 * pending error, which undici's listener uses instead of its own, says so. When node's state is out of reach, or a
 * stream at or below the last id is open, nothing changes: that request may have been processed.
 */
function onGoaway(this: ClientHttp2Session, code: number, lastStreamId: number): void {
  if (kError === undefined) return;
  const lowest = lowestOpenStream(this);
  if (lowest === undefined || (lowest !== null && lowest <= lastStreamId)) return;
  const session = this as unknown as Record<symbol, unknown>;
  session[kError] ??= new UnprocessedGoaway(code, lastStreamId);
}

/** The pool's 'connect' listener: `targets` ends with the undici Client whose connection just opened. */
export function watchConnection(_origin: unknown, targets: readonly unknown[]): void {
  if (kSocket === undefined || kHTTP2Session === undefined) return;
  const client = targets[targets.length - 1] as Record<symbol, unknown> | undefined;
  const socket = client?.[kSocket] as (Socket & { alpnProtocol?: string | false }) | null | undefined;
  if (socket === null || socket === undefined) return;
  if (socket.alpnProtocol === 'h2') {
    // An HTTP/2 session always reads the server's SETTINGS first: bytesRead says nothing about reuse there.
    const session = client?.[kHTTP2Session] as ClientHttp2Session | null | undefined;
    session?.prependListener('goaway', onGoaway);
    return;
  }
  socket.prependListener('error', onSocketError);
}
