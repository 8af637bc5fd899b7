// A WebSocket tunnel writes one "Tunnel Closed" line when it closes (its request's line is written at the 101): the
// request id of the 101, how long it lived, the bytes relayed each way and who ended it (client, upstream, error,
// shutdown), and is counted in portcullis_tunnels_closed_total / portcullis_tunnel_duration_seconds. Before, nothing
// was logged or counted at a tunnel's close.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { parseConfigObject } from '../../src/config/load.js';
import { startInProcess, type ConfigInput, type InProcessGateway } from '../helpers/gateway.js';
import { sampleValue } from '../helpers/prometheus.js';
import { openSocket, parseHead, readUntil } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/wait.js';

/** What the upstream sends after its 101, and the client after its request head: distinct sizes, several reads each. */
const FROM_UPSTREAM = 70_001;
const FROM_CLIENT = 50_003;

/** Per request path: the bytes the upstream has received, and its tunnel socket. */
const received = new Map<string, number>();
const upstreamOf = new Map<string, Socket>();
let upstream: Server;
let gw: InProcessGateway;

/**
 * An upstream that answers 101, sends FROM_UPSTREAM bytes and counts what it gets. It answers a FIN with its own
 * (as a WebSocket server does once its peer is gone); on /close-after it ends the connection itself once it has
 * FROM_CLIENT bytes.
 */
function startUpstream(): Promise<number> {
  upstream = createServer();
  upstream.on('upgrade', (req, socket: Socket) => {
    const path = req.url ?? '';
    upstreamOf.set(path, socket);
    received.set(path, 0);
    socket.on('error', () => undefined);
    socket.on('end', () => socket.end());
    socket.on('data', (d: Buffer) => {
      const total = received.get(path)! + d.length;
      received.set(path, total);
      if (path.startsWith('/close-after') && total === FROM_CLIENT) socket.end();
    });
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`);
    socket.write(Buffer.alloc(FROM_UPSTREAM, 'u'));
  });
  return new Promise((resolve) => upstream.listen(0, '127.0.0.1', () => resolve((upstream.address() as { port: number }).port)));
}

function gatewayFor(port: number, extra: Record<string, unknown> = {}): Promise<InProcessGateway> {
  return startInProcess({ ...extra, load_balancing: { upstreams: [{ name: 'ws', address: '127.0.0.1', port }] } });
}

before(async () => {
  gw = await gatewayFor(await startUpstream());
});

after(async () => {
  await gw?.close();
  for (const socket of upstreamOf.values()) socket.destroy();
  upstream?.closeAllConnections();
  await new Promise((resolve) => upstream?.close(resolve));
});

interface Tunnel {
  readonly socket: Socket;
  /** The 101's X-Request-ID. */
  readonly requestId: string;
  /** performance.now() just before the Upgrade request went out. */
  readonly sentAt: number;
}

/** Opens a tunnel to `path` and reads the upstream's FROM_UPSTREAM bytes behind the 101. */
async function tunnel(g: InProcessGateway, path: string): Promise<Tunnel> {
  const socket = await openSocket(g.gateway.port);
  socket.on('error', () => undefined);
  const sentAt = performance.now();
  socket.write(`GET ${path} HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer secret-token-value\r\n\r\n`);
  const data = await readUntil(socket, (d) => {
    const end = d.indexOf('\r\n\r\n');
    return end >= 0 && d.length - (end + 4) >= FROM_UPSTREAM;
  });
  const end = data.indexOf('\r\n\r\n');
  const head = parseHead(data.subarray(0, end).toString('latin1'));
  assert.equal(head.status, 101);
  assert.equal(data.length - (end + 4), FROM_UPSTREAM);
  return { socket, requestId: head.headers['x-request-id']!, sentAt };
}

/** Sends FROM_CLIENT bytes and waits until the upstream has them all. */
async function sendAll(path: string, t: Tunnel): Promise<void> {
  t.socket.write(Buffer.alloc(FROM_CLIENT, 'c'));
  await waitFor(() => received.get(path) === FROM_CLIENT, `the upstream to receive ${FROM_CLIENT} bytes on ${path}`);
}

/** The one Tunnel Closed line of `requestId`, once written; a second one fails the test. */
async function closedLine(g: InProcessGateway, requestId: string): Promise<Record<string, unknown>> {
  const lines = (): Array<Record<string, unknown>> => g.logs.filter((l) => l.msg === 'Tunnel Closed' && l.request_id === requestId);
  await waitFor(() => lines().length > 0, `the Tunnel Closed line of ${requestId}`, 10_000);
  await sleep(100); // a second line would come within a tick or two
  assert.equal(lines().length, 1, 'exactly one Tunnel Closed line');
  return lines()[0]!;
}

/** The line's facts that do not depend on who closed it; duration_ms between `minMs` and the time since the request. */
function assertTunnelLine(line: Record<string, unknown>, t: Tunnel, minMs: number, bytes: { fromClient: number }): void {
  const elapsed = performance.now() - t.sentAt;
  assert.equal(line.level, 30);
  assert.equal(line.service, 'portcullis');
  assert.equal(line.route, 'proxy');
  assert.equal(line.upstream_service, 'default');
  assert.match(String(line.upstream), /^127\.0\.0\.1:\d+$/);
  assert.equal(line.client, '127.0.0.1');
  assert.equal(line.bytes_from_upstream, FROM_UPSTREAM);
  assert.equal(line.bytes_from_client, bytes.fromClient);
  assert.equal(typeof line.duration_ms, 'number');
  const ms = line.duration_ms as number;
  assert.ok(ms >= minMs && ms <= elapsed, `duration_ms ${ms} within [${minMs}, ${elapsed}]`);
  // Never a header value or payload byte: the Authorization sent with the Upgrade, the payloads' fill bytes.
  const text = JSON.stringify(line);
  assert.doesNotMatch(text, /secret-token-value|uuuu|cccc/);
}

test('a client that ends the tunnel: one Tunnel Closed line, closed_by client, its bytes each way and duration', { timeout: 20_000 }, async () => {
  const path = '/ws/client-ends';
  const t = await tunnel(gw, path);
  await sendAll(path, t);
  await sleep(200);
  t.socket.end(); // the client's FIN first; the upstream answers it with its own
  const line = await closedLine(gw, t.requestId);
  assertTunnelLine(line, t, 200, { fromClient: FROM_CLIENT });
  assert.equal(line.closed_by, 'client');
  assert.equal(line.error_from, undefined);
  assert.equal(line.cause, undefined);
  const requests = gw.logs.filter((l) => l.msg === 'Request Completed' && l.request_id === t.requestId);
  assert.equal(requests.length, 1);
  assert.equal(requests[0]!.status, 101);
});

test('an upstream that ends the tunnel: closed_by upstream', { timeout: 20_000 }, async () => {
  const path = '/close-after/upstream-ends';
  const t = await tunnel(gw, path);
  await sleep(100);
  await sendAll(path, t); // the upstream sends its FIN once it has these bytes; the client answers it
  const line = await closedLine(gw, t.requestId);
  assertTunnelLine(line, t, 100, { fromClient: FROM_CLIENT });
  assert.equal(line.closed_by, 'upstream');
  assert.equal(line.error_from, undefined);
});

test('a client that resets its connection: closed_by error, from the client, with the reset as cause', { timeout: 20_000 }, async () => {
  const path = '/ws/client-resets';
  const t = await tunnel(gw, path);
  await sendAll(path, t);
  t.socket.resetAndDestroy();
  const line = await closedLine(gw, t.requestId);
  assertTunnelLine(line, t, 0, { fromClient: FROM_CLIENT });
  assert.equal(line.closed_by, 'error');
  assert.equal(line.error_from, 'client');
  assert.equal(line.cause, 'Error(ECONNRESET)');
});

test('an upstream that resets its connection: closed_by error, from the upstream', { timeout: 20_000 }, async () => {
  const path = '/ws/upstream-resets';
  const t = await tunnel(gw, path);
  await sendAll(path, t);
  upstreamOf.get(path)!.resetAndDestroy();
  const line = await closedLine(gw, t.requestId);
  assertTunnelLine(line, t, 0, { fromClient: FROM_CLIENT });
  assert.equal(line.closed_by, 'error');
  assert.equal(line.error_from, 'upstream');
  assert.equal(line.cause, 'Error(ECONNRESET)');
});

test('the closed tunnels are counted on /metrics by route, service and closed_by, with their durations', async () => {
  const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  const closed = (closedBy: string): number | undefined =>
    sampleValue(text, 'portcullis_tunnels_closed_total', { route: 'proxy', service: 'default', closed_by: closedBy });
  assert.equal(closed('client'), 1);
  assert.equal(closed('upstream'), 1);
  assert.equal(closed('error'), 2);
  assert.equal(closed('shutdown'), undefined);
  assert.equal(sampleValue(text, 'portcullis_tunnel_duration_seconds_count', { route: 'proxy' }), 4);
  // Seconds, not milliseconds: all four in the 10 s bucket (not the 1 s one: a tunnel held 200 ms by its test lasts
  // over a second when a loaded machine stalls the process for 800 ms).
  assert.equal(sampleValue(text, 'portcullis_tunnel_duration_seconds_bucket', { route: 'proxy', le: '10' }), 4);
  const sum = sampleValue(text, 'portcullis_tunnel_duration_seconds_sum', { route: 'proxy' })!;
  assert.ok(sum >= 0.3 && sum < 4, `duration sum ${sum} s`);
});

test('a tunnel still open when the gateway stops: closed_by shutdown once the drain is over', { timeout: 20_000 }, async () => {
  const g = await gatewayFor((upstream.address() as { port: number }).port, { server: { timeouts: { shutdown_drain: '300ms' } } });
  try {
    const path = '/ws/at-shutdown';
    const t = await tunnel(g, path);
    await sendAll(path, t);
    await g.close();
    const line = await closedLine(g, t.requestId);
    assert.equal(line.closed_by, 'shutdown');
    assert.equal(line.bytes_from_client, FROM_CLIENT);
    assert.equal(line.bytes_from_upstream, FROM_UPSTREAM);
    assert.ok((line.duration_ms as number) >= 250, `duration_ms ${String(line.duration_ms)}`);
  } finally {
    await g.close();
  }
});

/** Routes /keep and /gone, each to a service of its own on the test upstream; /gone only when `withGone`. */
function twoRoutes(port: number, withGone: boolean): ConfigInput {
  const upstreams = [{ name: 'ws', address: '127.0.0.1', port }];
  return {
    server: { listen_host: '127.0.0.1', listen_port: 0 },
    admin: { listen_host: '127.0.0.1', listen_port: 0 },
    logging: { format: 'json', level: 'info' },
    services: { keep: { upstreams }, ...(withGone ? { gone: { upstreams } } : {}) },
    routes: [
      { name: 'keep', match: { path_prefix: '/keep' }, service: 'keep' },
      ...(withGone ? [{ name: 'gone', match: { path_prefix: '/gone' }, service: 'gone' }] : []),
    ],
  };
}

test('a reload drops the tunnel series of a route and service it removed; a tunnel of theirs closing later adds none back', { timeout: 20_000 }, async () => {
  const port = (upstream.address() as { port: number }).port;
  const g = await startInProcess(twoRoutes(port, true));
  const scrape = async (): Promise<string> => (await fetch(`${g.adminUrl}/metrics`)).text();
  const closedOf = (text: string, route: string): number | undefined =>
    sampleValue(text, 'portcullis_tunnels_closed_total', { route, service: route, closed_by: 'client' });
  try {
    const keep = await tunnel(g, '/keep/reload');
    const early = await tunnel(g, '/gone/early');
    const late = await tunnel(g, '/gone/late');
    early.socket.end();
    await closedLine(g, early.requestId);
    assert.equal(closedOf(await scrape(), 'gone'), 1);
    await g.gateway.reload(parseConfigObject(twoRoutes(port, false)));
    assert.doesNotMatch(await scrape(), /route="gone"/);
    late.socket.end();
    const line = await closedLine(g, late.requestId); // logged with the route it ran on
    assert.equal(line.route, 'gone');
    assert.equal(line.closed_by, 'client');
    keep.socket.end();
    await closedLine(g, keep.requestId);
    const text = await scrape();
    assert.doesNotMatch(text, /route="gone"/);
    assert.equal(closedOf(text, 'keep'), 1);
    assert.equal(sampleValue(text, 'portcullis_tunnel_duration_seconds_count', { route: 'keep' }), 1);
  } finally {
    await g.close();
  }
});
