// Per-connection listeners on an upstream pool that tell the proxy what undici's errors leave out: whether a failed
// HTTP/1 connection was a reused keep-alive one or broke while the request body was being written, and whether an
// HTTP/2 GOAWAY proves that nothing was processed. And one that corrects undici 7: a graceful HTTP/2 GOAWAY lets the
// streams it covers finish instead of failing them.
// Attached once per connection (undici's 'connect' event), never per request: the success path pays nothing.
import type { ClientHttp2Session, ClientHttp2Stream } from 'node:http2';
import { H2_CANCEL, H2_NO_ERROR, H2_REFUSED_STREAM } from '../proxy/h2-codes.js';
import type { Socket } from 'node:net';
import { Http2ConnectionError, markBodyWriteError, markRefusedStream, markReusedConnectionError, markStreamReset, UnprocessedGoaway, UnsentStream } from '../proxy/upstream-error.js';
import { whenNghttp2Done } from '../proxy/h2-session-done.js';
import { SocketError, undiciMajor, undiciSymbols } from './undici.js';

const { kSocket, kHTTP2Session, kError, kCounter, kWriting, kClient, kHTTPContext, kListeners } = undiciSymbols;

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

type GoawayListener = (this: ClientHttp2Session, code: number, lastStreamId: number, data?: Buffer) => void;

/**
 * undici 7's own 'goaway' listener on `session` (client-h2.js onHttp2SessionGoAway), or undefined. undici adds its
 * session listeners with util.addListener, which lists each as [event, listener] under kListeners: exactly one
 * 'goaway' entry, attached, is the shape this code was written against; anything else is left alone.
 */
function undiciGoawayListener(session: ClientHttp2Session): GoawayListener | undefined {
  if (undiciMajor !== 7 || kListeners === undefined || kClient === undefined || kHTTPContext === undefined) return undefined;
  const listed = (session as unknown as Record<symbol, unknown>)[kListeners];
  if (!Array.isArray(listed)) return undefined;
  const goaways = listed.filter(
    (entry): entry is [string, GoawayListener] => Array.isArray(entry) && entry[0] === 'goaway' && typeof entry[1] === 'function',
  );
  if (goaways.length !== 1) return undefined;
  const listener = goaways[0]![1];
  return session.listeners('goaway').includes(listener) ? listener : undefined;
}

/** Sessions whose undici Client has been told they are draining. */
const draining = new WeakSet<ClientHttp2Session>();

/**
 * Lets the streams of a session that got a graceful GOAWAY finish, instead of undici 7's listener destroying the
 * socket and failing the oldest request. node already does its part: it answers a NO_ERROR GOAWAY with
 * session.close(), which ends the session once its open streams are done. What is left is undici's Client: its
 * connection object is replaced by one that reports itself destroyed and busy, a prototype over the real one so
 * version, resume() and destroy() still reach the real socket (a pool destroyed meanwhile still fails the streams).
 * The client then writes no new request on the closing session, and the pool sends new requests to its other
 * clients (other connections).
 *
 * The rest is undici's own code: each stream that finishes is retired from the client's queue by its stream
 * handlers; once the last one has, node destroys the session and undici's 'close' listeners (left in place) clear
 * the client's connection as for any connection a server closed, so the client connects anew at its next request.
 * Streams above the last stream id are closed by nghttp2 with REFUSED_STREAM, which undici reports per request and
 * the proxy retries as unprocessed (upstream-error.ts). Returns false, changing nothing, when the client's state is
 * not the shape this was written against.
 */
function startDraining(session: ClientHttp2Session): boolean {
  if (kClient === undefined || kHTTPContext === undefined || kHTTP2Session === undefined) return false;
  const client = (session as unknown as Record<symbol, Record<symbol, unknown> | undefined>)[kClient];
  // Only the client's current session: its connection object is this session's.
  if (client?.[kHTTP2Session] !== session) return false;
  const context = client[kHTTPContext];
  if (typeof context !== 'object' || context === null) return false;
  const hasDestroyedGetter = typeof Object.getOwnPropertyDescriptor(context, 'destroyed')?.get === 'function';
  if (!hasDestroyedGetter || typeof (context as { busy?: unknown }).busy !== 'function') return false;
  client[kHTTPContext] = Object.create(context, {
    destroyed: { get: () => true },
    busy: { value: () => true },
  }) as object;
  draining.add(session);
  return true;
}

/**
 * What a GOAWAY means for the streams open on `session`; true when they are to finish (a graceful GOAWAY, NO_ERROR,
 * with a stream at or below the last stream id open: RFC 9113 §6.8). When every open stream (if any) is above the
 * last stream id, none was processed: undici fails the oldest request with an error that has lost the last stream
 * id, and the session's pending error, which undici's listener uses instead of its own, says so. When node's state
 * is out of reach, or a stream at or below the last id is open under an error code (node destroys the session
 * itself), nothing changes: that request may have been processed.
 */
function readGoaway(session: ClientHttp2Session, code: number, lastStreamId: number): boolean {
  const lowest = lowestOpenStream(session);
  if (lowest === undefined) return false;
  if (lowest !== null && lowest <= lastStreamId) return code === H2_NO_ERROR;
  if (kError !== undefined) {
    (session as unknown as Record<symbol, unknown>)[kError] ??= new UnprocessedGoaway(code, lastStreamId);
  }
  return false;
}

/** A GOAWAY seen before undici's listener (prepended), where that listener could not be taken over. */
function onGoaway(this: ClientHttp2Session, code: number, lastStreamId: number): void {
  readGoaway(this, code, lastStreamId);
}

/**
 * The session's 'goaway' listener in place of undici's own, which it calls unless the session drains. A later
 * GOAWAY on a draining session (a server's second, lower one, as grpc-js sends after its first at max connection
 * age) calls nothing: nghttp2 refuses the streams above the new last id itself.
 */
function goawayListener(undiciListener: GoawayListener): GoawayListener {
  return function onGoawayOrUndici(this: ClientHttp2Session, code: number, lastStreamId: number, data?: Buffer): void {
    if (draining.has(this)) return;
    if (readGoaway(this, code, lastStreamId) && startDraining(this)) return;
    undiciListener.call(this, code, lastStreamId, data);
  };
}

/** node's pipeline's error for a stream that closed before it ended: here, the upstream's reset of it. */
function isPrematureClose(err: Error | null): boolean {
  return (err as { code?: unknown } | null)?.code === 'ERR_STREAM_PREMATURE_CLOSE';
}

/** A stream's _destroy as node defines it (Http2Stream.prototype._destroy). */
type DestroyFn = (this: ClientHttp2Stream, err: Error | null, callback: (err?: Error | null) => void) => void;

/** How often, and how many times, a reset stream whose request side had not finished is looked at again (1 s). */
const RELEASE_CHECK_MS = 5;
const RELEASE_CHECKS = 200;

/**
 * Stands in for an upstream stream's _destroy. A stream destroyed before its request side finished (body bytes
 * still queued behind flow control, or its END_STREAM not yet out) is reset at once (RST_STREAM CANCEL, unless it
 * already was), but node's handle is let go only once that side has finished, its session is gone, or, checked every
 * 5 ms, 1 s later: by then nghttp2 has sent the reset and closed the stream, and node has released it on its own (a
 * stream not yet opened, or on a session already destroyed, is let go at once). Let go at once, node 20 forgets the
 * stream while nghttp2 still holds its DATA: the next time nghttp2 asks for that data (a WINDOW_UPDATE from the
 * upstream), node answers 0 bytes for a stream it no longer knows, and nghttp2 sends an empty DATA frame and asks
 * again, for ever: the event loop never turns again and memory grows by
 * gigabytes. undici resets and destroys a stream that way whenever a request is aborted mid-upload (a body over
 * max_body_size, a gRPC client that cancels a call whose messages the upstream is still taking in), so one request
 * stopped the whole gateway.
 */
function releaseAfterReset(this: ClientHttp2Stream, err: Error | null, callback: (err?: Error | null) => void): void {
  // The upstream refused the stream while undici was still writing its body: node's pipeline destroys the stream
  // with its own premature-close error (from the stream's 'aborted', emitted once node has its rstCode), then undici
  // fails the request with that same error. Marked here, it is classified as the refusal it is (upstream-error.ts).
  if (err !== null && this.rstCode === H2_REFUSED_STREAM) markRefusedStream(err);
  // Any other code the upstream reset it with, the same way (node's pipeline reports each as its premature close).
  // NO_ERROR and CANCEL are not: those are the gateway's own (cancelUnlessSent), or read as the stream's end.
  else if (isPrematureClose(err) && this.rstCode !== undefined && this.rstCode !== H2_NO_ERROR && this.rstCode !== H2_CANCEL) {
    markStreamReset(err, this.rstCode);
  }
  const destroy = Object.getPrototypeOf(this)._destroy as DestroyFn;
  const released = (): boolean => this.writableFinished || this.pending || this.session === undefined || this.session.destroyed;
  if (released()) {
    destroy.call(this, err, callback);
    return;
  }
  if (!this.closed) this.close(H2_CANCEL);
  let checks = 0;
  const check = (): void => {
    if (released() || ++checks >= RELEASE_CHECKS) destroy.call(this, err, callback);
    else setTimeout(check, RELEASE_CHECK_MS);
  };
  setTimeout(check, RELEASE_CHECK_MS);
}

/**
 * Stands in for an upstream stream's close(). undici closes a stream it aborts with no code, RST_STREAM NO_ERROR,
 * which tells an upstream still reading the request that the sender is done, as an END_STREAM would: a request
 * abandoned mid-upload (request_body_chunk, the client gone, a body limit) can pass for a whole one, and node's
 * servers report it so. Before the request side has finished, the reset is CANCEL, as RFC 9113 §8.1 has a client
 * abandon a request. Whether it came as CANCEL used to hang on which of the gateway's events came first: the
 * client's body closing (the pipe destroys the stream: releaseAfterReset's CANCEL) or undici's abort.
 */
function cancelUnlessSent(this: ClientHttp2Stream, code?: number, callback?: () => void): void {
  const close = (Object.getPrototypeOf(this) as ClientHttp2Stream).close;
  const sent = (code ?? H2_NO_ERROR) !== H2_NO_ERROR || this.writableFinished ? code : H2_CANCEL;
  if (callback === undefined) close.call(this, sent);
  else close.call(this, sent, callback);
}

/** How long a session has to acknowledge the PING sent after one of its streams ended unanswered. */
const PING_ACK_TIMEOUT_MS = 5_000;

/** Sessions with a liveness PING outstanding (one at a time). */
const pinging = new WeakSet<ClientHttp2Session>();

/**
 * A session that did not acknowledge a PING in time: its connection is dead. ETIMEDOUT, as TCP reports keep-alive
 * probes gone unanswered: the requests still on it fail as UPSTREAM_RESET, against the upstream's health.
 */
class Http2PingTimeout extends Error {
  readonly code = 'ETIMEDOUT';
  constructor() {
    super('HTTP/2 PING unanswered: the upstream connection is dead');
    this.name = 'Http2PingTimeout';
  }
}

/**
 * Whether the session's connection is still alive, asked once one of its streams ended with no response head (undici
 * cancelled it at the response timeout, or as the client left; or the upstream reset it). undici keeps an HTTP/2 session until its
 * connection errors, and a connection a NAT, firewall or load balancer dropped silently (no FIN, no RST) never does
 * until the kernel gives up on it: every request was sent on it and timed out (504 upon 504, never a new connection),
 * where HTTP/1 destroys a timed-out request's socket. nghttp2 acknowledges a PING whatever the upstream's application
 * is doing, so no acknowledgement within PING_ACK_TIMEOUT_MS means the connection is gone: it is destroyed, and
 * undici connects anew for the next request.
 */
function checkAlive(session: ClientHttp2Session, socket: Socket): void {
  if (pinging.has(session) || session.destroyed || session.closed) return;
  pinging.add(session);
  const timer = setTimeout(() => {
    if (!session.destroyed) session.destroy(new Http2PingTimeout());
    socket.destroy();
  }, PING_ACK_TIMEOUT_MS);
  timer.unref();
  const done = (): void => {
    clearTimeout(timer);
    pinging.delete(session);
  };
  try {
    if (!session.ping(done)) done(); // too many PINGs unacknowledged already: nghttp2's own bound
  } catch {
    done(); // the session closed meanwhile
  }
}

/** Paused response streams whose idle timer waits for the resume to run again (onTimeoutUnlessAwaitingClient). */
const rearming = new WeakSet<ClientHttp2Stream>();

/** Upstream streams whose response head has come (guardStreams marks them). */
const answeredStreams = new WeakSet<ClientHttp2Stream>();

/**
 * node's own timeout callback of a stream (Http2Stream.prototype._onTimeout), which emits the 'timeout' undici fails
 * the request on: HeadersTimeoutError before the response head, BodyTimeoutError after.
 */
type OnTimeoutFn = (this: ClientHttp2Stream) => void;

/**
 * undici times an HTTP/2 request's response head with the stream's idle timeout (stream.setTimeout(headersTimeout);
 * its body too, by the same timer, which the pause below concerns), which runs while the request body is still being sent, where its HTTP/1 client does not (client-h1.js: the
 * headers timer fires during a body write only when the upstream is not taking it). So a client that paused its
 * upload for upstream_response, within request_body_chunk, got 504 upstream_timeout from an HTTP/2 upstream, and
 * the upstream left rotation for it ("Upstream Down"): any client could take HTTP/2 upstreams out, one request
 * each per passive cooldown, while over HTTP/1 the same upload was answered. Until the response head, the stream's
 * timeout is not the upstream's silence while the gateway has sent all it was given of an unfinished body: it waits
 * on the client, whose silence request_body_chunk bounds (408). Skipped then; the next write of the body (or its end)
 * restarts the stream's timer, so the bound runs from there. Data the upstream does not take (its flow-control
 * window closed) stays queued on the stream, and the timeout fires as before: that silence is the upstream's.
 */
function onTimeoutUnlessAwaitingClient(this: ClientHttp2Stream): void {
  if (!answeredStreams.has(this) && !this.writableEnded && this.writableLength === 0 && !this.destroyed) return;
  if (answeredStreams.has(this) && this.isPaused() && !this.destroyed) {
    // The response is paused by its reader: the gateway waits on a client slower than the upstream, and the
    // upstream's silence is the flow control that pause imposes (HTTP/1 upstreams are not timed then either). Timed
    // again, a whole period, from the resume on; else a slow download from an HTTP/2 upstream was cut as its timeout.
    // One resume listener per pause: the timer fires again while paused whenever a frame refreshed it.
    if (!rearming.has(this)) {
      rearming.add(this);
      const ms = (this as unknown as { timeout?: number }).timeout;
      this.once('resume', () => {
        rearming.delete(this);
        if (!this.destroyed && ms !== undefined && ms > 0) this.setTimeout(ms);
      });
    }
    return;
  }
  // Never sent (nghttp2 still holds its HEADERS: the upstream's SETTINGS_MAX_CONCURRENT_STREAMS allowed no more
  // streams): failed as unsent, so it may go to another upstream whatever its method (UnsentStream). Only read at the
  // timeout, never per request.
  if (!answeredStreams.has(this) && !this.destroyed && !this.closed && neverSent(this)) {
    this.destroy(new UnsentStream());
    return;
  }
  (Object.getPrototypeOf(this) as { _onTimeout: OnTimeoutFn })._onTimeout.call(this);
}

/** nghttp2's state of a stream it has not opened yet (NGHTTP2_STREAM_STATE_IDLE): its HEADERS were never sent. */
const NGHTTP2_STREAM_STATE_IDLE = 1;

/** Whether no frame of the stream has left: node reports a stream nghttp2 holds back (or knows not) as idle. */
function neverSent(stream: ClientHttp2Stream): boolean {
  return stream.id !== undefined && stream.state?.state === NGHTTP2_STREAM_STATE_IDLE;
}

/**
 * Holds a response's trailers back until the body read before them has been taken. undici completes an HTTP/2
 * request at the stream's 'trailers' event and stops reading its data (client-h2.js), but node emits it as the
 * trailing HEADERS frame arrives, while DATA read before it may still wait in the stream's buffer: the gateway
 * pauses the stream for a client slower than its upstream, and the last window of the body was lost, with the
 * trailers relayed after the cut as if the response were whole (a gRPC stream of 20,000 messages reached its client
 * with about 600 fewer and grpc-status 0). Emitted just before 'end' instead, which comes once the buffer is empty.
 */
export function holdTrailersForData(stream: ClientHttp2Stream): void {
  const emit = stream.emit;
  let held: unknown[] | undefined;
  let abortedMeanwhile = false;
  stream.emit = function emitTrailersAfterData(this: ClientHttp2Stream, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'trailers' && this.readableLength > 0) {
      held = args;
      return true;
    }
    if (event === 'aborted' && held !== undefined) {
      // The upstream closed the stream after its trailers while the request body was still open (RST_STREAM
      // NO_ERROR, as a Go gRPC server ends a client- or bidi-streaming call): its answer is complete, and node keeps
      // the buffered body for the reader until 'end'. undici stops reading at 'aborted', so it waits for that end.
      abortedMeanwhile = true;
      return true;
    }
    if (event === 'end' && held !== undefined) {
      const trailers = held;
      held = undefined;
      emit.call(this, 'trailers', ...trailers);
      const result = emit.call(this, event, ...args);
      if (abortedMeanwhile) emit.call(this, 'aborted');
      return result;
    }
    return emit.call(this, event, ...args);
  } as ClientHttp2Stream['emit'];
}

/**
 * How long a pooled upstream connection may sit with no request before it is closed: under the usual 5 s server
 * default, so the gateway lets go first rather than meet a server's close as it sends (the HTTP/1.1 pool's
 * keepAliveTimeout, and the HTTP/2 sessions' idle close below).
 */
export const UPSTREAM_IDLE_MS = 4_000;

/** How long an idle session's close may wait for the upstream's answer before the connection is cut. */
const IDLE_CLOSE_BOUND_MS = 1_000;


/**
 * Closes `session` once it has had no open stream for UPSTREAM_IDLE_MS. undici 7 reads keepAliveTimeout for HTTP/1.1
 * only: every HTTP/2 connection a burst opened (one per request running at once, up to connections_per_upstream)
 * stayed open for good, and one a NAT or load balancer dropped meanwhile met the next request with silence until
 * upstream_response. The client is told first that the session is draining (startDraining), so no request is
 * written on it as it closes; where undici's state is not the shape that needs, the session is left open as before.
 */
function closeWhenIdle(session: ClientHttp2Session, socket: Socket): { opened(): void; closed(): void } {
  let open = 0;
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    timer = setTimeout(() => {
      timer = undefined;
      if (open !== 0 || session.closed || session.destroyed || !startDraining(session)) return;
      session.close();
      // An upstream gone silent (a crashed host, a middlebox that dropped the connection) never answers the close:
      // the socket waited for its FIN for minutes, or for good behind a middlebox that acknowledges it, and so did
      // every request the pool queued on this client meanwhile (unbounded: upstream_response starts once a stream
      // is written). Destroyed with undici's own connection-lost error: its close handler reads the socket's error
      // (and throws without one), and with that one it sends the queued requests on a new connection, not fails them.
      const bound = setTimeout(() => {
        const err = new SocketError('the upstream did not answer the close of an idle HTTP/2 connection');
        if (!session.destroyed) session.destroy(err);
        socket.destroy(err);
      }, IDLE_CLOSE_BOUND_MS);
      bound.unref();
      session.once('close', () => clearTimeout(bound));
    }, UPSTREAM_IDLE_MS);
    timer.unref();
  };
  session.once('close', () => clearTimeout(timer));
  return {
    opened() {
      open++;
      clearTimeout(timer);
    },
    closed() {
      if (--open === 0 && !session.closed && !session.destroyed) arm();
    },
  };
}

/**
 * The session's request(), wrapped so that each stream it opens is released as releaseAfterReset says, a stream
 * that ends with no response head (undici cancelled it, or the upstream reset it) has the session's liveness
 * checked (checkAlive), and its timeout waits while the client's body does (onTimeoutUnlessAwaitingClient; set
 * before undici arms it, which binds the stream's own _onTimeout then).
 */
function guardStreams(session: ClientHttp2Session, socket: Socket): void {
  const request = session.request;
  const idle = closeWhenIdle(session, socket);
  session.request = function requestGuarded(this: ClientHttp2Session, ...args: Parameters<ClientHttp2Session['request']>): ClientHttp2Stream {
    const stream = request.apply(this, args);
    idle.opened();
    holdTrailersForData(stream);
    (stream as unknown as { _destroy: DestroyFn })._destroy = releaseAfterReset;
    stream.close = cancelUnlessSent;
    (stream as unknown as { _onTimeout: OnTimeoutFn })._onTimeout = onTimeoutUnlessAwaitingClient;
    let answered = false;
    stream.once('response', () => {
      answered = true;
      answeredStreams.add(stream);
    });
    stream.once('close', () => {
      idle.closed();
      if (!answered) checkAlive(session, socket);
    });
    return stream;
  };
}

/**
 * The GOAWAY watch of a new HTTP/2 session: undici's listener taken over when it is the one this code knows (the
 * emitter runs the listeners it had when the frame came, so removing undici's from inside a listener of ours would
 * not stop it); otherwise a listener of ours before it, which only marks unprocessed streams. Its streams are
 * released as releaseAfterReset says.
 */
function watchSession(session: ClientHttp2Session, socket: Socket): void {
  guardStreams(session, socket);
  // A connection error of the upstream's (a malformed or misplaced frame): nghttp2 has sent GOAWAY and reads no more,
  // and node says nothing. Without this the streams on it waited for upstream_response or upstream_body (504), the
  // pool kept sending new requests to the dead session, and the connection stayed open.
  whenNghttp2Done(session, () =>
    setImmediate(() => {
      if (!session.destroyed) session.destroy(new Http2ConnectionError());
      socket.destroy();
    }),
  );
  const undiciListener = undiciGoawayListener(session);
  if (undiciListener === undefined) {
    session.prependListener('goaway', onGoaway);
    return;
  }
  session.removeListener('goaway', undiciListener);
  session.on('goaway', goawayListener(undiciListener));
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
    if (session) watchSession(session, socket);
    return;
  }
  socket.prependListener('error', onSocketError);
}
