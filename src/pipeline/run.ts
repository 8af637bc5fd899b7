// The only driver: runs a request through the fixed phase order, the retry loop, the error reply and logging once.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { ServerResponse as NodeServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { GatewayError, describeCause, toGatewayError } from '../errors.js';
import { EVENTS } from '../observability/events.js';
import type { AccessLog } from '../observability/access-log.js';
import { ProxyAttempt, abortAttemptOf, canRetry, type AttemptListener } from '../proxy/forward.js';
import { upstreamRequestHeaders } from '../proxy/headers.js';
import { isUpstreamHealthFailure } from '../proxy/upstream-error.js';
import type { TrustedProxies } from './client-address.js';
import { isAmbiguousPath } from './path-check.js';
import { RequestContext } from './context.js';
import type { Phase } from './phase.js';
import { sendError } from './reply.js';
import type { RouteClass } from './route.js';
import type { Peer, UpstreamSelector } from './upstream.js';

/** Everything the driver needs, resolved once at start-up (and again on reload). */
export interface PipelineSetup {
  /** Request-filter phases per route class, in order. A class whose phases all continue is proxied. */
  readonly routes: Readonly<Record<RouteClass, readonly Phase[]>>;
  /** Every phase, for the response-filter, upstream-request and logging hooks (each phase listed once). */
  readonly phases: readonly Phase[];
  readonly selector: UpstreamSelector;
  readonly trusted: TrustedProxies;
  /** X-Proxy-By value. */
  readonly proxyBy: string;
  /** Extra attempts after a retryable failure. */
  readonly retries: number;
}

/** Hooks of one kind, extracted once so the per-request loops never test for a missing method. */
interface ResolvedSetup extends PipelineSetup {
  readonly filters: Readonly<Record<RouteClass, readonly Required<Pick<Phase, 'onRequest'>>[]>>;
  readonly upstreamFilters: readonly Required<Pick<Phase, 'onUpstreamRequest'>>[];
  readonly responseFilters: readonly Required<Pick<Phase, 'onResponse'>>[];
  readonly loggers: readonly Required<Pick<Phase, 'onLogging'>>[];
}

function resolveSetup(setup: PipelineSetup): ResolvedSetup {
  const only = <K extends keyof Phase>(list: readonly Phase[], key: K) =>
    list.filter((p) => typeof p[key] === 'function') as unknown as Required<Pick<Phase, K>>[];
  return {
    ...setup,
    filters: {
      health: only(setup.routes.health, 'onRequest'),
      auth: only(setup.routes.auth, 'onRequest'),
      proxy: only(setup.routes.proxy, 'onRequest'),
    },
    upstreamFilters: only(setup.phases, 'onUpstreamRequest'),
    responseFilters: only(setup.phases, 'onResponse'),
    loggers: only(setup.phases, 'onLogging'),
  };
}

/** Shared: the answer to a path with dot-segments or encoded separators (see path-check.ts). */
const AMBIGUOUS_PATH = new GatewayError('BAD_REQUEST', { details: 'path holds dot-segments or encoded separators' });

const kContext = Symbol('portcullis.context');
type TaggedResponse = ServerResponse & { [kContext]?: RequestContext; [kPipeline]?: Pipeline };
const kPipeline = Symbol('portcullis.pipeline');

/** Shared 'close' listener of every response: aborts a running upstream attempt, then runs logging once. */
function onResponseClose(this: TaggedResponse): void {
  const ctx = this[kContext];
  const pipeline = this[kPipeline];
  if (!ctx || !pipeline) return;
  if (!this.writableFinished) {
    abortAttemptOf(this);
    if (ctx.status === 0 || !this.headersSent) ctx.status = 499; // nginx's "client closed request"
  }
  pipeline.log(ctx);
}

/**
 * Runs requests through: request filters (per route class) → upstream selection → upstream request filter →
 * forward (retrying once elsewhere on a connection failure) → response filter → logging. Holds no per-request state.
 */
export class Pipeline implements AttemptListener {
  #setup: ResolvedSetup;
  readonly #logger: Logger;
  readonly #access: AccessLog;
  /** Set when shutting down: responses ask clients to close their connection. */
  draining = false;
  /** Requests received whose logging phase has not run yet (metrics read it at scrape time). */
  inFlight = 0;

  constructor(setup: PipelineSetup, logger: Logger, access: AccessLog) {
    this.#setup = resolveSetup(setup);
    this.#logger = logger;
    this.#access = access;
  }

  /** Swaps in new phases, selector or settings (config reload); requests already running keep what they had. */
  replace(setup: PipelineSetup): void {
    this.#setup = resolveSetup(setup);
  }

  /** The 'request' handler of the HTTP server. */
  readonly handleRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const ctx = new RequestContext(req, res, this.#setup.trusted, this.#decorate, performance.now(), false);
    this.inFlight++;
    const tagged = res as TaggedResponse;
    tagged[kContext] = ctx;
    tagged[kPipeline] = this;
    // on, not once: once() allocates a wrapper per call, and the response is dropped after 'close' anyway.
    res.on('close', onResponseClose);
    void this.#run(ctx, this.#setup);
  };

  /** The 'upgrade' handler: the same phases, answered on the raw socket until the upstream switches protocols. */
  readonly handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const res = new NodeServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as never);
    const ctx = new RequestContext(req, res, this.#setup.trusted, this.#decorate, performance.now(), true);
    this.inFlight++;
    ctx.upgradeHead = head;
    socket.on('error', () => socket.destroy());
    res.once('finish', () => {
      socket.end();
      this.log(ctx);
    });
    // The client left before the upstream switched protocols: stop the handshake, and log the request (499).
    socket.once('close', () => {
      if (ctx.status === 101) return;
      abortAttemptOf(res);
      if (ctx.status === 0) ctx.status = 499;
      this.log(ctx);
    });
    void this.#run(ctx, this.#setup);
  };

  async #run(ctx: RequestContext, setup: ResolvedSetup): Promise<void> {
    // Every request gets its three events: Request Start here, Select Upstream when proxied, Request Completed.
    this.#access.requestStart(ctx.id, ctx.req.method, ctx.path);
    if (isAmbiguousPath(ctx.path)) {
      sendError(ctx, AMBIGUOUS_PATH);
      return;
    }
    const filters = setup.filters[ctx.routeClass];
    try {
      for (let i = 0; i < filters.length; i++) {
        let outcome = filters[i]!.onRequest(ctx);
        if (typeof outcome !== 'string') outcome = await outcome;
        if (outcome === 'responded') return;
      }
    } catch (err) {
      this.#fail(ctx, err);
      return;
    }
    if (ctx.res.destroyed) return;
    this.#attempt(ctx, setup, undefined);
  }

  #attempt(ctx: RequestContext, setup: ResolvedSetup, exclude: Peer | undefined): void {
    const peer = setup.selector.select(ctx, exclude);
    if (peer === undefined) {
      sendError(ctx, ctx.error ?? new GatewayError('NO_HEALTHY_UPSTREAM'));
      return;
    }
    ctx.peer = peer;
    ctx.attempts++;
    peer.inflight++;
    peer.requests++;
    this.#access.selectUpstream(ctx.id, peer.label, ctx.attempts);
    // Built per attempt (a retry is rare), from the context itself: it carries the forwarding facts.
    const outgoing = upstreamRequestHeaders(ctx.req.headers, ctx);
    const hooks = setup.upstreamFilters;
    for (let i = 0; i < hooks.length; i++) hooks[i]!.onUpstreamRequest(ctx, outgoing);
    new ProxyAttempt(ctx, peer, this, performance.now()).dispatch(outgoing);
  }

  attemptFailed(ctx: RequestContext, peer: Peer, error: GatewayError): void {
    peer.inflight--;
    if (error.code === 'CLIENT_CLOSED') return; // the client left: nobody to answer, nothing against the upstream
    const setup = this.#setup;
    if (isUpstreamHealthFailure(error)) setup.selector.reportFailure(peer, error);
    ctx.error = error;
    if (error.retryable && ctx.attempts <= setup.retries && !ctx.res.destroyed && canRetry(ctx, error)) {
      this.#logger.warn(
        { request_id: ctx.id, upstream: peer.label, reason: error.code, cause: describeCause(error.cause) },
        EVENTS.upstreamRetry,
      );
      this.#attempt(ctx, setup, peer);
      return;
    }
    sendError(ctx, error);
  }

  attemptFinished(ctx: RequestContext, peer: Peer): void {
    peer.inflight--;
    if (ctx.upgrade) this.log(ctx);
  }

  /** Answers a failure from a request filter; unexpected errors are logged (class and code only) and become 500. */
  #fail(ctx: RequestContext, err: unknown): void {
    const error = toGatewayError(err);
    if (error.code === 'INTERNAL') {
      this.#logger.error({ request_id: ctx.id, path: ctx.path, cause: describeCause(err) }, EVENTS.requestError);
    }
    sendError(ctx, error);
  }

  /** Response filter: the gateway's headers, then every phase's onResponse. Shared by all requests. */
  readonly #decorate = (ctx: RequestContext, headers: OutgoingHttpHeaders): void => {
    headers['x-proxy-by'] = this.#setup.proxyBy;
    headers['x-request-id'] = ctx.id;
    headers['x-response-time'] = `${Math.round(performance.now() - ctx.startedAt)}ms`;
    if (this.draining && !ctx.upgrade) headers.connection = 'close'; // a 101 needs its Connection: upgrade
    const hooks = this.#setup.responseFilters;
    for (let i = 0; i < hooks.length; i++) hooks[i]!.onResponse(ctx, headers);
  };

  /** Logging phase: the access log line and every phase's onLogging, exactly once per request. */
  log(ctx: RequestContext): void {
    if (ctx.logged) return;
    ctx.logged = true;
    this.inFlight--;
    const duration = Math.round((performance.now() - ctx.startedAt) * 100) / 100;
    ctx.durationMs = duration;
    const error = ctx.error;
    this.#access.requestCompleted({
      requestId: ctx.id,
      method: ctx.req.method,
      path: ctx.path,
      upstream: ctx.peer?.label,
      status: ctx.status,
      durationMs: duration,
      client: ctx.clientAddress,
      error: error?.code,
      cause: error ? describeCause(error.cause) : undefined,
    });
    const hooks = this.#setup.loggers;
    for (let i = 0; i < hooks.length; i++) {
      try {
        hooks[i]!.onLogging(ctx);
      } catch (err) {
        this.#logger.error({ request_id: ctx.id, cause: describeCause(err) }, EVENTS.requestError);
      }
    }
  }
}
