// An answer written beside the driver to a request the driver is running: node's parser refusing the body of an
// HTTP/1 request (listeners/proxy-events.ts), or the HTTP/2 stream deadline (listeners/h2-guard.ts). Such an answer
// carries the request's own id and time, and the request is logged with what its client got, not as gone (499).
import type { GatewayError } from '../errors.js';
import type { RequestContext } from './context.js';
import { ContextSlot } from './slot.js';

/** On the HTTP/1 response (a socket's `_httpMessage`) or the HTTP/2 stream of a request the driver runs. */
const CONTEXT = Symbol('portcullis.request-context');
/** Set once an answer was written beside the driver: the driver keeps its status rather than logging 499. */
const ANSWERED_OUTSIDE = new ContextSlot<true>('answered-outside');

type Holder = { [CONTEXT]?: RequestContext };

/** The driver took the request: `holder` is its HTTP/2 stream, or its HTTP/1 response. One property set. */
export function holdContext(holder: object, ctx: RequestContext): void {
  (holder as Holder)[CONTEXT] = ctx;
}

/**
 * `error` is being answered on `holder`'s connection or stream, outside the driver: the request's id and its
 * milliseconds since arrival for that answer (undefined when no request runs there: a refused head), and the
 * request is marked to be logged with that status and error. `clientLeft`: the client ended its side before its
 * request did (an upload given up): the answer keeps the request's id, and the request is logged 499 as before.
 */
export function answeredOutside(
  holder: object | null | undefined,
  error: GatewayError,
  clientLeft = false,
): { readonly id: string; readonly ms: number } | undefined {
  const ctx = holder === null || holder === undefined ? undefined : (holder as Holder)[CONTEXT];
  if (ctx === undefined) return undefined;
  if (!ctx.logged && !clientLeft) {
    ctx.error = error;
    ctx.status = error.status;
    ANSWERED_OUTSIDE.set(ctx, true);
  }
  return { id: ctx.id, ms: Math.round(performance.now() - ctx.startedAt) };
}

/** True when the request's answer was written outside the driver (its status is what the client got). */
export function wasAnsweredOutside(ctx: RequestContext): boolean {
  return ANSWERED_OUTSIDE.get(ctx) === true;
}

/**
 * The listener cut the answer of the request on `holder` after its head went out (listeners/h2-guard.ts: an answer
 * handed over whole that waited at the client's flow-control window past the send bound): the request is logged
 * with `error`, as forward.ts's send bound logs the same stall, its status still the one whose head the client got.
 * An error answer keeps its own error (a 502's UPSTREAM_UNREACHABLE): it says why that status, and counted as the
 * send bound's, the upstream failure behind it was counted nowhere.
 */
export function cutOutside(holder: object, error: GatewayError): void {
  const ctx = (holder as Holder)[CONTEXT];
  if (ctx !== undefined && !ctx.logged) ctx.error ??= error;
}
