// Request tracing with the OpenTelemetry SDK: the server span, one client span per upstream attempt, child spans
// through the async context, and W3C Trace Context in and out. Loaded only when tracing is on (see index.ts).
import { AsyncLocalStorage } from 'node:async_hooks';
import type { OutgoingHttpHeaders } from 'node:http';
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  defaultTextMapGetter,
  defaultTextMapSetter,
  trace,
  type Attributes,
  type Link,
  type Span,
  type SpanContext,
  type Tracer,
} from '@opentelemetry/api';
import { TraceState, W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_METHOD_ORIGINAL,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
} from '@opentelemetry/semantic-conventions';
import type { RequestContext } from '../../pipeline/context.js';
import type { Phase, UpstreamHeaders } from '../../pipeline/phase.js';
import type { TracingSdk } from './sdk.js';
import { CALLER } from '../../auth/caller.js';
import { MAX_ATTRIBUTE_LENGTH, TRACE, type ChildKind, type RequestTrace, type SpanAttributes, type Tracing } from './types.js';

/** `user.id` is still in the incubating conventions; the name is spelled here rather than importing that module. */
const ATTR_USER_ID = 'user.id';
/** Gateway-specific attributes, in the gateway's own namespace. */
export const ATTR = {
  requestId: 'portcullis.request_id',
  route: 'portcullis.route',
  service: 'portcullis.service',
  upstream: 'portcullis.upstream',
  attempt: 'portcullis.attempt',
  retryReason: 'portcullis.retry_reason',
} as const;

/** Longest wait for the last spans to be exported when the gateway stops. */
const SHUTDOWN_LIMIT_MS = 5_000;

/** Methods the HTTP conventions name; any other is reported as "_OTHER" with the original beside it. */
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'CONNECT', 'TRACE']);

/** The `tracing` config keys read here. */
export interface TracingSettings {
  readonly trust_incoming: boolean;
  readonly response_header: string;
}

/** The TRACE slot while tracing is on: the server span and the running attempt's span. */
class RequestSpans implements RequestTrace {
  readonly traceId: string;
  /** The attempt running now, ended when the next one starts or when the request is logged. */
  attempt: Span | undefined = undefined;
  /** `ctx.upstreamMs` and `ctx.error` when the attempt started: a change means this attempt answered or failed. */
  upstreamMsBefore = -1;
  errorBefore: RequestContext['error'] = undefined;

  constructor(
    readonly span: Span,
    /** `url.path` as the spans keep it (spanPath): the attempt spans reuse it. */
    readonly path: string | undefined,
  ) {
    this.traceId = span.spanContext().traceId;
  }
}

/** Tracing on: see Tracing in types.ts for what each member promises. */
export class OtelTracing implements Tracing {
  readonly enabled = true;
  readonly phase: Phase;
  readonly #sdk: TracingSdk;
  readonly #tracer: Tracer;
  readonly #propagator = new W3CTraceContextPropagator();
  /** The span of the request (or child) running now: the parent of the next child span. */
  readonly #current = new AsyncLocalStorage<Span>();
  readonly #trustIncoming: boolean;

  constructor(sdk: TracingSdk, settings: TracingSettings) {
    this.#sdk = sdk;
    this.#tracer = sdk.provider.getTracer('portcullis');
    this.#trustIncoming = settings.trust_incoming;
    const header = settings.response_header.toLowerCase();
    this.phase = {
      name: 'tracing',
      onUpstreamRequest: (ctx, headers) => this.#startAttempt(ctx, headers),
      // Only with a response header configured: otherwise the driver has no response hook to call.
      ...(header === ''
        ? {}
        : {
            onResponse: (ctx: RequestContext, headers: OutgoingHttpHeaders) => {
              const state = TRACE.get(ctx);
              if (state !== undefined) headers[header] = state.traceId;
            },
          }),
      onLogging: (ctx) => this.#endRequest(ctx),
    };
  }

  run(ctx: RequestContext, fn: (ctx: RequestContext) => void): void {
    const req = ctx.req;
    let parent = ROOT_CONTEXT;
    let links: Link[] | undefined;
    if (req.headers.traceparent !== undefined) {
      // An invalid traceparent extracts nothing: the request then starts its own trace.
      const remote = keptState(trace.getSpanContext(this.#propagator.extract(ROOT_CONTEXT, req.headers, defaultTextMapGetter)));
      if (remote !== undefined) {
        if (this.#trustIncoming) parent = trace.setSpanContext(ROOT_CONTEXT, remote);
        // Not continued, but remembered as a link: the caller's trace can still be found from ours.
        else links = [{ context: remote }];
      }
    }
    const method = req.method ?? 'GET';
    const known = KNOWN_METHODS.has(method);
    const path = spanPath(ctx.path, req.url ?? '');
    const attributes: Attributes = {
      [ATTR_HTTP_REQUEST_METHOD]: known ? method : '_OTHER',
      [ATTR_URL_PATH]: path, // never the query string: it may carry secrets
      [ATTR_URL_SCHEME]: ctx.secure ? 'https' : 'http', // the TLS listener's HTTPS and HTTP/2 requests alike
      // Read from X-Forwarded-For and the like behind a trusted proxy: a slice of that header.
      [ATTR_CLIENT_ADDRESS]: ctx.clientAddress === ctx.peerAddress ? ctx.clientAddress : ownText(ctx.clientAddress),
      [ATTR_NETWORK_PEER_ADDRESS]: ctx.peerAddress,
      [ATTR.requestId]: ctx.id,
    };
    if (path === undefined) delete attributes[ATTR_URL_PATH];
    if (!known) attributes[ATTR_HTTP_REQUEST_METHOD_ORIGINAL] = method;
    const span = this.#tracer.startSpan(known ? method : 'HTTP', { kind: SpanKind.SERVER, attributes, links }, parent);
    TRACE.set(ctx, new RequestSpans(span, path));
    this.#current.run(span, fn, ctx);
  }

  child<T>(name: string, kind: ChildKind, attributes: SpanAttributes, fn: () => T): T {
    const parent = this.#current.getStore();
    if (parent === undefined || !parent.isRecording()) return fn();
    const span = this.#tracer.startSpan(
      name,
      { kind: kind === 'client' ? SpanKind.CLIENT : SpanKind.INTERNAL, attributes: attributes as Attributes },
      trace.setSpan(ROOT_CONTEXT, parent),
    );
    let result: T;
    try {
      result = this.#current.run(span, fn);
    } catch (err) {
      endFailed(span, err);
      throw err;
    }
    if (result instanceof Promise) {
      return result.then(
        (value: unknown) => {
          span.end();
          return value;
        },
        (err: unknown) => {
          endFailed(span, err);
          throw err;
        },
      ) as T;
    }
    span.end();
    return result;
  }

  droppedSpans(): number {
    return this.#sdk.counts.dropped;
  }

  async shutdown(): Promise<void> {
    // Bounded: a collector that hangs must not hold the gateway's exit for more than one export timeout.
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<void>((resolve) => (timer = setTimeout(resolve, SHUTDOWN_LIMIT_MS)));
    await Promise.race([this.#sdk.provider.shutdown().catch(() => undefined), limit]);
    clearTimeout(timer);
  }

  /** Upstream request filter: a client span per attempt, and its traceparent (replacing the client's) upstream. */
  #startAttempt(ctx: RequestContext, headers: UpstreamHeaders): void {
    const state = TRACE.get(ctx) as RequestSpans | undefined;
    if (state === undefined) return;
    if (state.attempt !== undefined) this.#endAttempt(ctx, state, true); // a retry: the previous attempt failed
    const peer = ctx.peer!;
    const colon = peer.label.lastIndexOf(':');
    const method = ctx.req.method ?? 'GET';
    const known = KNOWN_METHODS.has(method);
    const attributes: Attributes = {
      [ATTR_HTTP_REQUEST_METHOD]: known ? method : '_OTHER',
      [ATTR_SERVER_ADDRESS]: peer.address, // as configured: an IPv6 address without the label's brackets
      [ATTR_SERVER_PORT]: Number(peer.label.slice(colon + 1)),
      ...(state.path === undefined ? {} : { [ATTR_URL_PATH]: state.path }),
      [ATTR.upstream]: peer.name,
      [ATTR.attempt]: ctx.attempts,
    };
    if (ctx.service !== undefined) attributes[ATTR.service] = ctx.service;
    if (ctx.attempts > 1) {
      attributes[ATTR_HTTP_REQUEST_RESEND_COUNT] = ctx.attempts - 1;
      if (ctx.error !== undefined) attributes[ATTR.retryReason] = ctx.error.code;
    }
    const span = this.#tracer.startSpan(known ? method : 'HTTP', { kind: SpanKind.CLIENT, attributes }, trace.setSpan(ROOT_CONTEXT, state.span));
    state.attempt = span;
    state.upstreamMsBefore = ctx.upstreamMs;
    state.errorBefore = ctx.error;
    // Owned headers while tracing is on: the client's trace context never reaches the upstream as sent.
    delete headers.traceparent;
    delete headers.tracestate;
    this.#propagator.inject(trace.setSpan(ROOT_CONTEXT, span), headers, defaultTextMapSetter);
    // The propagator writes a caller's tracestate even when it kept none of it (an entry too long, a malformed list):
    // an empty header is a list member a backend's parser may refuse. Nothing to pass on, no header.
    if (headers.tracestate === '') delete headers.tracestate;
  }

  /** Ends the running attempt: its status when the upstream answered, else the failure that ended it. */
  #endAttempt(ctx: RequestContext, state: RequestSpans, retried: boolean): void {
    const span = state.attempt!;
    state.attempt = undefined;
    const answered = !retried && ctx.upstreamMs !== state.upstreamMsBefore;
    if (answered && ctx.status > 0) {
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, ctx.status);
      if (ctx.status >= 400) span.setStatus({ code: SpanStatusCode.ERROR });
    }
    const failure = ctx.error !== state.errorBefore ? ctx.error?.code : !answered && ctx.status === 499 ? 'CLIENT_CLOSED' : undefined;
    if (failure !== undefined) {
      span.setAttribute(ATTR_ERROR_TYPE, failure);
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
  }

  /** Logging phase: ends the last attempt and the server span with what the client got. */
  #endRequest(ctx: RequestContext): void {
    const state = TRACE.get(ctx) as RequestSpans | undefined;
    if (state === undefined) return;
    if (state.attempt !== undefined) this.#endAttempt(ctx, state, false);
    const span = state.span;
    if (span.isRecording()) {
      if (ctx.status > 0) span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, ctx.status);
      span.setAttribute(ATTR.route, ctx.route.name); // known only now: the route is matched after the span starts
      if (ctx.service !== undefined) span.setAttribute(ATTR.service, ctx.service);
      if (ctx.peer !== undefined) span.setAttribute(ATTR.upstream, ctx.peer.name);
      const user = CALLER.get(ctx);
      if (user !== undefined) span.setAttribute(ATTR_USER_ID, user.id); // the id only: never the token
      if (ctx.error !== undefined) span.setAttribute(ATTR_ERROR_TYPE, ctx.error.code);
      // Server spans: 5xx is the server's failure; 4xx is the client's and leaves the span unset.
      if (ctx.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
  }
}

/**
 * The caller's span context with only what the propagator keeps of its tracestate (at most 32 members, 512
 * characters), in a string of its own. The propagator's TraceState holds the header as sent, up to node's 16 KB
 * head, and every span of the request (its link, with trust_incoming false) holds that object while it waits in the
 * export queue: 2,048 such spans were 15 to 20 MB more behind a hanging collector. Nothing kept: no tracestate.
 */
function keptState(remote: SpanContext | undefined): SpanContext | undefined {
  if (remote?.traceState === undefined) return remote;
  const kept = remote.traceState.serialize();
  return { ...remote, traceState: kept === '' ? undefined : new TraceState(ownText(kept)) };
}

/** An absolute-form request target's scheme and authority (userinfo included): `http://user:pass@host:8080`. */
const ABSOLUTE_FORM = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i;

/**
 * url.path of a request whose target without its query is `path` (ctx.path; `target` is the whole of it): the span
 * starts before the driver refuses a target that is not origin-form (400), so this keeps the path alone. An
 * absolute-form target loses its scheme and authority (`/` when no path is left); any other target with no
 * origin-form path (`*`, `host:port`) records none. Its fragment and userinfo are already gone: ctx.path is made
 * without them (pipeline/shown-path.ts).
 * ctx.path is a slice of the target when it had a query string: a string of its own then (ownText), so a queued span
 * holds neither the query (secrets, up to node's 16 KB head) nor more than MAX_ATTRIBUTE_LENGTH characters.
 */
function spanPath(path: string, target: string): string | undefined {
  let own = path;
  if (!path.startsWith('/')) {
    const authority = ABSOLUTE_FORM.exec(path);
    if (authority === null) return undefined;
    own = path.slice(authority[0].length);
    if (!own.startsWith('/')) own = `/${own}`;
  }
  return own === path && path.length <= MAX_ATTRIBUTE_LENGTH && path.length === target.length ? path : ownText(own);
}

/**
 * At most MAX_ATTRIBUTE_LENGTH characters of `text`, copied into a string of their own. V8 keeps a substring of 13
 * characters or more as a view of the whole string it was cut from (and a concatenation as its parts), so a value
 * cut from a client's header or request target held all of it for as long as its span waited in the export queue:
 * the SDK's own cut at attributeValueLengthLimit is such a substring.
 */
function ownText(text: string): string {
  const cut = text.length > MAX_ATTRIBUTE_LENGTH ? text.slice(0, MAX_ATTRIBUTE_LENGTH) : text;
  if (cut.length < 13) return cut; // V8 copies short substrings
  return /^[\x00-\xff]*$/.test(cut) ? Buffer.from(cut, 'latin1').toString('latin1') : Buffer.from(cut, 'utf16le').toString('utf16le');
}

/** A failed child: its error class only (messages may quote SQL or input), and status ERROR. */
function endFailed(span: Span, err: unknown): void {
  span.setAttribute(ATTR_ERROR_TYPE, err instanceof Error ? ((err as { code?: unknown }).code as string | undefined) ?? err.name : 'error');
  span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}
