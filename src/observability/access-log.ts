// The per-request access events (Request Start, Select Upstream, Request Completed, or one summary line), written on
// the hot path.
import type { Logger } from 'pino';
import { describeCause, type GatewayError } from '../errors.js';
import { EVENTS } from './events.js';
import { TRACE } from './tracing/types.js';
import { ascii, isByteSink, putAscii, putBytes, putHundredths, putJsonString, putUint, type ByteSink } from './line-bytes.js';

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

/**
 * Who ended a WebSocket tunnel (first come): see proxy/upgrade.ts's TunnelEnding; `idle`: silent for the route's
 * tunnel_idle; `shutdown`: the gateway stopping.
 */
export type TunnelCloser = 'client' | 'upstream' | 'error' | 'idle' | 'shutdown';

/** A closed tunnel, as its line and the metrics tell it; counts are tunnel bytes, never an HTTP head's or a payload. */
export interface TunnelFacts {
  /** From the 101 to the close of the last of its two sockets. */
  readonly durationMs: number;
  /** Bytes read from the client and handed on to the upstream. */
  readonly bytesFromClient: number;
  /** Bytes read from the upstream after its 101 and handed on to the client. */
  readonly bytesFromUpstream: number;
  readonly closedBy: TunnelCloser;
  /** With closedBy `error`: the side whose socket failed, and what failed (logged as class and code). */
  readonly errorFrom: 'client' | 'upstream' | undefined;
  readonly error: unknown;
}

/** What protocolOf and tlsVersionOf read from a request (node:http's IncomingMessage or the HTTP/2 compat one). */
interface RequestLike {
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  readonly socket: unknown;
}

/**
 * The protocol of a request in ALPN spelling. Major version 2 is h2 only on an HTTP/2 stream: an "HTTP/2.0" request
 * line over HTTP/1 (answered 505) is logged as the version it claimed, not as h2.
 */
export function protocolOf(req: RequestLike): string {
  if (req.httpVersionMajor === 2) return (req as { stream?: unknown }).stream === undefined ? 'http/2.0' : 'h2';
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
 * Without a sink (pretty output), they go through pino itself. What is written is decided when the config is read
 * (start-up, reload), never per request.
 *
 * The access log is `logging.access_log`'s to turn on and off, as nginx's and Kong's are: Request Completed (and
 * Tunnel Closed) are written whatever `logging.level` says, which governs the operational lines. Only `silent`, no
 * output at all, ends them too. Request Start and Select Upstream, the per-request detail, follow the level (info).
 * The lines stay info lines (level 30) whatever the level.
 */
export class AccessLog {
  readonly #logger: Logger;
  /** Where the lines go without a sink (pretty output, no file): see infoLines. */
  readonly #lines: Logger;
  readonly #sink: LineSink | undefined;
  /** The sink, when it takes lines encoded in place (the line writer): the fast path, see line-bytes.ts. */
  readonly #bytes: ByteSink | undefined;
  /** Request Start and Select Upstream are written (format "events" and the log on). */
  #events = true;
  /** Request Completed is written; in "single" format it also carries the other two events' fields. */
  #completed = true;
  #single = false;
  readonly #prefix: string;

  /** `enabled` is config `logging.access_log`; see the class for what `logging.level` changes. */
  constructor(logger: Logger, sink: LineSink | undefined, enabled = true, format: AccessLogFormat = 'events') {
    this.#logger = logger;
    this.#lines = sink === undefined ? infoLines(logger) : logger;
    this.#sink = sink;
    this.#bytes = sink !== undefined && isByteSink(sink) ? sink : undefined;
    this.#prefix = `{"level":${PINO_INFO},"time":`;
    this.configure(enabled, format);
  }

  /**
   * A reload's `logging.access_log`, `access_log_format` (and level, already set on the logger): applies from the
   * next request on.
   */
  configure(enabled: boolean, format: AccessLogFormat = 'events'): void {
    this.#completed = enabled && this.#logger.level !== 'silent';
    this.#single = format === 'single';
    this.#events = this.#completed && !this.#single && this.#logger.isLevelEnabled('info');
  }

  requestStart(ctx: AccessFacts): void {
    if (!this.#events) return;
    const traceId = TRACE.get(ctx)?.traceId;
    if (this.#sink === undefined) {
      this.#lines.info({ request_id: ctx.id, trace_id: traceId, method: ctx.req.method, path: ctx.path }, EVENTS.requestStart);
      return;
    }
    if (this.#bytes !== undefined && startBytes(this.#bytes, ctx, traceId)) return;
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
      this.#lines.info({ request_id: ctx.id, trace_id: traceId, upstream, attempt: ctx.attempts }, EVENTS.selectUpstream);
      return;
    }
    if (this.#bytes !== undefined && selectBytes(this.#bytes, ctx, upstream, traceId)) return;
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
      this.#lines.info(
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
    if (this.#bytes !== undefined && error === undefined && completedBytes(this.#bytes, ctx, upstream, attempts, traceId)) return;
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

  /**
   * One line per WebSocket tunnel, when it has closed: on the access log's sink and switch (a tunnel's request line
   * is written at the 101, before anything is known of the tunnel). Written in both formats, as it is the only line
   * with these facts. Rare next to requests: the string path only.
   */
  tunnelClosed(ctx: AccessFacts, tunnel: TunnelFacts): void {
    if (!this.#completed) return;
    const upstream = ctx.peer?.label;
    const traceId = TRACE.get(ctx)?.traceId;
    const durationMs = Math.round(tunnel.durationMs * 100) / 100;
    const cause = tunnel.error === undefined ? undefined : describeCause(tunnel.error);
    if (this.#sink === undefined) {
      this.#lines.info(
        {
          request_id: ctx.id,
          trace_id: traceId,
          route: ctx.route.name,
          upstream_service: ctx.service,
          upstream,
          duration_ms: durationMs,
          bytes_from_client: tunnel.bytesFromClient,
          bytes_from_upstream: tunnel.bytesFromUpstream,
          closed_by: tunnel.closedBy,
          error_from: tunnel.errorFrom,
          cause,
          client: ctx.clientAddress,
        },
        EVENTS.tunnelClosed,
      );
      return;
    }
    let line = `${this.#prefix}${Date.now()},"service":"portcullis","request_id":"${ctx.id}"${traceField(traceId)},"route":${JSON.stringify(ctx.route.name)}`;
    if (ctx.service !== undefined) line += `,"upstream_service":${JSON.stringify(ctx.service)}`;
    if (upstream !== undefined) line += `,"upstream":${JSON.stringify(upstream)}`;
    line += `,"duration_ms":${durationMs},"bytes_from_client":${tunnel.bytesFromClient},"bytes_from_upstream":${tunnel.bytesFromUpstream},"closed_by":"${tunnel.closedBy}"`;
    if (tunnel.errorFrom !== undefined) line += `,"error_from":"${tunnel.errorFrom}"`;
    if (cause !== undefined) line += `,"cause":${JSON.stringify(cause)}`;
    this.#sink.write(`${line},"client":${JSON.stringify(ctx.clientAddress)},"msg":"${EVENTS.tunnelClosed}"}\n`);
  }
}

/**
 * A child of `logger` that writes info lines whatever the level of `logger`, now or after a reload: so a gateway
 * logging at warn or error through pino (pretty output) still writes its access lines. Set after creation: a child
 * made with the level its parent has at the time gets no level of its own (pino), and followed the parent's later
 * changes through its prototype.
 */
function infoLines(logger: Logger): Logger {
  const lines = logger.child({});
  lines.level = 'info';
  return lines;
}

/** The method as JSON; absent becomes null. Node's parsers only accept tokens, but an injected request (the testing
 * kit's inject()) can carry anything. */
function str(value: string | undefined): string {
  return value === undefined ? 'null' : JSON.stringify(value);
}

/** A trace id is 32 lower-case hex digits (made by the tracer, never by a client): no escaping needed. */
function traceField(traceId: string | undefined): string {
  return traceId === undefined ? '' : `,"trace_id":"${traceId}"`;
}

// The fast path: the same lines as above, encoded straight into the line writer's buffer (line-bytes.ts). Each
// returns false, having committed nothing, when a field needs what only the string path does (escapes, non-ASCII,
// a line too long for a claim); the string path then writes the line. Tests hold both paths to the same bytes.

const HEAD = ascii(`{"level":${PINO_INFO},"time":`);
const REQUEST_ID = ascii(',"service":"portcullis","request_id":"');
const TRACE_ID = ascii('","trace_id":"');
// A leading `"` closes the request id (or trace id) before it: putHead leaves it open.
const AFTER_ID_METHOD = ascii('","method":');
const NULL = ascii('null');
const PATH = ascii(',"path":');
const AFTER_ID_UPSTREAM = ascii('","upstream":');
const ATTEMPT = ascii(',"attempt":');
const ROUTE = ascii(',"route":');
const UPSTREAM_SERVICE = ascii(',"upstream_service":');
const UPSTREAM = ascii(',"upstream":');
const ATTEMPTS = ascii(',"attempts":');
const STATUS = ascii(',"status":');
const DURATION = ascii(',"duration_ms":');
const CLIENT = ascii(',"client":');
const PROTOCOL = ascii(',"protocol":"');
// A leading `"` closes the protocol before it.
const TLS = ascii('","tls":"');
const START_END = ascii(`,"msg":"${EVENTS.requestStart}"}\n`);
const SELECT_END = ascii(`,"msg":"${EVENTS.selectUpstream}"}\n`);
const COMPLETED_END = ascii(`","msg":"${EVENTS.requestCompleted}"}\n`);
/** Room for every constant part and number of a line (the longest, Request Completed, needs about 250 bytes). */
const FIXED_BOUND = 400;

/**
 * `{"level":30,"time":…,"service":"portcullis","request_id":"…`, and `","trace_id":"…` when tracing: the last quote
 * left open. -1 when the clock is not an integer (a mocked one): the string path writes what it says.
 */
function putHead(buf: Uint8Array, pos: number, id: string, traceId: string | undefined): number {
  pos = putBytes(buf, pos, HEAD);
  pos = putUint(buf, pos, Date.now());
  if (pos < 0) return -1;
  pos = putBytes(buf, pos, REQUEST_ID);
  pos = putAscii(buf, pos, id);
  if (traceId !== undefined) {
    pos = putBytes(buf, pos, TRACE_ID);
    pos = putAscii(buf, pos, traceId);
  }
  return pos;
}

/** `","method":"GET","path":"…"` (the quote before it closes the request or trace id). */
function putMethodPath(buf: Uint8Array, pos: number, method: string | undefined, path: string): number {
  pos = putBytes(buf, pos, AFTER_ID_METHOD);
  if (method === undefined) pos = putBytes(buf, pos, NULL);
  else {
    pos = putJsonString(buf, pos, method);
    if (pos < 0) return -1;
  }
  pos = putBytes(buf, pos, PATH);
  return putJsonString(buf, pos, path);
}

/** A constant key (`,"route":`) and a JSON string after it; -1 when the string needs the string path. */
function putStringField(buf: Uint8Array, pos: number, key: Uint8Array, text: string): number {
  return putJsonString(buf, putBytes(buf, pos, key), text);
}

/** A constant key and a non-negative integer after it; -1 when the number needs the string path. */
function putUintField(buf: Uint8Array, pos: number, key: Uint8Array, n: number): number {
  return putUint(buf, putBytes(buf, pos, key), n);
}

function startBytes(sink: ByteSink, ctx: AccessFacts, traceId: string | undefined): boolean {
  const method = ctx.req.method;
  const start = sink.claim(FIXED_BOUND + ctx.id.length + (traceId?.length ?? 0) + (method?.length ?? 0) + ctx.path.length);
  if (start < 0) return false;
  const buf = sink.claimedBuffer;
  let pos = putHead(buf, start, ctx.id, traceId);
  if (pos < 0) return false;
  pos = putMethodPath(buf, pos, method, ctx.path);
  if (pos < 0) return false;
  sink.commit(putBytes(buf, pos, START_END));
  return true;
}

function selectBytes(sink: ByteSink, ctx: AccessFacts, upstream: string, traceId: string | undefined): boolean {
  const start = sink.claim(FIXED_BOUND + ctx.id.length + (traceId?.length ?? 0) + upstream.length);
  if (start < 0) return false;
  const buf = sink.claimedBuffer;
  let pos = putHead(buf, start, ctx.id, traceId);
  if (pos < 0) return false;
  pos = putStringField(buf, pos, AFTER_ID_UPSTREAM, upstream);
  if (pos < 0) return false;
  pos = putUintField(buf, pos, ATTEMPT, ctx.attempts);
  if (pos < 0) return false;
  sink.commit(putBytes(buf, pos, SELECT_END));
  return true;
}

/** Request Completed without an error (a request that failed takes the string path: rare, and it has a cause). */
function completedBytes(sink: ByteSink, ctx: AccessFacts, upstream: string | undefined, attempts: number | undefined, traceId: string | undefined): boolean {
  const method = ctx.req.method;
  const route = ctx.route.name;
  const service = ctx.service;
  const tls = ctx.tlsVersion;
  const bound =
    FIXED_BOUND + ctx.id.length + (traceId?.length ?? 0) + (method?.length ?? 0) + ctx.path.length + route.length +
    (service?.length ?? 0) + (upstream?.length ?? 0) + ctx.clientAddress.length + (tls?.length ?? 0);
  const start = sink.claim(bound);
  if (start < 0) return false;
  const buf = sink.claimedBuffer;
  let pos = putHead(buf, start, ctx.id, traceId);
  if (pos < 0) return false;
  pos = putMethodPath(buf, pos, method, ctx.path);
  if (pos < 0) return false;
  pos = putStringField(buf, pos, ROUTE, route);
  if (pos < 0) return false;
  if (service !== undefined && (pos = putStringField(buf, pos, UPSTREAM_SERVICE, service)) < 0) return false;
  if (upstream !== undefined && (pos = putStringField(buf, pos, UPSTREAM, upstream)) < 0) return false;
  if (attempts !== undefined && (pos = putUintField(buf, pos, ATTEMPTS, attempts)) < 0) return false;
  pos = putUintField(buf, pos, STATUS, ctx.status);
  if (pos < 0) return false;
  pos = putBytes(buf, pos, DURATION);
  pos = putHundredths(buf, pos, ctx.durationMs);
  if (pos < 0) return false;
  pos = putStringField(buf, pos, CLIENT, ctx.clientAddress);
  if (pos < 0) return false;
  pos = putBytes(buf, pos, PROTOCOL);
  pos = putAscii(buf, pos, protocolOf(ctx.req));
  if (tls !== undefined) {
    pos = putBytes(buf, pos, TLS);
    pos = putAscii(buf, pos, tls);
  }
  sink.commit(putBytes(buf, pos, COMPLETED_END));
  return true;
}
