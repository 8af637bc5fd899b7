// Streams one attempt to an upstream through undici's dispatch API, with backpressure in both directions.
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { constants as h2constants, type ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { GatewayError, toGatewayError } from '../errors.js';
import { sendError } from '../pipeline/reply.js';
import type { RequestContext } from '../pipeline/context.js';
import type { UpstreamHeaders } from '../pipeline/phase.js';
import type { Peer } from '../pipeline/upstream.js';
import type { RouteTimeouts } from '../pipeline/route.js';
import { responseHeaders, upstreamTrailers } from './headers.js';
import { CLIENT_CLOSED, classifyUpstreamError, failedBeforeSending } from './upstream-error.js';
import { spliceUpgrade } from './upgrade.js';
import { sendTrailersOnly } from '../pipeline/reply.js';
import { guardRequestBody, type StopGuard } from './body-guard.js';

/** Told how an attempt ended. Implemented by the pipeline driver (no per-request callbacks). */
export interface AttemptListener {
  /** The attempt failed before any response byte reached the client: the driver may retry or answer the error. */
  attemptFailed(ctx: RequestContext, peer: Peer, error: GatewayError): void;
  /** The response was fully relayed, or broke off after it had started (then `ctx.error` is set). */
  attemptFinished(ctx: RequestContext, peer: Peer): void;
}

/** Shared: the client stopped sending its body; the connection is closed after the 408. */
const BODY_TIMEOUT = new GatewayError('REQUEST_BODY_TIMEOUT', { headers: { connection: 'close' } });
/** The same over HTTP/2, which has no Connection header (node drops it with a warning): the stream is closed instead. */
const BODY_TIMEOUT_H2 = new GatewayError('REQUEST_BODY_TIMEOUT');
/** Abort reason when a response hook's error replaces the upstream's response with an error reply. */
const RESPONSE_REPLACED = new GatewayError('CLIENT_CLOSED', { message: 'response replaced by a response hook error' });

/** Methods whose repetition has no extra effect (RFC 9110 §9.2.2): safe to send to a second upstream. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/**
 * True when the request carries a body: a Content-Length above 0, or chunked; over HTTP/2, any stream whose HEADERS
 * frame did not end it (gRPC and other streamed bodies come without a Content-Length).
 */
export function hasRequestBody(ctx: RequestContext): boolean {
  if (ctx.req.httpVersionMajor === 2) {
    return (ctx.req as unknown as { stream?: { endAfterHeaders?: boolean } }).stream?.endAfterHeaders === false;
  }
  const h = ctx.req.headers;
  const length = h['content-length'];
  return (length !== undefined && length !== '0') || h['transfer-encoding'] !== undefined;
}

/** The HTTP/2 stream behind a compat response (node's Http2ServerResponse), or undefined over HTTP/1.x. */
function http2StreamOf(ctx: RequestContext): ServerHttp2Stream | undefined {
  return ctx.req.httpVersionMajor === 2 ? (ctx.res as unknown as { stream?: ServerHttp2Stream }).stream : undefined;
}

/**
 * A failed attempt may go to another upstream only when its body (if any) was never read, and either the request
 * never reached the first upstream or repeating it is harmless (an idempotent method), as nginx decides.
 */
export function canRetry(ctx: RequestContext, error: GatewayError): boolean {
  if (hasRequestBody(ctx) && ctx.req.readableDidRead) return false;
  return failedBeforeSending(error) || IDEMPOTENT.has(ctx.req.method ?? 'GET');
}

/**
 * Runs `write` (the response head, or an upgrade's splice); a throw goes to `fail`, which answers an error while
 * nothing was sent, instead of escaping as an unhandled rejection (after an async response hook) or into undici (which
 * would only cut the client's connection). Node throws for a head it refuses to send: a connection-specific header
 * over HTTP/2 (an HTTP/1 upstream's HTTP2-Settings), a repeated single-value one (two ETags), a value with a control
 * character. Upstream or response hook, either may have set it: PROXY_ERROR (502) blames neither upstream health nor
 * a plugin. Returns false when `write` threw.
 */
function writeOrFail(res: ServerResponse, write: () => void, fail: (err: unknown) => void): boolean {
  try {
    write();
    return true;
  } catch (err) {
    // Node's HTTP/2 compat writeHead stores the headers before refusing one: the error reply must not carry them.
    if (!res.headersSent) for (const name of res.getHeaderNames()) res.removeHeader(name);
    fail(refused(err));
    return false;
  }
}

/** A response head or trailer node refused to send (see writeOrFail). */
function refused(err: unknown): GatewayError {
  return new GatewayError('PROXY_ERROR', { cause: err });
}

/**
 * The error reply after the upstream's response was replaced. The route's response hooks run again on it, and may
 * set the same header node refused: then the client's stream is cut rather than the throw escaping.
 */
function answerError(ctx: RequestContext, error: GatewayError): void {
  try {
    sendError(ctx, error);
  } catch {
    ctx.error = error;
    ctx.res.destroy();
  }
}

/**
 * One try at one upstream. Created per attempt; relays status, headers and body to `ctx.res` as they arrive,
 * pausing the upstream whenever the client's socket is full.
 */
export class ProxyAttempt implements Dispatcher.DispatchHandler {
  controller: Dispatcher.DispatchController | undefined = undefined;
  readonly #ctx: RequestContext;
  readonly #peer: Peer;
  readonly #listener: AttemptListener;
  readonly #sentAt: number;
  readonly #bodyChunkMs: number;
  #started = false;
  #done = false;
  /** Resumes the upstream once the client has taken the buffered data; made on the first full buffer only. */
  #resumeOnDrain: (() => void) | undefined = undefined;
  /**
   * A gRPC answer whose first HEADERS already carry grpc-status is "trailers-only": held back until the upstream
   * ends it, then relayed as one HEADERS frame that ends the stream, as gRPC clients require.
   */
  #trailersOnly: { status: number; headers: OutgoingHttpHeaders } | undefined = undefined;
  /** Why the attempt was cut before undici handed over its controller (applied the moment it does). */
  #abortReason: GatewayError | undefined = undefined;
  #stopGuard: StopGuard | undefined = undefined;

  /** `bodyChunkMs`: longest silence in the request body while it is forwarded (0: unguarded). */
  constructor(ctx: RequestContext, peer: Peer, listener: AttemptListener, sentAt: number, bodyChunkMs = 0) {
    this.#ctx = ctx;
    this.#peer = peer;
    this.#listener = listener;
    this.#sentAt = sentAt;
    this.#bodyChunkMs = bodyChunkMs;
  }

  /** Sends the request. `headers` were built by the upstream request filters; `timeouts` are the route's own. */
  dispatch(headers: UpstreamHeaders, timeouts: RouteTimeouts | undefined): void {
    const ctx = this.#ctx;
    const req = ctx.req;
    ctx.attempt = this;
    const body = ctx.upgrade || !hasRequestBody(ctx) ? null : (ctx.upstreamBody ?? req);
    const options: Dispatcher.DispatchOptions = {
      path: ctx.upstreamPath,
      method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
      headers,
      body,
      upgrade: ctx.upgrade ? (req.headers.upgrade ?? 'websocket') : null,
    };
    if (timeouts !== undefined) {
      if (timeouts.responseMs !== undefined) options.headersTimeout = timeouts.responseMs;
      if (timeouts.bodyMs !== undefined) options.bodyTimeout = timeouts.bodyMs;
    }
    if (body !== null && this.#bodyChunkMs > 0) {
      // The closure exists only for requests with a body, not on every attempt. It watches the client's own
      // stream: a body-limit phase may put a transform in between (ctx.upstreamBody), the silence is the client's.
      this.#stopGuard = guardRequestBody(req, this.#bodyChunkMs, () => this.#onBodyIdle());
    }
    // The client is already gone (its connection or stream closed while the filters ran, and the request was logged
    // as 499): sending upstream would only hold a pool slot for a response nobody reads.
    if (ctx.logged) {
      this.#fail(CLIENT_CLOSED);
      return;
    }
    if (body !== null && req.httpVersionMajor === 2) {
      // An HTTP/2 stream reset while its body is open (rapid reset) ends neither the body nor, always, the response:
      // without this, the upstream request would wait for body bytes that never come and hold a pool slot. A
      // stream reset before we got here has already said so: never send it.
      if (req.aborted || req.destroyed) {
        this.#fail(CLIENT_CLOSED);
        return;
      }
      req.once('aborted', () => this.abort());
    }
    try {
      this.#peer.dispatcher.dispatch(options, this);
    } catch (err) {
      this.#fail(classifyUpstreamError(err));
    }
  }

  /** The client went away: stop the upstream side too (CLIENT_CLOSED is no fault of the upstream's). */
  abort(): void {
    if (!this.#done) this.#cut(CLIENT_CLOSED);
  }

  /** Aborts the upstream request now, or as soon as undici hands over its controller (it may still be queued). */
  #cut(reason: GatewayError): void {
    if (this.controller) this.controller.abort(reason);
    else this.#abortReason ??= reason;
  }

  /**
   * The client sent no body byte for `request_body_chunk`: answer 408 unless the response has begun, then, once that
   * answer is on its way, cut the upstream request and end the exchange: HTTP/1.1 closes the connection (the 408's
   * Connection: close), HTTP/2 closes the stream with CANCEL. Without that, node keeps an HTTP/2 stream whose body it
   * has begun reading open after the response (its compat response emits 'finish' only when the stream closes), and
   * the stream would hold its session and upstream request until the client ended it.
   */
  #onBodyIdle(): void {
    if (this.#done) return;
    if (this.#started) {
      this.#cut(BODY_TIMEOUT);
      return;
    }
    const stream = http2StreamOf(this.#ctx);
    this.#fail(stream === undefined ? BODY_TIMEOUT : BODY_TIMEOUT_H2);
    // The writable whose 'finish' means the 408 has been handed over: the HTTP/2 stream itself, not its compat response.
    const out = stream ?? this.#ctx.res;
    const cut = (): void => {
      this.#cut(BODY_TIMEOUT);
      if (stream !== undefined && !stream.closed) stream.close(h2constants.NGHTTP2_CANCEL);
    };
    if (out.writableFinished || out.destroyed) cut();
    else {
      out.once('finish', cut);
      out.once('close', cut);
    }
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.#abortReason !== undefined) controller.abort(this.#abortReason);
  }

  onRequestUpgrade(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    socket: Duplex,
  ): void {
    this.#started = true;
    this.#done = true;
    const ctx = this.#ctx;
    ctx.upstreamMs = performance.now() - this.#sentAt;
    const out = headers as OutgoingHttpHeaders;
    ctx.status = statusCode;
    const splice = (): void => {
      if (ctx.req.socket.destroyed) socket.destroy(); // the client left while an async response hook ran
      else spliceUpgrade(ctx, statusCode, out, socket);
      this.#listener.attemptFinished(ctx, this.#peer);
    };
    this.#afterDecorate(out, splice, () => socket.destroy());
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    statusMessage?: string,
  ): void {
    // Other 1xx (102, 103 Early Hints) are dropped, not relayed; a 101 goes to onRequestUpgrade. A 100 never arrives
    // here: the gateway strips Expect (node's server answers a client's 100-continue itself, and undici refuses the
    // header), and undici destroys the socket on any 100 (SocketError "bad response", classified UPSTREAM_PROTOCOL),
    // though RFC 9110 §15.2 says to ignore an unasked-for one.
    if (statusCode < 200) return;
    this.#started = true;
    const ctx = this.#ctx;
    const res = ctx.res;
    ctx.upstreamMs = performance.now() - this.#sentAt;
    const out = responseHeaders(headers);
    ctx.status = statusCode;
    if (res.destroyed || ctx.logged) {
      this.#cut(CLIENT_CLOSED); // nobody to relay to (closed, or an HTTP/2 stream reset): free the upstream connection now
      return;
    }
    const writeHead = (): void => {
      if (res.destroyed) return;
      if (out['grpc-status'] !== undefined && ctx.req.httpVersionMajor === 2) {
        this.#trailersOnly = { status: statusCode, headers: out };
        return;
      }
      // HTTP/2 has no reason phrase (node warns when given one).
      if (statusMessage && ctx.req.httpVersionMajor !== 2) res.writeHead(statusCode, statusMessage, out);
      else res.writeHead(statusCode, out);
    };
    this.#afterDecorate(out, writeHead, () => this.controller?.abort(RESPONSE_REPLACED));
  }

  /**
   * Runs the response filter, then `write`. An async hook (a plugin's) pauses the upstream until it settles, so
   * nothing is read meanwhile; a hook's GatewayError replaces the upstream's response with that error's reply
   * (`drop` discards the upstream side first), as nothing has reached the client yet.
   */
  #afterDecorate(headers: OutgoingHttpHeaders, write: () => void, drop: () => void): void {
    const ctx = this.#ctx;
    const fail = (err: unknown): void => {
      // Already ended (the client left and the abort finished the attempt); an upgrade is marked done up front.
      if (this.#done && !ctx.upgrade) return;
      this.#done = true;
      drop();
      this.#listener.attemptFinished(ctx, this.#peer);
      answerError(ctx, toGatewayError(err));
    };
    let pending: void | Promise<void>;
    try {
      pending = ctx.decorate(ctx, headers);
    } catch (err) {
      fail(err);
      return;
    }
    if (pending === undefined) {
      writeOrFail(ctx.res, write, fail);
      return;
    }
    const controller = this.controller;
    controller?.pause();
    pending.then(() => {
      if (ctx.res.destroyed) return; // the client left meanwhile: the close listener aborted the attempt
      if (writeOrFail(ctx.res, write, fail)) controller?.resume();
    }, fail);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const res = this.#ctx.res;
    // A destroyed response never emits 'drain': waiting for it would hold the upstream connection until
    // upstream_body expires. End the attempt at once instead.
    if (res.destroyed || this.#ctx.logged) {
      controller.abort(CLIENT_CLOSED);
      return;
    }
    if (this.#trailersOnly !== undefined) this.#flushHeldHeaders();
    if (!res.write(chunk)) {
      controller.pause();
      res.once('drain', (this.#resumeOnDrain ??= () => this.controller?.resume()));
    }
  }

  onResponseEnd(controller: Dispatcher.DispatchController, parsedTrailers: Record<string, string | string[] | undefined>): void {
    this.#done = true;
    this.#stopGuard?.();
    const ctx = this.#ctx;
    try {
      this.#endResponse(controller, parsedTrailers);
    } catch (err) {
      // A trailer, or held trailers-only header, node refuses. undici would catch the throw and report it to
      // onResponseError, which ignores a finished attempt: the client would wait forever and the peer never be
      // released. Answered here instead: an error while nothing was sent, else the stream is cut.
      answerError(ctx, refused(err));
    }
    this.#listener.attemptFinished(ctx, this.#peer);
  }

  #endResponse(controller: Dispatcher.DispatchController, parsedTrailers: Record<string, string | string[] | undefined>): void {
    const ctx = this.#ctx;
    const held = this.#trailersOnly;
    if (held !== undefined) {
      this.#trailersOnly = undefined;
      sendTrailersOnly(ctx, held.status, held.headers);
      return;
    }
    // Trailers (gRPC's grpc-status, or a checksum) go on to the client: as HTTP/2 trailers, or after a chunked body.
    const trailers = upstreamTrailers(parsedTrailers, (controller as { rawTrailers?: unknown }).rawTrailers);
    if (trailers !== undefined) ctx.res.addTrailers(trailers);
    ctx.res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.#stopGuard?.();
    if (this.#done) return;
    const error = err instanceof GatewayError ? err : classifyUpstreamError(err);
    if (!this.#started) {
      this.#fail(error);
      return;
    }
    // The response had begun: the client cannot be told with a status any more, so its connection is cut.
    this.#done = true;
    const ctx = this.#ctx;
    if (error.code !== 'CLIENT_CLOSED') ctx.error = error;
    // An HTTP/2 stream already closing (reset by the client, or closed by the gateway: this runs from its 'aborted'
    // event) is left to node: destroying it now would drop the RST_STREAM node has yet to send (node 20, measured).
    if (http2StreamOf(ctx)?.closed !== true) ctx.res.destroy();
    this.#listener.attemptFinished(ctx, this.#peer);
  }

  /** The held trailers-only headers were not the end after all (body data follows): send them as plain headers. */
  #flushHeldHeaders(): void {
    const held = this.#trailersOnly!;
    this.#trailersOnly = undefined;
    this.#ctx.res.writeHead(held.status, held.headers);
  }

  #fail(error: GatewayError): void {
    this.#done = true;
    this.#stopGuard?.();
    this.#listener.attemptFailed(this.#ctx, this.#peer, error);
  }
}
