// connections_per_upstream bounds the requests running at once on one upstream (README), a WebSocket handshake
// included (it holds its slot until the 101). Since 079dabd a WebSocket to a service with `http2: true` goes over
// HTTP/1.1 on a second pool of its own: that pool had its own connections_per_upstream slots and queue_limit, so an
// upstream of an HTTP/2 service took twice the requests at once it was configured for (handshakes beside its h2
// requests). The two pools of one upstream now share its slots and queue.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createSecureServer, type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session } from 'node:http2';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, parseHead, readUntil, responseUntilClose } from '../helpers/raw.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const WS_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

describe('connections_per_upstream of an http2 service counts its WebSocket handshakes', () => {
  const pki = pkiDir();
  let gw: InProcessGateway;
  let port: number;
  const held: Array<Http2ServerResponse | import('node:http').ServerResponse> = [];
  const sessions = new Set<ServerHttp2Session>();
  const sockets = new Set<Socket>();
  let server: ReturnType<typeof createSecureServer>;

  before(async () => {
    const ca = createTestCa('Upstream CA', pki.path);
    const cert = ca.issue('api.internal');
    // h2 and http/1.1 by ALPN: /hold is answered only when the test releases it; WebSockets are switched at once.
    server = createSecureServer({ cert: cert.cert, key: cert.key, allowHTTP1: true }, (req: Http2ServerRequest | IncomingMessage, res) => {
      if (req.url === '/hold') held.push(res);
      else res.end('ok');
    });
    server.on('session', (s) => {
      sessions.add(s);
      s.once('close', () => sessions.delete(s));
    });
    server.on('secureConnection', (s: Socket) => {
      sockets.add(s);
      s.on('error', () => undefined);
      s.once('close', () => sockets.delete(s));
    });
    server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
      socket.on('error', () => undefined);
      const accept = createHash('sha1').update(`${String(req.headers['sec-websocket-key'])}${WS_GUID}`).digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    gw = await startInProcess({
      services: {
        api: {
          http2: true,
          retries: 0,
          connections_per_upstream: 1,
          queue_limit: 0,
          tls: { enabled: true, ca_file: ca.caFile, servername: 'api.internal' },
          upstreams: [{ name: 'a', address: '127.0.0.1', port }],
          health_check: { enabled: false },
        },
      },
      routes: [{ name: 'api', match: { path_prefix: '/' }, service: 'api' }],
    });
  });

  after(async () => {
    for (const res of held) res.destroy?.();
    await gw?.close();
    for (const s of sessions) s.destroy();
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    pki.remove();
  });

  async function handshakeStatus(): Promise<number> {
    const socket = await openSocket(gw.gateway.port);
    socket.on('error', () => undefined);
    try {
      socket.write(
        `GET /ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
      const data = await readUntil(socket, (d) => d.includes('\r\n\r\n'), 10_000);
      return parseHead(data.subarray(0, data.indexOf('\r\n\r\n')).toString('latin1')).status;
    } finally {
      socket.destroy();
    }
  }

  test('with its one slot taken by an HTTP/2 request, a WebSocket handshake is 503 upstream_busy; served once it frees', { timeout: 30_000 }, async () => {
    const client = await openSocket(gw.gateway.port);
    client.on('error', () => undefined);
    try {
      const answer = responseUntilClose(client, 20_000);
      client.write('GET /hold HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n');
      await waitFor(() => held.length === 1, 'the upstream holding /hold', 10_000);
      assert.equal(await handshakeStatus(), 503);
      held[0]!.end('released');
      assert.equal((await answer).status, 200);
    } finally {
      client.destroy();
    }
    assert.equal(await handshakeStatus(), 101);
  });
});
