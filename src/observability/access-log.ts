// The per-request access events (Request Start, Select Upstream, Request Completed, or one summary line), written on
// the hot path.
import type { Logger } from 'pino';
import { describeCause, type GatewayError } from '../errors.js';
import { EVENTS } from './events.js';
import { TRACE } from './tracing/types.js';

/** Where JSON lines can be written directly (the stdout writer, or the access-log file's). */
export interface LineSink {
  write(line: string): unknown;
}

/** `logging.access_log_format`: the seed's three events per request, or one line holding all their fields. */
export type AccessLogFormat = 'events' | 'single';

/** What the access log reads from a request; the pipeline's RequestContext has this shape. */
export interface AccessFacts {
  readonly id: string;
  readonly req: { readonly method?: string | undefined } & RequestLike;
  /** The TLS version of the client connection, read when the request arrived; undefined for cleartext. */
  readonly tlsVersion: string | undefined;
  readonly path: string;
  /** The route's name (config-bounded, never request data). */
  readonly route: { readonly name: string };
  /** The service of the last attempt, when the request was proxied. */
  readonly service: string | undefined;
  readonly peer: { readonly label: string } | undefined;
  readonly attempts: number;
  readonly status: number;
  readonly durationMs: number;
  readonly clientAddress: string;
  readonly error: GatewayError | undefined;
  /** Feature state; the tracing slot gives the trace id written into every line while tracing is on. */
  readonly slots: unknown[];
}

/** What protocolOf and tlsVersionOf read from a request (node:http's IncomingMessage or the HTTP/2 compat one). */
interface RequestLike {
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  readonly socket: unknown;
}

/** The protocol of a request in ALPN spelling. */
export function protocolOf(req: RequestLike): string {
  if (req.httpVersionMajor === 2) return 'h2';
  return req.httpVersionMinor === 0 ? 'http/1.0' : 'http/1.1';
}

/** The negotiated TLS version of the request's connection, or undefined when it is not TLS (or already gone). */
export function tlsVersionOf(req: RequestLike): string | undefined {
  const socket = req.socket as { encrypted?: boolean; getProtocol?: () => string | null } | null;
  if (socket?.encrypted !== true || typeof socket.getProtocol !== 'function') return undefined;
  return socket.getProtocol() ?? undefined;
}

const PINO_INFO = 30;

/**
 * Per-request events are the gateway's most frequent log lines, so in JSON mode they are serialized by hand into
 * the same shape pino writes (level, time, service, fields, msg) — about a third of pino's generic cost, measured.
 * Without a sink (pretty output), they go through pino itself. The level is read once: it is fixed per process.
 */
export class AccessLog {
  readonly #logger: Logger;
  readonly #sink: LineSink | undefined;
  /** Request Start and Select Upstream are written (format "events" and the log on). */
  #events = true;
  /** Request Completed is written; in "single" format it also carries the other two events' fields. */
  #completed = true;
  #single = false;
  readonly #prefix: string;

  /** `enabled` is config `logging.access_log`; the lines are also off when the level is above info. */
  constructor(logger: Logger, sink: LineSink | undefined, enabled = true, format: AccessLogFormat = 'events') {
    this.#logger = logger;
    this.#sink = sink;
    this.#prefix = `{"level":${PINO_INFO},"time":`;
    this.configure(enabled, format);
  }

  /** A reload's `logging.access_log`, `access_log_format` (and level): applies from the next request on. */
  configure(enabled: boolean, format: AccessLogFormat = 'events'): void {
    this.#completed = enabled && this.#logger.isLevelEnabled('info');
    this.#single = format === 'single';
    this.#events = this.#completed && !this.#single;
  }

  requestStart(ctx: AccessFacts): void {
    if (!this.#events) return;
    const traceId = TRACE.get(ctx)?.traceId;
    if (this.#sink === undefined) {
      this.#logger.info({ request_id: ctx.id, trace_id: traceId, method: ctx.req.method, path: ctx.path }, EVENTS.requestStart);
      return;
    }
    this.#sink.write(
      `${this.#prefix}${Date.now()},"service":"portcullis","request_id":"${ctx.id}"${traceField(traceId)},"method":${str(ctx.req.method)},"path":${JSON.stringify(ctx.path)},"msg":"${EVENTS.requestStart}"}\n`,
    );
  }

  /** Called once per attempt, after `ctx.peer` and `ctx.attempts` are set. */
  selectUpstream(ctx: AccessFacts): void {
    if (!this.#events) return;
    const upstream = ctx.peer!.label;
    const traceId = TRACE.get(ctx)?.traceId;
    if (this.#sink === undefined) {
      this.#logger.info({ request_id: ctx.id, trace_id: traceId, upstream, attempt: ctx.attempts }, EVENTS.selectUpstream);
      return;
    }
    this.#sink.write(
      `${this.#prefix}${Date.now()},"service":"portcullis","request_id":"${ctx.id}"${traceField(traceId)},"upstream":${JSON.stringify(upstream)},"attempt":${ctx.attempts},"msg":"${EVENTS.selectUpstream}"}\n`,
    );
  }

  /** Called from the logging phase, once `ctx.status` and `ctx.durationMs` are final. */
  requestCompleted(ctx: AccessFacts): void {
    if (!this.#completed) return;
    const error = ctx.error;
    const cause = error ? describeCause(error.cause) : undefined;
    const upstream = ctx.peer?.label;
    const traceId = TRACE.get(ctx)?.traceId;
    // "single" adds the attempt count (Select Upstream's field); the method and path are already here.
    const attempts = this.#single ? ctx.attempts : undefined;
    if (this.#sink === undefined) {
      this.#logger.info(
        {
          request_id: ctx.id,
          trace_id: traceId,
          method: ctx.req.method,
          path: ctx.path,
          route: ctx.route.name,
          upstream_service: ctx.service,
          upstream,
          attempts,
          status: ctx.status,
          duration_ms: ctx.durationMs,
          client: ctx.clientAddress,
          error: error?.code,
          cause,
          protocol: protocolOf(ctx.req),
          tls: ctx.tlsVersion,
        },
        EVENTS.requestCompleted,
      );
      return;
    }
    let line = `${this.#prefix}${Date.now()},"service":"portcullis","request_id":"${ctx.id}"${traceField(traceId)},"method":${str(ctx.req.method)},"path":${JSON.stringify(ctx.path)},"route":${JSON.stringify(ctx.route.name)}`;
    if (ctx.service !== undefined) line += `,"upstream_service":${JSON.stringify(ctx.service)}`;
    if (upstream !== undefined) line += `,"upstream":${JSON.stringify(upstream)}`;
    if (attempts !== undefined) line += `,"attempts":${attempts}`;
    line += `,"status":${ctx.status},"duration_ms":${ctx.durationMs},"client":${JSON.stringify(ctx.clientAddress)},"protocol":"${protocolOf(ctx.req)}"`;
    if (ctx.tlsVersion !== undefined) line += `,"tls":"${ctx.tlsVersion}"`;
    if (error !== undefined) line += `,"error":"${error.code}"`;
    if (cause !== undefined) line += `,"cause":${JSON.stringify(cause)}`;
    this.#sink.write(`${line},"msg":"${EVENTS.requestCompleted}"}\n`);
  }
}

/** Node only accepts token characters in a method, so it needs no escaping; absent becomes null. */
function str(value: string | undefined): string {
  return value === undefined ? 'null' : `"${value}"`;
}

/** A trace id is 32 lower-case hex digits (made by the tracer, never by a client): no escaping needed. */
function traceField(traceId: string | undefined): string {
  return traceId === undefined ? '' : `,"trace_id":"${traceId}"`;
}
