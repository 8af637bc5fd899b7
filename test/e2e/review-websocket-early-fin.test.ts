// A client that half-closes (FIN) right behind its Upgrade, before the upstream's 101 has arrived: the FIN is passed
// on, and the tunnel is closed on both sides once the half-close grace is over, even when the upstream never answers
// the FIN (a node:http 'upgrade' handler keeps its socket half-open), as a FIN sent after the 101 already is
// (websocket-half-close.test.ts). The Tunnel Closed line says the client ended it. Before, the gateway missed a FIN
// read before the tunnel was joined: no grace started, and both connections stayed open for good.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, readUntil } from '../helpers/raw.js';
import { waitFor } from '../helpers/wait.js';

let upstream: Server;
let gw: InProcessGateway;
const upstreamSockets = new Set<Socket>();
/** Upgrade requests the upstream has received and not answered yet. */
const waiting: Array<() => void> = [];

before(async () => {
  upstream = createServer();
  upstream.on('upgrade', (_req, socket: Socket) => {
    upstreamSockets.add(socket);
    socket.once('close', () => upstreamSockets.delete(socket));
    socket.on('error', () => undefined);
    socket.on('end', () => socket.write('upstream-saw-fin'));
    // Answered when the test says so: after the client's FIN has reached the gateway.
    waiting.push(() => socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const port = (upstream.address() as { port: number }).port;
  gw = await startInProcess({ load_balancing: { upstreams: [{ name: 'u', address: '127.0.0.1', port }] } });
});

after(async () => {
  await gw.close();
  upstream.closeAllConnections();
  for (const socket of upstreamSockets) socket.destroy();
  await new Promise((resolve) => upstream.close(resolve));
});

async function connections(): Promise<number> {
  return ((await (await fetch(`${gw.adminUrl}/api/status`)).json()) as { connections: number }).connections;
}

test('a FIN before the 101: passed on, and the tunnel closes on both sides after the grace period', { timeout: 30_000 }, async () => {
  const baseline = await connections();
  const client = await openSocket(gw.gateway.port);
  client.allowHalfOpen = true; // it keeps reading after its FIN, and sends none in return
  client.on('error', () => undefined);
  try {
    client.write('GET /ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    await waitFor(() => waiting.length === 1, 'the upgrade to reach the upstream');
    client.end();
    // The FIN reaches the gateway (loopback: at once); slack before the upstream answers.
    await new Promise((resolve) => setTimeout(resolve, 300));
    waiting.shift()!();
    const seen = await readUntil(client, (d) => d.includes('upstream-saw-fin'), 10_000);
    assert.match(seen.toString('latin1'), /^HTTP\/1\.1 101 /);
    // Both of the gateway's sockets closed: its client connection is gone, and Tunnel Closed is written.
    const tunnelClosed = (): boolean => gw.logs.some((l) => l.msg === 'Tunnel Closed');
    await waitFor(async () => tunnelClosed() && (await connections()) === baseline, 'the gateway to close the tunnel on both sides', 15_000);
    const closedLines = gw.logs.filter((l) => l.msg === 'Tunnel Closed');
    assert.equal(closedLines.length, 1);
    assert.equal(closedLines[0]!.closed_by, 'client');
  } finally {
    client.destroy();
  }
});
