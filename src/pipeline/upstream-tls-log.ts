// The operational line of a failed TLS connection to an upstream. A certificate the gateway refuses, or a handshake
// the upstream refuses, is `Upstream TLS Failed`, one line per failed attempt, as it says something about that
// upstream's TLS set-up. One refusal is not a TLS fault and is logged apart: an upstream of an HTTP/2 service that
// speaks h2 alone refuses in ALPN the HTTP/1.1 connection a WebSocket goes over (balancer/backend.ts
// upgradeDispatcher). Any client can ask for a WebSocket on any route, so that line is written at most once per
// upstream per interval; each request's own access line keeps its 502 and cause whatever is logged here.
import type { Logger } from 'pino';
import { describeCause, type GatewayError } from '../errors.js';
import { EVENTS } from '../observability/events.js';
import { TRACE } from '../observability/tracing/types.js';
import { isConnectError } from '../proxy/upstream-error.js';
import { tlsFailureReason } from '../proxy/upstream-tls.js';
import type { RequestContext } from './context.js';
import type { Peer } from './upstream.js';

/** OpenSSL's code for the no_application_protocol alert (RFC 7301 §3.2): no protocol we offered is one it speaks. */
const NO_APPLICATION_PROTOCOL = 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL';

/** How often one upstream's refusals of WebSocket connections are logged at most, as a rate-limited warning. */
export const NO_HTTP1_LOG_INTERVAL_MS = 60_000;

/** One upstream's refusals: when the last line was written, and how many refusals came after it unlogged. */
interface Refusals {
  loggedAt: number;
  suppressed: number;
}

/**
 * True for an attempt that failed because an upstream of an HTTP/2 service offers no HTTP/1.1 in ALPN, which the
 * gateway's WebSocket connection to it asks for alone. Only a WebSocket to such a service goes over HTTP/1.1 (other
 * requests offer h2 as well, and any Upgrade but WebSocket goes as a plain request on the service's own pool).
 */
export function isWebSocketAlpnRefusal(ctx: RequestContext, peer: Peer, error: GatewayError): boolean {
  return ctx.upgrade && peer.transport.http2 && (error.cause as { code?: unknown } | undefined)?.code === NO_APPLICATION_PROTOCOL;
}

/** The reason of a TLS failure on an established connection: "alert after the handshake: sslv3 alert handshake failure". */
function afterHandshake(cause: unknown): string | undefined {
  const reason = tlsFailureReason(cause);
  return reason?.startsWith('handshake failed: ') ? `alert after the handshake: ${reason.slice(18)}` : reason;
}

/** Writes the line of an UPSTREAM_TLS failure: per attempt, or for an ALPN-refused WebSocket, once per interval. */
export class UpstreamTlsLog {
  readonly #logger: Logger;
  readonly #intervalMs: number;
  readonly #now: () => number;
  /** By upstream (the Peer object: a backend a reload retires goes with its entry). */
  readonly #refusals = new WeakMap<Peer, Refusals>();

  constructor(logger: Logger, intervalMs = NO_HTTP1_LOG_INTERVAL_MS, now: () => number = () => performance.now()) {
    this.#logger = logger;
    this.#intervalMs = intervalMs;
    this.#now = now;
  }

  /** The attempt of `ctx` on `peer` failed with `error` (code UPSTREAM_TLS). */
  failed(ctx: RequestContext, peer: Peer, error: GatewayError): void {
    if (!isWebSocketAlpnRefusal(ctx, peer, error)) {
      // An alert after the handshake is no handshake failure: an OpenSSL upstream's answer to the no_renegotiation
      // alert (a renegotiation it asked for and the gateway refused, proxy/upstream-tls.ts) is a handshake_failure one.
      const reason = isConnectError(error.cause) ? tlsFailureReason(error.cause) : afterHandshake(error.cause);
      this.#logger.warn(
        { request_id: ctx.id, trace_id: TRACE.get(ctx)?.traceId, upstream: peer.label, reason, cause: describeCause(error.cause) },
        EVENTS.upstreamTlsFailed,
      );
      return;
    }
    const now = this.#now();
    const seen = this.#refusals.get(peer);
    if (seen !== undefined && now - seen.loggedAt < this.#intervalMs) {
      seen.suppressed++;
      return;
    }
    this.#logger.warn(
      {
        request_id: ctx.id,
        trace_id: TRACE.get(ctx)?.traceId,
        upstream: peer.label,
        upstream_service: peer.group.name,
        reason: 'the upstream offers no HTTP/1.1 in ALPN (h2 only): WebSockets to it are refused 502',
        // Refusals of this upstream since the last such line, not logged one by one.
        suppressed: seen?.suppressed ?? 0,
      },
      EVENTS.upstreamNoHttp1ForWebSocket,
    );
    this.#refusals.set(peer, { loggedAt: now, suppressed: 0 });
  }
}
