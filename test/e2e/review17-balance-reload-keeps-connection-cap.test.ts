// What was wrong: `connections_per_upstream` bounds how many requests run at once against one upstream, but a reload
// that changed any pool option (a queue or timeout setting, a CA file rewritten in place) gave each upstream a new
// pool counting from 0, while the old pool's requests ran on. After N such reloads one upstream took (N+1) times the
// cap: config-sync tooling reloading often undid the protection of a fragile backend. And a request queued before
// the reload waited for the old pool's slots alone: 503 upstream_busy at queue_timeout beside an idle new pool, so
// raising the cap in an incident did not help the requests already waiting.
// What is right now: an upstream's pools across a reload count their requests and queue together, under the newest
// pool's limits, and what waits starts as soon as those allow.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseConfigObject } from '../../src/config/load.js';
import { startInProcess, upstreams, type ConfigInput } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { waitFor } from '../helpers/prometheus.js';
import { closeServers } from '../helpers/servers.js';

const client = createClient({ connections: 64 });
const servers: ReturnType<typeof createServer>[] = [];
after(async () => {
  await closeServers(servers);
  await client.close();
});

/** A backend that holds every request until released, and knows how many it holds at once at most. */
async function holdingBackend(): Promise<{ port: number; held: Array<{ url: string; res: ServerResponse }>; most: number }> {
  const state = { port: 0, held: [] as Array<{ url: string; res: ServerResponse }>, most: 0 };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    state.held.push({ url: req.url ?? '', res });
    state.most = Math.max(state.most, state.held.length);
    res.on('close', () => state.held.splice(state.held.findIndex((h) => h.res === res), 1));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  return state;
}

const config = (port: number, connections: number, queueLimit: number, queueTimeout: string): ConfigInput => ({
  server: { listen_host: '127.0.0.1', listen_port: 0 },
  admin: { listen_host: '127.0.0.1', listen_port: 0 },
  logging: { format: 'json', level: 'info' },
  load_balancing: {
    upstreams: upstreams([port]),
    retries: 0,
    connections_per_upstream: connections,
    queue_limit: queueLimit,
    queue_timeout: queueTimeout,
    health_check: { enabled: false },
  },
});

const release = (held: Array<{ res: ServerResponse }>) => {
  for (const h of [...held]) h.res.end('done');
};

test('reloads that change a pool option do not add up the connection cap of an upstream', async () => {
  const backend = await holdingBackend();
  const gw = await startInProcess(config(backend.port, 2, 0, '5s'));
  const sent: Array<Promise<unknown>> = [];
  try {
    const send = () => sent.push(client.request(`${gw.url}/hold`).then((r) => r.status, (err: unknown) => err));
    for (let i = 0; i < 3; i++) send();
    await waitFor('2 requests held', async () => backend.held.length === 2, 5_000);
    for (const timeout of ['6s', '7s', '8s']) {
      await gw.gateway.reload(parseConfigObject(config(backend.port, 2, 0, timeout)));
      for (let i = 0; i < 3; i++) send();
    }
    // Each batch's requests beyond the cap are refused at once (queue_limit 0): 503s settle, the held ones do not.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(backend.most, 2, `the upstream held ${backend.most} requests at once under a cap of 2`);
  } finally {
    release(backend.held);
    await Promise.all(sent);
    await gw.close();
  }
});

test('a request queued before a reload that raises the cap starts at once on the raised cap', async () => {
  const backend = await holdingBackend();
  const gw = await startInProcess(config(backend.port, 1, 5, '5s'));
  try {
    const a = client.request(`${gw.url}/a`).then((r) => r.status, (err: unknown) => err);
    await waitFor('A held', async () => backend.held.length === 1, 5_000);
    const started = Date.now();
    const b = client.request(`${gw.url}/b`).then((r) => r.status, (err: unknown) => err);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(backend.held.map((h) => h.url), ['/a'], 'B waits behind A under a cap of 1');
    await gw.gateway.reload(parseConfigObject(config(backend.port, 4, 5, '5s')));
    await waitFor('B reached the upstream', async () => backend.held.some((h) => h.url === '/b'), 3_000);
    assert.ok(Date.now() - started < 3_000, 'B started on the raised cap, not after the old queue_timeout');
    release(backend.held);
    assert.deepEqual(await Promise.all([a, b]), [200, 200]);
    // And the count comes back down: the new cap of 4 holds four more, and no fifth.
    const more = Array.from({ length: 5 }, (_, i) => client.request(`${gw.url}/m${i}`).then((r) => r.status, (err: unknown) => err));
    await waitFor('4 held', async () => backend.held.length === 4, 5_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(backend.held.length, 4);
    release(backend.held);
    await waitFor('the fifth held', async () => backend.held.length === 1, 5_000);
    release(backend.held);
    assert.deepEqual(await Promise.all(more), [200, 200, 200, 200, 200]);
  } finally {
    release(backend.held);
    await gw.close();
  }
});
