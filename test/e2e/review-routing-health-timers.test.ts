// Health-check and queue durations past what a Node.js timer can hold (2^31-1 ms, about 24.8 days). setTimeout fires
// such a timer after 1 ms instead (TimeoutOverflowWarning), so `interval: 30d`, which check-config accepts, probed every
// backend hundreds of times a second, and `passive_cooldown: 30d` took an upstream out for 1 ms. The config now caps
// every timer duration when it is read (src/config/schema.ts; the other keys: config-timer-durations.test.ts).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { startInProcess, type ConfigInput } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { sleep } from '../helpers/wait.js';
import { waitFor } from '../helpers/prometheus.js';

const client = createClient();
after(() => client.close());

/** A backend that counts the health probes it gets (by their user-agent). */
async function probeCounter(port: number): Promise<{ server: Server; probes: () => number }> {
  let probes = 0;
  const server = createServer((req, res) => {
    if (req.headers['user-agent'] === 'portcullis-health-check') probes++;
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, probes: () => probes };
}

function config(upstreams: ConfigInput[], healthCheck: Record<string, unknown>): ConfigInput {
  return {
    services: { api: { upstreams, retries: 0, health_check: healthCheck } },
    routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'api' }],
  };
}

test('interval and timeout of 30d: one probe at start that succeeds, then a wait (no probe flood)', async () => {
  const port = await freePort();
  const backend = await probeCounter(port);
  const checks = { enabled: true, interval: '30d', timeout: '30d', unhealthy_threshold: 1 };
  const gw = await startInProcess(config([{ name: 'a', address: '127.0.0.1', port }], checks));
  try {
    await waitFor('the first round', () => backend.probes() >= 1, 5_000);
    await sleep(1_000);
    assert.ok(backend.probes() <= 2, `${backend.probes()} probes within a second of a 30-day interval`);
    assert.ok(!gw.logs.some((l) => l.msg === 'Upstream Unhealthy'), 'a probe cut after 1 ms called the upstream unhealthy');
    assert.equal((await client.request(`${gw.url}/x`)).status, 200);
  } finally {
    await gw.close();
    await new Promise<void>((resolve) => backend.server.close(() => resolve()));
  }
});

test('passive_cooldown: 30d keeps a failed upstream out of rotation', async () => {
  const up = await freePort();
  const down = await freePort(); // refused
  const backend = await probeCounter(up);
  const gw = await startInProcess(
    config(
      [
        { name: 'up', address: '127.0.0.1', port: up },
        { name: 'down', address: '127.0.0.1', port: down },
      ],
      { enabled: false, passive_cooldown: '30d' },
    ),
  );
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      statuses.push((await client.request(`${gw.url}/x`)).status);
      await sleep(20);
    }
    // Round robin: the first request to "down" fails (retries: 0) and cools it down; no later request goes there.
    assert.equal(statuses.filter((s) => s === 502).length, 1, `statuses ${statuses.join(',')}`);
  } finally {
    await gw.close();
    await new Promise<void>((resolve) => backend.server.close(() => resolve()));
  }
});

test('queue_timeout: 30d lets a request wait for the busy connection instead of 503 at once', async () => {
  const port = await freePort();
  const server = createServer((req, res) => {
    if (req.headers['user-agent'] === 'portcullis-health-check') return void res.end('ok');
    setTimeout(() => res.end('done'), 300);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const gw = await startInProcess({
    services: {
      api: {
        upstreams: [{ name: 'a', address: '127.0.0.1', port }],
        connections_per_upstream: 1,
        queue_timeout: '30d',
        health_check: { enabled: false },
      },
    },
    routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'api' }],
  });
  try {
    const [first, second] = await Promise.all([client.request(`${gw.url}/a`), client.request(`${gw.url}/b`)]);
    assert.deepEqual([first.status, second.status], [200, 200], second.text);
  } finally {
    await gw.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
