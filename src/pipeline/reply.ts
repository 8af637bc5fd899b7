// Every response the gateway makes itself goes through here: JSON bodies, error bodies from the one catalogue, and
// the gateway headers on each, whether on the proxy port, the admin port, or a raw socket node refused to parse.
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import { GatewayError, toGatewayError, type ErrorCode } from '../errors.js';
import { isGrpc } from '../proxy/headers.js';
import { endInPieces, largerThanPiece } from '../proxy/h2-write-pieces.js';
import type { RequestContext } from './context.js';
import { encodeGrpcMessage, grpcErrorContentType, grpcStatusFor } from './grpc-status.js';
import { bodyStillArriving } from './request-body.js';
import { closeAfterAnswer } from './h2-early-answer.js';
import { lingerOnClose } from './lingering-close.js';
import { wasAnsweredOutside } from './outside-answer.js';
import { ContextSlot } from './slot.js';
import { noteCut } from './h2-own-reset.js';
import { cutBegunResponse } from './cut-response.js';

/**
 * Set once a response hook failed for a request: the error reply that follows runs the response filter again (for
 * the gateway's headers; the plugin chain skips its own hooks then), and a second failure must not start a third.
 */
const HOOK_FAILED = new ContextSlot<true>('reply-hook-failed');

/** The HTTP/2 stream behind a compat response (node's Http2ServerResponse), or undefined over HTTP/1.x. */
function http2StreamOf(ctx: RequestContext): ServerHttp2Stream | undefined {
  return ctx.req.httpVersionMajor === 2 ? (ctx.res as unknown as { stream?: ServerHttp2Stream }).stream : undefined;
}

/** The JSON body of an error: `{error, code, request_id}`, plus `details` and the error's own extra fields. */
export function errorBody(err: GatewayError, requestId: string | undefined): Record<string, unknown> {
  const body: Record<string, unknown> = { error: err.message, code: err.publicCode };
  if (err.body !== undefined) Object.assign(body, err.body);
  if (requestId !== undefined) body.request_id = requestId;
  if (err.details !== undefined) body.details = err.details;
  return body;
}

/**
 * Writes a JSON response on a plain ServerResponse (admin port). Does nothing when headers were already sent.
 * `kept`: headers the bare 500 that replaces a refused head still carries (the admin port's security headers, which
 * its server stores on every response before any handler runs).
 */
export function writeJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: OutgoingHttpHeaders = {},
  head = false,
  kept: Readonly<Record<string, string>> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  const payload = JSON.stringify(body);
  try {
    res.writeHead(status, { ...jsonHeaders(payload), ...headers });
  } catch {
    // A header node refuses (see writeReply): a bare 500 rather than a throw out of the admin handler. It keeps the
    // refused head's decision to close the connection (as answerBare does): a stored Connection: close (leaveBody's,
    // for an answer given mid-upload, whose connection already lingers) cleared with the rest sent the 500
    // keep-alive, and node read on through the refused upload as if it were the next request.
    const close = closesConnection(headers.connection ?? res.getHeader('connection'));
    clearStoredHeaders(res);
    const fallback = JSON.stringify(errorBody(new GatewayError('INTERNAL'), undefined));
    res.writeHead(500, { ...jsonHeaders(fallback), ...kept, ...(close ? { connection: 'close' } : {}) });
    res.end(head ? undefined : fallback);
    return;
  }
  res.end(head ? undefined : payload);
}

/** The headers of every JSON body the gateway writes itself. */
function jsonHeaders(payload: string): OutgoingHttpHeaders {
  return { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(payload), 'cache-control': 'no-store' };
}

/** An error on a plain ServerResponse (admin port), from the catalogue like every other. */
export function writeError(res: ServerResponse, err: GatewayError, requestId?: string): void {
  writeJson(res, err.status, errorBody(err, requestId), err.headers ?? {}, res.req?.method === 'HEAD');
}

/**
 * A complete HTTP/1.1 error response as text, for a socket with no request object behind it: a head node's parser
 * refused (400, 408, 431), a connection over the per-client cap (429), plain HTTP on the TLS port (400). The same
 * body and gateway headers as every other error, the error's own headers (Retry-After), then the connection closes.
 * `responseMs`: X-Response-Time, for a request the driver had begun (outside-answer.ts); 0 when there was none.
 */
export function rawErrorResponse(err: GatewayError, requestId: string, proxyBy: string, responseMs = 0): string {
  const body = JSON.stringify(errorBody(err, requestId));
  let own = '';
  if (err.headers !== undefined) for (const [name, value] of Object.entries(err.headers)) if (name !== 'connection') own += `${name}: ${value}\r\n`;
  return (
    `HTTP/1.1 ${err.status} ${err.message}\r\ncontent-type: application/json; charset=utf-8\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\n${own}x-proxy-by: ${proxyBy}\r\nx-request-id: ${requestId}\r\n` +
    `x-response-time: ${responseMs}ms\r\nconnection: close\r\n\r\n${body}`
  );
}

const PARSER_TIMEOUT = new GatewayError('REQUEST_TIMEOUT');
const PARSER_HEADERS_TOO_LARGE = new GatewayError('HEADERS_TOO_LARGE');
const PARSER_MALFORMED = new GatewayError('BAD_REQUEST', { details: 'malformed HTTP request' });
/** RFC 9110 §15.6.2: a method the server does not recognise is 501, not a malformed request. */
const PARSER_UNKNOWN_METHOD = new GatewayError('NOT_IMPLEMENTED');

/**
 * The error answered (with rawErrorResponse) to a request node's HTTP/1 parser refused, from the code of its
 * 'clientError': 408 on a header timeout, 431 for oversized headers, 501 for a method name llhttp does not know (its
 * list holds the registered ones and a few more), else 400 "malformed HTTP request". The test
 * kit's inject (inject.ts) answers the requests node's parser would refuse with it, as the proxy port does.
 */
export function parserRefusal(code: string | undefined): GatewayError {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return PARSER_TIMEOUT;
  if (code === 'HPE_HEADER_OVERFLOW') return PARSER_HEADERS_TOO_LARGE;
  return code === 'HPE_INVALID_METHOD' ? PARSER_UNKNOWN_METHOD : PARSER_MALFORMED;
}

/**
 * Sends a JSON response through the response filter (gateway headers, the route's response hooks). Returns
 * 'responded' so a request-filter hook can `return sendJson(...)`. Does nothing when headers were already sent.
 */
export function sendJson(
  ctx: RequestContext,
  status: number,
  body: unknown,
  extraHeaders?: Readonly<Record<string, string>>,
): 'responded' {
  if (ctx.res.headersSent || ctx.res.destroyed) return 'responded';
  // A gRPC client cannot read a JSON error: it gets HTTP 200 trailers-only with grpc-status and grpc-message.
  if (status >= 400 && isGrpc(ctx.req.headers)) {
    const message = (body as { error?: unknown } | null)?.error;
    return sendGrpcError(ctx, status, typeof message === 'string' ? message : 'gateway error', extraHeaders);
  }
  return sendBody(ctx, status, 'application/json; charset=utf-8', JSON.stringify(body), extraHeaders);
}

/** Sends a complete body (sendJson; a plugin's ctx.respond with text or bytes) through the response filter. */
export function sendBody(
  ctx: RequestContext,
  status: number,
  contentType: string | undefined,
  payload: string | Uint8Array,
  extraHeaders?: Readonly<Record<string, string>>,
): 'responded' {
  const res = ctx.res;
  if (res.headersSent || res.destroyed) return 'responded';
  const headers: OutgoingHttpHeaders = { 'cache-control': 'no-store' };
  // A 204 or 304 goes out without the body (a plugin's respond(204, 'text')), and without Content-Length, which a
  // 204 must not carry (RFC 9110 §8.6): node drops such a body over HTTP/1.1, but its HTTP/2 layer resets the stream.
  // A 205 has no content either (RFC 9110 §15.3.6), said with Content-Length: 0: node sent its body over HTTP/1.1,
  // and its HTTP/2 layer ends a 205's stream at the head, so the body written after it reset the stream.
  const bodiless = status === 204 || status === 304;
  const empty = bodiless || status === 205;
  if (!bodiless) headers['content-length'] = empty ? 0 : typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength;
  if (contentType !== undefined) headers['content-type'] = contentType;
  if (extraHeaders) Object.assign(headers, extraHeaders);
  ctx.status = status;
  const body = empty || ctx.req.method === 'HEAD' ? undefined : payload;
  return decorateThen(ctx, headers, () => writeReply(ctx, ctx.status, headers, body));
}

/**
 * Runs the response filter, then `write` (which never throws). An async hook (a plugin's) delays the write until it
 * settles; a hook's GatewayError replaces this answer with that error's reply.
 */
function decorateThen(ctx: RequestContext, headers: OutgoingHttpHeaders, write: () => void): 'responded' {
  const res = ctx.res;
  // Decided before the hooks run: node parses the rest of the read only after this turn's microtasks, so a hook's
  // promise can settle before it (found by review), and what is parsed behind the request meanwhile (a malformed
  // line, an Upgrade) must find the answer marked however long the hooks take.
  const waitsForRead = bodyMayBeInThisRead(ctx);
  if (waitsForRead) AWAITING_READ.add(res);
  let pending: void | Promise<void>;
  try {
    pending = ctx.decorate(ctx, headers);
  } catch (err) {
    AWAITING_READ.delete(res);
    return answerHookFailure(ctx, err);
  }
  if (pending === undefined) {
    if (waitsForRead) setImmediate(writeAfterRead, ctx, headers, write);
    else write();
  } else {
    pending.then(
      () => {
        if (waitsForRead) setImmediate(writeAfterRead, ctx, headers, write);
        else if (!res.headersSent && !res.destroyed) write();
      },
      (err: unknown) => {
        AWAITING_READ.delete(res);
        answerHookFailure(ctx, err);
      },
    );
  }
  return 'responded';
}

/**
 * A response hook failed before anything was sent: its error is the answer instead, through sendError like any
 * error. That reply runs the response filter again for the gateway's headers (the plugin chain skips its hooks
 * then); should the filter fail a second time, the error goes out without it rather than looping.
 */
function answerHookFailure(ctx: RequestContext, err: unknown): 'responded' {
  const error = toGatewayError(err);
  if (HOOK_FAILED.get(ctx) === true) {
    answerBare(ctx, error);
    return 'responded';
  }
  HOOK_FAILED.set(ctx, true);
  return sendError(ctx, error);
}

/**
 * An HTTP/1 answer decided from the request's head while its body is not all in yet (a 401, 429 or 404 from a
 * request filter, which runs as node hands the request over): node parses a body that came in the same read as the
 * head only after that hand-over, so deciding at once closed the connection (leavesBodyUnread) after every refusal
 * of a small POST, and a client refused at its rate limit reconnected for each try. The answer waits for that read
 * to be parsed (a setImmediate: one event-loop turn): a body in by then is drained and the connection kept, as nginx
 * keeps it after discarding a body it has; one still arriving closes it as before. With an async response hook,
 * the answer waits for both.
 */
function bodyMayBeInThisRead(ctx: RequestContext): boolean {
  return ctx.req.httpVersionMajor === 1 && !CLOSING_STATUSES.has(ctx.status) && bodyStillArriving(ctx.req);
}

/**
 * Answers that do not wait for the rest of the read, so that a body still unparsed closes the connection, as nginx's
 * close it: a malformed request (400), a body over the limit (413, whose rest is not read on), the gateway's own
 * failures (500, 501). Decided at once, as before. (One that waits for an async response hook anyway, a plugin's
 * respond(413) or the 500 of a hook that failed, decides then, by what has arrived by that time.)
 */
const CLOSING_STATUSES = new Set([400, 413, 500, 501]);

/** Gateway answers waiting for the rest of their request's read (bodyMayBeInThisRead), not written yet. */
const AWAITING_READ = new WeakSet<object>();

/**
 * True for a gateway answer waiting for the rest of its request's read: what node parses behind that request (a
 * malformed line, a pipelined Upgrade) finds it not yet written, and lets it go out with Connection: close instead
 * of destroying the connection under it (proxy-events.ts, run.ts).
 */
export function awaitsRestOfRead(res: object): boolean {
  return AWAITING_READ.has(res);
}

/**
 * The write of an answer that waited for the rest of its request's read. A stop that began meanwhile closes the
 * connection, as the response filter does for every answer decided while the gateway drains: kept alive, it would
 * sit idle and hold the drain for its keep-alive time.
 */
function writeAfterRead(ctx: RequestContext, headers: OutgoingHttpHeaders, write: () => void): void {
  const res = ctx.res;
  AWAITING_READ.delete(res);
  if (res.headersSent || res.destroyed) return;
  if (ctx.decorate.closing?.() === true) headers.connection = 'close';
  write();
}

/**
 * Writes the head and body of a gateway-made reply. Node throws for a header it refuses: over HTTP/1.1 a name that
 * is not a token or a value with a control character or a character beyond Latin-1, over HTTP/2 a
 * connection-specific header (HTTP2-Settings) or two values of a single-value one (ETag). Thrown from here, that
 * would escape into undici's callbacks or an async hook's continuation and end the process; the reply becomes the
 * gateway's 500 instead. The plugin contract checks what plugins set (plugins/headers.ts): this is the last guard.
 */
function writeReply(ctx: RequestContext, status: number, headers: OutgoingHttpHeaders, body: string | Uint8Array | undefined): void {
  if (leavesBodyUnread(ctx)) {
    headers.connection = 'close';
    lingerOnClose(ctx.req, ctx.res.socket);
  }
  try {
    ctx.res.writeHead(status, headers);
  } catch (err) {
    // The reply that replaces it keeps this one's decision to close the connection (see answerBare).
    answerBare(ctx, new GatewayError('INTERNAL', { cause: err }), closesConnection(headers.connection));
    return;
  }
  // Over HTTP/2, a large body (a plugin's bytes) goes in pieces: the send bound for an answer handed over whole
  // (listeners/h2-guard.ts) sees a steady reader's progress by them, and cut one taking a single write.
  const stream = body === undefined ? undefined : http2StreamOf(ctx);
  if (stream !== undefined && largerThanPiece(body!)) endInPieces(ctx.res, stream, body!);
  else ctx.res.end(body);
  closeAfterAnswer(ctx);
}

/** node's own test of a Connection value that ends the connection (its RE_CONN_CLOSE), on a value we hold. */
const CONNECTION_CLOSE = /(?:^|\W)close(?:$|\W)/i;

/** True when a Connection header value (as we hold it: a string, a list, or nothing) says close. */
function closesConnection(value: OutgoingHttpHeaders[string]): boolean {
  if (value === undefined) return false;
  return (Array.isArray(value) ? value : [String(value)]).some((token) => CONNECTION_CLOSE.test(token));
}

/**
 * An HTTP/1 answer given before the request's body has all arrived (a 413 for a declared length over
 * max_body_size, a 401 or a plugin's respond() before the upload): node would keep the connection and read the rest
 * of the body to throw it away, for as long as timeouts.request allows: gigabytes past a 10-byte limit. The answer
 * closes the connection instead (as nginx does after a 413); a body that has fully arrived keeps it alive.
 */
function leavesBodyUnread(ctx: RequestContext): boolean {
  return bodyStillArriving(ctx.req);
}

/**
 * The error with headers of our own only, without the response filter: for when node refused the head of another
 * reply (the hooks already ran and may have set the header it refused) or the filter failed twice. When the
 * response has started, the connection is cut instead.
 *
 * `close`: the refused head said Connection: close (an answer given mid-upload, whose connection writeReply has
 * already set to linger; a 408 of a silent body; a draining gateway). This answer says it too, and an answer given
 * mid-upload here lingers as writeReply's does. Without it, the answer went out keep-alive on a connection marked
 * lingering: node read the rest of the upload and the client's next request on it, which the driver drops unanswered
 * (run.ts afterLastAnswer), or, when node had already taken the refused head's close, the connection closed under
 * a "Connection: keep-alive" the client was just told.
 */
function answerBare(ctx: RequestContext, error: GatewayError, close = false): void {
  const res = ctx.res;
  ctx.error = error;
  if (res.headersSent || res.destroyed) {
    noteCut(res, error);
    cutBegunResponse(res);
    return;
  }
  ctx.status = error.status;
  try {
    clearStoredHeaders(res);
    const own: OutgoingHttpHeaders = { 'x-request-id': ctx.id };
    // HTTP/1 only: HTTP/2 has no Connection header (node drops it with a warning), and never lingers.
    if (ctx.req.httpVersionMajor !== 2 && (close || leavesBodyUnread(ctx))) {
      own.connection = 'close';
      lingerOnClose(ctx.req, res.socket);
    }
    if (isGrpc(ctx.req.headers)) {
      respondTrailersOnly(ctx, 200, { ...grpcErrorHeaders(ctx, error.status, error.code, error.message), ...own });
      return;
    }
    const payload = JSON.stringify(errorBody(error, ctx.id));
    res.writeHead(error.status, { ...jsonHeaders(payload), ...own });
    res.end(ctx.req.method === 'HEAD' ? undefined : payload);
    closeAfterAnswer(ctx);
  } catch {
    res.destroy(); // not expected with these headers, and still never thrown out
  }
}

/**
 * Node's HTTP/2 compat writeHead stores the headers it was given before refusing one, and the next writeHead sends
 * them too: an error reply after a refused head would throw again. Nothing else stores headers on a response.
 */
function clearStoredHeaders(res: ServerResponse): void {
  if (res.headersSent) return;
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  // The compat removeHeader('date') only turns node's own Date off and keeps a stored one (two upstream Dates, which
  // HTTP/2 refuses): replaced by a single value instead.
  if (res.hasHeader('date')) res.setHeader('date', new Date().toUTCString());
}

/** Sends a response without a body (a CORS preflight's 204) through the response filter. */
export function sendEmpty(ctx: RequestContext, status: number, extraHeaders: Readonly<Record<string, string>>): 'responded' {
  const res = ctx.res;
  if (res.headersSent || res.destroyed) return 'responded';
  const headers: OutgoingHttpHeaders = { ...extraHeaders };
  if (status !== 204 && status !== 304) headers['content-length'] = 0;
  ctx.status = status;
  return decorateThen(ctx, headers, () => writeReply(ctx, status, headers, undefined));
}

/**
 * The error phase, then the answer: the route's error filters may answer the error their own way; otherwise it
 * goes out as `{"error", "code", "request_id"}` (+ `details`). Only the error's safe message is sent; its cause
 * stays in the logs. When the response has already started, the connection is cut instead, since a half-sent body
 * cannot be turned into an error.
 */
export function sendError(ctx: RequestContext, err: GatewayError): 'responded' {
  // A listener answered the request beside the driver (outside-answer.ts: the HTTP/2 stream deadline's 408, whose
  // stream stays open until that answer is out): the client has its answer, and the request keeps its status and
  // error. Destroying the stream as a begun response would cut that answer's body.
  if (wasAnsweredOutside(ctx)) return 'responded';
  ctx.error = err;
  if (ctx.res.headersSent) {
    noteCut(ctx.res, err);
    cutBegunResponse(ctx.res);
    return 'responded';
  }
  // The reply that failed may have left headers stored (a refused HTTP/2 head): the error must not carry them.
  clearStoredHeaders(ctx.res);
  const hooks = ctx.route.errorFilters;
  for (let i = 0; i < hooks.length; i++) if (hooks[i]!.onError(ctx, err) === 'responded') return 'responded';
  return sendJson(ctx, err.status, errorBody(err, ctx.id), err.headers);
}

/**
 * A gateway-made error to a gRPC client: HTTP 200 "trailers-only" (one HEADERS frame that ends the stream) with
 * grpc-status and grpc-message, mapped from the HTTP status (grpc-status.ts). The access log and metrics still
 * record the HTTP status the error stands for (ctx.status), so a 401 counts as a 401 whatever the protocol.
 */
export function sendGrpcError(
  ctx: RequestContext,
  status: number,
  message: string,
  extraHeaders?: Readonly<Record<string, string>>,
): 'responded' {
  const headers = grpcErrorHeaders(ctx, status, ctx.error?.code, message);
  if (extraHeaders) Object.assign(headers, extraHeaders);
  ctx.status = status;
  // Through the response filter like every reply: an async hook is awaited (its headers go out with the status),
  // and a hook's failure becomes the error reply instead of a throw into undici or an unhandled rejection.
  return decorateThen(ctx, headers, () => writeTrailersOnly(ctx, 200, headers, 'INTERNAL'));
}

/** The headers of a gateway-made gRPC error; a gRPC-Web call's keep its own content type (grpcErrorContentType). */
function grpcErrorHeaders(ctx: RequestContext, status: number, code: ErrorCode | undefined, message: string): OutgoingHttpHeaders {
  return {
    'content-type': grpcErrorContentType(ctx.req.headers['content-type']),
    'grpc-status': String(grpcStatusFor(status, code)),
    'grpc-message': encodeGrpcMessage(message),
  };
}

/**
 * Writes a response that is headers only and ends there. Over HTTP/2 this is a single HEADERS frame with END_STREAM,
 * which gRPC reads as trailers (node's compat writeHead + end would add an empty DATA frame, and a gRPC client then
 * sees a response without status). Over HTTP/1.x it is an empty response. Used for relaying an upstream's own
 * trailers-only gRPC answer: a header node refuses there (see writeReply) is answered as a 502 the gRPC way.
 */
export function sendTrailersOnly(ctx: RequestContext, status: number, headers: OutgoingHttpHeaders): void {
  writeTrailersOnly(ctx, status, headers, 'PROXY_ERROR');
}

/** sendTrailersOnly, answering error `refused` when node refuses a header (nothing was sent then). */
function writeTrailersOnly(ctx: RequestContext, status: number, headers: OutgoingHttpHeaders, refused: ErrorCode): void {
  try {
    respondTrailersOnly(ctx, status, headers);
  } catch (err) {
    answerBare(ctx, new GatewayError(refused, { cause: err }), closesConnection(headers.connection));
  }
}

/** The write itself; throws when node refuses a header. */
function respondTrailersOnly(ctx: RequestContext, status: number, headers: OutgoingHttpHeaders): void {
  const stream = http2StreamOf(ctx);
  if (stream !== undefined) {
    if (stream.destroyed || stream.headersSent) return;
    stream.respond({ ...headers, ':status': status }, { endStream: true });
    closeAfterAnswer(ctx);
    return;
  }
  headers['content-length'] = 0;
  ctx.res.writeHead(status, headers);
  ctx.res.end();
}
