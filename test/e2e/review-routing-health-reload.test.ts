// Active health checks across a reload: an upstream the checks had marked down must not stay down for good once a
// reload turns the checks off (nothing would ever probe it again, and every request would get 502 while the
// upstream is back and answering); a new pool keeps the upstream's health, but not across a change of transport.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { FAST_HEALTH_CHECKS, startInProcess, upstreams, type ConfigInput } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/prometheus.js';
import { parseConfigObject } from '../../src/config/load.js';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createTestCa, pkiDir } from '../helpers/tls.js';

const client = createClient();
after(() => client.close());

/** One service on `port` behind a catch-all route, with the given active checks. */
function config(port: number, healthCheck: Record<string, unknown>): ConfigInput {
  return {
    server: { listen_host: '127.0.0.1', listen_port: 0 },
    admin: { enabled: false, listen_host: '127.0.0.1', listen_port: 0 },
    logging: { format: 'json', level: 'info' },
    services: { api: { upstreams: upstreams([port]), retries: 0, health_check: healthCheck } },
    routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'api' }],
  };
}

test('a reload that turns active checks off puts an upstream they had marked down back in rotation', async () => {
  const port = await freePort();
  const gw = await startInProcess(config(port, FAST_HEALTH_CHECKS));
  const backend = await startBackend('api', port);
  try {
    await backend.stop();
    await waitFor('the checks to mark the upstream down', () => gw.logs.some((l) => l.msg === 'Upstream Unhealthy'), 10_000);
    const down = await client.request(`${gw.url}/x`);
    assert.equal(down.status, 502);
    assert.equal(down.json().code, 'no_healthy_upstream');

    // Checks off (the same pool settings, so the backend object and its state are kept), then the upstream returns.
    await gw.gateway.reload(parseConfigObject(config(port, { ...FAST_HEALTH_CHECKS, enabled: false })));
    await backend.restart();
    const served = await client.request(`${gw.url}/x`);
    assert.equal(served.status, 200, `still ${served.status} ${served.text}: the upstream stayed marked down with no check left to clear it`);
    assert.equal(served.json().backend, 'api');
  } finally {
    await gw.close();
    await backend.stop();
  }
});

test('a reload that gives a service new pools (connections_per_upstream) keeps an upstream the checks marked down out of rotation', async () => {
  const up = await startBackend('up');
  const downPort = await freePort(); // nothing listens: connections are refused
  // One round at start marks the down upstream unhealthy; the next is 30 s away, well after the test.
  const checks = { enabled: true, interval: '30s', timeout: '500ms', healthy_threshold: 1, unhealthy_threshold: 1 };
  const input = (connections: number): ConfigInput => ({
    server: { listen_host: '127.0.0.1', listen_port: 0 },
    admin: { enabled: false, listen_host: '127.0.0.1', listen_port: 0 },
    logging: { format: 'json', level: 'info' },
    services: {
      api: { upstreams: upstreams([up.port, downPort]), retries: 0, connections_per_upstream: connections, health_check: checks },
    },
    routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'api' }],
  });
  const gw = await startInProcess(input(16));
  try {
    await waitFor('the first round to mark the down upstream', () => gw.logs.some((l) => l.msg === 'Upstream Unhealthy' && l.upstream === `127.0.0.1:${downPort}`), 10_000);
    for (let i = 0; i < 4; i++) assert.equal((await client.request(`${gw.url}/x`)).status, 200, 'before the reload');

    // The same upstreams at the same addresses; only the pool size changes, so each backend gets a new pool.
    await gw.gateway.reload(parseConfigObject(input(32)));
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await client.request(`${gw.url}/x`)).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200], 'the upstream known to be down got requests again (retries: 0, so 502)');
  } finally {
    await gw.close();
    await up.stop();
  }
});

test('a reload that shortens the check interval applies it at once, not after the long wait already scheduled', async () => {
  const port = await freePort(); // nothing listens yet
  // Checks every hour: the round at start marks the upstream down, the next is an hour away.
  const hourly = { enabled: true, interval: '1h', timeout: '500ms', healthy_threshold: 1, unhealthy_threshold: 1 };
  const gw = await startInProcess(config(port, hourly));
  let backend: Awaited<ReturnType<typeof startBackend>> | undefined;
  try {
    await waitFor('the round at start to mark the upstream down', () => gw.logs.some((l) => l.msg === 'Upstream Unhealthy'), 10_000);
    backend = await startBackend('api', port);
    // The operator shortens the interval to see the upstream back sooner.
    await gw.gateway.reload(parseConfigObject(config(port, { ...hourly, interval: '200ms' })));
    await waitFor('the upstream back in rotation within a few new intervals', async () => (await client.request(`${gw.url}/x`)).status === 200, 5_000);
  } finally {
    await gw.close();
    await backend?.stop();
  }
});

test('a reload that turns TLS on for an upstream the cleartext checks marked down serves it at once (health is not carried across transports)', async () => {
  const pki = pkiDir();
  const ca = createTestCa('Health Reload CA', pki.path);
  const cert = ca.issue('api.internal');
  // An upstream that speaks only TLS: the cleartext checks' requests fail its handshake.
  const server = createHttpsServer({ cert: cert.cert, key: cert.key }, (_req, res) => res.end('over tls'));
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  // One round at start marks it down; the next is 30 s away, well after the test.
  const checks = { enabled: true, interval: '30s', timeout: '500ms', healthy_threshold: 1, unhealthy_threshold: 1 };
  const input = (tls: Record<string, unknown> | undefined): ConfigInput => ({
    ...config(port, checks),
    services: { api: { upstreams: upstreams([port]), retries: 0, health_check: checks, ...(tls ? { tls } : {}) } },
  });
  const gw = await startInProcess(input(undefined));
  try {
    await waitFor('the cleartext round to mark the upstream down', () => gw.logs.some((l) => l.msg === 'Upstream Unhealthy'), 10_000);
    assert.equal((await client.request(`${gw.url}/x`)).status, 502);

    // The operator's fix: the service speaks TLS to it now.
    await gw.gateway.reload(parseConfigObject(input({ enabled: true, ca_file: ca.caFile, servername: 'api.internal' })));
    const served = await client.request(`${gw.url}/x`);
    assert.equal(served.status, 200, `${served.status} ${served.text}: the cleartext verdict kept the upstream out until the next round`);
    assert.equal(served.text, 'over tls');
  } finally {
    await gw.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    pki.remove();
  }
});

test('a check round in flight across a reload that gives the upstream a new pool: its verdict reaches the new pool', async () => {
  // The upstream serves traffic but fails its health check, slowly: the first round is still waiting when the reload
  // comes.
  let probes = 0;
  const server = createHttpServer((req, res) => {
    if (req.url !== '/healthz') return void res.end('served');
    probes++;
    setTimeout(() => res.writeHead(503).end('down'), 600);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  // The next round is 30 s away, well after the test.
  const checks = { enabled: true, path: '/healthz', interval: '30s', timeout: '5s', healthy_threshold: 1, unhealthy_threshold: 1 };
  const input = (connections: number): ConfigInput => ({
    ...config(port, checks),
    services: { api: { upstreams: upstreams([port]), retries: 0, connections_per_upstream: connections, health_check: checks } },
  });
  const gw = await startInProcess(input(16));
  try {
    await waitFor('the first round to reach the upstream', () => probes === 1, 5_000);
    assert.equal(gw.logs.some((l) => l.msg === 'Upstream Unhealthy'), false, 'the first round is still waiting');
    await gw.gateway.reload(parseConfigObject(input(32))); // a new pool for the same upstream
    await waitFor('the round to end with the upstream down', () => gw.logs.some((l) => l.msg === 'Upstream Unhealthy'), 10_000);
    const res = await client.request(`${gw.url}/x`);
    assert.equal(res.status, 502, `${res.status} ${res.text}: the verdict went to the retired pool, the new one stayed in rotation`);
    assert.equal(res.json().code, 'no_healthy_upstream');
  } finally {
    await gw.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
