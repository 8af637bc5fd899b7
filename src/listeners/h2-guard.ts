// Limits against HTTP/2 abuse, per client connection (session): rapid reset (CVE-2023-44487) and idle sessions.
import { constants, type Http2Session, type ServerHttp2Stream } from 'node:http2';
import type { Logger } from 'pino';
import { EVENTS } from '../observability/events.js';

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

/**
 * Watches one session: a client that resets streams faster than RESET_LIMIT per RESET_WINDOW_MS is sent GOAWAY
 * (ENHANCE_YOUR_CALM) and disconnected, since every reset stream may already have cost an upstream request; a
 * session without open streams for `idleMs` is closed gracefully. Runs from the server's 'session' event.
 */
export function guardSession(
  session: Http2Session,
  settings: H2GuardSettings,
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
  session.on('stream', (stream: ServerHttp2Stream) => {
    open++;
    clearTimeout(idleTimer);
    // 'aborted': the client reset the stream before the response was complete.
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
      if (--open === 0 && !session.closed) armIdle();
    });
  });
  armIdle();
}
