// The optional cleartext listener (server.http_redirect): every request is answered 308 to the same URL on https.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { authorityProblem } from '../pipeline/host-check.js';

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

/**
 * The redirect server. 308 (not 301) so a POST stays a POST; `httpsPort` is read per request because the TLS
 * listener's port is known only once it listens (port 0 in tests).
 */
export function createRedirectServer(httpsPort: () => number, proxyBy: string, timeouts: { header: number; idle: number }): Server {
  const server = createServer(
    { headersTimeout: timeouts.header, requestTimeout: timeouts.header * 2, keepAliveTimeout: timeouts.idle },
    (req: IncomingMessage, res: ServerResponse) => {
      // The body, if any, is not wanted: drain it so the connection can be reused.
      req.resume();
      const location = redirectLocation(req.headers.host, req.url, httpsPort());
      if (location === undefined) {
        const body = '{"error":"Bad Request"}';
        res.writeHead(400, { 'content-type': 'application/json', 'content-length': body.length, 'x-proxy-by': proxyBy });
        res.end(body);
        return;
      }
      res.writeHead(308, { location, 'content-length': 0, 'x-proxy-by': proxyBy });
      res.end();
    },
  );
  server.on('clientError', (_err, socket) => socket.destroy());
  return server;
}
