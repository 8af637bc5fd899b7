// A slow health endpoint on one upstream held every other upstream's checks of the service: a round probed all of
// them together and the next round began one interval after the slowest probe ended. With `interval: 1s, timeout:
// 5s` and one upstream whose health path hangs, the others were probed every 6 s: one that went down kept getting
// traffic for unhealthy_threshold x 6 s, one that came back stayed out as long. Each upstream is now probed on the
// interval on its own; an upstream whose probe still runs is skipped until it ends (probes never pile up on it).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { startInProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { sampleValue, waitFor } from '../helpers/prometheus.js';
import { closeServers } from '../helpers/servers.js';

const client = createClient();
const servers: Server[] = [];
after(async () => {
  await closeServers(servers);
  await client.close();
});

/**
 * An upstream whose health path hangs (`hang`), answers 500 (`fail`) or 200; counts probes, and the most probes it
 * held at once (a probe is held until its answer is out or its connection closed).
 */
async function upstream(port: number, mode: 'hang' | 'fail' | 'ok') {
  const state = { mode, probes: 0, holding: 0, mostHeld: 0 };
  const server = createServer((req, res) => {
    if (req.url !== '/hc') return void res.end('served');
    state.probes++;
    state.mostHeld = Math.max(state.mostHeld, ++state.holding);
    res.on('close', () => state.holding--);
    if (state.mode === 'hang') return; // never answers
    res.statusCode = state.mode === 'fail' ? 500 : 200;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  servers.push(server);
  return state;
}

test('an upstream whose health path hangs does not hold the checks of the others', async () => {
  const [slowPort, fastPort] = [await freePort(), await freePort()];
  const slow = await upstream(slowPort, 'hang');
  const fast = await upstream(fastPort, 'ok');
  const gw = await startInProcess({
    services: {
      api: {
        upstreams: [
          { name: 'slow', address: '127.0.0.1', port: slowPort },
          { name: 'fast', address: '127.0.0.1', port: fastPort },
        ],
        health_check: { enabled: true, path: '/hc', interval: '100ms', timeout: '8s', unhealthy_threshold: 2, healthy_threshold: 2 },
      },
    },
    routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'api' }],
  });
  try {
    const healthy = async (name: string, port: number) =>
      sampleValue((await client.request(`${gw.adminUrl}/metrics`)).text, 'portcullis_upstream_healthy', { upstream: `127.0.0.1:${port}`, name, service: 'api' });
    await waitFor('the first probe of each upstream', () => slow.probes === 1 && fast.probes >= 1);
    fast.mode = 'fail';
    // Two failed probes of "fast" take it out while the first probe of "slow" is still hanging (8 s).
    await waitFor('"fast" marked unhealthy', async () => (await healthy('fast', fastPort)) === 0, 5_000);
    fast.mode = 'ok';
    await waitFor('"fast" back in rotation', async () => (await healthy('fast', fastPort)) === 1, 5_000);
    assert.equal(slow.probes, 1, 'the hanging probe of "slow" was never doubled');
    assert.equal(slow.mostHeld, 1, 'probes held at once by the hanging upstream');
    assert.equal((await client.request(`${gw.url}/x`)).status, 200);
  } finally {
    await gw.close();
  }
});

test('a probe longer than the interval is not repeated until it ends (no pile-up)', async () => {
  const port = await freePort();
  const hung = await upstream(port, 'hang');
  const gw = await startInProcess({
    services: {
      api: {
        upstreams: [{ name: 'hung', address: '127.0.0.1', port }],
        health_check: { enabled: true, path: '/hc', interval: '50ms', timeout: '600ms', unhealthy_threshold: 1 },
      },
    },
    routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'api' }],
  });
  try {
    await waitFor('three probes', () => hung.probes >= 3, 5_000);
    assert.equal(hung.mostHeld, 1, 'probes held at once');
    assert.ok(gw.logs.some((l) => l.msg === 'Upstream Unhealthy'));
  } finally {
    await gw.close();
  }
});
