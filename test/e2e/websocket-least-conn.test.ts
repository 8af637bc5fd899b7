// An open WebSocket tunnel counts against its upstream until it closes (found by review): least_conn sends new
// tunnels to the upstream with fewer open ones, and /api/status shows them in flight, as nginx's least_conn and
// HAProxy's leastconn count an upgraded connection. Before, the upstream was released as soon as the 101 was relayed:
// with 10 tunnels open on one upstream and none on the other, new tunnels still alternated.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, readUntil } from '../helpers/raw.js';
import { waitFor } from '../helpers/wait.js';

/** The upstreams' tunnel sockets: node:http keeps upgraded sockets out of closeAllConnections. */
const upstreamSockets = new Set<Socket>();

interface Upstream {
  readonly server: Server;
  readonly port: number;
}

async function startUpstream(name: string): Promise<Upstream> {
  const server = createServer((_req, res) => res.end(name));
  server.on('upgrade', (_req, socket: Socket) => {
    upstreamSockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('end', () => socket.end()); // as a WebSocket server does once its peer is gone
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Backend: ${name}\r\n\r\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
}

let a: Upstream;
let b: Upstream;
let gw: InProcessGateway;
const sockets: Socket[] = [];

before(async () => {
  [a, b] = await Promise.all([startUpstream('a'), startUpstream('b')]);
  gw = await startInProcess({
    load_balancing: {
      strategy: 'least_conn',
      upstreams: [
        { name: 'a', address: '127.0.0.1', port: a.port },
        { name: 'b', address: '127.0.0.1', port: b.port },
      ],
    },
  });
});

after(async () => {
  for (const socket of sockets) socket.destroy();
  await gw?.close();
  for (const socket of upstreamSockets) socket.destroy();
  for (const u of [a, b]) {
    u?.server.closeAllConnections();
    await new Promise((resolve) => u?.server.close(resolve));
  }
});

/** Opens a tunnel; resolves with the socket and the upstream that took it. */
async function tunnel(): Promise<{ socket: Socket; backend: string }> {
  const socket = await openSocket(gw.gateway.port);
  sockets.push(socket);
  socket.on('error', () => undefined);
  socket.write('GET /ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
  const head = (await readUntil(socket, (d) => d.includes('\r\n\r\n'))).toString('latin1');
  assert.match(head, /^HTTP\/1\.1 101 /);
  return { socket, backend: /x-backend: (\w+)/i.exec(head)![1]! };
}

async function inFlight(): Promise<Record<string, number>> {
  const status = (await (await fetch(`${gw.adminUrl}/api/status`)).json()) as { upstreams: { name: string; in_flight: number }[] };
  return Object.fromEntries(status.upstreams.map((u) => [u.name, u.in_flight]));
}

test('least_conn counts open tunnels: with 5 open on one upstream, the next 5 go to the other; closed ones are released', async () => {
  const first = [];
  for (let i = 0; i < 10; i++) first.push(await tunnel());
  assert.deepEqual(await inFlight(), { a: 5, b: 5 });
  for (const t of first) if (t.backend === 'b') t.socket.destroy();
  await waitFor(async () => (await inFlight()).b === 0, 'the closed tunnels released', 10_000);
  const next = [];
  for (let i = 0; i < 5; i++) next.push(await tunnel());
  assert.deepEqual(next.map((t) => t.backend), ['b', 'b', 'b', 'b', 'b']);
  assert.deepEqual(await inFlight(), { a: 5, b: 5 });
  for (const t of [...first, ...next]) t.socket.destroy();
  await waitFor(async () => {
    const counts = await inFlight();
    return counts.a === 0 && counts.b === 0;
  }, 'every tunnel released', 10_000);
  // One access-log line per tunnel, written at the 101, not a second one at its close.
  const lines = gw.logs.filter((l) => l.msg === 'Request Completed' && l.status === 101);
  assert.equal(lines.length, 15);
});
