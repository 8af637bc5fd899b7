// An upstream's refusal passed on to an HTTP/2 client as the upstream gave it. When an HTTP/2 upstream refuses a
// request unprocessed (its RST_STREAM REFUSED_STREAM, or a GOAWAY whose last stream id is below the request's) and the
// gateway does not retry it (its body had begun to stream upstream and is never buffered, or the retries ran out),
// a 502 tells the client only that something failed, and a gRPC client reads it as a call that may have run. The
// client's stream is reset with REFUSED_STREAM instead, RFC 9113 §8.7's "the request has not been processed", which
// lets the client repeat it whatever its method: grpc-js does so once by itself (a transparent retry, replaying the
// messages it kept), browsers and curl retry it too. Only to an HTTP/2 client (HTTP/1.1 has no such signal: it keeps
// its 502), only while nothing of an answer has gone out, and only when no attempt of the request may have been
// processed by any upstream.
import type { ServerHttp2Stream } from 'node:http2';
import { GatewayError } from '../errors.js';
import { H2_REFUSED_STREAM } from '../proxy/h2-codes.js';
import { failedBeforeSending, refusedByUpstream } from '../proxy/upstream-error.js';
import type { RequestContext } from './context.js';
import { dropUnreadBody } from './h2-early-answer.js';
import { ContextSlot } from './slot.js';
import { resetForUpstream } from './h2-own-reset.js';

/** Set once an attempt of the request failed in a way that may have left it processed (a reset, a timeout). */
const MAYBE_PROCESSED = new ContextSlot<true>('h2-refused-maybe-processed');
/** Set once the client's stream was reset with REFUSED_STREAM: the request is logged with its 502, not as gone. */
const REFUSED = new ContextSlot<true>('h2-refused');

/** Call for each failed attempt, before any retry: an attempt an upstream may have processed rules the reset out. */
export function noteFailedAttempt(ctx: RequestContext, error: GatewayError): void {
  if (!failedBeforeSending(error)) MAYBE_PROCESSED.set(ctx, true);
}

/**
 * Answers `error`, the request's last failure, with RST_STREAM REFUSED_STREAM when it is the upstream's own refusal
 * and the client is HTTP/2 and has been sent nothing; returns false, doing nothing, otherwise (the caller answers the
 * error). The request is logged with the error's status (502) and code UPSTREAM_REFUSED_STREAM, its cause the
 * upstream's. The unread rest of the client's body is dropped, so that the stream closes (h2-early-answer.ts).
 */
export function refuseStream(ctx: RequestContext, error: GatewayError): boolean {
  if (ctx.req.httpVersionMajor !== 2 || !refusedByUpstream(error) || MAYBE_PROCESSED.get(ctx) === true) return false;
  const stream = (ctx.res as unknown as { stream?: ServerHttp2Stream }).stream;
  if (stream === undefined || stream.closed || stream.destroyed || stream.headersSent || ctx.res.headersSent) return false;
  ctx.error = new GatewayError('UPSTREAM_REFUSED_STREAM', { cause: error.cause });
  ctx.status = ctx.error.status;
  REFUSED.set(ctx, true);
  dropUnreadBody(ctx.req, stream);
  resetForUpstream(stream, H2_REFUSED_STREAM);
  return true;
}

/** True when the request's stream was reset by refuseStream (its status and error are what happened). */
export function wasRefused(ctx: RequestContext): boolean {
  return REFUSED.get(ctx) === true;
}
