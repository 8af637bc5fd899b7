// Limits against HTTP/2 abuse, per client connection (session): rapid reset (CVE-2023-44487) and idle sessions; and
// per stream, the time a request may take to arrive (server.timeouts.request, which node applies to HTTP/1.1 only).
import { randomUUID } from 'node:crypto';
import { constants, type IncomingHttpHeaders, type Http2Session, type ServerHttp2Stream } from 'node:http2';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.js';
import { EVENTS } from '../observability/events.js';
import { errorBody } from '../pipeline/reply.js';
import { isGrpc } from '../proxy/headers.js';

/** Streams a client may reset within one window before its connection is closed with GOAWAY. */
export const RESET_LIMIT = 100;
/** The window of RESET_LIMIT, in ms. */
export const RESET_WINDOW_MS = 1_000;
/**
 * Largest header list (HPACK-decoded names + values) a client may send: the same 16 KiB node allows an HTTP/1.1
 * request head. Node refuses a longer list on that stream, which also bounds a CONTINUATION flood (nghttp2
 * additionally caps CONTINUATION frames per header block).
 */
export const MAX_HEADER_LIST_SIZE = 16_384;
/** Header fields per request, as in node's HTTP/1.1 parser (maxHeadersCount default 2000 is far above real use). */
export const MAX_HEADER_LIST_PAIRS = 256;

/**
 * Counts events in fixed windows: `hit(now)` returns true once more than `limit` events fell in the current
 * window. Pure (the caller passes the clock), so it has a cheap unit test.
 */
export class WindowCounter {
  #windowStart = 0;
  #count = 0;
  constructor(
    readonly limit: number,
    readonly windowMs: number,
  ) {}

  hit(now: number): boolean {
    if (now - this.#windowStart >= this.windowMs) {
      this.#windowStart = now;
      this.#count = 0;
    }
    return ++this.#count > this.limit;
  }
}

/** Settings the guard needs from the config (read again on reload). */
export interface H2GuardSettings {
  /** Idle time (no open stream) after which a session is closed, as keep-alive idle time is for HTTP/1.1. */
  idleMs: number;
}

const REQUEST_TIMEOUT = new GatewayError('REQUEST_TIMEOUT');

/** A stream still receiving its request: when it began. */
interface Arriving {
  readonly since: number;
}

/**
 * Bounds the time an HTTP/2 stream may take to send its whole request (`server.timeouts.request`), as node bounds an
 * HTTP/1.1 request: past it, the stream gets 408 if nothing was sent yet, else it is reset; either way it is closed
 * (CANCEL), which the driver reads as the client gone (its upstream attempt is aborted, the request logged 499, as
 * node's HTTP/1.1 408 is). Without it a stream trickling its body, or never ending it, holds its upstream request and
 * its session for ever (the idle close waits for zero open streams).
 *
 * One timer for the whole listener, not one per stream (node checks HTTP/1.1 requests with a shared sweep too):
 * streams are kept in arrival order, so the oldest is always the next to expire, and the timer is set for it. A
 * stream whose HEADERS ended the request (a GET) is never tracked; others cost a Map insert and delete.
 */
export class RequestDeadlines {
  readonly #arriving = new Map<ServerHttp2Stream, Arriving>();
  #requestMs: number;
  #proxyBy: string;
  #timer: NodeJS.Timeout | undefined = undefined;

  constructor(requestMs: number, proxyBy: string) {
    this.#requestMs = requestMs;
    this.#proxyBy = proxyBy;
  }

  /**
   * A new stream; `headers` are its request's. Not a gRPC call: client-streaming and bidirectional calls (watches,
   * subscriptions) stay open by design for as long as they are used, as Envoy leaves them (its request timeout is
   * off for streams); request_body_chunk still ends one whose client falls silent before the response begins.
   */
  track(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    if (stream.endAfterHeaders || this.#requestMs <= 0 || isGrpc(headers)) return;
    this.#arriving.set(stream, { since: performance.now() });
    if (this.#timer === undefined) this.#arm(this.#requestMs);
  }

  /** The stream closed. */
  forget(stream: ServerHttp2Stream): void {
    this.#arriving.delete(stream);
  }

  /** New settings (reload): streams already arriving are held to the new bound, as node does for HTTP/1.1. */
  update(requestMs: number, proxyBy: string): void {
    this.#requestMs = requestMs;
    this.#proxyBy = proxyBy;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (requestMs <= 0) this.#arriving.clear();
    else if (this.#arriving.size > 0) this.#sweep();
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(this.#sweep, ms);
    this.#timer.unref();
  }

  readonly #sweep = (): void => {
    this.#timer = undefined;
    const now = performance.now();
    for (const [stream, arriving] of this.#arriving) {
      const left = arriving.since + this.#requestMs - now;
      if (left > 0) {
        this.#arm(left);
        return;
      }
      this.#arriving.delete(stream);
      // remoteClose: the client has sent END_STREAM, whether or not the gateway has read the body yet.
      if (!stream.closed && stream.state.remoteClose !== 1) this.#expire(stream);
    }
  };

  /** 408 if the response has not begun, then CANCEL once it is out; else CANCEL now. */
  #expire(stream: ServerHttp2Stream): void {
    const cancel = (): void => {
      if (!stream.closed) stream.close(constants.NGHTTP2_CANCEL);
    };
    if (stream.headersSent || stream.destroyed) {
      cancel();
      return;
    }
    stream.once('finish', cancel);
    try {
      this.#answer(stream);
    } catch {
      cancel(); // node refused to respond (the session is going away): this runs on a timer, where a throw is fatal
    }
  }

  #answer(stream: ServerHttp2Stream): void {
    const id = randomUUID();
    const body = JSON.stringify(errorBody(REQUEST_TIMEOUT, id));
    stream.respond({
      'x-proxy-by': this.#proxyBy,
      'x-request-id': id,
      'cache-control': 'no-store',
      ':status': REQUEST_TIMEOUT.status,
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
    });
    stream.end(body);
  }
}

/**
 * Watches one session: a client that resets streams faster than RESET_LIMIT per RESET_WINDOW_MS is sent GOAWAY
 * (ENHANCE_YOUR_CALM) and disconnected, since every reset stream may already have cost an upstream request; a
 * session without open streams for `idleMs` is closed gracefully. Runs from the server's 'session' event.
 */
export function guardSession(
  session: Http2Session,
  settings: H2GuardSettings,
  deadlines: RequestDeadlines,
  logger: Logger,
  rawSocket: (session: Http2Session) => { destroy(): void } | undefined,
): void {
  const resets = new WindowCounter(RESET_LIMIT, RESET_WINDOW_MS);
  let open = 0;
  let refused = false;
  let idleTimer: NodeJS.Timeout | undefined;
  const armIdle = () => {
    idleTimer = setTimeout(() => {
      if (open === 0 && !session.closed) session.close();
    }, settings.idleMs);
    idleTimer.unref();
  };
  // Errors on a session (a peer that broke the protocol) end that session only; node has already answered GOAWAY.
  session.on('error', () => session.destroy());
  session.once('close', () => clearTimeout(idleTimer));
  session.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    open++;
    clearTimeout(idleTimer);
    deadlines.track(stream, headers);
    // 'aborted': the client reset the stream before the response was complete (or the stream outlived
    // timeouts.request mid-response and was cancelled: a client that holds 100 such streams is no better).
    stream.once('aborted', () => {
      if (refused || !resets.hit(performance.now()) || session.destroyed) return;
      refused = true;
      logger.warn({ remote: session.socket?.remoteAddress, resets: RESET_LIMIT, window_ms: RESET_WINDOW_MS }, EVENTS.http2Abuse);
      // Not from inside this callback: it runs while nghttp2 is processing the client's frames, and a GOAWAY or
      // destroy issued there is silently lost (measured). Next turn: GOAWAY (ENHANCE_YOUR_CALM), then give the frame
      // a moment to leave and drop the connection with every stream the client still has open.
      setImmediate(() => {
        if (session.destroyed) return;
        const socket = rawSocket(session);
        session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM);
        // session.destroy() alone sometimes leaves the connection open (node 20: the session's writes stall when the
        // trip lands mid-read), so the TLS socket itself is destroyed too.
        setTimeout(() => {
          session.destroy();
          socket?.destroy();
        }, 50).unref();
      });
    });
    stream.once('close', () => {
      deadlines.forget(stream);
      if (--open === 0 && !session.closed) armIdle();
    });
  });
  armIdle();
}
