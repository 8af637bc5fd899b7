// An upstream's 101 must switch to the protocol it was asked for, WebSocket: one that names another protocol (h2c,
// TLS/1.2) or none is refused with 502 and no tunnel is opened. Before, the gateway relayed such a 101 and tunnelled
// the connection: an h2c upstream would then serve any request to any path on it, past routing, auth and limits,
// which the gateway keeps out by asking for websocket alone (README, WebSocket).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, responseUntilClose } from '../helpers/raw.js';
import { waitFor } from '../helpers/wait.js';

let upstream: Server;
let gw: InProcessGateway;
const upstreamSockets = new Set<Socket>();

/** The 101's Upgrade field for each path: what the upstream switches to, whatever it was asked. */
const SWITCHES: Record<string, string | undefined> = { '/h2c': 'h2c', '/tls': 'TLS/1.2', '/both': 'websocket, h2c', '/ok': 'WebSocket' };

before(async () => {
  upstream = createNetServer((socket: Socket) => {
    upstreamSockets.add(socket);
    socket.once('close', () => upstreamSockets.delete(socket));
    socket.on('error', () => undefined);
    socket.once('data', (chunk: Buffer) => {
      const path = chunk.toString('latin1').split(' ')[1] ?? '';
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${SWITCHES[path]}\r\nConnection: Upgrade\r\n\r\n`);
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const port = (upstream.address() as { port: number }).port;
  gw = await startInProcess({ load_balancing: { upstreams: [{ name: 'u', address: '127.0.0.1', port }] } });
});

after(async () => {
  await gw.close();
  for (const socket of upstreamSockets) socket.destroy();
  await new Promise((resolve) => upstream.close(resolve));
});

for (const path of ['/h2c', '/tls', '/both']) {
  test(`a 101 to Upgrade: ${SWITCHES[path]} is answered 502 and its upstream connection closed`, async () => {
    const client = await openSocket(gw.gateway.port);
    client.on('error', () => undefined);
    try {
      const answer = responseUntilClose(client, 10_000);
      client.write(`GET ${path} HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket, h2c\r\nConnection: Upgrade\r\n\r\n`);
      const response = await answer;
      assert.equal(response.status, 502);
      await waitFor(() => upstreamSockets.size === 0, 'the upstream connection to be closed');
    } finally {
      client.destroy();
    }
  });
}

test('a 101 to Upgrade: WebSocket (any case) is switched', async () => {
  const client = await openSocket(gw.gateway.port);
  client.on('error', () => undefined);
  try {
    const answer = responseUntilClose(client, 1_500).catch((err: Error) => err.message);
    client.write('GET /ok HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    assert.match(String(await answer), /HTTP\/1\.1 101 Switching Protocols/);
  } finally {
    client.destroy();
  }
});
