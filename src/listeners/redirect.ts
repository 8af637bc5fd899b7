// The optional cleartext listener (server.http_redirect): every request is answered 308 to the same URL on https.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { deferContinue } from '../pipeline/expect-continue.js';
import { GatewayError } from '../errors.js';
import { authorityProblem, checkRequestHost } from '../pipeline/host-check.js';
import { errorBody, writeJson } from '../pipeline/reply.js';
import { keepAliveTimeoutFor } from './keep-alive.js';

/**
 * The https URL for a cleartext request: the Host header's name (its port dropped), `httpsPort` unless it is 443,
 * then the path and query unchanged. Undefined when the Host is missing or not a plain host name (never echoed).
 */
export function redirectLocation(host: string | undefined, url: string | undefined, httpsPort: number): string | undefined {
  // Only a value the proxy listener would accept too (host-check.ts): a plain name or address, optional port.
  if (host === undefined || host === '' || authorityProblem(host) !== undefined) return undefined;
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!;
  const path = url !== undefined && url.startsWith('/') ? url : '/';
  return `https://${name.toLowerCase()}${httpsPort === 443 ? '' : `:${httpsPort}`}${path}`;
}

/** An HTTP/1.0 request without Host, or an empty Host: acceptable to the proxy listener, but nowhere to redirect to. */
const NO_HOST = new GatewayError('BAD_REQUEST', { details: 'no Host to redirect to' });

/**
 * The redirect server. 308 (not 301) so a POST stays a POST; `httpsPort` is read per request because the TLS
 * listener's port is known only once it listens (port 0 in tests). The Host is checked as the proxy listener checks
 * it (host-check.ts: a second Host line, an authority a backend could read as another host, no Host in HTTP/1.1), and
 * refused with the same 400: a request the https listener would refuse is not redirected there either, and never to
 * the first of two Host lines, where another reader could take the last.
 */
export function createRedirectServer(httpsPort: () => number, proxyBy: string, timeouts: { header: number; idle: number }): Server {
  const server = createServer(
    // requireHostHeader off, as on the proxy port: a missing Host gets the gateway's 400 below, not node's bare one.
    { headersTimeout: timeouts.header, requestTimeout: timeouts.header * 2, keepAliveTimeout: keepAliveTimeoutFor(timeouts.idle), requireHostHeader: false },
    (req: IncomingMessage, res: ServerResponse) => {
      // The body, if any, is not wanted: drain it so the connection can be reused.
      req.resume();
      const refused = checkRequestHost(req);
      const location = refused === undefined ? redirectLocation(req.headers.host, req.url, httpsPort()) : undefined;
      if (location === undefined) {
        const err = refused ?? NO_HOST;
        writeJson(res, err.status, errorBody(err, undefined), { 'x-proxy-by': proxyBy }, req.method === 'HEAD');
        return;
      }
      res.writeHead(308, { location, 'content-length': 0, 'x-proxy-by': proxyBy });
      res.end();
    },
  );
  server.on('clientError', (_err, socket) => socket.destroy());
  // No 100 Continue before the 308: the body is never wanted (node then closes the connection after the answer).
  deferContinue(server);
  return server;
}
