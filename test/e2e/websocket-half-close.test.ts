// A WebSocket tunnel one side of which half-closes (FIN) is closed on both sides, even when the other side never
// answers with a FIN of its own; a live tunnel, idle or talking, stays open.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, readUntil } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/wait.js';

/** The last bytes the upstream sends before its FIN on /bye: more than a socket buffer holds, so some wait in the gateway. */
const FAREWELL = Buffer.alloc(16 * 1024 * 1024, 'x');

/** Upstream sockets, each until it closed. */
const upstreamSockets = new Set<Socket>();
/** The upstream socket of each tunnel, by request path. */
const upstreamOf = new Map<string, Socket>();
let upstream: Server;
let gw: InProcessGateway;

before(async () => {
  // node:http keeps upgraded sockets half-open (allowHalfOpen): a FIN from the gateway is not answered with one.
  upstream = createServer();
  upstream.on('upgrade', (req, socket: Socket) => {
    upstreamSockets.add(socket);
    upstreamOf.set(req.url ?? '', socket);
    socket.once('close', () => upstreamSockets.delete(socket));
    socket.on('error', () => undefined);
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    if (req.url === '/bye') socket.end(FAREWELL);
    else socket.on('data', (d: Buffer) => socket.write(`echo:${d}`));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const port = (upstream.address() as { port: number }).port;
  gw = await startInProcess({ load_balancing: { upstreams: [{ name: 'ws', address: '127.0.0.1', port }] } });
});

after(async () => {
  await gw.close();
  upstream.closeAllConnections();
  await new Promise((resolve) => upstream.close(resolve));
});

/** Client connections the gateway counts (/api/status). */
async function connections(): Promise<number> {
  return ((await (await fetch(`${gw.adminUrl}/api/status`)).json()) as { connections: number }).connections;
}

/** A tunnel through the gateway to `path`; resolves once the 101 has arrived (the rest of the data left unread). */
async function tunnel(path: string): Promise<Socket> {
  const socket = await openSocket(gw.gateway.port);
  socket.on('error', () => undefined);
  socket.write(`GET ${path} HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`);
  const head = await readUntil(socket, (d) => d.includes('\r\n\r\n'));
  assert.match(head.toString('latin1'), /^HTTP\/1\.1 101 /);
  socket.pause();
  socket.unshift(head.subarray(head.indexOf('\r\n\r\n') + 4));
  return socket;
}

async function echoes(socket: Socket, text: string): Promise<void> {
  socket.write(text);
  const echoed = readUntil(socket, (d) => d.includes(`echo:${text}`));
  socket.resume();
  await echoed;
}

test('a client FIN closes the tunnel on both sides though the upstream never closes; live tunnels stay', { timeout: 20_000 }, async () => {
  const baseline = await connections();
  const idle = await tunnel('/ws/idle');
  const talking = await tunnel('/ws/talking');
  const leaving = await tunnel('/ws/leaving');
  const chatter = setInterval(() => talking.write('tick'), 500);
  try {
    await echoes(leaving, 'before-fin');
    leaving.end();
    await waitFor(async () => (await connections()) === baseline + 2 && leaving.closed, 'the gateway to close the half-closed tunnel', 10_000);
    // The gateway's upstream socket is closed too: the upstream got its FIN, and a write now is answered with a reset.
    const stubborn = upstreamOf.get('/ws/leaving')!;
    assert.equal(stubborn.readableEnded, true);
    const writes = setInterval(() => stubborn.write('late'), 20);
    await waitFor(() => stubborn.closed, 'the upstream to find its connection closed').finally(() => clearInterval(writes));
    await echoes(idle, 'still-here');
    await echoes(talking, 'still-talking');
  } finally {
    clearInterval(chatter);
    for (const socket of [idle, talking, leaving]) socket.destroy();
    for (const path of ['/ws/idle', '/ws/talking']) upstreamOf.get(path)?.destroy(); // closing, both sides at once
  }
  await waitFor(async () => (await connections()) === baseline, 'the live tunnels to close');
});

test('an upstream FIN reaches a slow client after every byte before it; the tunnel closes though the client never answers it', { timeout: 20_000 }, async () => {
  const [baseline, upstreamBaseline] = [await connections(), upstreamSockets.size];
  const socket = await tunnel('/bye');
  socket.allowHalfOpen = true; // no FIN in return
  socket.pause();
  await sleep(500); // every buffer on the way fills up
  let received = 0;
  const ended = new Promise<void>((resolve) => socket.once('end', resolve));
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    socket.pause();
    setTimeout(() => socket.resume(), 2); // a slow reader: the gateway's writes queue up behind it
  });
  socket.resume();
  await ended; // the FIN, passed on by the gateway
  assert.equal(received, FAREWELL.length);
  assert.equal(socket.writable, true, 'the client still half-open');
  // The client never answers that FIN: once the tunnel has been silent for the grace period, the gateway closes it.
  const closed = async (): Promise<boolean> => upstreamSockets.size === upstreamBaseline && (await connections()) === baseline;
  await waitFor(closed, 'the gateway to close the tunnel on both sides', 10_000);
  socket.destroy();
});
