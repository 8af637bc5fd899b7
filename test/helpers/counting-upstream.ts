// An upstream that counts the requests it holds open, for tests of what a departed or timed-out client frees.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createH2cServer, type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from 'node:http2';
import { freePort } from './ports.js';

export interface CountingUpstream {
  readonly port: number;
  /** Requests received whose response has not closed yet (a request the gateway aborted closes at once). */
  readonly open: number;
  /** Requests received in all. */
  readonly received: number;
  /**
   * Request bodies that arrived complete (a body cut short by an abort never counts). Every request counts, the
   * gateway's own health-check probes (a GET / every 5 s by default) too: a test asserting on one request's body
   * reads bodiesEndedFor(its path).
   */
  readonly bodiesEnded: number;
  /** Request bodies of requests whose path starts with `prefix` that arrived complete. */
  bodiesEndedFor(prefix: string): number;
  close(): Promise<void>;
}

/**
 * Starts a node:http upstream on 127.0.0.1. By path prefix:
 * - `/hold`: reads the body, answers 200 `holdMs` after the request arrived (or never, if aborted first)
 * - `/early`: sends its 200 headers at once, reads the body, ends the response when the request body ends
 * - `/tick`: as `/early`, and writes one byte of response body every 200 ms meanwhile (a server pushing on a stream)
 * - anything else: reads the body, answers 200 once it has ended
 * `h2c`: the same over HTTP/2 with prior knowledge (a service with `http2: true`, which gRPC calls need).
 */
export async function startCountingUpstream(holdMs: number, options: { readonly h2c?: boolean } = {}): Promise<CountingUpstream> {
  let open = 0;
  let received = 0;
  let bodiesEnded = 0;
  const endedPaths: string[] = [];
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    received++;
    open++;
    res.once('close', () => open--);
    const path = req.url ?? '/';
    req.once('end', () => {
      bodiesEnded++;
      endedPaths.push(path);
    });
    if (path.startsWith('/hold')) {
      req.resume();
      const timer = setTimeout(() => res.end('late'), holdMs);
      res.once('close', () => clearTimeout(timer));
      return;
    }
    if (path.startsWith('/early') || path.startsWith('/tick')) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.flushHeaders();
      req.resume();
      req.once('end', () => res.end('done'));
      if (path.startsWith('/tick')) {
        const ticks = setInterval(() => res.write('.'), 200);
        res.once('close', () => clearInterval(ticks));
      }
      return;
    }
    req.resume();
    req.once('end', () => res.end('ok'));
  };
  const sessions = new Set<Http2Session>();
  const server = options.h2c
    ? createH2cServer((req: Http2ServerRequest, res: Http2ServerResponse) => handle(req as unknown as IncomingMessage, res as unknown as ServerResponse))
    : createServer(handle);
  if (options.h2c) {
    server.on('session', (session: Http2Session) => {
      sessions.add(session);
      session.once('close', () => sessions.delete(session));
    });
  }
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    get open() {
      return open;
    },
    get received() {
      return received;
    },
    get bodiesEnded() {
      return bodiesEnded;
    },
    bodiesEndedFor(prefix: string) {
      return endedPaths.filter((p) => p.startsWith(prefix)).length;
    },
    close() {
      if ('closeAllConnections' in server) server.closeAllConnections();
      for (const session of sessions) session.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
