// A WebSocket to a service with `http2: true` is sent over HTTP/1.1 (079dabd). An upstream that speaks HTTP/2 alone
// refuses that handshake: over TLS it offers no ALPN protocol but h2, over cleartext it answers an HTTP/1.1 request
// line with a GOAWAY. That refusal is the protocol the client asked for, not a sick upstream: it must not feed passive
// health. Otherwise any client's WebSocket handshake (one per passive cooldown) takes a gRPC-only upstream out of
// rotation, and its gRPC traffic moves to the other upstreams (or, with one left, to a panic pick).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSecureServer, createServer as createH2cServer, type Http2Server, type Http2SecureServer, type ServerHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, parseHead, readUntil } from '../helpers/raw.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';

interface H2Only {
  readonly port: number;
  close(): Promise<void>;
}

/** An HTTP/2-only server (no HTTP/1.1 fallback): 200 'h2' to each request. */
async function h2Only(server: Http2Server | Http2SecureServer): Promise<H2Only> {
  const sessions = new Set<ServerHttp2Session>();
  const sockets = new Set<Socket>();
  server.on('session', (s) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.once('close', () => sockets.delete(s));
  });
  server.on('secureConnection', (s: Socket) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.once('close', () => sockets.delete(s));
  });
  server.on('request', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('h2');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () => {
      for (const s of sessions) s.destroy();
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A WebSocket handshake through the gateway: its status. */
async function handshakeStatus(gw: InProcessGateway, path: string): Promise<number> {
  const socket = await openSocket(gw.gateway.port);
  socket.on('error', () => undefined);
  try {
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    const data = await readUntil(socket, (d) => d.includes('\r\n\r\n'), 10_000);
    return parseHead(data.subarray(0, data.indexOf('\r\n\r\n')).toString('latin1')).status;
  } finally {
    socket.destroy();
  }
}

describe('WebSocket handshakes to an HTTP/2-only upstream of an http2 service', () => {
  const pki = pkiDir();
  let tlsOnly: H2Only;
  let h2cOnly: H2Only;
  let gw: InProcessGateway;

  before(async () => {
    const ca = createTestCa('Upstream CA', pki.path);
    const cert = ca.issue('api.internal');
    tlsOnly = await h2Only(createSecureServer({ cert: cert.cert, key: cert.key, allowHTTP1: false }));
    h2cOnly = await h2Only(createH2cServer());
    // Passive health on (a long cooldown, so a failure is still seen when the status is read); no active checks.
    const health = { enabled: false, passive_cooldown: '60s' };
    gw = await startInProcess({
      services: {
        tls: {
          http2: true,
          retries: 0,
          tls: { enabled: true, ca_file: ca.caFile, servername: 'api.internal' },
          upstreams: [{ name: 'tls-only', address: '127.0.0.1', port: tlsOnly.port }],
          health_check: health,
        },
        h2c: { http2: true, retries: 0, upstreams: [{ name: 'h2c-only', address: '127.0.0.1', port: h2cOnly.port }], health_check: health },
      },
      routes: [
        { name: 'tls', match: { path_prefix: '/tls/' }, service: 'tls' },
        { name: 'h2c', match: { path_prefix: '/h2c/' }, service: 'h2c' },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await Promise.allSettled([tlsOnly, h2cOnly].filter((b) => b !== undefined).map((b) => b.close()));
    pki.remove();
  });

  async function health(): Promise<Record<string, string>> {
    const status = (await (await fetch(`${gw.adminUrl}/api/status`)).json()) as { upstreams: Array<{ name: string; health: string }> };
    return Object.fromEntries(status.upstreams.map((u) => [u.name, u.health]));
  }

  for (const [name, prefix, upstream, backend] of [
    ['over TLS (the upstream offers ALPN h2 alone)', '/tls', 'tls-only', () => tlsOnly],
    ['over cleartext (h2c prior knowledge only)', '/h2c', 'h2c-only', () => h2cOnly],
  ] as const) {
    test(`${name}: refused handshakes answer 502 and leave the upstream in rotation`, { timeout: 30_000 }, async () => {
      for (let i = 0; i < 5; i++) assert.equal(await handshakeStatus(gw, `${prefix}/ws`), 502);
      const label = `127.0.0.1:${backend().port}`;
      const codes = gw.logs.filter((l) => l.msg === 'Upstream Down' && l.upstream === label).map((l) => String(l.reason));
      assert.equal((await health())[upstream], 'healthy', `taken out of rotation: ${codes.join(', ')}`);
      assert.deepEqual(codes, []);
    });
  }
});
