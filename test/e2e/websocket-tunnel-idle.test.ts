// server.timeouts.tunnel_idle (and a route's timeouts.tunnel_idle): a WebSocket tunnel through which no byte went
// either way for that long is closed on both sides, with a Tunnel Closed line saying `closed_by: "idle"`, as nginx's
// proxy_read_timeout and Envoy's idle_timeout close an upgraded connection. Bytes either way keep it open; with no
// bound set (the default) a silent tunnel stays open. Before, there was no such setting: a tunnel silent for good
// held its two connections, and one of its client's max_connections_per_client, until TCP keep-alive found a peer
// gone.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { sampleValue } from '../helpers/prometheus.js';
import { openSocket, parseHead, readUntil } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/wait.js';

// Well above the event-loop stalls of a loaded CI machine: the upstream and client here share the gateway's process,
// and a stall of 500 ms let the idle timer fire before the bytes that arrived meanwhile were read (400 ms failed).
const IDLE_MS = 1_500;

let upstream: Server;
let upstreamPort: number;
const upstreamSockets = new Set<Socket>();

/** Answers 101 and echoes what it gets; on /ticking it also sends a byte every 100 ms of its own. */
before(async () => {
  upstream = createServer();
  upstream.on('upgrade', (req, socket: Socket) => {
    upstreamSockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('end', () => socket.end());
    socket.on('data', (d: Buffer) => socket.write(d));
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    if (req.url === '/ticking') {
      const tick = setInterval(() => socket.write('t'), 100);
      socket.once('close', () => clearInterval(tick));
    }
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  upstreamPort = (upstream.address() as { port: number }).port;
});

after(async () => {
  for (const socket of upstreamSockets) socket.destroy();
  upstream.closeAllConnections();
  await new Promise((resolve) => upstream.close(resolve));
});

async function tunnel(g: InProcessGateway, path: string): Promise<{ socket: Socket; requestId: string; closed: Promise<number> }> {
  const socket = await openSocket(g.gateway.port);
  socket.on('error', () => undefined);
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now())));
  socket.write(`GET ${path} HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  const data = await readUntil(socket, (d) => d.includes('\r\n\r\n'));
  const head = parseHead(data.subarray(0, data.indexOf('\r\n\r\n')).toString('latin1'));
  assert.equal(head.status, 101);
  return { socket, requestId: head.headers['x-request-id']!, closed };
}

function closedLines(g: InProcessGateway, requestId: string): Array<Record<string, unknown>> {
  return g.logs.filter((l) => l.msg === 'Tunnel Closed' && l.request_id === requestId);
}

/** Keeps a tunnel busy from the client's side: a byte every 100 ms for `ms`, each echoed back. */
async function chatter(socket: Socket, ms: number): Promise<void> {
  for (const until = performance.now() + ms; performance.now() < until; ) {
    socket.write('c');
    await sleep(100);
  }
}

const upstreams = () => ({ load_balancing: { upstreams: [{ name: 'ws', address: '127.0.0.1', port: upstreamPort }] } });

test('server.timeouts.tunnel_idle: bytes either way keep a tunnel open; silent for the bound, it is closed, closed_by idle', { timeout: 30_000 }, async (t) => {
  const g = await startInProcess({ ...upstreams(), server: { timeouts: { tunnel_idle: `${IDLE_MS}ms` } } });
  t.after(() => g.close());

  const ticking = await tunnel(g, '/ticking');
  await sleep(2 * IDLE_MS); // the upstream's bytes alone
  assert.equal(ticking.socket.destroyed, false, 'open while the upstream talks');
  ticking.socket.destroy();

  const talking = await tunnel(g, '/talking');
  let silentFrom = performance.now(); // the arrival of the last echo: the tunnel is silent from then on
  talking.socket.on('data', () => (silentFrom = performance.now()));
  await chatter(talking.socket, 2 * IDLE_MS); // the client's bytes, and their echoes
  assert.equal(talking.socket.destroyed, false, 'open while the client talks');
  const closedAt = await talking.closed;
  assert.ok(closedAt - silentFrom >= IDLE_MS - 20, `closed ${closedAt - silentFrom} ms into the silence, not before ${IDLE_MS}`);
  await waitFor(() => closedLines(g, talking.requestId).length === 1, 'the Tunnel Closed line');
  assert.equal(closedLines(g, talking.requestId)[0]!.closed_by, 'idle');
  await waitFor(() => upstreamSockets.size === 0 || [...upstreamSockets].every((s) => s.destroyed), 'the upstream connections closed too');
  const metrics = await (await fetch(`${g.adminUrl}/metrics`)).text();
  assert.equal(sampleValue(metrics, 'portcullis_tunnels_closed_total', { route: 'proxy', service: 'default', closed_by: 'idle' }), 1);
});

test("a route's timeouts.tunnel_idle overrides the server's; with none set anywhere a silent tunnel stays open", { timeout: 30_000 }, async (t) => {
  const g = await startInProcess({
    services: { ws: { upstreams: [{ name: 'ws', address: '127.0.0.1', port: upstreamPort }] } },
    routes: [
      { name: 'quick', match: { path_prefix: '/quick' }, service: 'ws', timeouts: { tunnel_idle: `${IDLE_MS}ms` } },
      { name: 'patient', match: { path_prefix: '/' }, service: 'ws' },
    ],
  });
  t.after(() => g.close());
  const quick = await tunnel(g, '/quick');
  const patient = await tunnel(g, '/patient');
  await quick.closed;
  await waitFor(() => closedLines(g, quick.requestId).length === 1, 'the Tunnel Closed line');
  assert.equal(closedLines(g, quick.requestId)[0]!.closed_by, 'idle');
  await sleep(2 * IDLE_MS);
  assert.equal(patient.socket.destroyed, false, 'no bound: a silent tunnel stays open');
  patient.socket.write('still here');
  assert.match((await readUntil(patient.socket, (d) => d.includes('still here'))).toString(), /still here/);
  patient.socket.end();
  await waitFor(() => closedLines(g, patient.requestId).length === 1, 'the Tunnel Closed line');
  assert.equal(closedLines(g, patient.requestId)[0]!.closed_by, 'client');
});
