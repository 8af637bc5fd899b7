// A WebSocket routed to a service with `http2: true` goes to the same upstream over HTTP/1.1, as Traefik and nginx
// send it: over TLS on a connection that offers ALPN http/1.1 alone, over cleartext (h2c) as a plain HTTP/1.1
// Upgrade request. Ordinary requests of the service still go over HTTP/2. Before, every such WebSocket was answered
// 502 proxy_error (undici cannot open one over HTTP/2 without extended CONNECT), so a gRPC + WebSocket backend could
// not sit behind one service. An upstream that speaks h2 alone fails the HTTP/1.1 handshake: 502, as any failed one.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { createSecureServer, createServer as createH2cServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import { connect, createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, parseHead, readUntil, responseUntilClose } from '../helpers/raw.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const WS_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/** What a backend saw: each plain request's HTTP version, each Upgrade's HTTP version and ALPN, its sockets. */
interface Seen {
  readonly plain: string[];
  readonly upgrades: Array<{ version: string; alpn: string | false | null | undefined }>;
  /** The connections that carried an Upgrade (closed with the backend: node's servers keep them out of closeAllConnections). */
  readonly upgradeSockets: Socket[];
}

function newSeen(): Seen {
  return { plain: [], upgrades: [], upgradeSockets: [] };
}

/** Answers a plain (h2 or HTTP/1.1) request with the HTTP version it came over. */
function plainHandler(seen: Seen) {
  return (req: IncomingMessage | Http2ServerRequest, res: Http2ServerResponse | import('node:http').ServerResponse): void => {
    seen.plain.push(req.httpVersion);
    const body = `plain ${req.httpVersion}`;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
}

/** One WebSocket frame (FIN, text): masked as a client sends it, unmasked as a server does. */
function frame(payload: string, masked: boolean): Buffer {
  const data = Buffer.from(payload);
  assert.ok(data.length < 126);
  if (!masked) return Buffer.concat([Buffer.from([0x81, data.length]), data]);
  const mask = Buffer.from([1, 2, 3, 4]);
  const body = Buffer.from(data.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([0x81, 0x80 | data.length]), mask, body]);
}

/** The payload of the first complete frame in `buf` (masked or not), or undefined while it is incomplete. */
function readFrame(buf: Buffer): string | undefined {
  if (buf.length < 2) return undefined;
  const length = buf[1]! & 0x7f;
  const masked = (buf[1]! & 0x80) !== 0;
  const start = 2 + (masked ? 4 : 0);
  if (buf.length < start + length) return undefined;
  const payload = buf.subarray(start, start + length);
  if (!masked) return payload.toString();
  const mask = buf.subarray(2, 6);
  return Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!)).toString();
}

/** A WebSocket server's 'upgrade' handler: switched (RFC 6455 accept), it echoes each frame it gets back, unmasked. */
function upgradeHandler(seen: Seen) {
  return (req: IncomingMessage, socket: Socket, head: Buffer): void => {
    seen.upgrades.push({ version: req.httpVersion, alpn: (socket as TLSSocket).alpnProtocol });
    seen.upgradeSockets.push(socket);
    socket.on('error', () => undefined);
    const accept = createHash('sha1').update(`${String(req.headers['sec-websocket-key'])}${WS_GUID}`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    let pending = head;
    const onData = (chunk: Buffer): void => {
      pending = Buffer.concat([pending, chunk]);
      const payload = readFrame(pending);
      if (payload === undefined) return;
      pending = Buffer.alloc(0);
      socket.write(frame(`echo: ${payload}`, false));
    };
    socket.on('data', onData);
    socket.on('end', () => socket.end());
    if (head.length > 0) onData(Buffer.alloc(0));
  };
}

interface Backend {
  readonly port: number;
  readonly seen: Seen;
  close(): Promise<void>;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

/** Closes a backend's server with every connection it holds (upgraded ones included). */
function closer(server: Server & { closeAllConnections?: () => void }, seen: Seen, extra: Array<() => void> = []): () => Promise<void> {
  return () => {
    for (const s of seen.upgradeSockets) s.destroy();
    for (const f of extra) f();
    server.closeAllConnections?.();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  };
}

/** An HTTPS backend that speaks h2 and http/1.1 (ALPN), serving plain requests and WebSockets. */
async function tlsBackend(cert: Buffer, key: Buffer): Promise<Backend> {
  const seen = newSeen();
  const server = createSecureServer({ cert, key, allowHTTP1: true }, plainHandler(seen));
  const sessions = new Set<import('node:http2').ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  server.on('upgrade', upgradeHandler(seen));
  const port = await listen(server as unknown as Server);
  return { port, seen, close: closer(server as unknown as Server, seen, [() => { for (const s of sessions) s.destroy(); }]) };
}

/**
 * A cleartext backend that speaks both h2c (prior knowledge: the connection preface) and HTTP/1.1, as an h2c-capable
 * server (Envoy, nginx with `http2 on`, Go's h2c handler) does: the first bytes pick the protocol. The front relays
 * each connection to an HTTP/2 or an HTTP/1.1 server of its own (node's HTTP/2 server reads its socket's handle
 * directly, so a sniffed socket cannot be handed over with its first bytes).
 */
async function h2cAndHttp1Backend(): Promise<Backend> {
  const seen = newSeen();
  const h2 = createH2cServer(plainHandler(seen));
  const h1 = createHttpServer(plainHandler(seen));
  h1.on('upgrade', upgradeHandler(seen));
  const h2Port = await listen(h2 as unknown as Server);
  const h1Port = await listen(h1 as unknown as Server);
  const sockets = new Set<Socket>();
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const front = createNetServer((socket) => {
    track(socket);
    socket.once('data', (first: Buffer) => {
      socket.pause();
      const inner = connect(first.toString('latin1').startsWith('PRI * HTTP/2.0') ? h2Port : h1Port, '127.0.0.1');
      track(inner);
      inner.write(first);
      socket.pipe(inner).pipe(socket);
      socket.once('close', () => inner.destroy());
      inner.once('close', () => socket.destroy());
    });
  });
  const port = await listen(front);
  const closeInner = async (): Promise<void> => {
    h1.closeAllConnections();
    await Promise.all([h1, h2].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  };
  const closeFront = closer(front, seen, [() => { for (const s of sockets) s.destroy(); }]);
  return { port, seen, close: async () => { await closeFront(); await closeInner(); } };
}

/** A cleartext backend that speaks h2c alone: an HTTP/1.1 request is not an HTTP/2 preface, and is refused. */
async function h2cOnlyBackend(): Promise<Backend> {
  const seen = newSeen();
  const h2 = createH2cServer(plainHandler(seen));
  const sockets = new Set<Socket>();
  h2.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const port = await listen(h2 as unknown as Server);
  return { port, seen, close: closer(h2 as unknown as Server, seen, [() => { for (const s of sockets) s.destroy(); }]) };
}

/** A plain GET through the gateway (HTTP/1.1, Connection: close): status and body. */
async function get(gw: InProcessGateway, path: string): Promise<{ status: number; body: string }> {
  const socket = await openSocket(gw.gateway.port);
  socket.on('error', () => undefined);
  const answer = responseUntilClose(socket, 10_000);
  socket.write(`GET ${path} HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n`);
  const res = await answer;
  return { status: res.status, body: res.body };
}

interface Handshake {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly socket: Socket;
  /** What came after the head (an error's body). */
  readonly rest: Buffer;
}

/** A WebSocket handshake through the gateway: the response head, and the socket for what follows. */
async function handshake(gw: InProcessGateway, path: string): Promise<Handshake> {
  const socket = await openSocket(gw.gateway.port);
  socket.on('error', () => undefined);
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  const data = await readUntil(socket, (d) => d.includes('\r\n\r\n'), 10_000);
  const end = data.indexOf('\r\n\r\n');
  const head = parseHead(data.subarray(0, end).toString('latin1'));
  return { ...head, socket, rest: data.subarray(end + 4) };
}

/** Sends one masked frame on an open tunnel and returns the payload of the frame that comes back. */
async function echo(socket: Socket, text: string): Promise<string> {
  socket.write(frame(text, true));
  const data = await readUntil(socket, (d) => readFrame(d) !== undefined, 10_000);
  return readFrame(data)!;
}

describe('WebSocket to a service with http2: true', () => {
  const pki = pkiDir();
  let tls: Backend;
  let both: Backend;
  let h2only: Backend;
  let gw: InProcessGateway;

  before(async () => {
    const ca = createTestCa('Upstream CA', pki.path);
    const cert = ca.issue('api.internal');
    tls = await tlsBackend(cert.cert, cert.key);
    both = await h2cAndHttp1Backend();
    h2only = await h2cOnlyBackend();
    const health = { enabled: false };
    gw = await startInProcess({
      services: {
        tls: {
          http2: true,
          tls: { enabled: true, ca_file: ca.caFile, servername: 'api.internal' },
          upstreams: [{ name: 't', address: '127.0.0.1', port: tls.port }],
          health_check: health,
        },
        h2c: { http2: true, upstreams: [{ name: 'c', address: '127.0.0.1', port: both.port }], health_check: health },
        h2only: { http2: true, retries: 0, upstreams: [{ name: 'o', address: '127.0.0.1', port: h2only.port }], health_check: health },
      },
      routes: [
        { name: 'tls', match: { path_prefix: '/tls/' }, service: 'tls' },
        { name: 'h2c', match: { path_prefix: '/h2c/' }, service: 'h2c' },
        { name: 'h2only', match: { path_prefix: '/h2only/' }, service: 'h2only' },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await Promise.allSettled([tls, both, h2only].filter((b) => b !== undefined).map((b) => b.close()));
    pki.remove();
  });

  /** The in-flight count of each upstream, by name, as /api/status shows it (least_conn reads the same count). */
  async function inFlight(): Promise<Record<string, number>> {
    const status = (await (await fetch(`${gw.adminUrl}/api/status`)).json()) as { upstreams: Array<{ name: string; in_flight: number }> };
    return Object.fromEntries(status.upstreams.map((u) => [u.name, u.in_flight]));
  }

  for (const [name, prefix, backend, alpn, upstream] of [
    ['over TLS (ALPN http/1.1 only)', '/tls', () => tls, 'http/1.1', 't'],
    ['over cleartext h2c (a plain HTTP/1.1 Upgrade)', '/h2c', () => both, undefined, 'c'],
  ] as const) {
    test(`${name}: plain requests stay on HTTP/2, a WebSocket gets 101 over HTTP/1.1, echoes, and its tunnel is logged`, { timeout: 30_000 }, async () => {
      const seen = backend().seen;
      assert.deepEqual(await get(gw, `${prefix}/plain`), { status: 200, body: 'plain 2.0' });

      const hs = await handshake(gw, `${prefix}/ws/chat`);
      try {
        assert.equal(hs.status, 101, `handshake answered ${hs.status}: ${hs.rest.toString()}`);
        assert.equal(hs.headers.upgrade?.toLowerCase(), 'websocket');
        assert.equal(hs.headers['sec-websocket-accept'], createHash('sha1').update(`${WS_KEY}${WS_GUID}`).digest('base64'));
        assert.equal(await echo(hs.socket, 'hello over h1'), 'echo: hello over h1');
        assert.equal(await echo(hs.socket, 'again'), 'echo: again');
        assert.deepEqual(seen.upgrades.at(-1), { version: '1.1', alpn });
        // An open tunnel counts against its upstream, as on an HTTP/1.1 service.
        assert.equal((await inFlight())[upstream], 1);
        const requestId = hs.headers['x-request-id'];
        hs.socket.end();
        await waitFor(() => gw.logs.some((l) => l.msg === 'Tunnel Closed' && l.request_id === requestId), 'the Tunnel Closed line', 10_000);
        const line = gw.logs.find((l) => l.msg === 'Tunnel Closed' && l.request_id === requestId)!;
        assert.equal(line.closed_by, 'client');
        assert.equal(line.upstream, `127.0.0.1:${backend().port}`);
        await waitFor(async () => (await inFlight())[upstream] === 0, 'the closed tunnel released', 10_000);
      } finally {
        hs.socket.destroy();
      }

      // The service's ordinary traffic is still HTTP/2 after the upgrade.
      assert.deepEqual(await get(gw, `${prefix}/after`), { status: 200, body: 'plain 2.0' });
      assert.ok(seen.plain.every((v) => v === '2.0'), JSON.stringify(seen.plain));
    });
  }

  test('an h2c upstream that speaks HTTP/2 alone fails the HTTP/1.1 handshake: 502, and its HTTP/2 requests are still served', { timeout: 30_000 }, async () => {
    assert.deepEqual(await get(gw, '/h2only/plain'), { status: 200, body: 'plain 2.0' });
    const hs = await handshake(gw, '/h2only/ws/chat');
    let body = hs.rest.toString();
    try {
      assert.equal(hs.status, 502);
      if (!body.includes('}')) body += (await readUntil(hs.socket, (d) => d.includes('}'), 10_000)).toString();
    } finally {
      hs.socket.destroy();
    }
    // nghttp2 answers the HTTP/1.1 request line with a GOAWAY frame, which is no HTTP/1.1 response (upstream_protocol);
    // should its close reach the gateway first, the connection was reset (upstream_reset). Either is the upstream's
    // failed handshake; neither the "WebSocket over HTTP/2 impossible" proxy_error of before.
    const code = (JSON.parse(body) as { code: string }).code;
    assert.match(code, /^upstream_(protocol|reset)$/);
    // Its HTTP/2 traffic is served on as before.
    assert.deepEqual(await get(gw, '/h2only/plain'), { status: 200, body: 'plain 2.0' });
  });
});
