// Streams one attempt to an upstream through undici's dispatch API, with backpressure in both directions.
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import { H2_CANCEL, H2_INTERNAL_ERROR } from './h2-codes.js';
import type { Duplex, Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { GatewayError, toGatewayError } from '../errors.js';
import { sendError } from '../pipeline/reply.js';
import { closeAfterAnswer } from '../pipeline/h2-early-answer.js';
import type { RequestContext } from '../pipeline/context.js';
import type { UpstreamHeaders } from '../pipeline/phase.js';
import type { Peer } from '../pipeline/upstream.js';
import type { RouteTimeouts } from '../pipeline/route.js';
import { isGrpc, isNativeGrpcContentType, joinRepeatedForHttp2, responseHeaders, sendableHttp2Trailers, upgradeResponseHeaders, upstreamTrailers } from './headers.js';
import { CLIENT_CLOSED, classifyUpstreamError, failedBeforeSending, spareUpstreamUnlessUnreachable } from './upstream-error.js';
import { spliceUpgrade, tunnelledProtocol, UnaskedProtocolSwitch, type TunnelSummary } from './upgrade.js';
import { dispatchServername } from './upstream-tls.js';
import { sendTrailersOnly } from '../pipeline/reply.js';
import { encodeGrpcMessage, grpcStatusFor } from '../pipeline/grpc-status.js';
import { guardRequestBody, type StopGuard } from './body-guard.js';
import { continueBody } from '../pipeline/expect-continue.js';
import { H2_WRITE_PIECE, oneWriteAtATime, writeInPieces } from './h2-write-pieces.js';
import { kernelTakenBytes, type HandleOwner } from './kernel-taken-bytes.js';
import { wasAnsweredOutside } from '../pipeline/outside-answer.js';
import { bodyStillArriving, hasRequestBody, onlyChunked } from '../pipeline/request-body.js';
import { closeAfterRelayedAnswer, closeOnceUploaded, closeWhenUploadAbandoned } from '../pipeline/lingering-close.js';
import { bodyForHttp2 } from './h2-upload-body.js';
import { onBodyCutByClose } from './h2-reset-end.js';
import { releaseGrpcCall, restoreRequestBound } from '../pipeline/grpc-call-release.js';
import { cancelUploadWhenClientLeaves } from './upload-after-answer.js';
import { noteCut, resetForUpstream } from '../pipeline/h2-own-reset.js';
import { cutBegunResponse } from '../pipeline/cut-response.js';

/** Told how an attempt ended. Implemented by the pipeline driver (no per-request callbacks). */
export interface AttemptListener {
  /** The attempt failed before any response byte reached the client: the driver may retry or answer the error. */
  attemptFailed(ctx: RequestContext, peer: Peer, error: GatewayError): void;
  /** The response was fully relayed, or broke off after it had started (then `ctx.error` is set). */
  attemptFinished(ctx: RequestContext, peer: Peer): void;
  /**
   * The upstream switched protocols and the tunnel is open: the exchange is logged now, while the peer stays taken
   * (least_conn, in-flight gauges) until the tunnel closes, when tunnelClosed follows.
   */
  tunnelOpened(ctx: RequestContext): void;
  /** Both sockets of the tunnel have closed: the peer is free again, and the tunnel's own facts can be told. */
  tunnelClosed(ctx: RequestContext, peer: Peer, tunnel: TunnelSummary): void;
}

/** Shared: the client stopped sending its body; the connection is closed after the 408. */
const BODY_TIMEOUT = new GatewayError('REQUEST_BODY_TIMEOUT', { headers: { connection: 'close' } });
/** The same over HTTP/2, which has no Connection header (node drops it with a warning): the stream is closed instead. */
const BODY_TIMEOUT_H2 = new GatewayError('REQUEST_BODY_TIMEOUT');
/**
 * Shared: the client left response bytes untaken for the send bound while the upstream was paused for it (nginx's
 * send_timeout). Cuts the exchange: the client's connection (HTTP/2: its stream, CANCEL) and the upstream request.
 */
const SEND_TIMEOUT = new GatewayError('CLIENT_SEND_TIMEOUT');
/**
 * The cause logged for a gRPC response that ended without grpc-status (its code names what was wrong; describeCause
 * logs name and code, never a message).
 */
class GrpcStatusMissing extends Error {
  readonly code = 'GRPC_STATUS_MISSING';
  constructor() {
    super('gRPC response ended without grpc-status');
    this.name = 'GrpcStatusMissing';
  }
}

/**
 * Shared: a gRPC response ended without grpc-status. gRPC requires one, in the trailers or a trailers-only head
 * (PROTOCOL-HTTP2.md): a call that ends without it did not complete. That is how an HTTP/2 upstream's reset
 * mid-response can reach the gateway: node's http2 server sends END_STREAM before the RST_STREAM of stream.close(code),
 * and nghttp2 drops a RST_STREAM for a stream already closed, so undici reports a clean end. Relayed as it came, the
 * client got END_STREAM without a status; it is an upstream failure mid-response instead (its stream reset with
 * INTERNAL_ERROR, or an error answer while nothing was sent).
 */
const GRPC_WITHOUT_STATUS = new GatewayError('UPSTREAM_PROTOCOL', { cause: new GrpcStatusMissing() });

/** An upstream response framed with a transfer coding other than chunked alone (logs name and code). */
class UnknownTransferCoding extends Error {
  readonly code = 'UNKNOWN_TRANSFER_CODING';
  constructor() {
    super('upstream response with a transfer coding other than chunked');
    this.name = 'UnknownTransferCoding';
  }
}

/** Shared: answered 502 upstream_protocol, never relayed (a proxy cannot drop a coding it did not decode). */
const UNKNOWN_TRANSFER_CODING = new GatewayError('UPSTREAM_PROTOCOL', { cause: new UnknownTransferCoding() });

/** An upstream status code above 599 (logs name and code). */
class InvalidStatusCode extends Error {
  readonly code = 'INVALID_STATUS_CODE';
  constructor() {
    super('upstream response status outside 100-599');
    this.name = 'InvalidStatusCode';
  }
}

/**
 * Shared: RFC 9110 §15 has status codes from 100 to 599 ("values outside the range 100..599 are invalid"), and llhttp
 * takes any three digits. Relayed, a 600 or 999 reached HTTP/1.1 clients as it came, while node refused it to an
 * HTTP/2 client (a 502 blamed on the gateway); undici fails an assertion on one below 100. Answered 502
 * upstream_protocol to all, never relayed.
 */
const INVALID_STATUS = new GatewayError('UPSTREAM_PROTOCOL', { cause: new InvalidStatusCode() });

/**
 * The response head undici takes from an HTTP/1 upstream: names and values under node's http.maxHeaderSize (16 KB),
 * counted as undici counts them (its HeadersOverflowError at 16,384 bytes). Undici has no such bound for an HTTP/2
 * upstream (it passes node's http2 client no header-list setting, whose default is 64 KB): that head is held to the
 * same count here (headTooLarge).
 */
const MAX_RESPONSE_HEAD_BYTES = 16_384;

/** An upstream response head over MAX_RESPONSE_HEAD_BYTES (logs name and code, as undici's own for HTTP/1). */
class ResponseHeadTooLarge extends Error {
  readonly code = 'UND_ERR_HEADERS_OVERFLOW';
  constructor() {
    super('upstream response head over 16 KB');
    this.name = 'HeadersOverflowError';
  }
}

/**
 * Shared: an HTTP/2 upstream's head (or trailer section) over 16 KB is refused as an HTTP/1 upstream's is (502
 * upstream_protocol, or the response cut once it has begun).
 */
const HEAD_TOO_LARGE = new GatewayError('UPSTREAM_PROTOCOL', { cause: new ResponseHeadTooLarge() });

/**
 * True when a response head's names and values come to MAX_RESPONSE_HEAD_BYTES or more. Header text is Latin-1 (one
 * byte per character). An HTTP/1 head that undici passed is always under it, so this refuses only HTTP/2 heads.
 */
function headTooLarge(headers: Record<string, string | string[] | undefined>): boolean {
  let bytes = 0;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === 'string') bytes += name.length + value.length;
    else for (let i = 0; i < value.length; i++) bytes += name.length + value[i]!.length;
    if (bytes >= MAX_RESPONSE_HEAD_BYTES) return true;
  }
  return false;
}

/**
 * headTooLarge for an HTTP/2 upstream's trailers. undici hands those over as node's object, which its handler
 * wrapper cannot parse (it expects HTTP/1's flat list): they arrive as the controller's rawTrailers, the parsed ones
 * empty (as upstreamTrailers reads them too).
 */
function h2TrailersTooLarge(parsed: Readonly<Record<string, string | string[] | undefined>> | undefined, controller: Dispatcher.DispatchController): boolean {
  if (parsed !== undefined && Object.keys(parsed).length > 0) return headTooLarge(parsed);
  const raw = (controller as { rawTrailers?: unknown }).rawTrailers;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return false;
  return headTooLarge(raw as Record<string, string | string[] | undefined>);
}

/** A 101 to a request sent upstream without Upgrade (logs name and code). */
class UnaskedSwitch extends Error {
  readonly code = 'UNASKED_SWITCHING_PROTOCOLS';
  constructor() {
    super('upstream 101 to a request without Upgrade');
    this.name = 'UnaskedSwitch';
  }
}

/** Shared: a 101 to a plain request is an answer the upstream got wrong, as undici's own "bad upgrade" is. */
const UNASKED_101 = new GatewayError('UPSTREAM_PROTOCOL', { cause: new UnaskedSwitch() });

/**
 * Shared: a 101 to a WebSocket request that switches to nothing (no Upgrade field, or no Connection: upgrade), which
 * RFC 6455 §4.1 has a client fail: 502 proxy_error, as a 101 naming another protocol gets (spliceUpgrade).
 */
const UNSWITCHED_101 = new GatewayError('PROXY_ERROR', { cause: new UnaskedProtocolSwitch() });

/**
 * The final response head did not come within upstream_response of the first interim (1xx) one (logs name and code;
 * the code is undici's own for a response head that did not come in time).
 */
class InterimResponsesTimeout extends Error {
  readonly code = 'UND_ERR_HEADERS_TIMEOUT';
  constructor() {
    super('no final response head within upstream_response of the first interim one');
    this.name = 'InterimResponsesTimeout';
  }
}

/** A gRPC response content type (application/grpc, +proto, ;charset, any case): not gRPC-Web, which carries its status in the body. */
function isGrpcResponse(headers: OutgoingHttpHeaders): boolean {
  return isNativeGrpcContentType(headers['content-type']);
}

/** Abort reason when a response hook's error replaces the upstream's response with an error reply. */
const RESPONSE_REPLACED = new GatewayError('CLIENT_CLOSED', { message: 'response replaced by a response hook error' });

/**
 * Abort reason for an upstream answer that arrives after the gateway gave up the attempt and answered the request
 * itself (the 408 of a silent body: the upstream request is cut only once that answer's 'finish' comes), or after a
 * listener answered it beside the driver (the HTTP/2 stream deadline's 408, outside-answer.ts).
 */
const ANSWERED_BY_GATEWAY = new GatewayError('CLIENT_CLOSED', { message: 'the gateway answered the request itself' });

/** The trailers of a response that ended without any (a bodiless one undici reported as an error). */
const NO_TRAILERS: Readonly<Record<string, string | string[] | undefined>> = Object.freeze({});

/**
 * A reason phrase node sends as it is: visible ASCII and tab. RFC 9112 §4 also allows obs-text (bytes 0x80-0xFF),
 * but undici decodes the status line as UTF-8, so such bytes arrive as U+FFFD, and node throws for any character
 * beyond Latin-1: the response is relayed with node's standard phrase for its status instead.
 */
const SENDABLE_REASON = /^[\t\x20-\x7e]*$/;

/**
 * undici's dispatch options with `servername`, which its Request reads (core/request.js) but its types leave out:
 * the TLS name of the connection the request may use.
 */
interface UpstreamDispatchOptions extends Dispatcher.DispatchOptions {
  servername: string | undefined;
}

/** Methods whose repetition has no extra effect (RFC 9110 §9.2.2): safe to send to a second upstream. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** The HTTP/2 stream behind a compat response (node's Http2ServerResponse), or undefined over HTTP/1.x. */
function http2StreamOf(ctx: RequestContext): ServerHttp2Stream | undefined {
  return ctx.req.httpVersionMajor === 2 ? (ctx.res as unknown as { stream?: ServerHttp2Stream }).stream : undefined;
}

/**
 * A failed attempt may be repeated only when its body (if any) is still whole, and either the request never reached
 * the upstream (or the upstream said it did not process it: REFUSED_STREAM, a GOAWAY below its stream), or repeating
 * it is harmless (an idempotent method), as nginx decides; RFC 9110 §9.2.2: a POST whose bytes may have been
 * processed is never replayed. Runs on failures only.
 */
export function canRetry(ctx: RequestContext, error: GatewayError): boolean {
  if (hasRequestBody(ctx)) {
    // The stream undici reads: a body-limit phase pipes the client's stream into its counter when it runs, so the
    // client's own stream has been read before any upstream was tried; what reached undici is what the counter
    // gave. Bodies stream and are never buffered: once undici has taken a byte, or destroyed the stream (it does on
    // a connection that breaks while it writes the body, before a byte or not), there is nothing whole to resend.
    const body = ctx.upstreamBody ?? ctx.req;
    if (body.readableDidRead || body.destroyed) return false;
  }
  return failedBeforeSending(error) || IDEMPOTENT.has(ctx.req.method ?? 'GET');
}

/** The upstream's reason phrase when node can send it, else undefined (node's standard one for the status). */
function sendableReason(statusMessage: string | undefined): string | undefined {
  return statusMessage && SENDABLE_REASON.test(statusMessage) ? statusMessage : undefined;
}

/**
 * undici's complaint that a response ended short of its Content-Length, about a response that has no body by
 * definition: a 204, a 304, or the answer to HEAD. RFC 9110 §8.6 lets a 304 and a HEAD answer carry the length the
 * full response would have (IIS and http.sys do), and llhttp reads no body after such a head; undici still compares
 * the length with the bytes read on every non-HEAD response. Nothing is missing: the response is complete.
 */
function endedBodiless(ctx: RequestContext, err: Error): boolean {
  if ((err as { code?: unknown }).code !== 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') return false;
  return ctx.status === 204 || ctx.status === 304 || ctx.req.method === 'HEAD';
}

/** llhttp's reason (undici's HTTPParserError message) for a Content-Length in a chunked message. */
const LENGTH_WITH_CHUNKED = "(Content-Length can't be present with Transfer-Encoding)";

/**
 * The upstream's HTTP/1 parser refused a Content-Length *trailer*: llhttp reads trailer fields as headers, and fails
 * the message on one, after the last chunk. RFC 9110 §6.5.1 forbids that trailer, and the gateway would drop it
 * (headers.ts), but the response was cut although its body had arrived whole. Only the trailer section can carry it
 * once the head is relayed (a head with both fields fails before onResponseStart): the body is complete; only the
 * trailers are lost.
 */
function lengthTrailerRefused(err: Error, headDeclaredLength: boolean): boolean {
  return !headDeclaredLength && err.name === 'HTTPParserError' && err.message.endsWith(LENGTH_WITH_CHUNKED);
}

/**
 * An HTTP/1 upstream's connection ended (its FIN, or a reset) once every byte of the body its Content-Length declared
 * had been relayed: the response is complete, and a client still taking it gets it whole. What makes it happen: a
 * keep-alive upstream hands its whole answer to the kernel long before a slow client takes it, and closes the idle
 * connection at its keep-alive timeout (node's: 5 s, plus 1 s, after its last write). undici's parser pauses behind
 * the client right after handing over a body chunk; after the last one, the message's end is not yet marked and
 * nothing follows in the socket (a chunked body still has its last chunk there), so the FIN is read as "other side
 * closed" and the response failed: the client's HTTP/2 stream was reset with the bytes handed to it still unsent (a
 * slow reader's 12 MB download, logged UPSTREAM_RESET). The count is of bytes relayed, so a body short of its length
 * is still cut; an HTTP/2 upstream ends its stream itself (END_STREAM), so its resets are left as they are.
 */
function bodyArrivedWhole(error: GatewayError, http2: boolean, declaredLength: number, relayed: number): boolean {
  return !http2 && error.code === 'UPSTREAM_RESET' && declaredLength >= 0 && relayed === declaredLength;
}

/**
 * Runs `write` (the response head, or an upgrade's splice); a throw goes to `fail`, which answers an error while
 * nothing was sent, instead of escaping as an unhandled rejection (after an async response hook) or into undici (which
 * would only cut the client's connection). Node throws for a head it refuses to send: a connection-specific header
 * over HTTP/2 (an HTTP/1 upstream's HTTP2-Settings), a repeated single-value one (two ETags), a value with a control
 * character. Upstream or response hook, either may have set it: PROXY_ERROR (502) blames neither upstream health nor
 * a plugin. Returns false when `write` threw.
 */
function writeOrFail(ctx: RequestContext, write: () => void, fail: (err: unknown) => void): boolean {
  try {
    write();
    return true;
  } catch (err) {
    forgetRefusedHead(ctx);
    fail(refused(err));
    return false;
  }
}

/** Undoes what a refused writeHead left on the response, so that the error reply that follows is not refused too. */
function forgetRefusedHead(ctx: RequestContext): void {
  const res = ctx.res;
  if (res.headersSent) return;
  // Node's HTTP/2 compat writeHead stores the headers before refusing one: the error reply must not carry them.
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  // node:http's writeHead keeps the phrase it was given before it checks the headers, and the next writeHead
  // without one would reuse it ("502 Fine Thanks"). HTTP/2 has none (its setter only warns).
  if (ctx.req.httpVersionMajor !== 2) res.statusMessage = '';
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
    noteCut(ctx.res, error);
    cutBegunResponse(ctx.res);
  }
}

/** The 413 of a counted body (routing/body-limit.ts) that went over max_body_size, else undefined. */
function countedBodyError(counted: Readable): GatewayError | undefined {
  const errored = counted.errored;
  return errored instanceof GatewayError ? errored : undefined;
}

/**
 * What a request whose attempt failed before any response is answered: the attempt's error, unless its counted body
 * went over max_body_size meanwhile (an upstream that refused the connection, say): then 413. The body is the
 * client's own fault and would be refused by any upstream, and a 502 told it to retry a request that can never pass
 * (nginx checks the body's size before it proxies). A client that left keeps its 499.
 */
function failureOf(ctx: RequestContext, error: GatewayError): GatewayError {
  if (ctx.upstreamBody === undefined || error.code === 'CLIENT_CLOSED') return error;
  return countedBodyError(ctx.upstreamBody) ?? error;
}

/** A client body's error once nobody else hears it (see hearClientBodyErrors). */
function ignoreBodyError(): void {}

/**
 * Gives the client's request stream a listener for its errors for good, once it is an upstream body. undici listens
 * to a body only while its request lives (core/request.js drops its listener when the request fails), yet its HTTP/2
 * client destroys the body with the failure after that (client-h2.js abort: errorRequest first, then destroy(body,
 * err)), and a body it never read (a Content-Length of 0 on a stream the client had not ended) has no pipe
 * listening either. Node's HTTP/1 request emits no error nobody hears; its HTTP/2 compat request does: an h2 PUT
 * with Content-Length 0, its stream left open, to an HTTP/2 upstream whose session then closed ended the process.
 * The failure itself reaches the attempt through undici (onResponseError); the client's own stream errors are its
 * reset, which the driver hears as 'aborted'/'close'.
 */
function hearClientBodyErrors(req: RequestContext['req']): void {
  if (req.listenerCount('error', ignoreBodyError) === 0) req.on('error', ignoreBodyError);
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
  /** A WebSocket handshake sent over HTTP/1.1 to an HTTP/2 group's upstream: its failures spare passive health. */
  #viaUpgradePool = false;
  /** Resumes the upstream once the client has taken the buffered data; made on the first full buffer only. */
  #resumeOnDrain: (() => void) | undefined = undefined;
  /**
   * The response head, held until the first body byte or the end of the response (fields of the attempt, not an
   * object per response). Over HTTP/1.1 node sends nothing before then either (writeHead only stores the head), but
   * once node has stored it, no other status can be sent: held here, an upstream failure before the first byte is
   * still answered with a status (502, 504) instead of a cut connection. Over HTTP/2 the head goes out at once,
   * except a gRPC answer whose first HEADERS already carry grpc-status ("trailers-only"): relayed as one HEADERS
   * frame that ends the stream once the upstream ends it, as gRPC clients require.
   */
  #headHeaders: OutgoingHttpHeaders | undefined = undefined;
  #headStatus = 0;
  #headReason: string | undefined = undefined;
  #headTrailersOnly = false;
  /** Why the attempt was cut before undici handed over its controller (applied the moment it does). */
  #abortReason: GatewayError | undefined = undefined;
  #stopGuard: StopGuard | undefined = undefined;
  /** Response body bytes relayed: progress for a gRPC stream's idle guard, and the count bodyArrivedWhole compares. */
  #responseBytes = 0;
  /** The Content-Length of the upstream's response head, -1 without one (see lengthTrailerRefused, bodyArrivedWhole). */
  #declaredLength = -1;
  /** The upstream's response headers as relayed (a reference, kept for the end: is it gRPC, had it a status). */
  #responseHead: OutgoingHttpHeaders | undefined = undefined;
  /**
   * The client's socket (HTTP/2: stream) is full and the upstream paused until it drains. undici suspends its body
   * timeout while a request is paused, so without a bound of our own a client that stops reading would hold the
   * upstream connection for as long as it stays connected (enough of them: every other request 503 upstream_busy).
   */
  #awaitingDrain = false;
  /**
   * That bound (nginx's send_timeout): a client that takes no byte for a whole `bodyChunkMs` while the upstream waits
   * on it is cut. Made on the first pause of a response; while it runs, later pauses cost nothing. When it fires it
   * looks at the client connection's progress since it was armed (kernelTakenBytes): bytes taken re-arm it for
   * another full period, so a slow reader that never drains a whole chunk within the bound is not cut. A stall is
   * cut between one and two periods after it began.
   */
  #sendTimer: NodeJS.Timeout | undefined = undefined;
  /** The timer is counting (it stops when it fires while the response flows; the next pause starts it again). */
  #sendArmed = false;
  /** kernelTakenBytes when the timer was (re-)armed. */
  #sentMark = 0;
  /** Arms the timer once a pipelined response, queued behind another, gets the connection (see #armSendTimer). */
  #armOnSocket: (() => void) | undefined = undefined;
  /** The bound on the final head once an interim one came (see #boundInterimHeads); false until then. */
  #interimBound: NodeJS.Timeout | boolean = false;
  /** Removes #boundInterimHeads's count of body bytes (set while an unfinished body is counted). */
  #stopInterimCount: (() => void) | undefined = undefined;
  /** An async response hook runs on the upstream's head (#afterDecorate): nothing of the response is written yet. */
  #hookRunning = false;
  /** The upstream's failure that came while that hook ran: acted on once it settles (see onResponseError). */
  #failedDuringHook: { readonly controller: Dispatcher.DispatchController; readonly err: Error } | undefined = undefined;

  /**
   * `bodyChunkMs` (`server.timeouts.request_body_chunk`): longest silence in the request body while it is forwarded,
   * and longest the client may leave response bytes untaken while the upstream waits on it (0: unguarded). One
   * bound for a stalled client in either direction, as a gRPC call's guard already counts both.
   */
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
    const peer = this.#peer;
    // Only a WebSocket is tunnelled (upgrade.ts); any other Upgrade goes as a plain request, and a 101 to it fails.
    const upgrade = ctx.upgrade ? tunnelledProtocol(req) : null;
    const options: UpstreamDispatchOptions = {
      path: ctx.upstreamPath,
      method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
      headers,
      // An HTTP/2 upstream's undici cannot end an empty upload it measured (h2-upload-body.ts).
      body: peer.transport.http2 && upgrade === null ? bodyForHttp2(body, req.headers) : body,
      upgrade,
      // Never undefined over TLS: undici would take the client's Host as SNI and verified name (upstream-tls.ts).
      servername: dispatchServername(peer.transport, peer.address),
    };
    if (timeouts !== undefined) {
      if (timeouts.responseMs !== undefined) options.headersTimeout = timeouts.responseMs;
      if (timeouts.bodyMs !== undefined) options.bodyTimeout = timeouts.bodyMs;
    }
    if (body !== null && this.#bodyChunkMs > 0) {
      // The closure exists only for requests with a body, not on every attempt. It watches the client's own
      // stream: a body-limit phase may put a transform in between (ctx.upstreamBody), the silence is the client's.
      // A gRPC call is a stream in both directions: its guard counts the response's bytes too.
      this.#stopGuard = isGrpc(req.headers)
        ? guardRequestBody(req, this.#bodyChunkMs, () => this.#onBodyIdle(), () => this.#responseBytes)
        : guardRequestBody(req, this.#bodyChunkMs, () => this.#onBodyIdle());
    }
    // The client is already gone (its connection or stream closed while the filters ran, and the request was logged
    // as 499): sending upstream would only hold a pool slot for a response nobody reads.
    if (ctx.logged) {
      this.#fail(CLIENT_CLOSED);
      return;
    }
    // A counted body (max_body_size without a declared length) already over the limit: its 413, nothing sent.
    if (body !== null && ctx.upstreamBody !== undefined && this.#watchCountedBody(ctx.upstreamBody)) return;
    // A gRPC call to a service that can serve one is let go of timeouts.request, as streaming calls stay open; sent to
    // one that cannot (a retry after an HTTP/2 service failed), it is held to it again (grpc-call-release.ts).
    if (body !== null && isGrpc(req.headers)) {
      const stream = http2StreamOf(ctx);
      if (stream !== undefined) {
        if (peer.transport.http2) releaseGrpcCall(stream);
        else restoreRequestBound(stream);
      }
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
      // Nor, once an answer beside the driver is ending (a 408), does a client's reset say 'aborted': node ends the
      // body as if complete (h2-reset-end.ts). The attempt is cut first, so undici never sends the upstream its end.
      const stream = http2StreamOf(ctx);
      if (stream !== undefined) onBodyCutByClose(stream, () => this.#cut(CLIENT_CLOSED));
    }
    if (body !== null) {
      hearClientBodyErrors(req);
      // The body is wanted now: a client that sent Expect: 100-continue is told to send it (expect-continue.ts).
      continueBody(req, ctx.res);
    }
    try {
      // A WebSocket goes over HTTP/1.1 even to an HTTP/2 group (Backend.upgradeDispatcher); the rest as the group speaks.
      const dispatcher = upgrade === null ? peer.dispatcher : peer.upgradeDispatcher;
      this.#viaUpgradePool = dispatcher !== peer.dispatcher;
      dispatcher.dispatch(options, this);
    } catch (err) {
      this.#fail(classifyUpstreamError(err));
    }
  }

  /**
   * The counter of a body without a declared length (routing/body-limit.ts) fails with 413 once it has passed the
   * route's max_body_size. undici hears that only while it holds the request: one waiting for a free connection in
   * the pool's queue (balancer/bounded-pool.ts) went on waiting with its body already refused, got its 413 only once
   * a connection freed up, and 503 upstream_busy when the wait outlasted queue_timeout. It is failed at once instead,
   * never dispatched. Returns true when the body had already failed: the attempt is over.
   */
  #watchCountedBody(counted: Readable): boolean {
    const overLimit = countedBodyError(counted);
    if (overLimit !== undefined) {
      this.#fail(overLimit);
      return true;
    }
    counted.once('error', (err) => {
      // After a response has begun, undici's own listener cuts it; once the attempt is over, nobody needs it.
      if (!this.#started && !this.#done && err instanceof GatewayError) this.#cut(err);
    });
    return false;
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
      if (stream !== undefined && !stream.closed) stream.close(H2_CANCEL);
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
    const ctx = this.#ctx;
    if (ctx.attempts > 1 && !this.#done) ctx.error = undefined; // as in onResponseStart
    if (this.#interimBound !== false) this.#endInterimBound();
    this.#started = true;
    this.#done = true;
    ctx.upstreamMs = performance.now() - this.#sentAt;
    const out = upgradeResponseHeaders(headers);
    ctx.status = statusCode;
    const splice = (): void => {
      if (ctx.req.socket.destroyed) {
        socket.destroy(); // the client left while an async response hook ran
        this.#listener.attemptFinished(ctx, this.#peer);
        return;
      }
      // A tunnel holds its upstream connection for as long as it lasts: counted as in flight until it closes, as
      // nginx's least_conn and HAProxy's leastconn count an upgraded connection.
      spliceUpgrade(ctx, statusCode, out, socket, (tunnel) => {
        if (tunnel === undefined) this.#listener.attemptFinished(ctx, this.#peer); // the client left before the 101
        else this.#listener.tunnelClosed(ctx, this.#peer, tunnel);
      });
      this.#listener.tunnelOpened(ctx);
    };
    this.#afterDecorate(out, splice, () => socket.destroy());
  }

  /**
   * undici starts its wait for an HTTP/1 upstream's response head over at every interim head (client-h1.js
   * onHeadersComplete refreshes the headers timer on a 1xx; its HTTP/2 client never sees them), so an upstream sending
   * 103 Early Hints or 102 Processing every few hundred milliseconds and never a final head held the request, its
   * client and a connection of the upstream's pool for as long as it kept on: upstream_response never ended it. The
   * final head is held to that bound here, counted from the first interim head (which shows the request was sent).
   * While a request body is still being handed over, a period counts only when none of it went out and the gateway was
   * not waiting on the client either (the body paused: the upstream takes none of it, as undici's own timer fires
   * during a body write only when the upstream's socket needs a drain); a client's slow or paused upload is its own to
   * bound (request_body_chunk), and the body's end starts a full period. Without that, an upstream that sent 1xx and
   * read none of the body held the request for good: undici's timer restarted at each 1xx, and request_body_chunk
   * does not run while the gateway itself holds the body back. Then 504 upstream_timeout, the upstream's fault as any
   * response timeout. Only responses with an interim head pay for it (a 'data' listener while their body is unfinished).
   */
  #boundInterimHeads(): void {
    const ctx = this.#ctx;
    const ms = ctx.route.timeouts?.responseMs ?? this.#peer.responseTimeoutMs;
    this.#interimBound = true;
    if (!(ms > 0) || this.#done) return;
    const body = ctx.upgrade || !hasRequestBody(ctx) ? null : (ctx.upstreamBody ?? ctx.req);
    // Body bytes handed to undici since the timer last looked. undici reads the body in flowing mode, so a listener of
    // ours never resumes it; one not yet read (readableFlowing null) is left alone, as a 'data' listener would start it.
    let taken = 0;
    const count = (chunk: Buffer | string): void => void (taken += chunk.length);
    const stopCounting = (): void => void body?.off('data', count);
    const timer = setTimeout(() => {
      if (this.#started || this.#done || this.#interimBound !== timer) return;
      if (body !== null && !body.readableEnded && (taken > 0 || body.readableFlowing === true)) {
        taken = 0;
        timer.refresh();
        return;
      }
      stopCounting();
      this.#interimBound = true;
      this.#cut(new GatewayError('UPSTREAM_TIMEOUT', { cause: new InterimResponsesTimeout() }));
    }, ms);
    timer.unref();
    this.#interimBound = timer;
    if (body === null || body.readableEnded) return;
    if (body.readableFlowing !== null) body.on('data', count);
    body.once('end', () => {
      stopCounting();
      if (this.#interimBound === timer) timer.refresh();
    });
    this.#stopInterimCount = stopCounting;
  }

  /** The final head came, or the attempt ended: the interim bound has nothing left to do. */
  #endInterimBound(): void {
    if (typeof this.#interimBound === 'object') clearTimeout(this.#interimBound);
    this.#interimBound = true;
    this.#stopInterimCount?.();
    this.#stopInterimCount = undefined;
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    statusMessage?: string,
  ): void {
    // Other 1xx (102, 103 Early Hints) are dropped, not relayed; a 101 goes to onRequestUpgrade. A 100 never arrives
    // here: the gateway strips Expect (it answers a client's 100-continue itself, at dispatch, and undici refuses the
    // header), and undici destroys the socket on any 100 (SocketError "bad response", classified UPSTREAM_PROTOCOL),
    // though RFC 9110 §15.2 says to ignore an unasked-for one.
    if (statusCode < 200) {
      // llhttp reads any three digits, and undici takes a status below 100, or a 101 it did not see switch protocols
      // (no Upgrade and Connection: upgrade), for one more interim answer, then fails an assertion of its own on it:
      // a 502 proxy_error logged as AssertionError. Refused here first, as a status above 599 is.
      if (statusCode < 100) this.#cut(INVALID_STATUS);
      else if (statusCode === 101) this.#cut(this.#ctx.upgrade && tunnelledProtocol(this.#ctx.req) !== null ? UNSWITCHED_101 : UNASKED_101);
      else if (this.#interimBound === false) this.#boundInterimHeads();
      return;
    }
    if (this.#interimBound !== false) this.#endInterimBound();
    // The gateway has given up this attempt and answered the request itself (#fail: the 408 of a silent body, which
    // cuts the upstream request only once that answer's 'finish' comes, and a client that reads nothing holds it
    // back). Nothing of this answer may reach the response: its status would replace the 408 in ctx (and so in the
    // access log), and its body would be written after the 408's end. No upgrade is done here (only
    // onRequestUpgrade marks one done, and undici calls it instead of this); over HTTP/2 the same holds.
    // So has a listener beside the driver (outside-answer.ts: the HTTP/2 stream deadline's 408, whose stream stays
    // open until that answer is out): the upstream's head would replace its status in ctx, and writing it would throw
    // (headers already sent) into an error path that resets the stream under the 408.
    if (this.#done || wasAnsweredOutside(this.#ctx)) {
      controller.abort(ANSWERED_BY_GATEWAY);
      return;
    }
    if (statusCode > 599) {
      this.#cut(INVALID_STATUS);
      return;
    }
    // undici already holds an HTTP/1 head to the bound: counted for HTTP/2 upstreams only, off the HTTP/1 hot path.
    if (this.#peer.transport.http2 && headTooLarge(headers)) {
      this.#cut(HEAD_TOO_LARGE);
      return;
    }
    // RFC 9112 §6.1: llhttp takes a coding list ending in chunked and removes the chunking alone, and node's response
    // to the client would carry the rest (gzip, ...) unlabelled, compressed bytes passed off as the content.
    if (!onlyChunked(headers['transfer-encoding'])) {
      this.#cut(UNKNOWN_TRANSFER_CODING);
      return;
    }
    const ctx = this.#ctx;
    // A retry's upstream answered: an earlier attempt's failure is no longer the request's (log, metrics, trace).
    if (ctx.attempts > 1) ctx.error = undefined;
    this.#started = true;
    const res = ctx.res;
    ctx.upstreamMs = performance.now() - this.#sentAt;
    const out = responseHeaders(headers);
    ctx.status = statusCode;
    const length = out['content-length'];
    this.#declaredLength = length === undefined ? -1 : Number(length);
    this.#responseHead = out;
    if (res.destroyed || ctx.logged) {
      this.#cut(CLIENT_CLOSED); // nobody to relay to (closed, or an HTTP/2 stream reset): free the upstream connection now
      return;
    }
    // RFC 9110 §8.6: a server sends no Content-Length with a 204, and llhttp read no body after this one whatever
    // it said. Rare: the delete, which makes this one object a dictionary, costs nothing on other responses.
    if (statusCode === 204 && out['content-length'] !== undefined) delete out['content-length'];
    const writeHead = (): void => {
      // Gone, or already answered with an error while an async response hook ran.
      if (res.destroyed || this.#done) return;
      // Or answered beside the driver while the hook ran (the HTTP/2 stream deadline's 408): dropped as above, this
      // head would throw (headers already sent) into the hook-failure path, which reset the stream under the 408.
      if (wasAnsweredOutside(ctx)) {
        this.#dropAfterOutsideAnswer();
        return;
      }
      if (ctx.req.httpVersionMajor !== 2) {
        this.#holdHead(statusCode, sendableReason(statusMessage), out, false);
        return;
      }
      joinRepeatedForHttp2(out);
      if (out['grpc-status'] !== undefined) this.#holdHead(statusCode, undefined, out, true);
      else res.writeHead(statusCode, out); // HTTP/2 has no reason phrase (node warns when given one)
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
      // The error reply first: an upgrade's attempt is logged when it finishes, and it must be logged with the
      // status and error the client got, not the 101 the upstream offered.
      answerError(ctx, toGatewayError(err));
      this.#listener.attemptFinished(ctx, this.#peer);
    };
    let pending: void | Promise<void>;
    try {
      pending = ctx.decorate(ctx, headers);
    } catch (err) {
      fail(err);
      return;
    }
    if (pending === undefined) {
      writeOrFail(ctx, write, fail);
      return;
    }
    const controller = this.controller;
    controller?.pause();
    this.#hookRunning = true;
    pending.then(
      () => {
        this.#hookRunning = false;
        if (this.#failedDuringHook !== undefined) {
          this.#actOnFailureAfterHook(write, fail);
          return;
        }
        // The client left meanwhile: the close listener aborted the attempt. Not an upgrade's, which is done once the
        // 101 is in: its upstream socket is ours alone, and the splice closes it and releases the upstream.
        if (ctx.res.destroyed && !ctx.upgrade) return;
        // Not once the write dropped the attempt (#dropAfterOutsideAnswer): an aborted request's connection stays paused.
        if (writeOrFail(ctx, write, fail) && controller?.aborted !== true) controller?.resume();
      },
      (err: unknown) => {
        this.#hookRunning = false;
        // The hook's failure replaces the response, and an upstream failure meanwhile concerned a response now
        // dropped; but a client that left (the abort's failure) has no one to answer: its request ends as a 499.
        if (this.#failedDuringHook !== undefined && ctx.res.destroyed) {
          this.#actOnFailureAfterHook(write, fail);
          return;
        }
        this.#failedDuringHook = undefined;
        fail(err);
      },
    );
  }

  /**
   * The upstream failed while a response hook ran on its head (onResponseError deferred it). Answered now, after the
   * hook: its error reply runs the route's response hooks again, on the same per-plugin contexts, which a run still
   * in flight shared (its headers landed on the error reply, and its context was unbound under the other). A failure
   * that left the response whole (a bodiless answer, a connection closed after the last byte) writes the head first,
   * so the end that follows completes it.
   */
  #actOnFailureAfterHook(write: () => void, fail: (err: unknown) => void): void {
    const { controller, err } = this.#failedDuringHook!;
    this.#failedDuringHook = undefined;
    const error = err instanceof GatewayError ? err : classifyUpstreamError(err);
    if (this.#endedWhole(err, error) && !writeOrFail(this.#ctx, write, fail)) return;
    this.onResponseError(controller, err);
  }

  /** An upstream failure that still left the response whole (onResponseError ends it as a success). */
  #endedWhole(err: Error, error: GatewayError): boolean {
    return (
      endedBodiless(this.#ctx, err) ||
      lengthTrailerRefused(err, this.#declaredLength >= 0) ||
      bodyArrivedWhole(error, this.#peer.transport.http2, this.#declaredLength, this.#responseBytes)
    );
  }

  /**
   * A listener answered the request beside the driver (outside-answer.ts) after this attempt's head arrived, while a
   * response hook held it: the attempt ends without a byte of it, its status not the request's, its stream left to
   * the listener (which closes it once its answer is out). onResponseError, which undici calls from the abort, sees
   * #done and leaves the stream alone.
   */
  #dropAfterOutsideAnswer(): void {
    this.#done = true;
    this.#stopGuard?.();
    this.controller?.abort(ANSWERED_BY_GATEWAY);
    this.#listener.attemptFinished(this.#ctx, this.#peer);
  }

  #holdHead(status: number, reason: string | undefined, headers: OutgoingHttpHeaders, trailersOnly: boolean): void {
    this.#headStatus = status;
    this.#headReason = reason;
    this.#headHeaders = headers;
    this.#headTrailersOnly = trailersOnly;
  }

  /** Sends the held head as a plain response head (body or end follows). Throws when node refuses it. */
  #writeHeldHead(): void {
    const headers = this.#headHeaders!;
    this.#headHeaders = undefined;
    const reason = this.#headReason;
    if (reason === undefined) this.#ctx.res.writeHead(this.#headStatus, headers);
    else this.#ctx.res.writeHead(this.#headStatus, reason, headers);
  }

  /**
   * The first body chunk: the held head goes first. False when node refused it: the upstream request is dropped
   * and the error answered instead, as nothing has reached the client.
   */
  #flushHead(controller: Dispatcher.DispatchController): boolean {
    try {
      this.#writeHeldHead();
      return true;
    } catch (err) {
      this.#done = true;
      this.#stopGuard?.();
      controller.abort(RESPONSE_REPLACED);
      this.#listener.attemptFinished(this.#ctx, this.#peer);
      forgetRefusedHead(this.#ctx);
      answerError(this.#ctx, refused(err));
      return false;
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const res = this.#ctx.res;
    // The attempt is over and the client has had another answer (see onResponseStart): over HTTP/1.1 a write to the
    // ended response emits ERR_STREAM_WRITE_AFTER_END as an 'error' nobody listens to, an uncaught exception.
    if (this.#done) {
      controller.abort(ANSWERED_BY_GATEWAY);
      return;
    }
    // A destroyed response never emits 'drain': waiting for it would hold the upstream connection until
    // upstream_body expires. End the attempt at once instead.
    if (res.destroyed || this.#ctx.logged) {
      controller.abort(CLIENT_CLOSED);
      return;
    }
    if (this.#headHeaders !== undefined && !this.#flushHead(controller)) return;
    this.#responseBytes += chunk.length;
    if (!(chunk.length > H2_WRITE_PIECE && this.#ctx.req.httpVersionMajor === 2 ? writeInPieces(res, chunk) : res.write(chunk))) {
      controller.pause();
      this.#awaitingDrain = true;
      res.once('drain', (this.#resumeOnDrain ??= () => this.#drained()));
      if (!this.#sendArmed && this.#bodyChunkMs > 0) this.#armSendTimer();
    }
  }

  #drained(): void {
    this.#awaitingDrain = false;
    this.controller?.resume();
  }

  /**
   * Starts the send bound (see #sendTimer); only on a full client buffer, nothing while the client keeps up. Over
   * HTTP/1.1 the bound counts only while this response has the connection: a pipelined response queued behind an
   * earlier one has no socket yet, node buffers what it is given, and its 'drain' comes only once the earlier
   * response has ended, however promptly the client reads. Counted from its queueing, it was cut for waiting its turn.
   */
  #armSendTimer(): void {
    const stream = http2StreamOf(this.#ctx);
    const res = this.#ctx.res;
    if (stream === undefined && res.socket === null) {
      // Once per pause at most: the upstream stays paused until 'drain', which comes after the socket does.
      res.once('socket', (this.#armOnSocket ??= () => {
        if (this.#awaitingDrain && !this.#done && !this.#sendArmed) this.#armSendTimer();
      }));
      return;
    }
    if (stream !== undefined) oneWriteAtATime(stream);
    this.#sendArmed = true;
    this.#sentMark = this.#clientTakenBytes(stream);
    if (this.#sendTimer !== undefined) {
      this.#sendTimer.refresh();
      return;
    }
    this.#sendTimer = setTimeout(() => this.#onSendTimeout(), this.#bodyChunkMs);
    this.#sendTimer.unref();
  }

  /**
   * The progress the send bound counts. Over HTTP/1.1, what the kernel took of the response's connection
   * (kernelTakenBytes). Over HTTP/2, what this stream has sent: the body bytes handed to it less those it still holds.
   * A write there completes only once its DATA frames are out, which the client's flow-control window for this stream
   * allows (node 20 exposes neither that window nor a count of bytes sent), so its writableLength falls by whole
   * writes: the writes are pieces of at most 16 KB (H2_WRITE_PIECE), handed over one at a time once the bound is
   * armed (oneWriteAtATime). The session's connection is not counted:
   * its bytes moved whenever the client read another stream or the gateway answered its PINGs, so a client could
   * hold a stream it never read, and that stream's upstream request, for as long as it kept the connection busy.
   * nginx times each HTTP/2 stream waiting on its window the same way (send_timeout).
   */
  #clientTakenBytes(stream: ServerHttp2Stream | undefined): number {
    if (stream === undefined) return kernelTakenBytes(this.#ctx.res.socket as HandleOwner | null);
    // A destroyed stream is closing and ends the attempt itself.
    return stream.destroyed ? -1 : this.#responseBytes - stream.writableLength;
  }

  /**
   * A period of the bound has passed. Still paused and the client took nothing since it was armed: abort the upstream
   * request; onResponseError then cuts the client's connection or stream and logs CLIENT_SEND_TIMEOUT, and the driver
   * never counts it against the upstream. Took something: another full period.
   */
  #onSendTimeout(): void {
    this.#sendArmed = false;
    if (this.#done || !this.#awaitingDrain) return; // flowing again: the next pause arms it anew
    const stream = http2StreamOf(this.#ctx);
    const taken = this.#clientTakenBytes(stream);
    if (taken !== this.#sentMark) {
      this.#sendArmed = true;
      this.#sentMark = taken;
      this.#sendTimer?.refresh();
      return;
    }
    this.#cut(SEND_TIMEOUT);
  }

  #stopSendTimer(): void {
    if (this.#sendTimer !== undefined) clearTimeout(this.#sendTimer);
    this.#sendArmed = false;
  }

  onResponseEnd(controller: Dispatcher.DispatchController, parsedTrailers: Readonly<Record<string, string | string[] | undefined>>): void {
    // Every path that marks the attempt done has told the driver already (attemptFailed or attemptFinished, each of
    // which releases the peer) and answered the client or cut it: ending the response again, or releasing the peer a
    // second time, is not this end's to do.
    if (this.#done) return;
    // undici counts an HTTP/1 trailer section on its own against the head's bound and cuts the response past it; an
    // HTTP/2 upstream's trailers are held to the same count, so a response is not relayed whole by one protocol only.
    if (this.#peer.transport.http2 && h2TrailersTooLarge(parsedTrailers, controller)) {
      this.onResponseError(controller, HEAD_TOO_LARGE);
      return;
    }
    // Filtered once here: the gRPC status check and the relay both need them (a copy each, before).
    const trailers = upstreamTrailers(parsedTrailers, (controller as { rawTrailers?: unknown }).rawTrailers);
    if (this.#grpcStatusMissing(trailers)) {
      this.onResponseError(controller, GRPC_WITHOUT_STATUS);
      return;
    }
    this.#done = true;
    this.#stopGuard?.();
    this.#stopSendTimer();
    const ctx = this.#ctx;
    // An upstream that answered before taking the whole upload of an HTTP/1 client still sending it.
    if (bodyStillArriving(ctx.req)) {
      if (!this.#peer.transport.http2) closeAfterRelayedAnswer(ctx.req, ctx.res as ServerResponse, this.#headHeaders);
      else {
        closeWhenUploadAbandoned(ctx.req, ctx.res as ServerResponse, ctx.upstreamBody ?? ctx.req);
        closeOnceUploaded(ctx.req, ctx.res as ServerResponse, ctx.upstreamBody ?? ctx.req, this.#bodyChunkMs);
      }
    }
    // An HTTP/2 upstream is still sent the rest: a client leaving before it ends cancels the upstream's stream.
    if (this.#peer.transport.http2 && !ctx.upgrade && hasRequestBody(ctx)) cancelUploadWhenClientLeaves(ctx.req, ctx.res, ctx.upstreamBody ?? ctx.req);
    try {
      this.#endResponse(trailers);
      // An HTTP/1 upstream that answered before taking the whole upload: undici then destroys its connection, and
      // over HTTP/2 the rest of the client's body was read by no one, so a client that waits for its upload to be
      // taken (node:http2's, curl) held its stream, and the request, until timeouts.request, or for good with 0.
      // Once the answer is all out the rest is dropped and the stream reset with NO_ERROR, as a gateway-made early
      // answer is (h2-early-answer.ts; RFC 9113 §8.1). Nothing for a request whose body had ended, nor for an HTTP/2
      // upstream: undici goes on sending it the body after its response ended (an ingestion endpoint that answers
      // 202 at once and reads on), and dropping the rest there ended the upstream's stream as if the upload were
      // whole.
      if (!this.#peer.transport.http2) closeAfterAnswer(ctx);
    } catch (err) {
      // A held head, or a trailer, node refuses. undici would catch the throw and report it to onResponseError,
      // which ignores a finished attempt: the client would wait forever and the peer never be released. Answered
      // here instead: an error while nothing was sent, else the stream is cut.
      forgetRefusedHead(ctx);
      answerError(ctx, refused(err));
    }
    this.#listener.attemptFinished(ctx, this.#peer);
  }

  /** A gRPC response whose head had no grpc-status (not trailers-only) and whose trailers have none either. */
  #grpcStatusMissing(trailers: Record<string, string | string[]> | undefined): boolean {
    const head = this.#responseHead;
    if (head === undefined || head['grpc-status'] !== undefined || !isGrpcResponse(head)) return false;
    return trailers?.['grpc-status'] === undefined;
  }

  /** Relays the end: the held head if any, then `trailers` (upstreamTrailers of the upstream's, or undefined). */
  #endResponse(trailers: Record<string, string | string[]> | undefined): void {
    const ctx = this.#ctx;
    if (this.#headHeaders !== undefined) {
      if (this.#headTrailersOnly) {
        const headers = this.#headHeaders;
        this.#headHeaders = undefined;
        sendTrailersOnly(ctx, this.#headStatus, headers);
        return;
      }
      this.#writeHeldHead();
    }
    // Trailers (gRPC's grpc-status, or a checksum) go on to the client: as HTTP/2 trailers, or after a chunked body.
    // Over HTTP/2 node sends them from a callback, where a repeated single-value one (two ETags) threw uncaught and
    // ended the process: joined first, and one node would still refuse (two Locations: not a trailer anyway) is
    // left out rather than sent.
    if (trailers !== undefined) {
      if (ctx.req.httpVersionMajor === 2) sendableHttp2Trailers(trailers);
      ctx.res.addTrailers(trailers);
    }
    ctx.res.end();
  }

  onResponseError(controller: Dispatcher.DispatchController, err: Error): void {
    this.#stopGuard?.();
    this.#stopSendTimer();
    if (this.#interimBound !== false) this.#endInterimBound();
    if (this.#done) return;
    if (this.#hookRunning) {
      // A response hook runs on this response's head: acted on once it settles (#actOnFailureAfterHook). Answered
      // now, the error reply ran the route's response hooks a second time while the first run was in flight.
      this.#failedDuringHook ??= { controller, err };
      return;
    }
    const error = err instanceof GatewayError ? err : classifyUpstreamError(err);
    if (!this.#started) {
      this.#fail(failureOf(this.#ctx, error));
      return;
    }
    const ctx = this.#ctx;
    if (this.#endedWhole(err, error)) {
      this.onResponseEnd(controller, NO_TRAILERS);
      return;
    }
    this.#done = true;
    this.#headHeaders = undefined;
    const stream = http2StreamOf(ctx);
    if (error.code !== 'CLIENT_CLOSED' && !ctx.res.headersSent && !ctx.res.destroyed && stream?.closed !== true) {
      // Nothing of the response has reached the client (its head is held, or a response hook is still running):
      // it can still be told with the error's status. Not retried: the upstream did answer.
      this.#listener.attemptFinished(ctx, this.#peer);
      answerError(ctx, error);
      return;
    }
    // The response had begun: the client cannot be told with a status any more, so its connection is cut.
    if (error.code !== 'CLIENT_CLOSED') ctx.error = error;
    if (stream !== undefined && this.#endGrpcWithStatus(stream, error)) {
      this.#listener.attemptFinished(ctx, this.#peer);
      return;
    }
    // An HTTP/2 stream already closing (reset by the client, or closed by the gateway: this runs from its 'aborted'
    // event) is left to node: destroying it now would drop the RST_STREAM node has yet to send (node 20, measured).
    // Any other is reset with a code that says why: node's destroy() sends NO_ERROR, which RFC 9113 keeps for a
    // response already complete, and which a gRPC client reports as "Received RST_STREAM with code 0". A silent
    // client is CANCEL (as after an early 408, or a client that stopped reading), an upstream that failed is
    // INTERNAL_ERROR (as nginx sends).
    if (stream === undefined) cutBegunResponse(ctx.res);
    // An upstream's failure is marked as such (h2-own-reset.ts: not the client's reset); the client's own doing is not.
    else if (!stream.closed && error.source === 'upstream') resetForUpstream(stream, H2_INTERNAL_ERROR);
    else if (!stream.closed) stream.close(error === BODY_TIMEOUT || error === SEND_TIMEOUT ? H2_CANCEL : H2_INTERNAL_ERROR);
    this.#listener.attemptFinished(ctx, this.#peer);
  }

  /**
   * A gRPC response over HTTP/2 that an upstream-side failure broke off after it began (the gateway's upstream_body
   * timeout, a lost upstream connection, a GOAWAY with an error): ended with trailers carrying the status the gateway
   * gives that failure before a response begins (grpc-status.ts: 4 DEADLINE_EXCEEDED for its upstream timeouts, 14
   * UNAVAILABLE for 502s), after the messages that arrived. A reset with INTERNAL_ERROR reads as INTERNAL (13) to
   * every gRPC client: not retried, and not what happened. Not for a client's own silence (CANCEL), nor for a
   * response without grpc-status, whose upstream reset it (GRPC_WITHOUT_STATUS keeps its INTERNAL_ERROR). False when
   * the stream is already closing or this is not such a response: the caller resets it.
   */
  #endGrpcWithStatus(stream: ServerHttp2Stream, error: GatewayError): boolean {
    const head = this.#responseHead;
    if (stream.closed || stream.destroyed || head === undefined || !isGrpcResponse(head)) return false;
    if (error === BODY_TIMEOUT || error === SEND_TIMEOUT || error === GRPC_WITHOUT_STATUS || error.code === 'CLIENT_CLOSED') return false;
    const res = this.#ctx.res;
    if (res.writableEnded) return false;
    try {
      res.addTrailers({ 'grpc-status': String(grpcStatusFor(error.status, error.code)), 'grpc-message': encodeGrpcMessage(error.message) });
      res.end();
      return true;
    } catch {
      return false;
    }
  }

  #fail(error: GatewayError): void {
    this.#done = true;
    this.#stopGuard?.();
    if (this.#viaUpgradePool) spareUpstreamUnlessUnreachable(error);
    this.#listener.attemptFailed(this.#ctx, this.#peer, error);
  }
}
