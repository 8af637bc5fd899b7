// Active health checks judge the whole answer: a probe whose head arrives but whose body stalls or trickles past
// the probe timeout is a failure (it used to count as healthy: the body was cut at the timeout and that looked like
// its end). Real node:http backends, a real gateway.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { waitFor, sleep } from '../helpers/wait.js';
import { closeServers } from '../helpers/servers.js';

type Mode = 'ok' | 'trickle' | 'stall' | 'big';
const servers: http.Server[] = [];
const gateways: InProcessGateway[] = [];

after(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  await closeServers(servers);
});

/** A backend whose /health answers per `mode()`: at once, a body trickling forever, a head then silence, or 300 KB. */
async function healthBackend(mode: () => Mode): Promise<number> {
  const server = http.createServer((req, res) => {
    if (req.url !== '/health') return res.end('ok');
    const m = mode();
    if (m === 'ok') return res.end('up');
    if (m === 'big') return res.end(Buffer.alloc(300 * 1024, 'x'));
    res.writeHead(200);
    res.flushHeaders();
    if (m === 'stall') return undefined;
    const timer = setInterval(() => res.write('.'), 50);
    res.on('close', () => clearInterval(timer));
    return undefined;
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

async function gatewayFor(ports: number[]): Promise<InProcessGateway> {
  const gw = await startInProcess({
    load_balancing: {
      upstreams: ports.map((port, i) => ({ name: `b${i + 1}`, address: '127.0.0.1', port })),
      // A timeout far above any event-loop stall of a loaded CI machine (gateway, backends and test share one
      // process): only a body that never completes can miss it.
      health_check: { enabled: true, path: '/health', interval: '200ms', timeout: '1500ms', healthy_threshold: 1, unhealthy_threshold: 1 },
    },
  });
  gateways.push(gw);
  return gw;
}

const unhealthy = (gw: InProcessGateway, port: number): boolean =>
  gw.logs.some((l) => l.msg === 'Upstream Unhealthy' && l.upstream === `127.0.0.1:${port}`);

test('a health body that trickles past the probe timeout, or stalls after the head, marks the upstream unhealthy', async () => {
  let trickle: Mode = 'ok';
  let stall: Mode = 'ok';
  const a = await healthBackend(() => trickle);
  const b = await healthBackend(() => stall);
  const c = await healthBackend(() => 'ok');
  const gw = await gatewayFor([a, b, c]);
  await sleep(300);
  assert.equal(unhealthy(gw, a) || unhealthy(gw, b) || unhealthy(gw, c), false, 'all healthy while answering');
  trickle = 'trickle';
  stall = 'stall';
  await waitFor(() => unhealthy(gw, a), 'the trickling backend marked unhealthy', 10_000);
  await waitFor(() => unhealthy(gw, b), 'the stalled backend marked unhealthy', 10_000);
  assert.equal(unhealthy(gw, c), false);
  trickle = 'ok';
  await waitFor(() => gw.logs.some((l) => l.msg === 'Upstream Up' && l.upstream === `127.0.0.1:${a}`), 'recovery once it answers whole', 10_000);
});

test('a complete health answer larger than undici dump()\'s 128 KB cap stays healthy', async () => {
  const big = await healthBackend(() => 'big');
  const gw = await gatewayFor([big]);
  // Past the probe timeout, several probes in.
  await sleep(2_500);
  assert.equal(unhealthy(gw, big), false);
});
