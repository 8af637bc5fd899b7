// Limits against HTTP/2 abuse, per client connection (session): rapid reset (CVE-2023-44487), idle sessions, header
// blocks left unfinished and sessions that do not finish closing; and per stream, the time a request may take to
// arrive (server.timeouts.request, which node applies to HTTP/1.1 only) and the time an answer handed over whole may
// wait on the client's flow-control window (server.timeouts.request_body_chunk, the send bound).
import { randomUUID } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import type { Http2Session, ServerHttp2Stream } from 'node:http2';
import { H2_CANCEL, H2_ENHANCE_YOUR_CALM } from '../proxy/h2-codes.js';
import { holdUntilGrpcRelease } from '../pipeline/grpc-call-release.js';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.js';
import { EVENTS } from '../observability/events.js';
import { answeredOutside, cutOutside } from '../pipeline/outside-answer.js';
import { errorBody } from '../pipeline/reply.js';
import { whenNghttp2Done } from '../proxy/h2-session-done.js';
import { INVALID_HEADER_VALUE } from './proxy-events.js';
import { causedByUpstream } from '../pipeline/h2-own-reset.js';
import { PrematureResets } from './premature-resets.js';

/**
 * Largest header list (HPACK-decoded names + values) a client may send: the same 16 KiB node allows an HTTP/1.1
 * request head. Node refuses a longer list on that stream, which also bounds a CONTINUATION flood (nghttp2
 * additionally caps CONTINUATION frames per header block).
 */
export const MAX_HEADER_LIST_SIZE = 16_384;
/** Header fields per request, as in node's HTTP/1.1 parser (maxHeadersCount default 2000 is far above real use). */
export const MAX_HEADER_LIST_PAIRS = 256;

/** Settings the guard needs from the config (read again on reload). */
export interface H2GuardSettings {
  /** Idle time (no open stream) after which a session is closed, as keep-alive idle time is for HTTP/1.1; 0: none. */
  idleMs: number;
  /**
   * `server.timeouts.header`: the longest a header block may stay unfinished, and the longest a session asked to
   * close may stay open once it has no open stream (0: the first bound is off, the second is idleMs).
   */
  headerMs: number;
  /**
   * `server.timeouts.request_body_chunk` as the send bound: the longest an answer handed over whole (end() called)
   * may wait on the client's flow-control window without a write completing; 0: none.
   */
  sendMs: number;
}

const REQUEST_TIMEOUT = new GatewayError('REQUEST_TIMEOUT');
/** Logged for an answer the send bound cut (never sent: its head is out), as forward.ts logs a stalled download. */
const SEND_TIMEOUT = new GatewayError('CLIENT_SEND_TIMEOUT');

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
  readonly #hsts: () => string;

  /**
   * `hsts`: the Strict-Transport-Security value as a reload leaves it ('' for none). The 408 is written here, outside
   * the pipeline's response phases, so it adds the header the HSTS phase gives every other answer over TLS.
   */
  constructor(requestMs: number, proxyBy: string, hsts: () => string = () => '') {
    this.#requestMs = requestMs;
    this.#proxyBy = proxyBy;
    this.#hsts = hsts;
  }

  /**
   * A new stream whose request has a body. A gRPC call is let go once it is sent to an HTTP/2 upstream
   * (pipeline/grpc-call-release.ts): client-streaming and bidirectional calls (watches, subscriptions) stay open by
   * design for as long as they are used, as Envoy leaves them (its request timeout is off for streams);
   * request_body_chunk still ends one whose client falls silent before the response begins.
   */
  track(stream: ServerHttp2Stream): void {
    if (stream.endAfterHeaders || this.#requestMs <= 0) return;
    const arriving = { since: performance.now() };
    const release = (): void => void this.#arriving.delete(stream);
    const restore = (): void => this.#restore(stream, arriving);
    if (!holdUntilGrpcRelease(stream, { release, restore })) return;
    this.#arriving.set(stream, arriving);
    if (this.#timer === undefined) this.#arm(this.#requestMs);
  }

  /**
   * A released stream held again, from its arrival (its retry goes to a service that cannot serve gRPC). Not back
   * into #arriving, which keeps arrival order for the sweep: a timer of its own, for what is left of its bound.
   */
  #restore(stream: ServerHttp2Stream, arriving: Arriving): void {
    if (stream.closed || this.#arriving.has(stream) || this.#requestMs <= 0) return;
    const left = Math.max(0, arriving.since + this.#requestMs - performance.now());
    const timer = setTimeout(() => {
      if (!stream.closed && stream.state.remoteClose !== 1) this.#expire(stream);
    }, left);
    timer.unref();
    stream.once('close', () => clearTimeout(timer));
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
      if (!stream.closed) stream.close(H2_CANCEL);
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
    // The request the driver runs on this stream: its id and time, and it is logged 408 rather than 499.
    const running = answeredOutside(stream, REQUEST_TIMEOUT);
    const id = running?.id ?? randomUUID();
    const body = JSON.stringify(errorBody(REQUEST_TIMEOUT, id));
    const hsts = this.#hsts();
    stream.respond({
      'x-proxy-by': this.#proxyBy,
      'x-request-id': id,
      'x-response-time': `${running?.ms ?? 0}ms`,
      'cache-control': 'no-store',
      // A value node would refuse in a header is left out (respond() would throw, and the 408 be lost with it).
      ...(hsts !== '' && !INVALID_HEADER_VALUE.test(hsts) ? { 'strict-transport-security': hsts } : {}),
      ':status': REQUEST_TIMEOUT.status,
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
    });
    stream.end(body);
  }
}

/**
 * A stream still open this long after its answer was written (the client still sending, or our RST_STREAM not out),
 * or after the gateway cut it mid-answer, gets its session probed with a PING (see SessionWatch); and a PING not
 * acknowledged within PING_ACK_MS means a session that cannot write: it is destroyed with its connection. Both
 * generous: a client that acknowledges nothing for seconds, while its answer is complete, is reading nothing.
 */
export const ANSWERED_STALL_MS = 2_000;
export const PING_ACK_MS = 5_000;

/** The sweep's cadence bounds, as node's own HTTP/1.1 connection checks (proxy-listener.ts). */
const MIN_SWEEP_MS = 250;
const MAX_SWEEP_MS = 30_000;

/** How often sessions are looked at: a quarter of `boundMs`, so a bound is late by a quarter (or 250 ms) at most. */
/** Streams a sweep found closed by nghttp2 and not destroyed by node (sweepClosed). */
const closedUndestroyed = new WeakSet<ServerHttp2Stream>();

/**
 * The backstop for a stream node 20 never destroys once nghttp2 closed it (a client's NO_ERROR reset under pending
 * writes, told by neither 'aborted' nor 'end': a request body still unread, say): one seen so by two sweeps in a
 * row is destroyed, so its request ends (logged, its upstream request cut) and its session can be let go. A stream
 * node is still ending normally (its last buffered bytes being read) is past that within one sweep.
 */
function sweepClosed(streams: Iterable<ServerHttp2Stream>): void {
  for (const stream of streams) {
    if (!stream.closed || stream.destroyed) continue;
    if (closedUndestroyed.has(stream)) stream.destroy();
    else closedUndestroyed.add(stream);
  }
}

export function sessionSweepInterval(boundMs: number): number {
  return Math.min(MAX_SWEEP_MS, Math.max(MIN_SWEEP_MS, Math.floor(boundMs / 4)));
}

/** What the guard can destroy: the TLS socket under a session (the session's own `socket` is a proxy that refuses). */
export interface RawSocket {
  destroy(): void;
}

/**
 * How often sessions with open streams are checked for a client connection that is gone (peerGone): a wedged session
 * (see SessionWatch #probe) is let go within about this long, whatever the other bounds are.
 */
export const PEER_CHECK_MS = 1_000;

/** What getpeername() fails with once the kernel has the connection closed (libuv's negative errno). */
const UV_ENOTCONN = -osConstants.errno.ENOTCONN;

/**
 * The client's TCP connection is gone: the kernel holds the socket closed (the client's RST was read, or a write
 * failed on it), so getpeername() fails with ENOTCONN. A connection the client has only half-closed (FIN) still has
 * its peer. One system call, no I/O: how the guard tells a session wedged on a dead connection, which reads nothing
 * and so never learns of the reset (no 'error', 'end' or 'close' ever reaches the socket or the session), from one
 * whose client merely reads slowly. `_handle` is the TLSWrap, whose getpeername() node forwards to the TCP handle.
 */
export function peerGone(raw: RawSocket | undefined): boolean {
  const handle = (raw as { _handle?: { getpeername?: (out: object) => unknown } | null } | undefined)?._handle;
  if (typeof handle?.getpeername !== 'function') return false;
  return handle.getpeername({}) === UV_ENOTCONN;
}

/** One session as the guard sees it. */
class Watched {
  /** Streams node has handed over ('stream' event) that have not closed. */
  open = 0;
  /** The highest stream id node has handed over. */
  lastStreamId = 0;
  /** A header block nghttp2 has begun and node not handed over: its stream id when a sweep first saw it, and when. */
  pendingId = 0;
  pendingSince = 0;
  /**
   * The highest stream id whose header block is known to have ended without node handing the stream over: refused
   * by node (a header list over the limits) or by nghttp2 (a content-length its END_STREAM contradicts, say). See
   * SessionWatch #settleBlock.
   */
  settledId = 0;
  /** A PING of #settleBlock is awaiting its ACK. */
  settling = false;
  /** When the session began to close (a GOAWAY of ours, or of the client's), NaN before. */
  closingSince = Number.NaN;
  /** Since when the session has had no open stream. */
  quietSince: number;
  idleTimer: NodeJS.Timeout | undefined = undefined;
  /** The rapid-reset trip has fired. */
  refused = false;
  /** A PING of the stalled-stream probe is awaiting its ACK. */
  probing = false;
  /**
   * Open streams whose answer has been handed over whole (end() called) and not all sent: what the stream still
   * held when a sweep first saw it so, and when. Filled by the sweep (see SessionWatch #sweepUnsent).
   */
  readonly unsent = new Map<ServerHttp2Stream, { held: number; since: number }>();
  /** Streams node has handed over that have not closed. */
  readonly streams = new Set<ServerHttp2Stream>();
  constructor(
    readonly session: Http2Session,
    readonly raw: RawSocket | undefined,
    now: number,
  ) {
    this.quietSince = now;
  }

  /**
   * The id of a stream whose header block nghttp2 has begun and node has not handed over (HEADERS without
   * END_HEADERS, and not all of its CONTINUATION frames yet), else 0. nghttp2 reads nothing else on the connection
   * until that block ends, and node hands a stream over only once its block has. `state` is {} once node has
   * destroyed the session. A stream node refused on its own before handing it over (a header list over the limits)
   * reads the same until a PING tells them apart (SessionWatch #settleBlock).
   */
  unfinishedBlock(): number {
    const begun = this.session.state.lastProcStreamID ?? 0;
    return begun > Math.max(this.lastStreamId, this.settledId) ? begun : 0;
  }
}

/**
 * Guards every HTTP/2 session of the listener. Per session: a client whose premature resets are half of its streams
 * (premature-resets.ts) is sent GOAWAY (ENHANCE_YOUR_CALM) and disconnected, since every reset stream may already
 * have cost an upstream request; a session without open streams for `idleMs` is closed gracefully.
 *
 * And bounds on what node waits for without end. node's `session.close()` sends GOAWAY and then waits for every
 * stream nghttp2 has open, and then for the client to close its side of the connection; neither is bounded:
 * - A header block left unfinished (HEADERS without END_HEADERS, then silence or a few CONTINUATION frames) is a
 *   stream nghttp2 has open and node never hands over: the connection was held for ever (slowloris over HTTP/2,
 *   bounded only by server.max_connections). Once a block has been unfinished for `headerMs` (timeouts.header, as
 *   node's headersTimeout for an HTTP/1.1 head, counted from the block's start however it trickles; idleMs when
 *   timeouts.header is 0, and no bound when both are) the session is
 *   sent GOAWAY, so that its streams in progress finish; and once none of those is left open it is destroyed (node
 *   would refuse the block's stream after its GOAWAY anyway). The idle close waits while a block is unfinished.
 * - A session that is closing (our GOAWAY: idle, unfinished block, shutdown; or the client's) and has had no open
 *   stream for `headerMs` is destroyed, its TLS socket with it: a client that never reads the GOAWAY, or never
 *   closes its side, held the connection for ever. headerMs because all a client may still do on a closing
 *   connection with no stream is finish a header block (idleMs when timeouts.header is 0).
 * Streams still open on a closing session keep their own bounds (timeouts.request, request_body_chunk, the
 * upstream timeouts) and, at shutdown, the drain's. One sweep for the whole listener, every quarter of the bound.
 * A session nghttp2 is done with (a connection error of the client's, answered GOAWAY; a client's GOAWAY with no
 * stream left) is destroyed as soon as its last frame is written (whenNghttp2Done).
 */
export class SessionWatch {
  readonly #sessions = new Map<Http2Session, Watched>();
  readonly #settings: H2GuardSettings;
  readonly #deadlines: RequestDeadlines;
  readonly #logger: Logger;
  #timer: NodeJS.Timeout | undefined = undefined;

  /** `settings` is read at each use: the listener updates it in place on reload. */
  constructor(settings: H2GuardSettings, deadlines: RequestDeadlines, logger: Logger) {
    this.#settings = settings;
    this.#deadlines = deadlines;
    this.#logger = logger;
  }

  /** A new session (the server's 'session' event); `raw` is the TLS socket under it. */
  add(session: Http2Session, raw: RawSocket | undefined): void {
    const w = new Watched(session, raw, performance.now());
    this.#sessions.set(session, w);
    const resets = new PrematureResets();
    // Errors on a session (a peer that broke the protocol) end that session only; node has already answered GOAWAY.
    session.on('error', () => session.destroy());
    // nghttp2 is done with the session (a connection error of the client's, answered GOAWAY): drop it now.
    whenNghttp2Done(session, () => setImmediate(() => this.#destroy(w)));
    session.once('close', () => {
      clearTimeout(w.idleTimer);
      this.#sessions.delete(session);
    });
    session.on('stream', (stream: ServerHttp2Stream) => {
      const openedAt = performance.now();
      /** Counted as closed when the client reset it (PrematureResets.reset), not again at its close. */
      let countedClosed = false;
      w.open++;
      w.streams.add(stream);
      const id = stream.id ?? 0;
      if (id > w.lastStreamId) w.lastStreamId = id;
      clearTimeout(w.idleTimer);
      this.#deadlines.track(stream);
      // 'aborted': the client reset the stream before the response was complete (or the stream outlived
      // timeouts.request mid-response and was cancelled: a client that holds 100 such streams is no better).
      stream.once('aborted', () => {
        // A stream the gateway reset or cut for its upstream's failure (mid-answer, a refused stream passed on) is
        // no sign of an attack; every other reset counts, the ones the client's own input caused too (h2-own-reset.ts).
        if (causedByUpstream(stream)) return;
        if (w.refused || session.destroyed) return;
        countedClosed = true;
        const now = performance.now();
        if (!resets.reset(now - openedAt, now)) return;
        w.refused = true;
        this.#logger.warn({ remote: session.socket?.remoteAddress, ...resets.counts }, EVENTS.http2Abuse);
        // Not from inside this callback: it runs while nghttp2 is processing the client's frames, and a GOAWAY or
        // destroy issued there is silently lost (measured). Next turn: GOAWAY (ENHANCE_YOUR_CALM), then give the
        // frame a moment to leave and drop the connection with every stream the client still has open.
        setImmediate(() => {
          if (session.destroyed) return;
          session.goaway(H2_ENHANCE_YOUR_CALM);
          // session.destroy() alone sometimes leaves the connection open (node 20: the session's writes stall when
          // the trip lands mid-read), so the TLS socket itself is destroyed too.
          setTimeout(() => this.#destroy(w), 50).unref();
        });
      });
      // A stream that stays open once its answer was written, or once it was cut mid-answer (closed by the gateway:
      // the send bound, timeouts.request; 'aborted' is emitted then, its writes pending): the session may be wedged
      // (see #probe). A stream the client reset also emits 'aborted', and closes on the same turn.
      let stall: NodeJS.Timeout | undefined;
      const watchStall = (): void => {
        if (stall !== undefined || stream.destroyed) return;
        stall = setTimeout(() => this.#probe(w), ANSWERED_STALL_MS);
        stall.unref();
      };
      stream.once('finish', watchStall);
      stream.once('aborted', watchStall);
      // A client's RST_STREAM(NO_ERROR), what node's own client sends for close() and destroy(), on a stream whose
      // answer waits on flow control: node 20 closes it in nghttp2 but leaves the stream object waiting for writes
      // that can no longer finish, so it never emits 'close'. Nothing downstream ends then: the request is never
      // logged, its upstream request runs on, the session is never let go, and a stop waits on it for good. node
      // tells it by 'aborted' when the answer was still being written, else only by the request's 'end' that its
      // close pushes: on either, a stream closed under its writes is destroyed next turn (they come from inside
      // nghttp2's frame processing), and closes as any reset. The sweep catches one neither tells (#sweepClosed).
      const destroyIfClosed = (): void =>
        void setImmediate(() => {
          if (stream.closed && !stream.destroyed) stream.destroy();
        });
      stream.once('aborted', destroyIfClosed);
      stream.once('end', destroyIfClosed);
      stream.once('close', () => {
        if (!countedClosed) resets.closed();
        clearTimeout(stall);
        this.#deadlines.forget(stream);
        w.streams.delete(stream);
        w.unsent.delete(stream);
        if (--w.open > 0) return;
        w.quietSince = performance.now();
        if (!session.closed) this.#armIdle(w);
      });
    });
    this.#armIdle(w);
    this.#armSweep();
  }

  /** Asks every session to close (GOAWAY after its open streams finish): the shutdown's drain. */
  closeAll(): void {
    for (const w of this.#sessions.values()) this.#close(w);
  }

  /** Drops every session and its connection now (the end of the drain). */
  destroyAll(): void {
    for (const w of [...this.#sessions.values()]) this.#destroy(w);
  }

  /**
   * The idle close, timeouts.idle after the session's last stream closed (or it opened). 0 is no idle bound between
   * requests, as node reads a keepAliveTimeout of 0 for HTTP/1.1 on the same port (armed with 0, the timer sent every
   * new session GOAWAY before its first request); a session that has not opened a stream yet then still gets
   * timeouts.header, as an HTTP/1.1 connection gets it for its first head. Read per wait, so a reload applies to the
   * next one.
   */
  #armIdle(w: Watched): void {
    clearTimeout(w.idleTimer);
    w.idleTimer = undefined;
    const { idleMs, headerMs } = this.#settings;
    const waitMs = idleMs > 0 ? idleMs : w.lastStreamId === 0 ? headerMs : 0;
    if (waitMs <= 0) return;
    w.idleTimer = setTimeout(() => {
      // A header block on its way is a stream being opened: not idle (the sweep bounds the block).
      if (w.open === 0 && !w.session.closed && w.unfinishedBlock() === 0) {
        // A session that cannot write (see #probe) would never send its GOAWAY either: probed first.
        this.#probe(w);
        this.#close(w);
      }
    }, waitMs);
    w.idleTimer.unref();
  }

  /**
   * A stream is still open ANSWERED_STALL_MS after its answer was written or after it was cut mid-answer (a download
   * whose client went away, cut by the send bound: its RST_STREAM is never written either), or the session is about
   * to be closed for idleness: the session is asked for a PING, and destroyed with its TLS socket if no ACK comes
   * within PING_ACK_MS (nor does the session close meanwhile). What it catches: node 20 wedges a session whose
   * socket write fails at once (ECONNRESET from a client that closed its connection after reading the answer, as curl
   * does with its upload unsent, or in the middle of a download). The TLS layer (TLSWrap::EncOut) hands the error to
   * the session but keeps the failed write's size as "a write in progress", so every later write of the session
   * waits on it for good; a session with a write in progress stops reading its socket, so the reset is never read
   * either, and no error reaches JavaScript. Its RST_STREAM (ours, or nghttp2's), GOAWAY and PINGs are queued and
   * never sent, the stream never closes (the request is never logged) and the connection holds its socket and its
   * max_connections_per_client slot for ever. Only a destroyed socket frees it: session.destroy() waits for that
   * write to end. A client still uploading after its answer, on a working connection, acknowledges the PING and is
   * left alone; one probe per session at a time.
   */
  #probe(w: Watched): void {
    const session = w.session;
    if (w.probing || session.destroyed || session.closed || !this.#sessions.has(session)) return;
    w.probing = true;
    const timer = setTimeout(() => {
      w.probing = false;
      this.#destroy(w);
    }, PING_ACK_MS);
    timer.unref();
    const answered = (): void => {
      clearTimeout(timer);
      w.probing = false;
    };
    try {
      // An error (ERR_HTTP2_PING_CANCEL): node refused the PING, the client having left too many unacknowledged
      // (it then calls back at once), or the session went; not an ACK: the timer decides.
      session.ping((err) => {
        if (err === null) answered();
      });
    } catch {
      answered(); // destroyed meanwhile: nothing to probe
    }
  }

  /**
   * A header block nghttp2 has begun and node has not handed over, as a sweep saw it: a PING is sent, and its ACK
   * settles every block begun by then. nghttp2 takes no other frame between a HEADERS and its last CONTINUATION (any other is a
   * connection error), so an ACK read after the block began means it ended, and its stream was refused before node
   * handed it over (node's header-list limits, nghttp2's checks of the request: a content-length its END_STREAM
   * contradicts). Without this, an honest client whose last stream was so refused read as one holding a block
   * unfinished: its session was sent GOAWAY timeouts.header later, and destroyed, whatever timeouts.idle (0: none)
   * and its other open streams. A client that never acknowledges keeps the bound, as before.
   */
  #settleBlock(w: Watched): void {
    const session = w.session;
    // One at a time: a client that acknowledges nothing would otherwise fill node's outstanding-PING queue (10), and
    // every PING past it (#probe's) is refused. A closed session's PING would never be sent.
    if (w.settling || session.destroyed || session.closed) return;
    w.settling = true;
    try {
      session.ping((err) => {
        w.settling = false;
        if (err !== null) return;
        // Read as the ACK is processed: no header block can be in progress then, so every block begun has ended.
        const begun = session.state.lastProcStreamID ?? 0;
        if (begun > w.settledId) w.settledId = begun;
      });
    } catch {
      w.settling = false; // destroyed meanwhile: the bound decides
    }
  }

  #close(w: Watched): void {
    if (Number.isNaN(w.closingSince)) w.closingSince = performance.now();
    if (!w.session.closed && !w.session.destroyed) w.session.close();
  }

  #destroy(w: Watched): void {
    this.#sessions.delete(w.session);
    clearTimeout(w.idleTimer);
    if (!w.session.destroyed) w.session.destroy();
    // node's destroy() still ends the socket gracefully when nghttp2 has nothing to send, and a graceful close that
    // completed (a destroyed session whose 'close' has not come) waits for the client's side: the TLS socket goes.
    w.raw?.destroy();
  }

  #armSweep(): void {
    if (this.#timer !== undefined || this.#sessions.size === 0) return;
    // Often enough for both bounds: the closing bound (timeouts.header) and the send bound; and at least every
    // PEER_CHECK_MS, for the connections gone under a wedged session.
    const { sendMs } = this.#settings;
    const closeEvery = Math.min(PEER_CHECK_MS, sessionSweepInterval(this.#closeBound()));
    this.#timer = setTimeout(this.#sweep, sendMs > 0 ? Math.min(closeEvery, sessionSweepInterval(sendMs)) : closeEvery);
    this.#timer.unref();
  }

  /** How long a closing session with no open stream is kept. */
  #closeBound(): number {
    return this.#settings.headerMs > 0 ? this.#settings.headerMs : this.#settings.idleMs;
  }

  /**
   * The send bound for answers handed over whole. A stream's write completes only once its DATA frames are out,
   * which the client's flow-control window allows; a client that takes one answer's bytes and never sends
   * WINDOW_UPDATE stops every later answer on its connection at the window, for good: a gateway-made answer (a 401,
   * a 404, an /auth/* answer) or a proxied answer whose upstream had ended was never cut (forward.ts's send bound
   * watches a response only while its upstream is paused), so its stream, its request (in flight, its plugin
   * generation's drain) and the connection were held past every timeout, however the client acknowledged PINGs. A
   * stream whose answer is all handed over and whose held bytes have not gone down for `sendMs` is closed
   * (CANCEL: RST_STREAM is not flow-controlled), as forward.ts cuts a paused one; its 'aborted' arms the session's
   * probe, for a connection that cannot write at all. Progress is counted as forward.ts counts it: writableLength
   * falls by whole writes.
   */
  #sweepUnsent(w: Watched, now: number): void {
    const { sendMs } = this.#settings;
    if (sendMs <= 0) {
      w.unsent.clear();
      return;
    }
    for (const stream of w.streams) {
      if (!stream.writableEnded || stream.writableFinished || stream.destroyed || stream.closed) {
        w.unsent.delete(stream);
        continue;
      }
      const held = stream.writableLength;
      const seen = w.unsent.get(stream);
      if (seen === undefined || held < seen.held) w.unsent.set(stream, { held, since: now });
      else if (now - seen.since >= sendMs) {
        w.unsent.delete(stream);
        // Logged as what it is: without this the request's line said a clean success for an answer the client
        // never got whole.
        cutOutside(stream, SEND_TIMEOUT);
        stream.close(H2_CANCEL);
      }
    }
  }

  readonly #sweep = (): void => {
    this.#timer = undefined;
    const now = performance.now();
    // An unfinished header block is bounded by timeouts.header, or by timeouts.idle when that is 0 (the idle close
    // waits for a block on its way, so without this a block left unfinished would hold the session for good).
    const closeMs = this.#closeBound();
    for (const w of [...this.#sessions.values()]) {
      const session = w.session;
      // A session node 20 wedged (see #probe) on a connection its client has dropped mid-answer: it stopped reading
      // its socket, so neither the reset nor anything else ever tells it, whatever the other bounds are (with
      // request_body_chunk 0, none): its streams, their upstream requests and the connection were held for good.
      // Destroyed with its TLS socket, its streams close as a departed client's do (the request logged as such, its
      // upstream request cut). Only sessions with a stream open: one without is bounded by the idle close's probe.
      if (w.open > 0 && peerGone(w.raw)) {
        this.#destroy(w);
        continue;
      }
      this.#sweepUnsent(w, now);
      sweepClosed(w.streams);
      if (session.closed && Number.isNaN(w.closingSince)) w.closingSince = now; // the client's GOAWAY, or node's
      const closingBefore = w.closingSince < now; // false while NaN
      let overdueBlock = false;
      const pending = closeMs > 0 ? w.unfinishedBlock() : 0;
      if (pending === 0) w.pendingId = 0;
      else if (pending !== w.pendingId) {
        w.pendingId = pending;
        w.pendingSince = now;
      } else if (now - w.pendingSince >= closeMs) {
        overdueBlock = true;
        this.#close(w);
      }
      if (pending !== 0) this.#settleBlock(w);
      if (w.open > 0 || !closingBefore) continue;
      // Closing since an earlier turn, nothing open: an overdue block can never be served now (node refuses a stream
      // that completes after its GOAWAY), and a client has had closeMs to go. A session closed this turn for its
      // block is looked at again next turn: one whose block was a stream node refused closes gracefully meanwhile.
      if (overdueBlock || now - Math.max(w.closingSince, w.quietSince) >= closeMs) this.#destroy(w);
    }
    this.#armSweep();
  };
}
