// A stop waited for a health probe that hung: closing a service closed the probes' agent, which waits for the
// requests it runs, so an upstream whose health path never answers held the gateway's stop (after the drain) for up
// to health_check.timeout, 30 s with `timeout: 30s`. The probes are now cut when their checker closes (a stop, or a
// reload that removes the service), and a probe cut that way gives no verdict.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { startInProcess } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/prometheus.js';
import { closeServers } from '../helpers/servers.js';

const servers: Server[] = [];
after(async () => {
  await closeServers(servers);
});

test('a stop does not wait for a health probe that hangs', async () => {
  const port = await freePort();
  let probes = 0;
  let open = 0;
  const server = createServer((req, res) => {
    if (req.url === '/hc') probes++; // never answered
    else res.end('served');
  });
  server.on('connection', (socket) => {
    open++;
    socket.on('close', () => open--);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  servers.push(server);
  const gw = await startInProcess({
    services: {
      api: {
        upstreams: [{ name: 'hung', address: '127.0.0.1', port }],
        health_check: { enabled: true, path: '/hc', interval: '100ms', timeout: '30s' },
      },
    },
    routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'api' }],
    server: { timeouts: { shutdown_drain: '1s' } },
  });
  await waitFor('the probe', () => probes === 1);
  const closed = gw.close().then(() => 'closed' as const);
  const bound = new Promise<'still closing'>((resolve) => setTimeout(() => resolve('still closing'), 6_000).unref());
  const outcome = await Promise.race([closed, bound]);
  assert.equal(outcome, 'closed', 'the stop waited on the hanging probe');
  await waitFor('the probe connection closed', () => open === 0, 2_000);
  assert.ok(!gw.logs.some((l) => l.msg === 'Upstream Unhealthy'), 'a probe cut by the stop gave a verdict');
  await closed;
});
