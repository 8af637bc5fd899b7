// An upstream that counts the requests it holds open, for tests of what a departed or timed-out client frees.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { freePort } from './ports.js';

export interface CountingUpstream {
  readonly port: number;
  /** Requests received whose response has not closed yet (a request the gateway aborted closes at once). */
  readonly open: number;
  /** Requests received in all. */
  readonly received: number;
  /** Request bodies that arrived complete (a body cut short by an abort never counts). */
  readonly bodiesEnded: number;
  close(): Promise<void>;
}

/**
 * Starts a node:http upstream on 127.0.0.1. By path prefix:
 * - `/hold`: reads the body, answers 200 `holdMs` after the request arrived (or never, if aborted first)
 * - `/early`: sends its 200 headers at once, reads the body, ends the response when the request body ends
 * - `/tick`: as `/early`, and writes one byte of response body every 200 ms meanwhile (a server pushing on a stream)
 * - anything else: reads the body, answers 200 once it has ended
 */
export async function startCountingUpstream(holdMs: number): Promise<CountingUpstream> {
  let open = 0;
  let received = 0;
  let bodiesEnded = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    received++;
    open++;
    res.once('close', () => open--);
    req.once('end', () => bodiesEnded++);
    const path = req.url ?? '/';
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
  });
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
    close() {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
