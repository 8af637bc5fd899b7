// The optional cleartext listener (server.http_redirect): every request is answered 308 to the same URL on https.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { deferContinue } from '../pipeline/expect-continue.js';
import { GatewayError } from '../errors.js';
import { authorityProblem, checkRequestHost } from '../pipeline/host-check.js';
import { checkRequestTarget } from '../pipeline/path-check.js';
import { checkProtocol } from '../pipeline/protocol-check.js';
import { errorBody, writeJson } from '../pipeline/reply.js';
import { declaresBody, leaveBody } from '../pipeline/request-body.js';
import { keepAliveTimeoutFor } from './keep-alive.js';
import type { Socket } from 'node:net';
import { clientErrorHandler, clientOf, pipelinedRefusals, refusalLogOf } from './proxy-events.js';
import { answerAndClose } from './raw-answer.js';
import { oneRequestAtATime } from './pipelining.js';

/**
 * The https URL for a cleartext request: the Host header's name (its port dropped, one trailing dot dropped),
 * `httpsPort` unless it is 443, then the path and query unchanged. Undefined when the Host is missing or not a plain
 * host name (never echoed).
 */
export function redirectLocation(host: string | undefined, url: string | undefined, httpsPort: number): string | undefined {
  // Only a value the proxy listener would accept too (host-check.ts): a plain name or address, optional port.
  if (host === undefined || host === '' || authorityProblem(host) !== undefined) return undefined;
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : withoutRootDot(host.split(':')[0]!);
  const path = url !== undefined && url.startsWith('/') ? url : '/';
  return `https://${name.toLowerCase()}${httpsPort === 443 ? '' : `:${httpsPort}`}${path}`;
}

/**
 * "example.com." names the same host as "example.com", as the gateway reads it everywhere (host-check.ts accepts one
 * trailing dot, routes and SNI ignore it): the redirect goes to the name without it, as nginx's `$host` has it
 * (Envoy's with strip_trailing_host_dot), so the https request's SNI carries no dot (RFC 6066 §3) and the browser
 * keeps one origin for the host. Only one dot: host-check.ts has already refused a second (an empty label).
 */
function withoutRootDot(name: string): string {
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

/** An HTTP/1.0 request without Host, or an empty Host: acceptable to the proxy listener, but nowhere to redirect to. */
const NO_HOST = new GatewayError('BAD_REQUEST', { details: 'no Host to redirect to' });

/**
 * The https listener's refusal of CONNECT (protocol-check.ts: 405, Allow naming the methods routes forward), taken
 * from its own check so the two ports cannot drift apart: the gateway is no forward proxy on either.
 */
const CONNECT_REFUSED = checkProtocol({ method: 'CONNECT', httpVersionMajor: 1, httpVersionMinor: 1, headers: {} })!;

/**
 * The 405 to a CONNECT as raw text: node hands a CONNECT over with its socket and no ServerResponse (and, with no
 * 'connect' listener, closed that socket without a word). The shape of this listener's other refusals (writeJson:
 * the catalogue body without request_id, no-store, X-Proxy-By), the error's Allow, and Connection: close, since what
 * the client sends after a CONNECT head is a tunnel's bytes, not HTTP.
 */
function connectRefusal(proxyBy: string): string {
  const body = JSON.stringify(errorBody(CONNECT_REFUSED, undefined));
  let own = '';
  for (const [name, value] of Object.entries(CONNECT_REFUSED.headers ?? {})) own += `${name}: ${value}\r\n`;
  return (
    `HTTP/1.1 ${CONNECT_REFUSED.status} ${CONNECT_REFUSED.message}\r\ncontent-type: application/json; charset=utf-8\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\n${own}x-proxy-by: ${proxyBy}\r\nconnection: close\r\n\r\n${body}`
  );
}

/**
 * The 308 (or the 400 of a target or Host the https listener would refuse). The body, if any, is not wanted. One
 * already in is drained and the connection reused; one still on its way closes the connection after the answer,
 * lingering (as the proxy port's refusals do): drained on a kept-alive connection, a body that then stalled ran into
 * node's request timeout, which wrote a 408 (and logged a refusal) after the 308 the request had already been given.
 */
function answerRedirect(req: IncomingMessage, res: ServerResponse, httpsPort: number, proxyBy: string): void {
  if (res.destroyed) return;
  leaveBody(req, res);
  const refused = checkRequestTarget(req.url) ?? checkRequestHost(req);
  const location = refused === undefined ? redirectLocation(req.headers.host, req.url, httpsPort) : undefined;
  if (location === undefined) {
    const err = refused ?? NO_HOST;
    writeJson(res, err.status, errorBody(err, undefined), { 'x-proxy-by': proxyBy }, req.method === 'HEAD');
    return;
  }
  res.writeHead(308, { location, 'content-length': 0, 'x-proxy-by': proxyBy });
  res.end();
}

/** The client timeouts the redirect listener reads (server.timeouts). */
export interface RedirectTimeouts {
  readonly header: number;
  readonly request: number;
  readonly idle: number;
}

/**
 * node:http's timeouts of the redirect server: timeouts.header for the head, twice that for the whole request (its
 * body is never wanted, only drained), timeouts.idle between requests. With timeouts.header at 0 (off) the whole
 * request is bounded by timeouts.request, as on the proxy port: twice 0 was no bound at all, and a connection that
 * sent nothing, or trickled its head or body, held a redirect connection (and its client's connection slot) for good.
 */
function serverTimeouts(timeouts: RedirectTimeouts): { headersTimeout: number; requestTimeout: number; keepAliveTimeout: number } {
  const requestTimeout = timeouts.header > 0 ? timeouts.header * 2 : timeouts.request;
  return { headersTimeout: timeouts.header, requestTimeout, keepAliveTimeout: keepAliveTimeoutFor(timeouts.idle) };
}

/** A reload's client timeouts, for the next request and the next idle wait (node reads the properties then). */
export function applyRedirectTimeouts(server: Server, timeouts: RedirectTimeouts): void {
  Object.assign(server, serverTimeouts(timeouts));
}

/**
 * The redirect server. 308 (not 301) so a POST stays a POST; `httpsPort` is read per request because the TLS
 * listener's port is known only once it listens (port 0 in tests). The request target and the Host are checked as
 * the proxy listener checks them (path-check.ts: only a canonical origin-form target, so no absolute-form
 * `http://other/x`, no `*`, no `//x`; host-check.ts: a second Host line, an authority a backend could read as another
 * host, no Host in HTTP/1.1), and refused with the same 400: a request the https listener would refuse is not
 * redirected there either, and never to the first of two Host lines, where another reader could take the last.
 * `http1` is the proxy port's node:http settings (proxy-listener.ts: no node-made 400 for a missing Host, and the
 * check interval that enforces the header timeout in time). A head node's parser refuses, or one not complete
 * within timeouts.header, gets the proxy port's raw answer (400, 408, 431: proxy-events.ts), then the close. A
 * CONNECT gets the https listener's 405 (connectRefusal), then the close. `proxyBy` is read per answer (a reload may
 * change it).
 */
export function createRedirectServer(
  httpsPort: () => number,
  proxyBy: () => string,
  timeouts: RedirectTimeouts,
  http1: { readonly requireHostHeader: boolean; readonly connectionsCheckingInterval: number },
): Server {
  const server = createServer({ ...http1, ...serverTimeouts(timeouts) });
  // Its refusals with no request behind them get the proxy port's Connection Refused line (proxy-events.ts), to the
  // log the composition root registers for this server (server.ts): they were written unlogged.
  const logRefusal = refusalLogOf(server);
  const answer = (req: IncomingMessage, res: ServerResponse): void => answerRedirect(req, res, httpsPort(), proxyBy());
  // Pipelined requests one at a time, as on the proxy port (pipelining.ts): node parses a whole read (some 2,500 short
  // requests) and goes on reading while the answers queue, so a client that pipelined without reading them made the
  // gateway hold every 308 it asked for. Now more than 128 waiting close the connection.
  server.on(
    'request',
    oneRequestAtATime((req: IncomingMessage, res: ServerResponse) => {
      // node hands the request over from its head, before it parses the rest of the same read: a body that came
      // with the head is in only after that, so the answer to a request with a body waits for it (leaveBody).
      if (declaresBody(req.headers)) setImmediate(answer, req, res);
      else answer(req, res);
    }, pipelinedRefusals(logRefusal)),
  );
  // Cleartext: no HSTS on these answers (RFC 6797 §7.2).
  server.on('clientError', clientErrorHandler(proxyBy, () => '', logRefusal));
  // CONNECT: answered, reading stopped, the socket closed once the answer is out (or after answerAndClose's bound).
  // node hands an HTTP/1 CONNECT over with the connection's net.Socket. The answer carries no request id: none logged.
  server.on('connect', (_req: IncomingMessage, socket: Socket) => {
    answerAndClose(socket, connectRefusal(proxyBy()));
    logRefusal({ client: clientOf(socket), status: CONNECT_REFUSED.status, error: CONNECT_REFUSED.code });
  });
  // No 100 Continue before the 308: the body is never wanted (node then closes the connection after the answer).
  deferContinue(server);
  return server;
}
