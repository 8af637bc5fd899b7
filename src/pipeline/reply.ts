// Every response the gateway makes itself goes through here: JSON bodies, error bodies from the one catalogue, and
// the gateway headers on each, whether on the proxy port, the admin port, or a raw socket node refused to parse.
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import { toGatewayError, type GatewayError } from '../errors.js';
import { isGrpc } from '../proxy/headers.js';
import type { RequestContext } from './context.js';
import { encodeGrpcMessage, grpcStatusFor } from './grpc-status.js';

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

/** Writes a JSON response on a plain ServerResponse (admin port). Does nothing when headers were already sent. */
export function writeJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: OutgoingHttpHeaders = {},
  head = false,
): void {
  if (res.headersSent || res.destroyed) return;
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(head ? undefined : payload);
}

/** An error on a plain ServerResponse (admin port), from the catalogue like every other. */
export function writeError(res: ServerResponse, err: GatewayError, requestId?: string): void {
  writeJson(res, err.status, errorBody(err, requestId), err.headers ?? {}, res.req?.method === 'HEAD');
}

/**
 * A complete HTTP/1.1 error response as text, for a socket that node's parser refused before any request existed
 * (400, 408, 431): the same body and gateway headers as every other error, then the connection closes.
 */
export function rawErrorResponse(err: GatewayError, requestId: string, proxyBy: string): string {
  const body = JSON.stringify(errorBody(err, requestId));
  return (
    `HTTP/1.1 ${err.status} ${err.message}\r\ncontent-type: application/json; charset=utf-8\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nx-proxy-by: ${proxyBy}\r\nx-request-id: ${requestId}\r\n` +
    `x-response-time: 0ms\r\nconnection: close\r\n\r\n${body}`
  );
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
  const headers: OutgoingHttpHeaders = {
    'content-length': typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength,
    'cache-control': 'no-store',
  };
  if (contentType !== undefined) headers['content-type'] = contentType;
  if (extraHeaders) Object.assign(headers, extraHeaders);
  ctx.status = status;
  return decorateThen(ctx, headers, () => {
    res.writeHead(ctx.status, headers);
    res.end(ctx.req.method === 'HEAD' ? undefined : payload);
  });
}

/**
 * Runs the response filter, then `write`. An async hook (a plugin's) delays the write until it settles; a hook's
 * GatewayError replaces this answer with that error's reply.
 */
function decorateThen(ctx: RequestContext, headers: OutgoingHttpHeaders, write: () => void): 'responded' {
  const res = ctx.res;
  let pending: void | Promise<void>;
  try {
    pending = ctx.decorate(ctx, headers);
  } catch (err) {
    return sendError(ctx, toGatewayError(err));
  }
  if (pending === undefined) write();
  else {
    pending.then(
      () => {
        if (!res.headersSent && !res.destroyed) write();
      },
      (err: unknown) => sendError(ctx, toGatewayError(err)),
    );
  }
  return 'responded';
}

/** Sends a response without a body (a CORS preflight's 204) through the response filter. */
export function sendEmpty(ctx: RequestContext, status: number, extraHeaders: Readonly<Record<string, string>>): 'responded' {
  const res = ctx.res;
  if (res.headersSent || res.destroyed) return 'responded';
  const headers: OutgoingHttpHeaders = { ...extraHeaders };
  if (status !== 204 && status !== 304) headers['content-length'] = 0;
  ctx.status = status;
  return decorateThen(ctx, headers, () => {
    res.writeHead(status, headers);
    res.end();
  });
}

/**
 * The error phase, then the answer: the route's error filters may answer the error their own way; otherwise it
 * goes out as `{"error", "code", "request_id"}` (+ `details`). Only the error's safe message is sent; its cause
 * stays in the logs. When the response has already started, the connection is cut instead, since a half-sent body
 * cannot be turned into an error.
 */
export function sendError(ctx: RequestContext, err: GatewayError): 'responded' {
  ctx.error = err;
  if (ctx.res.headersSent) {
    ctx.res.destroy();
    return 'responded';
  }
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
  const headers: OutgoingHttpHeaders = {
    'content-type': 'application/grpc',
    'grpc-status': String(grpcStatusFor(status, ctx.error?.code)),
    'grpc-message': encodeGrpcMessage(message),
  };
  if (extraHeaders) Object.assign(headers, extraHeaders);
  ctx.decorate(ctx, headers);
  ctx.status = status;
  sendTrailersOnly(ctx, 200, headers);
  return 'responded';
}

/**
 * Writes a response that is headers only and ends there. Over HTTP/2 this is a single HEADERS frame with END_STREAM,
 * which gRPC reads as trailers (node's compat writeHead + end would add an empty DATA frame, and a gRPC client then
 * sees a response without status). Over HTTP/1.x it is an empty response. Used for gateway errors and for relaying
 * an upstream's own trailers-only gRPC answer.
 */
export function sendTrailersOnly(ctx: RequestContext, status: number, headers: OutgoingHttpHeaders): void {
  const stream = http2StreamOf(ctx);
  if (stream !== undefined) {
    if (stream.destroyed || stream.headersSent) return;
    stream.respond({ ...headers, ':status': status }, { endStream: true });
    return;
  }
  headers['content-length'] = 0;
  ctx.res.writeHead(status, headers);
  ctx.res.end();
}
