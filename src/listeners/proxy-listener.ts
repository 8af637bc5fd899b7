// The proxy port's server: cleartext HTTP/1.1, HTTPS HTTP/1.1, or HTTPS with HTTP/2 and HTTP/1.1 by ALPN; plus the
// optional redirect listener. server.ts attaches the pipeline's handlers and does not care which kind it got.
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Http2SecureServer, Http2Session } from 'node:http2';
import { Server as NetServer, type AddressInfo, type Socket } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { MAX_TIMER_MS } from '../config/duration.js';
import { listen, PROXY_LISTEN_KEYS, REDIRECT_LISTEN_KEYS } from '../listen.js';
import { nodeHttp2, nodeHttps } from '../node-builtins.js';
import { deferContinue } from '../pipeline/expect-continue.js';
import { EVENTS } from '../observability/events.js';
import { CertificateStore, tlsEnabled, warnIncompleteChains } from '../tls/store.js';
import { hstsValue } from '../tls/setup.js';
import { refusalLogger, setRawAnswerHsts, setRefusalLog } from './proxy-events.js';
import { MAX_HEADER_LIST_PAIRS, MAX_HEADER_LIST_SIZE, RequestDeadlines, SessionWatch, type H2GuardSettings } from './h2-guard.js';
import { applyRedirectTimeouts, createRedirectServer } from './redirect.js';
import { keepAliveTimeoutFor } from './keep-alive.js';
import { UnsentAnswers } from './h1-send-bound.js';
import { watchLastDescriptor } from '../descriptor-limit.js';

/** A server with node:http's timeouts and connection closing (http.Server, https.Server, h2 with allowHTTP1). */
// closeAllConnections is absent from the HTTP/2 server (its HTTP/1.1 fallback has only closeIdleConnections).
type Http1Capable = Pick<HttpServer, 'headersTimeout' | 'requestTimeout' | 'keepAliveTimeout' | 'maxHeadersCount' | 'closeIdleConnections'> &
  Partial<Pick<HttpServer, 'closeAllConnections'>>;

/** node's own check interval (its default), the longest we use. */
const NODE_CHECK_INTERVAL_MS = 30_000;
/**
 * The shortest: each check walks the list of connections still sending a request, and a sub-second timeout gains
 * nothing from being enforced to the millisecond.
 */
const MIN_CHECK_INTERVAL_MS = 250;

/**
 * How often node looks for connections past timeouts.header or timeouts.request. Node only enforces the two
 * timeouts when this check runs (every 30 s by default), so a slow client could hold its connection for up to 30 s
 * past a 5 s header timeout. A quarter of the shorter one keeps the overrun within a quarter of the timeout.
 */
export function connectionsCheckingInterval(headerMs: number, requestMs: number): number {
  const shortest = Math.min(headerMs > 0 ? headerMs : Infinity, requestMs > 0 ? requestMs : Infinity);
  if (shortest === Infinity) return NODE_CHECK_INTERVAL_MS;
  return Math.min(NODE_CHECK_INTERVAL_MS, Math.max(MIN_CHECK_INTERVAL_MS, Math.floor(shortest / 4)));
}

/**
 * node:http settings of the proxy port's HTTP/1 servers (cleartext, HTTPS, and the HTTP/2 server's HTTP/1.1
 * fallback, which reads the same names as properties).
 * - requireHostHeader off: node's own 400 for an HTTP/1.1 request without Host is bare (no gateway headers, no log
 *   line); the driver refuses it instead (host-check.ts), through the error catalogue.
 * - connectionsCheckingInterval: see connectionsCheckingInterval().
 */
function http1Options(timeouts: Config['server']['timeouts']): { requireHostHeader: boolean; connectionsCheckingInterval: number } {
  return { requireHostHeader: false, connectionsCheckingInterval: connectionsCheckingInterval(timeouts.header, timeouts.request) };
}

/** node's own handshakeTimeout when none is given: the bound of a handshake while timeouts.header is 0 (off). */
const NODE_HANDSHAKE_TIMEOUT_MS = 120_000;

/**
 * The TLS handshake bound, timeouts.header, read per connection when it opens, so a reload applies to the next
 * connection. node's own handshakeTimeout is read once, by the server's constructor, and has no setter: with it a
 * reload never changed the bound. So node's is set out of reach (MAX_TIMER_MS) and this timer does its work the way
 * node does it: on expiry, an ERR_TLS_HANDSHAKE_TIMEOUT 'error' on the TCP socket, which the TLS socket wrapping it
 * turns into 'tlsClientError' (then the server's 'clientError', whose handler destroys the socket: proxy-events.ts),
 * as node's own timer does. The timer is cleared by 'secureConnection' (the handshake is done) or 'close'.
 * One difference: node's bound is an idle timeout (socket.setTimeout, restarted by traffic), this one is absolute,
 * as the README states it: a client trickling handshake bytes gets no more time.
 */
function watchHandshakes(server: TlsServer, boundMs: () => number): void {
  const pending = new Map<string, { readonly socket: Socket; readonly timer: NodeJS.Timeout }>();
  const peerKey = (s: { remoteAddress?: string; remotePort?: number }) => `${s.remoteAddress}|${s.remotePort}`;
  // Appended after node's own 'connection' listener (added by the tls.Server constructor), which wraps the socket.
  server.on('connection', (socket: Socket) => {
    if (socket.destroyed) return;
    const key = peerKey(socket);
    const header = boundMs();
    const timer = setTimeout(() => {
      pending.delete(key);
      if (socket.destroyed) return;
      // The error node's own timer raises (its code and message); the TLS socket listens for 'error' on its TCP
      // socket. Should it not (a future node), the socket is still closed.
      const err = Object.assign(new Error('TLS handshake timeout'), { code: 'ERR_TLS_HANDSHAKE_TIMEOUT' });
      if (socket.listenerCount('error') > 0) socket.emit('error', err);
      socket.destroy();
    }, header > 0 ? header : NODE_HANDSHAKE_TIMEOUT_MS);
    timer.unref();
    pending.set(key, { socket, timer });
    socket.once('close', () => {
      clearTimeout(timer);
      if (pending.get(key)?.socket === socket) pending.delete(key);
    });
  });
  server.prependListener('secureConnection', (tls: TLSSocket) => {
    const key = peerKey(tls);
    const entry = pending.get(key);
    if (entry === undefined) return;
    clearTimeout(entry.timer);
    pending.delete(key);
  });
}

/** The proxy listener, whatever its protocol. */
export interface ProxyListener {
  /**
   * The server to attach 'request', 'upgrade', 'clientError' and 'connection' handlers to. Over HTTP/2 its
   * 'request' event passes node's compat objects (Http2ServerRequest/Response) in place of IncomingMessage and
   * ServerResponse; the pipeline handles the differences (pseudo-headers, no connection headers, trailers).
   */
  readonly server: NetServer;
  /** The certificates when TLS is on (status, metrics); undefined for cleartext. */
  readonly certificates: CertificateStore | undefined;
  /**
   * The redirect listener (server.http_redirect), for its 'connection' handlers: its connections count against the
   * client's cap like the proxy port's. Undefined when there is none.
   */
  readonly redirect: NetServer | undefined;
  /**
   * Listens on the proxy port, then the redirect port if any; resolves to the bound ports. `onProxyListening` is
   * called as soon as the proxy port accepts connections, before the redirect port's listen: from then on a failure
   * leaves the proxy port, and what it accepted meanwhile, to the caller's closeAll() and close().
   */
  listen(onProxyListening?: () => void): Promise<{ port: number; redirectPort: number | undefined }>;
  /**
   * Checks what a reload needs (certificate files are read again: they may have been replaced on disk) and returns
   * the function that applies it. Throws ConfigError and changes nothing when a certificate cannot be used.
   */
  prepare(next: Config): () => void;
  /** Closes idle HTTP/1.1 connections and asks HTTP/2 clients to go (GOAWAY after their open streams finish). */
  closeIdle(): void;
  /** Drops every connection (end of the drain time). */
  closeAll(): void;
  /** Stops accepting on both ports; resolves once the proxy port's connections are gone. */
  close(): Promise<void>;
}

/** Builds the listener for `config.server` (not listening yet). Throws ConfigError on an unusable certificate. */
export function createProxyListener(config: Config, logger: Logger): ProxyListener {
  let settings = config.server;
  const certificates = tlsEnabled(settings.tls) ? new CertificateStore(settings.tls) : undefined;
  if (certificates !== undefined) warnIncompleteChains(certificates.certificates, logger);
  const h2 = certificates !== undefined && settings.tls.http2;
  const guard: H2GuardSettings = {
    idleMs: settings.timeouts.idle,
    headerMs: settings.timeouts.header,
    sendMs: settings.timeouts.request_body_chunk,
  };
  // timeouts.request for HTTP/2 streams; node applies requestTimeout to HTTP/1.1 requests only.
  // Its 408 carries HSTS as `settings` stands after a reload (the HSTS phase never sees it).
  const deadlines = new RequestDeadlines(settings.timeouts.request, settings.proxy_by, () => hstsValue(settings));
  const sessions = new SessionWatch(guard, deadlines, logger);
  let server: NetServer & Http1Capable;
  const http1 = http1Options(settings.timeouts);
  if (certificates === undefined) {
    server = createHttpServer(http1);
  } else if (!h2) {
    // handshakeTimeout: see watchHandshakes(), below.
    server = nodeHttps().createServer({ ...certificates.serverOptions(), ...http1, handshakeTimeout: MAX_TIMER_MS });
  } else {
    const secure: Http2SecureServer = nodeHttp2().createSecureServer({
      ...certificates.serverOptions(),
      handshakeTimeout: MAX_TIMER_MS,
      allowHTTP1: true,
      maxHeaderListPairs: MAX_HEADER_LIST_PAIRS,
      // Node's own abuse counters, tighter than their defaults (1000 invalid frames, 100 refused streams).
      maxSessionInvalidFrames: 100,
      maxSessionRejectedStreams: 100,
      settings: {
        maxConcurrentStreams: settings.http2_max_concurrent_streams,
        maxHeaderListSize: MAX_HEADER_LIST_SIZE,
        enablePush: false,
      },
    });
    // The TLS sockets by peer address: a session only exposes a proxy of its socket, which refuses destroy(), and
    // drops even that once node has destroyed it. Prepended: node's own listener makes the session and emits
    // 'session' from inside the same event, so the socket is known by then.
    const tlsSockets = new Map<string, TLSSocket>();
    const peerKey = (s: { remoteAddress?: string; remotePort?: number }) => `${s.remoteAddress}|${s.remotePort}`;
    secure.prependListener('secureConnection', (socket: TLSSocket) => {
      const key = peerKey(socket);
      tlsSockets.set(key, socket);
      socket.once('close', () => tlsSockets.delete(key));
    });
    secure.on('session', (session: Http2Session) => {
      sessions.add(session, session.socket ? tlsSockets.get(peerKey(session.socket)) : undefined);
    });
    // A session-level protocol error is the client's problem; it has been answered with GOAWAY already.
    secure.on('sessionError', () => undefined);
    // The HTTP/1.1 fallback reads these as properties of the server (the HTTP/2 constructor takes no such options);
    // set before listen(), which is when node starts the connection checks.
    Object.assign(secure, http1);
    server = secure as unknown as NetServer & Http1Capable;
  }
  // The handshake bound, timeouts.header as it stands when each connection opens.
  if (certificates !== undefined) watchHandshakes(server as unknown as TlsServer, () => settings.timeouts.header);
  // No cap on the number of header lines. Node's default (2000) leaves every later line out of req.headers (not of
  // rawHeaders) without a word, while its parser frames the body with all of them: a Content-Length on line 2001
  // gave a request whose body the gateway never forwarded, and the checks that read rawHeaders (a second Host) and
  // the ones that read headers saw two different requests. No cap, rather than a refusal above some count: the
  // header byte limit (node's maxHeaderSize, 16 KB, then 431) already bounds them, to some 4000 of the shortest
  // lines, and nothing needs counting per request. A property, not an option: each new connection's parser reads it.
  server.maxHeadersCount = 0;
  // The parser's raw answers on TLS connections carry HSTS (proxy-events.ts), read from `settings` as a reload leaves it.
  setRawAnswerHsts(server, () => hstsValue(settings));
  // Connections refused with no request behind them get a line of their own (the access log has none for them).
  // The levels are refusalLogger's, shared with the redirect port: one place decides them.
  setRefusalLog(server, refusalLogger(logger));
  // Node answers an Expect other than 100-continue with a bare 417 unless someone listens: the request goes to the
  // 'request' handlers like any other instead, and the driver refuses it through the error catalogue
  // (EXPECTATION_FAILED, gateway headers, a log line). Over HTTP/2 node emits the same event.
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => server.emit('request', req, res));
  // Expect: 100-continue likewise: node would send 100 Continue before any phase ran, and a request refused then (413,
  // 401, 429, 404) had its body uploaded for nothing. The driver sends it when the body is about to be read.
  deferContinue(server);
  let boundPort = 0;
  const redirectPort = settings.http_redirect.listen_port;
  const redirect =
    redirectPort === undefined ? undefined : createRedirectServer(() => boundPort, () => settings.proxy_by, settings.timeouts, http1);
  // The send bound of HTTP/1.x answers handed over whole (h2-guard.ts has the HTTP/2 one), as a reload leaves it; the
  // redirect port's 308s too, which a client pipelining requests it never reads piles up behind a full socket.
  const unsent = new UnsentAnswers(() => guard.sendMs);
  // A flood that uses up the descriptors: one line when the last is taken (resource-episodes.ts), not silence.
  watchLastDescriptor(server, logger);
  if (redirect !== undefined) watchLastDescriptor(redirect, logger);
  server.on(certificates === undefined ? 'connection' : 'secureConnection', unsent.watch);
  redirect?.on('connection', unsent.watch);
  const applyTimeouts = (s: Config['server']) => {
    // connectionsCheckingInterval is not reapplied: node reads it once, when the server starts listening, to start
    // its check timer, and offers no way to restart it. A reload that shortens timeouts.header or .request keeps
    // the start-up cadence, so those deadlines may then be enforced up to one start-up interval late.
    server.headersTimeout = s.timeouts.header;
    server.requestTimeout = s.timeouts.request;
    server.keepAliveTimeout = keepAliveTimeoutFor(s.timeouts.idle);
    server.maxConnections = s.max_connections;
    // The same bound on the redirect port: without one, idle connections there held descriptors without limit, until
    // the proxy port met EMFILE.
    if (redirect !== undefined) redirect.maxConnections = s.max_connections;
    guard.idleMs = s.timeouts.idle;
    guard.headerMs = s.timeouts.header;
    guard.sendMs = s.timeouts.request_body_chunk;
    deadlines.update(s.timeouts.request, s.proxy_by);
  };
  applyTimeouts(settings);

  return {
    server,
    certificates,
    redirect,
    async listen(onProxyListening) {
      await listen(server, settings.listen_port, settings.listen_host, PROXY_LISTEN_KEYS);
      boundPort = (server.address() as AddressInfo).port;
      onProxyListening?.();
      if (redirect === undefined || redirectPort === undefined) return { port: boundPort, redirectPort: undefined };
      await listen(redirect, redirectPort, settings.listen_host, REDIRECT_LISTEN_KEYS);
      return { port: boundPort, redirectPort: (redirect.address() as AddressInfo).port };
    },
    prepare(next: Config) {
      const commitCertificates = certificates?.prepare(next.server.tls);
      return () => {
        settings = next.server;
        applyTimeouts(settings);
        if (redirect !== undefined) applyRedirectTimeouts(redirect, settings.timeouts);
        if (h2) (server as unknown as Http2SecureServer).updateSettings({ maxConcurrentStreams: settings.http2_max_concurrent_streams });
        if (commitCertificates && certificates) {
          // The default context (clients without SNI); the SNI callback already reads the new list.
          (server as unknown as HttpsServer).setSecureContext(commitCertificates());
          logger.info({ certificates: certificates.describe().map((c) => ({ names: c.names, not_after: c.not_after })) }, EVENTS.certificatesReloaded);
          warnIncompleteChains(certificates.certificates, logger);
        }
      };
    },
    closeIdle() {
      server.closeIdleConnections();
      sessions.closeAll();
    },
    closeAll() {
      server.closeAllConnections?.();
      sessions.destroyAll();
    },
    close() {
      redirect?.close();
      redirect?.closeAllConnections();
      return new Promise<void>((resolve) => stopAccepting(server, resolve));
    },
  };
}

/**
 * Stops accepting connections and calls `done` once the last one has gone, keeping node's connection check running
 * meanwhile. node:http's close() (https's and the HTTP/2 server's alike) stops that check at once, and the check is
 * what enforces timeouts.header and timeouts.request: during a stop's drain, a client trickling its body held the stop
 * for the whole shutdown_drain and was cut there (499 SHUTTING_DOWN) instead of getting its 408. So the listening
 * socket is closed by the net.Server close below node:http's (tls.Server has none of its own), and the check is ended
 * once the server has closed. The idle connections node's close() would also end are the drain's closeIdle().
 */
function stopAccepting(server: NetServer, done: () => void): void {
  NetServer.prototype.close.call(server, () => {
    endConnectionChecks(server);
    done();
  });
}

/**
 * Clears node:http's connection-check timer, found by its symbol's description (node exports neither). A node that
 * renamed it leaves an unref'd timer walking an empty list; timeouts 0 make each run return at once.
 */
function endConnectionChecks(server: NetServer): void {
  const key = Object.getOwnPropertySymbols(server).find((symbol) => symbol.description === CHECK_TIMER_SYMBOL);
  const timer = key === undefined ? undefined : (server as unknown as Record<symbol, unknown>)[key];
  if (timer !== undefined) clearInterval(timer as NodeJS.Timeout);
  else Object.assign(server, { headersTimeout: 0, requestTimeout: 0 });
}

/** The description of node:http's own symbol for the server's connection-check timer (lib/_http_server.js). */
const CHECK_TIMER_SYMBOL = 'http.server.connectionsCheckingInterval';
