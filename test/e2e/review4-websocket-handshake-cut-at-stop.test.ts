// A WebSocket handshake still waiting for its upstream's answer when the stop's drain runs out is logged as cut by
// the stop (error SHUTTING_DOWN), as any other request the stop cuts is (README, server.timeouts.shutdown_drain: "one
// still running then is cut and logged with "error":"SHUTTING_DOWN""). It was logged 499 with no error, read as a
// client that gave up, though the client had waited and the gateway closed its connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { startInProcess } from '../helpers/gateway.js';
import { openSocket } from '../helpers/raw.js';
import { waitFor } from '../helpers/wait.js';

test('an Upgrade whose upstream has not answered when the drain ends: logged 499 SHUTTING_DOWN, its connection closed', { timeout: 20_000 }, async () => {
  // An upstream that reads the handshake and never answers it.
  const held: Socket[] = [];
  const upstream = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', () => held.push(socket));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const gw = await startInProcess({
    server: { timeouts: { shutdown_drain: '300ms' } },
    load_balancing: { upstreams: [{ name: 'u', address: '127.0.0.1', port: (upstream.address() as { port: number }).port }] },
  });
  let client: Socket | undefined;
  try {
    client = await openSocket(gw.gateway.port);
    client.on('error', () => undefined);
    const closed = new Promise((resolve) => client!.once('close', resolve));
    client.write('GET /ws/pending HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    await waitFor(() => held.length === 1, 'the upstream to hold the handshake');
    await gw.close();
    await closed;
    const lines = gw.logs.filter((l) => l.msg === 'Request Completed' && l.path === '/ws/pending');
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.status, 499);
    assert.equal(lines[0]!.error, 'SHUTTING_DOWN');
  } finally {
    client?.destroy();
    await gw.close().catch(() => undefined);
    for (const socket of held) socket.destroy();
    await new Promise((resolve) => upstream.close(resolve));
  }
});

test('a client that leaves during the drain, before its handshake is answered, is still its own departure (no error)', { timeout: 20_000 }, async () => {
  const held: Socket[] = [];
  const upstream = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', () => held.push(socket));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const gw = await startInProcess({
    server: { timeouts: { shutdown_drain: '2s' } },
    load_balancing: { upstreams: [{ name: 'u', address: '127.0.0.1', port: (upstream.address() as { port: number }).port }] },
  });
  let client: Socket | undefined;
  try {
    client = await openSocket(gw.gateway.port);
    client.on('error', () => undefined);
    client.write('GET /ws/leaves HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    await waitFor(() => held.length === 1, 'the upstream to hold the handshake');
    const stopping = gw.close();
    await waitFor(() => gw.logs.some((l) => l.msg === 'Gateway Stopping'), 'the stop to begin');
    client.resetAndDestroy(); // a FIN alone may be a half-close (review-websocket-early-fin): a reset is a departure
    await stopping;
    const lines = gw.logs.filter((l) => l.msg === 'Request Completed' && l.path === '/ws/leaves');
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.status, 499);
    assert.equal(lines[0]!.error, undefined);
  } finally {
    client?.destroy();
    await gw.close().catch(() => undefined);
    for (const socket of held) socket.destroy();
    await new Promise((resolve) => upstream.close(resolve));
  }
});
