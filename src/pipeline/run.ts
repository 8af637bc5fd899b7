// The only driver: runs a request through its route's fixed phase order, the retry loop, the error reply and
// logging once. It knows no feature: routes, their hook lists and their upstream selectors come from the route table.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { ServerResponse as NodeServerResponse } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { GatewayError, describeCause, toGatewayError } from '../errors.js';
import { EVENTS } from '../observability/events.js';
import type { AccessLog, TunnelFacts } from '../observability/access-log.js';
import { NO_TRACING, TRACE, type Tracing } from '../observability/tracing/types.js';
import { ProxyAttempt, canRetry, type AttemptListener } from '../proxy/forward.js';
import type { TunnelSummary } from '../proxy/upgrade.js';
import { upstreamRequestHeaders } from '../proxy/headers.js';
import { H2_NO_ERROR } from '../proxy/h2-codes.js';
import type { OwnedHeaders } from '../proxy/owned-headers.js';
import { isStaleConnection, isUpstreamHealthFailure, sparesUpstream } from '../proxy/upstream-error.js';
import { reportLocalFailure } from '../observability/resource-episodes.js';
import { allowAgain } from '../balancer/tried.js';
import type { TrustedProxies } from './client-address.js';
import { checkRequestTarget } from './path-check.js';
import { checkRequestHost } from './host-check.js';
import { checkForwardingHopByHop, checkProtocol, checkUpgrade } from './protocol-check.js';
import { watchQueuedResponse } from './pipelined.js';
import { RequestContext, type ResponseDecorator } from './context.js';
import { ContextSlot } from './slot.js';
import { isLingering } from './lingering-close.js';
import { holdContext, wasAnsweredOutside } from './outside-answer.js';
import { noteFailedAttempt, refuseStream, wasRefused } from './h2-refused.js';
import { RequestCount } from './request-count.js';
import { UpstreamTlsLog } from './upstream-tls-log.js';
import { awaitsRestOfRead, sendError } from './reply.js';
import type { Route, RouteTable } from './route.js';
import type { Outcome, UpstreamHeaders } from './phase.js';
import type { Peer, UpstreamSelector } from './upstream.js';

/** Everything the driver needs, resolved once at start-up (and again on reload). */
export interface PipelineSetup {
  /** Picks each request's route; swapped whole on reload. */
  readonly table: RouteTable;
  readonly trusted: TrustedProxies;
  /** X-Proxy-By value. */
  readonly proxyBy: string;
  /** The headers no client may send upstream (owned-headers.ts); default: the default identity header names. */
  readonly ownedHeaders?: OwnedHeaders;
  /** Longest silence in a request body being forwarded (`server.timeouts.request_body_chunk`), ms; default 0: off. */
  readonly requestBodyChunkMs?: number;
  /** On a TLS listener: 421 for a request whose host is not served under its connection's certificate (tls/misdirected.ts). */
  readonly misdirected?: (req: IncomingMessage) => GatewayError | undefined;
}

const NO_HEALTHY_UPSTREAM = new GatewayError('NO_HEALTHY_UPSTREAM');
const NO_ROUTE = new GatewayError('ROUTE_NOT_FOUND');
/** Logged, never sent: the stop's drain bound passed and the request's connection (HTTP/2: session) was closed. */
const CUT_BY_STOP = new GatewayError('SHUTTING_DOWN');
/** Set once a request has had its retry after a stale keep-alive connection (see attemptFailed); read on failures only. */
const STALE_RETRIED = new ContextSlot<true>('stale-connection-retry');

/**
 * Runs requests through: path check → route match → the route's request filters (CORS, auth, limit, plugins, body
 * limit) → upstream selection → upstream request filters → forward (retrying elsewhere on a connection failure) →
 * response filters on every response → logging once. Holds no per-request state.
 */
export class Pipeline implements AttemptListener {
  #setup: PipelineSetup;
  readonly #logger: Logger;
  readonly #access: AccessLog;
  readonly #tracing: Tracing;
  /** The lines of UPSTREAM_TLS failures (a WebSocket refused in ALPN by an h2-only upstream: once a minute at most). */
  readonly #upstreamTls: UpstreamTlsLog;
  /** Set when shutting down: responses ask clients to close their connection. */
  draining = false;
  /**
   * Set when a stop's drain bound has passed and it closes the connections still open: a request cut then is logged
   * with `SHUTTING_DOWN`, not as if it had been served whole or its client had left.
   */
  cutting = false;
  /** Requests received whose logging phase has not run yet (metrics read it at scrape time). */
  inFlight = 0;
  /**
   * WebSocket tunnels open, from the 101 to their Tunnel Closed line, and who waits for the last to close (a stop:
   * it destroys their client sockets, and the line comes turns of the event loop later, once the upstream leg closed).
   */
  #tunnels = 0;
  #tunnelsGone: (() => void) | undefined;
  /** The requests started on the current setup. */
  #epoch = new RequestCount();
  /** Settles once every request started on an earlier setup has been logged. */
  #older: Promise<void> = Promise.resolve();

  constructor(setup: PipelineSetup, logger: Logger, access: AccessLog, tracing: Tracing = NO_TRACING) {
    this.#setup = setup;
    this.#logger = logger;
    this.#access = access;
    this.#tracing = tracing;
    this.#upstreamTls = new UpstreamTlsLog(logger);
  }

  /** Runs a request inside its trace (tracing.run calls straight through when tracing is off). */
  readonly #start = (ctx: RequestContext): void => void this.#run(ctx, this.#setup.table);

  /**
   * Swaps in a new route table or settings (config reload); requests already running keep the route they had. The
   * promise settles once every request started before the swap has been logged (its upstream attempts are over):
   * what only they can still use (the pools of services and upstreams the reload removed) may then be closed.
   */
  replace(setup: PipelineSetup): Promise<void> {
    this.#setup = setup;
    const retired = this.#epoch;
    this.#epoch = new RequestCount();
    const older = this.#older;
    const done = retired.running === 0 ? older : Promise.all([older, retired.idle()]).then(noop);
    this.#older = done;
    return done;
  }

  /** The current route table (the admin status and the `routes` command read it). */
  get table(): RouteTable {
    return this.#setup.table;
  }

  /** The 'request' handler of the HTTP server. */
  readonly handleRequest = (req: IncomingMessage, res: ServerResponse): void => {
    // Parsed after an answer that ended its connection (lingering-close.ts): dropped before it is a request.
    if (afterLastAnswer(req)) return;
    const setup = this.#setup;
    const ctx = new RequestContext(req, res, setup.trusted, this.#decorate, performance.now(), false, setup.table.fallback);
    this.inFlight++;
    ctx.epoch = this.#epoch;
    this.#epoch.running++;
    // Where a listener answering beside the driver finds the request (outside-answer.ts): its HTTP/2 stream, else res.
    holdContext((req as { stream?: object }).stream ?? res, ctx);
    const closed = (): void => this.#closed(ctx);
    res.on('close', closed);
    if (res.socket === null) watchQueuedResponse(res, closed); // pipelined behind another response
    this.#tracing.run(ctx, this.#start);
  };

  /** The 'upgrade' handler: the same phases, answered on the raw socket until the upstream switches protocols. */
  readonly handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (afterLastAnswer(req)) {
      // node's parser let go of the socket at this head: the bytes behind it are read and dropped here instead. node
      // took its 'error' listener off with the parser: without one, the client's reset would be an uncaught exception.
      socket.on('error', () => socket.destroy());
      socket.resume();
      return;
    }
    const setup = this.#setup;
    // An Upgrade pipelined behind a request still being answered: the socket belongs to that response, and
    // assignSocket would throw from inside node's parser and take the process down. Neither exchange can go on
    // cleanly on one socket, so it is closed (the earlier request is logged 499 by its own close handler). But a
    // gateway refusal waiting for the rest of its read (reply.ts) goes out first, saying Connection: close, and node
    // closes the connection after it: it is written once that read is parsed and its response hooks have run.
    const owed = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
    if (owed) {
      if (!awaitsRestOfRead(owed)) return void socket.destroy();
      owed.shouldKeepAlive = false;
      // node took the parser's listeners off the socket with it: a reset would be uncaught, and the answer would
      // wait for a 'drain' that no longer reaches it.
      socket.on('error', () => socket.destroy());
      // node's 'end' listener went with the parser too: a client that leaves (FIN) is one that left, as node's
      // socketOnEnd would abort its request (httpAllowHalfOpen off), not a reader held until the hooks end.
      socket.once('end', () => {
        if (!owed.headersSent) socket.destroy();
      });
      socket.on('drain', () => {
        if ((socket as { _httpMessage?: unknown })._httpMessage === owed) owed.emit('drain');
      });
      return;
    }
    // A tunnel relays each side's FIN and closes after a grace (upgrade.ts), which needs the client's socket
    // half-open. node:http's sockets are; its TLS servers' (https, http2's with allowHTTP1) are not, and there node
    // ended the gateway's side as soon as the client's FIN was read: the upstream's answer to a Close frame was lost.
    (socket as Socket).allowHalfOpen = true;
    const res = new NodeServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as never);
    const ctx = new RequestContext(req, res, setup.trusted, this.#decorate, performance.now(), true, setup.table.fallback);
    // An answer given instead of a switch that its client never reads is cut by the listener's send bound
    // (listeners/h1-send-bound.ts), which logs it on this request through its response.
    holdContext(res, ctx);
    this.inFlight++;
    ctx.epoch = this.#epoch;
    this.#epoch.running++;
    ctx.upgradeHead = head;
    socket.on('error', () => socket.destroy());
    // node takes its 'drain' wiring off a socket it hands to 'upgrade': an answer given instead of a switch (an
    // upstream's refusal relayed, its body larger than the socket's buffer) waited for a 'drain' of this response that
    // never came, and stalled at about 64 KB until the send bound cut it as the client's fault. Only while the socket
    // is this response's (a tunnel detaches it).
    socket.on('drain', () => {
      if ((socket as { _httpMessage?: unknown })._httpMessage === res) res.emit('drain');
    });
    // Answered without switching (an error of the gateway's, the upstream's refusal, or a plain answer to an Upgrade
    // that is not tunnelled): the exchange is over, and the connection with it (see closeUnswitched).
    res.once('finish', () => {
      closeUnswitched(socket as Socket);
      this.log(ctx);
    });
    // The client left before the upstream switched protocols: stop the handshake, and log the request (499).
    socket.once('close', () => {
      if (ctx.status === 101) return;
      ctx.attempt?.abort();
      if (ctx.status === 0) ctx.status = 499;
      // Not the client's doing: the stop closed its connection at the end of the drain (as #closed tells it).
      if (this.cutting) ctx.error ??= CUT_BY_STOP;
      this.log(ctx);
    });
    this.#tracing.run(ctx, this.#start);
  };

  /** The response closed: a running attempt is stopped when the client left early, then logging runs once. */
  #closed(ctx: RequestContext): void {
    if (closedEarly(ctx)) {
      ctx.attempt?.abort();
      // (Unless a listener answered it outside the driver: its client got that status.)
      // (Nor a stream reset with an upstream's REFUSED_STREAM: it keeps its 502 and UPSTREAM_REFUSED_STREAM.)
      if ((ctx.status === 0 || !ctx.res.headersSent) && !wasAnsweredOutside(ctx) && !wasRefused(ctx)) ctx.status = 499; // nginx's "client closed request"
      // Not the client's doing: the stop closed its connection at the end of the drain.
      if (this.cutting) ctx.error ??= CUT_BY_STOP;
    }
    this.log(ctx);
  }

  async #run(ctx: RequestContext, table: RouteTable): Promise<void> {
    // Every request gets its three events: Request Start here, Select Upstream when proxied, Request Completed.
    this.#access.requestStart(ctx);
    // Only a protocol the engine serves (protocol-check.ts: no HTTP/2.0 request line, no Expect but 100-continue).
    // Only a canonical origin-form target goes on (path-check.ts): every later match reads ctx.path as sent.
    // And only a plain authority (host-check.ts): routes match the host, and the backend must read the same one.
    // An Upgrade never has a body (protocol-check.ts): node hands one over unparsed, as tunnel data.
    // A trusted proxy's forwarding headers are never hop-by-hop (protocol-check.ts): removed, they would hide the client.
    const badRequest =
      checkProtocol(ctx.req) ??
      (ctx.upgrade ? checkUpgrade(ctx.req.headers) : undefined) ??
      (ctx.peerTrusted ? checkForwardingHopByHop(ctx.req.headers) : undefined) ??
      checkRequestTarget(ctx.req.url) ??
      checkRequestHost(ctx.req) ??
      this.#setup.misdirected?.(ctx.req);
    if (badRequest !== undefined) {
      sendError(ctx, badRequest);
      return;
    }
    const route = table.match(ctx);
    ctx.route = route;
    const filters = route.requestFilters;
    let i = 0;
    try {
      for (; i < filters.length; i++) {
        let outcome = filters[i]!.onRequest(ctx);
        if (typeof outcome !== 'string') {
          outcome = await outcome;
          // The client left while it waited: the request is logged (499) and its onLogging hooks have run, so no
          // later phase may start on it.
          if (ctx.logged) return;
        }
        if (outcome === 'responded') return;
      }
    } catch (err) {
      this.#fail(ctx, err, filters[i]?.name);
      return;
    }
    if (ctx.res.destroyed || isLingering(ctx.req.socket)) return;
    if (route.upstream === undefined) {
      sendError(ctx, NO_ROUTE);
      return;
    }
    this.#attempt(ctx, route.upstream, undefined);
  }

  /**
   * One attempt. A retry (`exclude`: the peer that just failed) goes to a peer this request has not been sent to yet
   * (the selector keeps them, balancer/tried.ts); with `sameAllowed` (a failure that does not blame its upstream), on
   * `exclude` again when no untried one can take it: a single-upstream service is then retried too. When none is
   * left, the retries stop and the last failure is the answer.
   */
  #attempt(ctx: RequestContext, selector: UpstreamSelector, exclude: Peer | undefined, sameAllowed = false): void {
    let peer = selector.acquire(ctx, exclude);
    if (peer === undefined && sameAllowed && exclude !== undefined) {
      allowAgain(ctx, exclude);
      peer = selector.acquireAgain !== undefined ? selector.acquireAgain(ctx, exclude) : selector.acquire(ctx, undefined);
    }
    if (peer === undefined) {
      // No upstream left for a retry: the last failure is the answer (it may be an upstream's refusal, see below).
      if (ctx.error === undefined) sendError(ctx, NO_HEALTHY_UPSTREAM);
      else answerFailure(ctx, ctx.error);
      return;
    }
    const failed = ctx.error;
    if (exclude !== undefined && failed !== undefined) {
      this.#logger.warn(
        { request_id: ctx.id, trace_id: TRACE.get(ctx)?.traceId, upstream: exclude.label, reason: failed.code, cause: describeCause(failed.cause) },
        EVENTS.upstreamRetry,
      );
    }
    // What the request was last sent to: an attempt that an upstream hook ends before it is sent gives these back.
    const sentPeer = ctx.peer;
    const sentService = ctx.service;
    ctx.peer = peer;
    ctx.service = peer.group.name;
    ctx.attempts++;
    this.#access.selectUpstream(ctx);
    // Built per attempt (a retry is rare), from the context itself: it carries the forwarding facts.
    const setup = this.#setup;
    const outgoing = upstreamRequestHeaders(ctx.req.headers, ctx, setup.ownedHeaders);
    const bodyChunkMs = setup.requestBodyChunkMs ?? 0;
    let outcome: Outcome | Promise<Outcome>;
    try {
      outcome = runUpstreamFilters(ctx.route.upstreamFilters, ctx, outgoing, 0);
    } catch (err) {
      unsent(ctx, peer, sentPeer, sentService);
      this.#fail(ctx, err, undefined);
      return;
    }
    // Not sent (a hook answered, failed, or the client left meanwhile): the request's metrics, its log line and the
    // upstream's counts name the upstream it was last sent to, if any ("none"), not the one it never reached.
    if (outcome === 'continue') new ProxyAttempt(ctx, peer, this, performance.now(), bodyChunkMs).dispatch(outgoing, ctx.route.timeouts);
    else if (outcome === 'responded') unsent(ctx, peer, sentPeer, sentService);
    else {
      // An async upstream hook (a plugin's): dispatch once it is done, unless it answered or the client left.
      outcome.then(
        (next) => {
          if (next === 'responded' || ctx.res.destroyed) unsent(ctx, peer, sentPeer, sentService);
          else new ProxyAttempt(ctx, peer, this, performance.now(), bodyChunkMs).dispatch(outgoing, ctx.route.timeouts);
        },
        (err: unknown) => {
          unsent(ctx, peer, sentPeer, sentService);
          this.#fail(ctx, err, undefined);
        },
      );
    }
  }

  attemptFailed(ctx: RequestContext, peer: Peer, error: GatewayError): void {
    const group = peer.group;
    group.release(peer);
    if (error.code === 'CLIENT_CLOSED') return; // the client left: nobody to answer, nothing against the upstream
    if (isUpstreamHealthFailure(error)) group.reportFailure(peer, error);
    else if (error.code === 'GATEWAY_RESOURCES_EXHAUSTED') reportLocalFailure(this.#logger, error.cause, 'upstream_connect');
    // A listener answered the request beside the driver meanwhile (outside-answer.ts: the HTTP/2 stream deadline's
    // 408, whose stream stays open until that answer is out): that is what the client got and what is logged. No
    // retry, and no error reply: sendError would destroy the stream under the 408 (its body never sent).
    if (wasAnsweredOutside(ctx)) return;
    ctx.error = error;
    noteFailedAttempt(ctx, error);
    if (error.code === 'UPSTREAM_TLS') this.#upstreamTls.failed(ctx, peer, error);
    const selector = ctx.route.upstream;
    if (selector && error.retryable && !ctx.res.destroyed && canRetry(ctx, error) && this.#mayRetry(ctx, group.retries, error)) {
      // Upstream Retry is logged by #attempt once it has a peer to retry on.
      this.#attempt(ctx, selector, peer, sparesUpstream(error));
      return;
    }
    answerFailure(ctx, error);
  }

  /**
   * Whether the retry budget allows another attempt. A stale keep-alive connection (the upstream closed it as the
   * request went out) earns one retry outside `retries`, as nginx does not count a failure on a cached connection
   * against its tries: with `retries: 0`, or a single upstream already retried, such a race would otherwise be a
   * 502. One only: an upstream that resets every connection fails fast, and on a new connection its failure counts.
   */
  #mayRetry(ctx: RequestContext, retries: number, error: GatewayError): boolean {
    const freeUsed = STALE_RETRIED.get(ctx) === true;
    if (!freeUsed && isStaleConnection(error)) {
      STALE_RETRIED.set(ctx, true);
      return true;
    }
    return ctx.attempts - (freeUsed ? 1 : 0) <= retries;
  }

  attemptFinished(ctx: RequestContext, peer: Peer): void {
    peer.group.release(peer);
    // An upgrade answered otherwise (the gateway's error in place of a 101 it could not tunnel, or the upstream's
    // refusal relayed) is logged by handleUpgrade once that answer is out or its client gone: logged here, it came
    // before the answer's own onResponse hooks ran and were sent, with half its duration, and its onLog before them.
    if (ctx.upgrade && !ctx.logged && (ctx.status === 101 || ctx.req.socket.destroyed)) {
      // A 101 no tunnel followed (tunnelOpened logs first): the client left before it could be written.
      if (ctx.status === 101) ctx.status = 499;
      this.log(ctx);
    }
  }

  tunnelOpened(ctx: RequestContext): void {
    // A client gone before the 101 was written gets no tunnel (spliceUpgrade), and no tunnelClosed later.
    if (!ctx.req.socket.destroyed) this.#tunnels++;
    this.log(ctx);
  }

  /** Settles once no WebSocket tunnel is open: their Tunnel Closed lines are written. */
  tunnelsClosed(): Promise<void> {
    if (this.#tunnels === 0) return Promise.resolve();
    return new Promise((resolve) => (this.#tunnelsGone = resolve));
  }

  /**
   * A tunnel closed: its peer is released, then its line and the route's tunnel observers. Runs for upgraded
   * connections only, so a plain request pays nothing for it. A socket the gateway closed with neither a FIN nor an
   * error before it is its stop's doing (the drain destroys the tunnels still open); any other would be a fault.
   */
  tunnelClosed(ctx: RequestContext, peer: Peer, tunnel: TunnelSummary): void {
    peer.group.release(peer);
    if (!ctx.logged) this.log(ctx); // written at the 101 (tunnelOpened); the request's line always comes first
    const ending = tunnel.ending;
    const facts: TunnelFacts = {
      durationMs: tunnel.durationMs,
      bytesFromClient: tunnel.bytesFromClient,
      bytesFromUpstream: tunnel.bytesFromUpstream,
      closedBy: ending === 'destroyed' ? (this.draining ? 'shutdown' : 'error') : ending,
      errorFrom: tunnel.errorFrom,
      error: tunnel.error,
    };
    this.#access.tunnelClosed(ctx, facts);
    const hooks = ctx.route.tunnelObservers;
    for (let i = 0; i < hooks.length; i++) {
      try {
        hooks[i]!.onTunnelClosed(ctx, facts);
      } catch (err) {
        this.#logger.error({ request_id: ctx.id, trace_id: TRACE.get(ctx)?.traceId, phase: hooks[i]!.name, cause: describeCause(err) }, EVENTS.requestError);
      }
    }
    if (--this.#tunnels === 0) this.#tunnelsGone?.();
  }

  /** Answers a failure from a filter; unexpected errors are logged (class and phase only) and become 500. */
  #fail(ctx: RequestContext, err: unknown, phase: string | undefined): void {
    const error = toGatewayError(err);
    if (error.code === 'INTERNAL') {
      this.#logger.error({ request_id: ctx.id, trace_id: TRACE.get(ctx)?.traceId, path: ctx.path, phase, cause: describeCause(err) }, EVENTS.requestError);
    }
    sendError(ctx, error);
  }

  /** Response filter: the gateway's headers, then the route's onResponse hooks. Shared by all requests. */
  readonly #decorate: ResponseDecorator = Object.assign(
    (ctx: RequestContext, headers: OutgoingHttpHeaders): void | Promise<void> => this.#decorateNow(ctx, headers),
    { closing: () => this.draining },
  );

  readonly #decorateNow = (ctx: RequestContext, headers: OutgoingHttpHeaders): void | Promise<void> => {
    headers['x-proxy-by'] = this.#setup.proxyBy;
    headers['x-request-id'] = ctx.id;
    headers['x-response-time'] = `${Math.round(performance.now() - ctx.startedAt)}ms`;
    // A 101 needs its Connection: upgrade; HTTP/2 forbids the header (a draining h2 session gets GOAWAY instead).
    if (this.draining && !ctx.upgrade && ctx.req.httpVersionMajor !== 2) headers.connection = 'close';
    // A hook that waits (a plugin's) is part of the time to the response headers: stamped again once they ran. The
    // synchronous ones take microseconds, which the whole milliseconds do not show.
    const pending = this.#responseFilters(ctx, headers, 0);
    return pending === undefined ? undefined : pending.then(() => stampResponseTime(ctx, headers));
  };

  /**
   * The route's onResponse hooks from index `from`: synchronous until one returns a promise (a plugin's). A
   * GatewayError from a hook is the answer to send instead (the caller replies with it, nothing was sent yet); any
   * other failure cannot change the answer and is only reported.
   */
  #responseFilters(ctx: RequestContext, headers: OutgoingHttpHeaders, from: number): void | Promise<void> {
    const hooks = ctx.route.responseFilters;
    for (let i = from; i < hooks.length; i++) {
      let pending: void | Promise<void>;
      try {
        pending = hooks[i]!.onResponse(ctx, headers);
      } catch (err) {
        if (err instanceof GatewayError) throw err;
        this.#logger.error({ request_id: ctx.id, trace_id: TRACE.get(ctx)?.traceId, phase: hooks[i]!.name, cause: describeCause(err) }, EVENTS.requestError);
        continue;
      }
      if (pending !== undefined) {
        return pending.then(
          () => (ctx.logged ? undefined : this.#responseFilters(ctx, headers, i + 1)),
          (err: unknown) => {
            if (err instanceof GatewayError) throw err;
            this.#logger.error({ request_id: ctx.id, trace_id: TRACE.get(ctx)?.traceId, phase: hooks[i]!.name, cause: describeCause(err) }, EVENTS.requestError);
            return this.#responseFilters(ctx, headers, i + 1);
          },
        );
      }
    }
    return undefined;
  }

  /** Logging phase: the access log line and the route's onLogging hooks, exactly once per request. */
  log(ctx: RequestContext): void {
    if (ctx.logged) return;
    ctx.logged = true;
    this.inFlight--;
    ctx.epoch?.leave();
    const duration = Math.round((performance.now() - ctx.startedAt) * 100) / 100;
    ctx.durationMs = duration;
    this.#access.requestCompleted(ctx);
    const hooks = ctx.route.loggers;
    for (let i = 0; i < hooks.length; i++) {
      try {
        hooks[i]!.onLogging(ctx);
      } catch (err) {
        this.#logger.error({ request_id: ctx.id, trace_id: TRACE.get(ctx)?.traceId, phase: hooks[i]!.name, cause: describeCause(err) }, EVENTS.requestError);
      }
    }
  }
}

const noop = (): void => undefined;

/**
 * True for a request node's HTTP/1 parser read after an answer that ended its connection with a lingering close
 * (lingering-close.ts: a 401 or 413 given mid-upload), which is then dropped here: the connection is over (RFC 9112
 * §9.6: nothing after the last request is processed), its answer could never be sent, and its client never learns
 * of it. Dispatched, it was logged 499 once the linger ended (its Request Start too): a request nobody served or was
 * refused. It gets no context, no count and no line. What it sends goes on being read and dropped with the rest of
 * the connection (its body through node's parser, the bytes after an Upgrade head straight off the socket), so the
 * lingering close still ends at the client's FIN or its bound.
 */
function afterLastAnswer(req: IncomingMessage): boolean {
  if (!isLingering(req.socket)) return false;
  req.resume();
  return true;
}

/**
 * How long a connection answered without switching protocols stays open for the client to close its side: nginx's
 * lingering_timeout. A client that keeps its side open is let go of then (its connection slot is counted against
 * server.max_connections_per_client); one that closes is let go of at once.
 */
const UNSWITCHED_LINGER_MS = 5_000;

/**
 * Ends the connection of an Upgrade request answered without a 101. Nothing the client sent after its request head
 * is ever parsed or forwarded (a body, a request pipelined behind it): node's parser has let go of the socket, and
 * only a 101 joins it to an upstream. Those bytes are read and dropped rather than left unread (node stops reading
 * the socket it hands to 'upgrade'): closing a socket with unread bytes makes the kernel send a reset, which can
 * destroy the response in the client's buffers before the client reads it (why nginx closes by lingering). The
 * socket (allowHalfOpen, node:http's) closes once the client's FIN follows ours, or is destroyed after
 * UNSWITCHED_LINGER_MS: before, a client that never closed its half held the connection for good.
 */
function closeUnswitched(socket: Socket): void {
  if (socket.destroyed) return;
  socket.resume();
  socket.end();
  const linger = setTimeout(() => socket.destroy(), UNSWITCHED_LINGER_MS);
  linger.unref();
  socket.once('close', () => clearTimeout(linger));
}

/**
 * True when the response closed before it was complete: the client left (a closed HTTP/1 connection, an HTTP/2
 * stream reset or lost connection) or the stream was cut. Over HTTP/2 writableFinished cannot say it: node ends the
 * writable side of every stream it closes, so the compat response reports finished after a reset although nothing
 * was written (node 20, measured). The stream says it instead: aborted (closed while the response was open), or
 * closed with an error code (a reset after the response was ended, or the gateway's own CANCEL after an early 408;
 * a stream that ends normally closes with NO_ERROR). Read once per request, on close; no listener.
 */
function closedEarly(ctx: RequestContext): boolean {
  if (!ctx.res.writableFinished) return true;
  if (ctx.req.httpVersionMajor !== 2) return false;
  const req = ctx.req as unknown as Http2ServerRequest;
  // No stream: an "HTTP/2.0" request line over HTTP/1 (answered 505 by checkProtocol); reading it unguarded threw
  // from this 'close' listener and ended the process.
  return req.aborted || (req.stream?.rstCode ?? H2_NO_ERROR) !== H2_NO_ERROR;
}

/**
 * The answer to a request whose last attempt failed and is not retried: an upstream's refusal goes to an HTTP/2
 * client as REFUSED_STREAM (h2-refused.ts), anything else as the error reply.
 */
function answerFailure(ctx: RequestContext, error: GatewayError): void {
  if (!refuseStream(ctx, error)) sendError(ctx, error);
}

/**
 * Ends an attempt that was never sent (an upstream-request hook answered, failed, or the client left meanwhile): its
 * peer gives the request back, and the context names what the request was last sent to again (`sentPeer`, none).
 */
function unsent(ctx: RequestContext, peer: Peer, sentPeer: Peer | undefined, sentService: string | undefined): void {
  peer.group.withdraw(peer);
  ctx.peer = sentPeer;
  ctx.service = sentService;
}

/** Runs upstream-request hooks from index `from`; synchronous until a hook returns a promise (a plugin's). */
function runUpstreamFilters(hooks: Route['upstreamFilters'], ctx: RequestContext, headers: UpstreamHeaders, from: number): Outcome | Promise<Outcome> {
  for (let i = from; i < hooks.length; i++) {
    const result = hooks[i]!.onUpstreamRequest(ctx, headers);
    if (result === 'responded') return 'responded';
    if (result !== undefined && result !== 'continue') {
      // A client that left meanwhile (the request logged) ends the attempt as an answer would.
      return result.then((r) => (r === 'responded' || ctx.logged ? 'responded' : runUpstreamFilters(hooks, ctx, headers, i + 1)));
    }
  }
  return 'continue';
}

/** X-Response-Time: the time from the request's arrival to its response headers, in whole milliseconds. */
function stampResponseTime(ctx: RequestContext, headers: OutgoingHttpHeaders): void {
  headers['x-response-time'] = `${Math.round(performance.now() - ctx.startedAt)}ms`;
}
