// Streams one attempt to an upstream through undici's dispatch API, with backpressure in both directions.
import type { OutgoingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { GatewayError, toGatewayError } from '../errors.js';
import { sendError } from '../pipeline/reply.js';
import type { RequestContext } from '../pipeline/context.js';
import type { UpstreamHeaders } from '../pipeline/phase.js';
import type { Peer } from '../pipeline/upstream.js';
import type { RouteTimeouts } from '../pipeline/route.js';
import { responseHeaders } from './headers.js';
import { classifyUpstreamError, failedBeforeSending } from './upstream-error.js';
import { spliceUpgrade } from './upgrade.js';

/** Told how an attempt ended. Implemented by the pipeline driver (no per-request callbacks). */
export interface AttemptListener {
  /** The attempt failed before any response byte reached the client: the driver may retry or answer the error. */
  attemptFailed(ctx: RequestContext, peer: Peer, error: GatewayError): void;
  /** The response was fully relayed, or broke off after it had started (then `ctx.error` is set). */
  attemptFinished(ctx: RequestContext, peer: Peer): void;
}

/** Shared: an abort carries no per-request detail, so one instance (and one stack capture) serves them all. */
const CLIENT_CLOSED = new GatewayError('CLIENT_CLOSED');
/** Abort reason when a response hook's error replaces the upstream's response with an error reply. */
const RESPONSE_REPLACED = new GatewayError('CLIENT_CLOSED', { message: 'response replaced by a response hook error' });

/** Methods whose repetition has no extra effect (RFC 9110 §9.2.2): safe to send to a second upstream. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** True when the request carries a body (a Content-Length above 0, or chunked). */
export function hasRequestBody(ctx: RequestContext): boolean {
  const h = ctx.req.headers;
  const length = h['content-length'];
  return (length !== undefined && length !== '0') || h['transfer-encoding'] !== undefined;
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
 * One try at one upstream. Created per attempt; relays status, headers and body to `ctx.res` as they arrive,
 * pausing the upstream whenever the client's socket is full.
 */
export class ProxyAttempt implements Dispatcher.DispatchHandler {
  controller: Dispatcher.DispatchController | undefined = undefined;
  readonly #ctx: RequestContext;
  readonly #peer: Peer;
  readonly #listener: AttemptListener;
  readonly #sentAt: number;
  #started = false;
  #done = false;
  /** Resumes the upstream once the client has taken the buffered data; made on the first full buffer only. */
  #resumeOnDrain: (() => void) | undefined = undefined;

  constructor(ctx: RequestContext, peer: Peer, listener: AttemptListener, sentAt: number) {
    this.#ctx = ctx;
    this.#peer = peer;
    this.#listener = listener;
    this.#sentAt = sentAt;
  }

  /** Sends the request. `headers` were built by the upstream request filters; `timeouts` are the route's own. */
  dispatch(headers: UpstreamHeaders, timeouts: RouteTimeouts | undefined): void {
    const ctx = this.#ctx;
    const req = ctx.req;
    ctx.attempt = this;
    const options: Dispatcher.DispatchOptions = {
      path: ctx.upstreamPath,
      method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
      headers,
      body: ctx.upgrade || !hasRequestBody(ctx) ? null : (ctx.upstreamBody ?? req),
      upgrade: ctx.upgrade ? (req.headers.upgrade ?? 'websocket') : null,
    };
    if (timeouts !== undefined) {
      if (timeouts.responseMs !== undefined) options.headersTimeout = timeouts.responseMs;
      if (timeouts.bodyMs !== undefined) options.bodyTimeout = timeouts.bodyMs;
    }
    try {
      this.#peer.dispatcher.dispatch(options, this);
    } catch (err) {
      this.#fail(classifyUpstreamError(err));
    }
  }

  /** The client went away: stop the upstream side too (CLIENT_CLOSED is no fault of the upstream's). */
  abort(): void {
    if (!this.#done) this.controller?.abort(CLIENT_CLOSED);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
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
    if (statusCode < 200) return; // 1xx: node and undici handle 100-continue themselves
    this.#started = true;
    const ctx = this.#ctx;
    const res = ctx.res;
    ctx.upstreamMs = performance.now() - this.#sentAt;
    const out = responseHeaders(headers);
    ctx.status = statusCode;
    const writeHead = (): void => {
      if (res.destroyed) return;
      if (statusMessage) res.writeHead(statusCode, statusMessage, out);
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
      sendError(ctx, toGatewayError(err));
    };
    let pending: void | Promise<void>;
    try {
      pending = ctx.decorate(ctx, headers);
    } catch (err) {
      fail(err);
      return;
    }
    if (pending === undefined) {
      write();
      return;
    }
    const controller = this.controller;
    controller?.pause();
    pending.then(() => {
      if (ctx.res.destroyed) return; // the client left meanwhile: the close listener aborted the attempt
      write();
      controller?.resume();
    }, fail);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const res = this.#ctx.res;
    if (!res.write(chunk)) {
      controller.pause();
      res.once('drain', (this.#resumeOnDrain ??= () => this.controller?.resume()));
    }
  }

  onResponseEnd(): void {
    this.#done = true;
    const ctx = this.#ctx;
    ctx.res.end();
    this.#listener.attemptFinished(ctx, this.#peer);
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
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
    ctx.res.destroy();
    this.#listener.attemptFinished(ctx, this.#peer);
  }

  #fail(error: GatewayError): void {
    this.#done = true;
    this.#listener.attemptFailed(this.#ctx, this.#peer, error);
  }
}
