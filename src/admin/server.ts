// The admin listener: /metrics, /ready, /api/status, the dashboard, POST /reload and /admin/* (identity), on its own
// port, behind the optional admin token.
import { randomUUID } from 'node:crypto';
import { listen } from '../listen.js';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';
import { describeCause, GatewayError } from '../errors.js';
import { errorBody, writeJson } from '../pipeline/reply.js';
import { deferContinue } from '../pipeline/expect-continue.js';
import { leaveBody } from '../pipeline/request-body.js';
import { isLingering } from '../pipeline/lingering-close.js';
import { isAfterLastRequest, responseInProgress } from '../pipeline/last-request.js';
import { isQueuedRequestTimeout, oneRequestAtATime } from '../listeners/pipelining.js';
import { UnsentAnswers } from '../listeners/h1-send-bound.js';
import { checkAdminToken, isLoopbackAddress, isLoopbackHost } from './admin-auth.js';
import { ADMIN_ANSWER_HEADERS } from './answer-headers.js';
import { EVENTS } from '../observability/events.js';
import type { BackendView, GatewayMetrics } from '../observability/metrics.js';
import type { DashboardAssets } from './assets.js';
import { runReadiness, type ReadinessCheck } from './readiness.js';
import { buildStatus, type RouteView } from './status.js';
import { sharedRender } from './shared-render.js';
import type { CertificateStatus } from '../tls/store.js';
import { errorClassOf } from '../plugins/plugin-error.js';
import type { Registry } from 'prom-client';
import { watchLastDescriptor } from '../descriptor-limit.js';

/** What a config reload did: applied, or refused with a one-line reason (no secrets). */
export interface ReloadResult {
  readonly ok: boolean;
  readonly reason?: string;
  /** Set when another reload was running as this one was asked for: what happened to the request instead. */
  readonly note?: string;
}

/** Everything the admin routes read. Built once in the composition root (features.ts). */
export interface AdminDeps {
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  /** The current upstreams (read on each request, so reloads show). */
  readonly backends: () => readonly BackendView[];
  /** The user routes of the running table (read on each request, so reloads show). */
  readonly routes?: () => readonly RouteView[];
  /** The proxy listener's certificates, read per request (reloads show); absent: none. */
  readonly certificates?: () => readonly CertificateStatus[];
  /** Checks behind GET /ready; the list is read on each request, so checks may be pushed after start-up. */
  readonly readiness: readonly ReadinessCheck[];
  /**
   * POST /reload: re-reads and applies the config. Resolves {ok:false, reason} for a rejected config (400);
   * a rejection of the promise itself is an internal failure (500). Undefined: /reload answers 501.
   */
  readonly reload?: () => Promise<ReloadResult>;
  readonly dashboard: DashboardAssets;
  /** Per-check timeout of /ready in ms; default 1000. */
  readonly readinessTimeoutMs?: number;
  /** Config `admin.token`; empty or undefined: no token (only allowed on loopback, and /admin/* answers 404). */
  readonly token?: string;
  /**
   * Config `server.max_connections`: the most connections the admin port holds open at once, a bound of its own (as the
   * redirect port has); more are closed as they arrive. Undefined: unbounded (embedders and tests that start it alone).
   */
  readonly maxConnections?: number;
  /**
   * The per-client connection cap's 'connection' listener (connection-limit.ts: server.max_connections_per_client,
   * counted for this port alone): it answers a connection over its client's cap 429 and closes it, with the headers
   * of every admin answer (answer-headers.ts: given to it by whoever builds it). Undefined: no cap.
   */
  readonly connectionCap?: (socket: Socket) => void;
  /** Answers /admin/* (users and API keys); resolves false for a path it does not know. Undefined: auth is off. */
  readonly identityRoutes?: (req: IncomingMessage, res: ServerResponse, path: string) => Promise<boolean>;
  /** The dashboard's Users panel, merged into /api/status as `identity`. */
  readonly identityStatus?: () => Promise<unknown>;
}

/** A running admin listener. */
export interface AdminServer {
  readonly port: number;
  /** A reload's `server.max_connections`: connections already open stay, new ones are counted against it. */
  setMaxConnections(max: number): void;
  close(): Promise<void>;
}

/**
 * The dashboard loads only its own files and calls only this origin; no inline script or style is needed, so the
 * policy can forbid them (data inserted into the page can then never run).
 */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
} as const;


/** The admin listener's bounds on receiving a request head, and a whole request (its body included). */
const ADMIN_HEADERS_TIMEOUT_MS = 10_000;
const ADMIN_REQUEST_TIMEOUT_MS = 30_000;
/**
 * How often node looks for connections past those bounds: a quarter of the shorter, as the proxy port's
 * connectionsCheckingInterval() picks (not imported: the CLI loads this module, and that one brings the listeners).
 */
const ADMIN_CHECK_INTERVAL_MS = ADMIN_HEADERS_TIMEOUT_MS / 4;
/**
 * The longest an answer may wait with the kernel taking none of its bytes before its connection is closed
 * (listeners/h1-send-bound.ts): a client pipelining requests it never reads filled the socket buffers with answers,
 * and node then waited on the one in progress with none of the bounds above running, for as long as the client liked.
 */
const ADMIN_SEND_TIMEOUT_MS = 10_000;

/** Starts the admin listener on host:port (0 = any free port); resolves once it accepts connections. */
export async function startAdminServer(host: string, port: number, deps: AdminDeps): Promise<AdminServer> {
  const startedAt = performance.now(); // monotonic: see buildStatus
  // The two reads a client can make the gateway recompute, each rendered once for all the requests that arrive
  // together (shared-render.ts): a scrape still sees everything counted before it arrived, a dashboard a snapshot.
  const renders: Renders = {
    metrics: sharedRender(async () => Buffer.from(await scrapeMetrics(deps.metrics.registry, deps.logger)), 'after-arrival'),
    status: sharedRender(async () => {
      const status = buildStatus(deps.metrics, deps.backends(), deps.routes?.() ?? [], startedAt, deps.certificates?.() ?? []);
      const identity = deps.identityStatus === undefined ? undefined : await deps.identityStatus().catch(() => undefined);
      return Buffer.from(JSON.stringify(identity === undefined ? status : { ...status, identity }));
    }, 'join-running'),
  };
  // node enforces headersTimeout and requestTimeout only when its connection check runs (every 30 s by default): a
  // client trickling a head or a body held an admin connection up to 30 s past either bound.
  const server = createServer({
    headersTimeout: ADMIN_HEADERS_TIMEOUT_MS,
    requestTimeout: ADMIN_REQUEST_TIMEOUT_MS,
    connectionsCheckingInterval: ADMIN_CHECK_INTERVAL_MS,
    keepAliveTimeout: 5_000,
  });
  // Pipelined requests one at a time, as on the proxy port (pipelining.ts): node parses a whole read (some 2,500
  // short requests) before it stops reading, and each one ran at once, its answer held until the client read it. A
  // client pipelining `GET /` (open without the token) on a few connections and reading nothing held hundreds of MB.
  // Now the next request runs once the answer before it has the connection, and more than 128 waiting close it.
  server.on(
    'request',
    oneRequestAtATime((req, res) => {
      for (const [name, value] of Object.entries(ADMIN_ANSWER_HEADERS)) res.setHeader(name, value);
      handle(req, res, deps, renders).catch((err: unknown) => {
        // The id the operator gets in the 500 is the one in this log line: the only trace of why it failed.
        const requestId = randomUUID();
        deps.logger.error({ path: pathOf(req), request_id: requestId, cause: describeCause(err) }, EVENTS.adminError);
        if (!res.headersSent) sendAdminError(res, new GatewayError('INTERNAL'), requestId);
        else res.destroy();
      });
    }),
  );
  // Expect: 100-continue is answered only once a handler reads the body (readJsonBody): an unauthenticated or
  // refused request gets its answer alone, and its client never uploads the body.
  deferContinue(server);
  server.on('connection', new UnsentAnswers(() => ADMIN_SEND_TIMEOUT_MS).watch);
  // A flood here uses up the process's descriptors as one on the proxy port does: one line, not silence.
  watchLastDescriptor(server, deps.logger);
  server.on('clientError', adminClientError);
  // Without a bound, anyone who reaches the port could hold any number of connections (the dashboard page and /ready
  // need no token), each a descriptor, until the proxy port met EMFILE. node closes a connection over it on arrival,
  // unanswered, as on the proxy and redirect ports; the ones already open are served on.
  if (deps.maxConnections !== undefined) server.maxConnections = deps.maxConnections;
  // And no one client may take all of them: /ready stays open to the probes of others.
  if (deps.connectionCap !== undefined) server.on('connection', deps.connectionCap);
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await listen(server, port, host);
  return {
    port: (server.address() as AddressInfo).port,
    setMaxConnections(max: number) {
      server.maxConnections = max;
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Dashboards keep connections alive; the admin port has nothing worth draining.
        for (const socket of sockets) socket.destroy();
      });
    },
  };
}

/** node's own answers to a refused head (its _http_server.js), which the admin port gave before it had a handler. */
const PARSER_ANSWERS: Readonly<Record<string, string>> = {
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: '413 Payload Too Large',
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
};

/** The security headers of every admin answer (answer-headers.ts), as head lines for the parser's raw answers. */
const RAW_ANSWER_HEADERS = Object.entries(ADMIN_ANSWER_HEADERS)
  .map(([name, value]) => `${name}: ${value}\r\n`)
  .join('');

/**
 * A request node's parser refused on the admin port. Bytes after a request that ends its connection are ignored while
 * it is answered (last-request.ts): node's default wrote a 400 in place of the answer to an action already carried
 * out (a user disabled, a reload run), then cut the connection. Otherwise node's default answer, written only where
 * it cannot land inside or ahead of another response: no request on the connection, or the current one's own body
 * went bad; a bad request pipelined behind one still being answered gets the connection closed instead.
 */
function adminClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (isAfterLastRequest(err, socket)) return;
  // node's request timeout of a queued request, counted from its first byte: its own runs from its turn (pipelining.ts).
  if (isQueuedRequestTimeout(err, socket)) return;
  const current = responseInProgress(socket);
  if (socket.writable && (current == null || (current.headersSent !== true && current.req?.complete !== true))) {
    socket.write(`HTTP/1.1 ${PARSER_ANSWERS[err.code ?? ''] ?? '400 Bad Request'}\r\n${RAW_ANSWER_HEADERS}Connection: close\r\n\r\n`);
  }
  socket.destroy();
}

/** The admin reads rendered once for every request that arrives while they are under way: /metrics and /api/status. */
interface Renders {
  readonly metrics: () => Promise<Buffer>;
  readonly status: () => Promise<Buffer>;
}

async function handle(req: IncomingMessage, res: ServerResponse, deps: AdminDeps, renders: Renders): Promise<void> {
  // Pipelined behind a refusal whose close lingers (lingering-close.ts): node parses on while the refused upload is
  // read and dropped, but this request's answer can never be sent, so it is not served at all (as run.ts skips it):
  // an action run unanswered (a user created, a key revoked, a reload) is one its client never learns of.
  // Its body is read and dropped with the rest, so the lingering close does not stall on unread bytes.
  if (isLingering(req.socket)) return void req.resume();
  const path = pathOf(req);
  const method = req.method ?? 'GET';
  const token = deps.token ?? '';
  // Without a token a loopback listener is open to this machine, and to any web page its browser visits through DNS
  // rebinding (an attacker's name resolved to 127.0.0.1 passes the same-origin policy and reads /api/status or
  // /metrics): only a loopback Host is served then, as /reload already required. /ready stays open for probes.
  if (token === '' && path !== '/ready' && isLoopback(req.socket.localAddress ?? '') && !isLoopbackHost(req.headers.host)) {
    leaveBody(req, res);
    return void refuse(res, 403, 'Host must be a loopback name on a loopback listener');
  }
  // /ready (probes) and the dashboard's static files (the page asks for the token itself) stay open.
  if (token !== '' && path !== '/ready' && deps.dashboard.get(path) === undefined) {
    const check = checkAdminToken(req, token);
    if (check !== 'ok') {
      leaveBody(req, res);
      const challenge = check === 'missing' ? 'Bearer realm="portcullis-admin"' : 'Bearer realm="portcullis-admin", error="invalid_token"';
      return sendAdminError(res, new GatewayError('UNAUTHORIZED', { headers: { 'www-authenticate': challenge } }));
    }
  }
  if (path === '/admin' || path.startsWith('/admin/')) {
    // Without a token the users API does not exist: 404, as the issue asks, rather than an open door on loopback.
    if (token !== '' && deps.identityRoutes !== undefined && (await deps.identityRoutes(req, res, path))) return;
    leaveBody(req, res);
    return sendAdminError(res, new GatewayError('NOT_FOUND'));
  }
  leaveBody(req, res);
  if (path === '/reload') {
    if (method !== 'POST') return sendAdminError(res, methodNotAllowed('POST'));
    return reload(req, res, deps);
  }
  const asset = deps.dashboard.get(path);
  const known = asset !== undefined || path === '/metrics' || path === '/ready' || path === '/api/status';
  if (!known) return sendAdminError(res, new GatewayError('NOT_FOUND'));
  if (method !== 'GET' && method !== 'HEAD') return sendAdminError(res, methodNotAllowed('GET, HEAD'));
  if (asset !== undefined) return void send(res, 200, asset.type, asset.body, PAGE_HEADERS);
  switch (path) {
    case '/metrics':
      // The token was checked above, for this request: sharing the render shares no access.
      return void send(res, 200, deps.metrics.registry.contentType, await renders.metrics(), { 'cache-control': 'no-store' });
    case '/ready': {
      const report = await runReadiness(deps.readiness, deps.readinessTimeoutMs);
      if (report.ready) return void json(res, 200, { status: 'ready' });
      return void json(res, 503, { status: 'not_ready', checks: report.checks });
    }
    default:
      return void send(res, 200, JSON_TYPE, await renders.status(), { 'cache-control': 'no-store' });
  }
}

/** How long one metric's collection may take on a scrape: past it, that metric is left out of the scrape. */
const METRIC_COLLECT_TIMEOUT_MS = 2_000;
const COLLECT_TIMED_OUT = Symbol('timeout');

/**
 * The registry's text, as registry.metrics() writes it, but each metric collected on its own and bounded: a plugin may
 * register prom-client metrics of its own (api.metrics.registry), and one whose collection threw made every scrape a
 * 500, one that never settled held every scrape open. Such a metric is left out and logged (its name and the cause's
 * class, never its message, which is the plugin's words); the rest is served.
 */
async function scrapeMetrics(registry: Registry, logger: Logger): Promise<string> {
  const texts = await Promise.all(
    registry.getMetricsAsArray().map(async ({ name }) => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(COLLECT_TIMED_OUT), METRIC_COLLECT_TIMEOUT_MS)));
      try {
        return await Promise.race([registry.getSingleMetricAsString(name), late]);
      } catch (err) {
        logger.warn({ metric: name, cause: err === COLLECT_TIMED_OUT ? 'timeout' : errorClassOf(err) }, EVENTS.metricCollectFailed);
        return undefined;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return `${texts.filter((text) => text !== undefined).join('\n\n')}\n`;
}

/**
 * POST /reload. A browser page on another origin must not be able to trigger it (a form POST needs no preflight),
 * nor through DNS rebinding: on a loopback listener the Host header must name a loopback host too, since a
 * rebound attacker's name would pass the same-origin check.
 */
async function reload(req: IncomingMessage, res: ServerResponse, deps: AdminDeps): Promise<void> {
  const origin = req.headers.origin;
  if (origin !== undefined && !sameOrigin(origin, req.headers.host)) {
    return void refuse(res, 403, 'cross-origin request');
  }
  if (isLoopback(req.socket.localAddress ?? '') && !isLoopbackHost(req.headers.host)) {
    return void refuse(res, 403, 'Host must be a loopback name on a loopback listener');
  }
  if (deps.reload === undefined) return void refuse(res, 501, 'reload is not available');
  let result: ReloadResult;
  try {
    result = await deps.reload();
  } catch (err) {
    deps.logger.error({ cause: describeCause(err) }, EVENTS.adminError);
    return void json(res, 500, { status: 'failed', reason: 'reload failed' });
  }
  const note = result.note === undefined ? {} : { note: result.note };
  if (result.ok) return void json(res, 200, { status: 'reloaded', ...note });
  json(res, 400, { status: 'rejected', reason: result.reason ?? 'config rejected', ...note });
}

function isLoopback(address: string): boolean {
  return isLoopbackAddress(address);
}

function methodNotAllowed(allow: string): GatewayError {
  return new GatewayError('METHOD_NOT_ALLOWED', { headers: { allow } });
}

/**
 * A catalogue error on the admin listener, in the proxy listener's shape (reply.ts's errorBody): `{"error", "code",
 * "request_id"}` plus `details`, the error's own headers, and the id as X-Request-ID. The admin listener keeps no
 * per-request state, so the id is made here, for the error alone: it lets an operator quote a failure, and a 500's
 * id is the one its log line carries. Its successful answers (dashboard, /metrics, /ready) stay as they were.
 */
export function sendAdminError(res: ServerResponse, err: GatewayError, requestId: string = randomUUID()): void {
  const headers = { ...err.headers, 'x-request-id': requestId };
  writeJson(res, err.status, errorBody(err, requestId), headers, res.req.method === 'HEAD', ADMIN_ANSWER_HEADERS);
}

function sameOrigin(origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

const JSON_TYPE = 'application/json; charset=utf-8';

/** Sends `body` as JSON with no-store caching. */
/** A 403 or 501 of the admin port: `{error, reason}` (no catalogue code), with an X-Request-ID as its other errors. */
function refuse(res: ServerResponse, status: 403 | 501, reason: string): void {
  json(res, status, { error: status === 403 ? 'Forbidden' : 'Not Implemented', reason }, { 'x-request-id': randomUUID() });
}

export function json(res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  send(res, status, JSON_TYPE, Buffer.from(JSON.stringify(body)), { 'cache-control': 'no-store', ...headers });
}

function send(res: ServerResponse, status: number, type: string, body: Buffer, headers: Readonly<Record<string, string>>): void {
  res.writeHead(status, { ...headers, 'content-type': type, 'content-length': body.length });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

