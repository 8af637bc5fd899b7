// The fuzz harness's backend: answers every request, and records any that arrived with a non-canonical path or a
// header the gateway owns that the gateway did not write itself.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { isCanonicalTarget } from '../src/pipeline/path-check.js';
import { DEFAULT_OWNED_HEADERS } from '../src/proxy/owned-headers.js';
import { SPOOF } from './cases.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Fields that end at the gateway: never forwarded to an HTTP/1 upstream (te: trailers goes to gRPC upstreams only). */
const HOP_BY_HOP = ['te', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'trailer', 'http2-settings', 'expect'];

/** Why a request as the backend saw it breaks a gateway guarantee, or undefined when it does not. */
export function violationOf(url: string, headers: IncomingMessage['headers']): string | undefined {
  for (const name of HOP_BY_HOP) if (headers[name] !== undefined) return `hop-by-hop ${name}: ${JSON.stringify(String(headers[name]).slice(0, 100))}`;
  if (!isCanonicalTarget(url)) return `non-canonical path ${JSON.stringify(url.slice(0, 200))}`;
  for (const [name, value] of Object.entries(headers)) {
    const text = Array.isArray(value) ? value.join(', ') : String(value);
    if (text.includes(SPOOF)) return `client value reached the backend in ${name}`;
    const ownership = DEFAULT_OWNED_HEADERS.ownership(name);
    if (ownership === 'none') continue;
    if (name.includes('_')) return `owned header spelled ${name}`;
    if (name === 'x-request-id' && UUID.test(text)) continue;
    if (name === 'x-forwarded-for' && text === '127.0.0.1') continue;
    if (name === 'x-forwarded-proto' && text === 'http') continue;
    if (name === 'x-forwarded-host' && text === headers.host) continue;
    return `owned header ${name}: ${JSON.stringify(text.slice(0, 100))}`;
  }
  return undefined;
}

export interface WatchBackend {
  readonly port: number;
  readonly hits: number;
  readonly violations: readonly string[];
  stop(): Promise<void>;
}

/** Starts the watching backend on 127.0.0.1. `/…/big` answers 1 MB, `/…/slow` after 200 ms, the rest a small JSON. */
export async function startWatchBackend(): Promise<WatchBackend> {
  let hits = 0;
  const violations: string[] = [];
  const sockets = new Set<Socket>();
  const check = (req: IncomingMessage): void => {
    hits++;
    const problem = violationOf(req.url ?? '', req.headers);
    if (problem !== undefined && violations.length < 100) violations.push(problem);
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    check(req);
    req.on('error', () => undefined);
    req.resume();
    req.once('end', () => {
      // Trailers too: a client's chunked trailers are dropped, so one that arrives carries a spoof or an owned name.
      for (const [name, value] of Object.entries(req.trailers)) {
        const text = String(value);
        if (violations.length < 100 && (text.includes(SPOOF) || DEFAULT_OWNED_HEADERS.ownership(name) !== 'none')) violations.push(`trailer ${name}: ${JSON.stringify(text.slice(0, 100))} on ${req.url}`);
      }
    });
    const url = req.url ?? '/';
    const answer = (): void => {
      if (url.endsWith('/big')) {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 1024 * 1024 });
        res.end(Buffer.alloc(1024 * 1024, 0x62));
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
      }
    };
    req.once('end', () => (url.endsWith('/slow') ? setTimeout(answer, 200) : answer()));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    check(req);
    socket.on('error', () => undefined);
    socket.end('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('clientError', (_err, socket: Socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    get hits() {
      return hits;
    },
    violations,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
