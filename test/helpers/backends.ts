// Real node:http test backends on loopback: echo, hashed uploads, sized downloads, slow answers, WebSocket-style upgrades.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { after } from 'node:test';
import { freePort } from './ports.js';

/** What the echo route reports back. */
export interface EchoBody {
  backend: string;
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface TestBackend {
  readonly name: string;
  readonly port: number;
  /** Requests this backend has received. */
  readonly hits: number;
  /** Requests currently being answered. */
  readonly active: number;
  /** Stops listening and drops its connections (the port stays known, for restart()). */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  restart(): Promise<void>;
}

/**
 * A safety net: a test that fails between starting its backend and the try/finally or after() that stops it (a
 * gateway that did not start in time) left the backend listening, and its file then hung until the runner's
 * 10-minute timeout. Registered when this module is first imported (a test file's top level), the hook belongs to
 * the file's root and runs once all its tests are done. (Called from a test or a before hook, after() would attach to
 * that test or hook instead, and stop a backend still in use.)
 */
const running = new Set<() => Promise<void>>();
after(stopLeftoverBackends);

/**
 * Stops every backend still running. npm test runs several files in one process (scripts/test-batch.mjs), where this
 * module is imported once: it calls this at the end of each file.
 */
export async function stopLeftoverBackends(): Promise<void> {
  for (const stop of running) await stop();
}

export interface BackendOptions {
  /**
   * node:http's keepAliveTimeout (default 5 s, node's own): how long after its last response the backend keeps an idle
   * connection; node closes it one second later still. Short, it closes right after a download it has handed to the
   * kernel whole, while the gateway may still be reading it.
   */
  keepAliveTimeoutMs?: number;
}

/**
 * Starts a backend on 127.0.0.1 (port 0 = any free port). Routes:
 * - `/upload` (any method): streams the body through SHA-256, answers {"sha256","bytes"}; `?pause_ms=N` reads
 *   nothing for the first N ms (backpressure tests)
 * - `/download?bytes=N`: streams N bytes of a fixed pattern (content-length set), respecting backpressure
 * - `/slow?ms=N`: answers after N ms
 * - `/status?code=N`: answers that status
 * - `/hop`: answers with hop-by-hop headers of its own (Connection: X-Secret, X-Secret, Keep-Alive)
 * - `/ws` (Upgrade): switches protocols and echoes every byte back
 * - anything else: JSON {backend, method, url, headers}, plus x-echo-method / x-echo-url response headers
 */
export async function startBackend(name: string, port = 0, options: BackendOptions = {}): Promise<TestBackend> {
  let hits = 0;
  let active = 0;
  const sockets = new Set<Socket>();
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    hits++;
    active++;
    res.once('close', () => active--);
    const url = new URL(req.url ?? '/', 'http://x');
    res.setHeader('x-backend', name);
    switch (url.pathname) {
      case '/upload': {
        const hash = createHash('sha256');
        let bytes = 0;
        // ?pause_ms=N: read nothing for N ms first, so the sender (the gateway) must hold back rather than buffer.
        const pauseMs = Number(url.searchParams.get('pause_ms') ?? '0');
        req.pause();
        const timer = setTimeout(() => {
          req.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
            hash.update(chunk);
          });
          req.on('end', () => json(res, 200, { sha256: hash.digest('hex'), bytes }));
          req.resume();
        }, pauseMs);
        res.once('close', () => clearTimeout(timer));
        return;
      }
      case '/download': {
        const total = Number(url.searchParams.get('bytes') ?? '0');
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
        streamPattern(res, total);
        return;
      }
      case '/slow': {
        const timer = setTimeout(() => json(res, 200, { backend: name, slow: true }), Number(url.searchParams.get('ms') ?? '1000'));
        res.once('close', () => clearTimeout(timer));
        req.resume();
        return;
      }
      case '/status':
        req.resume();
        json(res, Number(url.searchParams.get('code') ?? '200'), { backend: name });
        return;
      case '/hop':
        req.resume();
        res.writeHead(200, { connection: 'X-Secret', 'x-secret': 'leak', 'keep-alive': 'timeout=5', 'content-type': 'text/plain' });
        res.end(name);
        return;
      default:
        req.resume();
        // Also in headers, for bodiless answers (HEAD).
        res.setHeader('x-echo-method', req.method ?? '');
        res.setHeader('x-echo-url', req.url ?? '');
        json(res, 200, { backend: name, method: req.method ?? '', url: req.url ?? '', headers: req.headers } satisfies EchoBody);
    }
  };
  const keepAliveTimeout = options.keepAliveTimeoutMs ?? 5_000;
  let server = makeServer(handler, sockets, keepAliveTimeout);
  // A port of our own rather than bind(0)'s, so that restart() can listen on it again (see ports.ts).
  const actualPort = port === 0 ? await freePort() : port;
  await listen(server, actualPort);
  const stop = (): Promise<void> =>
    new Promise<void>((resolve) => {
      server.close(() => resolve()); // called back with ERR_SERVER_NOT_RUNNING once stopped: stop() may run twice
      for (const s of sockets) s.destroy();
    });
  running.add(stop);
  return {
    name,
    port: actualPort,
    get hits() {
      return hits;
    },
    get active() {
      return active;
    },
    stop,
    async restart() {
      server = makeServer(handler, sockets, keepAliveTimeout);
      await listen(server, actualPort);
    },
  };
}

function makeServer(handler: (req: IncomingMessage, res: ServerResponse) => void, sockets: Set<Socket>, keepAliveTimeout: number): Server {
  const server = createServer({ keepAliveTimeout }, handler);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nupgrade: ${req.headers.upgrade ?? 'websocket'}\r\nconnection: Upgrade\r\nx-backend-upgrade: yes\r\n\r\n`,
    );
    if (head.length > 0) socket.write(head);
    socket.pipe(socket);
  });
  return server;
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** 64 KiB of a repeating byte pattern; downloads are made of it, so a test can hash the expected bytes itself. */
export const PATTERN_CHUNK = Buffer.alloc(64 * 1024, 'portcullis-0123456789');

function streamPattern(res: ServerResponse, total: number): void {
  let left = total;
  const pump = (): void => {
    while (left > 0) {
      const n = Math.min(left, PATTERN_CHUNK.length);
      left -= n;
      const ok = res.write(n === PATTERN_CHUNK.length ? PATTERN_CHUNK : PATTERN_CHUNK.subarray(0, n));
      if (!ok) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
}

/** SHA-256 of `total` bytes of the download pattern, computed without holding them all. */
export function patternSha256(total: number): string {
  const hash = createHash('sha256');
  let left = total;
  while (left > 0) {
    const n = Math.min(left, PATTERN_CHUNK.length);
    hash.update(n === PATTERN_CHUNK.length ? PATTERN_CHUNK : PATTERN_CHUNK.subarray(0, n));
    left -= n;
  }
  return hash.digest('hex');
}

/** A loopback port nothing listens on: connections to it are refused (below the ephemeral range, see ports.ts). */
export function closedPort(): Promise<number> {
  return freePort();
}
