// Every response the gateway makes itself: JSON bodies, error bodies, and the gateway headers on each.
import type { OutgoingHttpHeaders } from 'node:http';
import type { GatewayError } from '../errors.js';
import type { RequestContext } from './context.js';

/**
 * Sends a JSON response through the response filter (gateway headers, rate-limit headers). Returns 'responded' so a
 * request-filter hook can `return sendJson(...)`. Does nothing when headers were already sent.
 */
export function sendJson(
  ctx: RequestContext,
  status: number,
  body: unknown,
  extraHeaders?: Readonly<Record<string, string>>,
): 'responded' {
  const res = ctx.res;
  if (res.headersSent || res.destroyed) return 'responded';
  const payload = JSON.stringify(body);
  const headers: OutgoingHttpHeaders = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
    'cache-control': 'no-store',
  };
  if (extraHeaders) Object.assign(headers, extraHeaders);
  ctx.decorate(ctx, headers);
  ctx.status = status;
  res.writeHead(status, headers);
  res.end(ctx.req.method === 'HEAD' ? undefined : payload);
  return 'responded';
}

/**
 * Answers with a GatewayError as `{"error", "request_id"}` (+ `details` when it has some). Only the error's safe
 * message is sent; its cause stays in the logs. When the response has already started, the connection is cut
 * instead, since a half-sent body cannot be turned into an error.
 */
export function sendError(ctx: RequestContext, err: GatewayError): 'responded' {
  ctx.error = err;
  if (ctx.res.headersSent) {
    ctx.res.destroy();
    return 'responded';
  }
  const body: Record<string, unknown> = { error: err.message, request_id: ctx.id };
  if (err.details !== undefined) body.details = err.details;
  return sendJson(ctx, err.status, body, err.headers);
}
