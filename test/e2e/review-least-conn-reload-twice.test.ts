// Shared in-flight counts across several reloads: an upstream given a new pool twice while requests still run on
// its first pool, and an upstream removed and then re-added. The counts must never go negative and must return to
// 0 once every request ended, in /api/status and in the Prometheus gauge alike.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseConfigObject } from '../../src/config/load.js';
import { startInProcess, upstreams, type ConfigInput } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { sampleValue, waitFor } from '../helpers/prometheus.js';

const client = createClient({ connections: 64 });
const servers: ReturnType<typeof createServer>[] = [];
after(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
  await client.close();
});

async function backend(): Promise<{ port: number; held: ServerResponse[] }> {
  const state = { port: 0, held: [] as ServerResponse[] };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/hold') state.held.push(res);
    else res.end('ok');
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  return state;
}

const config = (ports: number[], connections: number): ConfigInput => ({
  server: { listen_host: '127.0.0.1', listen_port: 0, timeouts: { shutdown_drain: '30s' } },
  admin: { listen_host: '127.0.0.1', listen_port: 0 },
  logging: { format: 'json', level: 'info' },
  load_balancing: { strategy: 'least_conn', upstreams: upstreams(ports), connections_per_upstream: connections, health_check: { enabled: false } },
});

test('two reloads that each give the upstream a new pool: in flight is right throughout and ends at 0', async () => {
  const a = await backend();
  const gw = await startInProcess(config([a.port], 32));
  try {
    const status = async () =>
      ((await (await client.request(`${gw.adminUrl}/api/status`)).json()) as { upstreams: Array<{ in_flight: number }> }).upstreams[0]!.in_flight;
    const gauge = async () => sampleValue((await client.request(`${gw.adminUrl}/metrics`)).text, 'portcullis_upstream_in_flight', { upstream: `127.0.0.1:${a.port}`, name: 'b1' });
    const first = Array.from({ length: 3 }, () => client.request(`${gw.url}/hold`).catch((e: unknown) => e));
    await waitFor('3 held', () => a.held.length === 3);
    await gw.gateway.reload(parseConfigObject(config([a.port], 16)));
    const second = Array.from({ length: 2 }, () => client.request(`${gw.url}/hold`).catch((e: unknown) => e));
    await waitFor('5 held', () => a.held.length === 5);
    await gw.gateway.reload(parseConfigObject(config([a.port], 8)));
    assert.equal(await status(), 5);
    assert.equal(await gauge(), 5);
    for (const res of a.held.splice(0, 3)) res.end('done'); // the first pool's
    await Promise.all(first);
    await waitFor('2 left', async () => (await status()) === 2);
    for (const res of a.held.splice(0)) res.end('done');
    await Promise.all(second);
    await waitFor('0 left', async () => (await status()) === 0);
    assert.equal(await gauge(), 0);
  } finally {
    await gw.close();
  }
});

test('an upstream removed, then re-added while its old requests run: never negative, 0 at the end', async () => {
  const a = await backend();
  const b = await backend();
  const gw = await startInProcess(config([a.port, b.port], 32));
  try {
    const inflight = async () =>
      Object.fromEntries(((await (await client.request(`${gw.adminUrl}/api/status`)).json()) as { upstreams: Array<{ address: string; in_flight: number }> }).upstreams.map((u) => [u.address, u.in_flight]));
    const holds = Array.from({ length: 4 }, () => client.request(`${gw.url}/hold`).catch((e: unknown) => e));
    await waitFor('4 held', () => a.held.length + b.held.length === 4);
    await gw.gateway.reload(parseConfigObject(config([b.port], 32)));
    await gw.gateway.reload(parseConfigObject(config([a.port, b.port], 32)));
    const seenA = (await inflight())[`127.0.0.1:${a.port}`];
    assert.equal(seenA, a.held.length, 'the re-added upstream counts the requests still running on it');
    for (const res of [...a.held.splice(0), ...b.held.splice(0)]) res.end('done');
    await Promise.all(holds);
    await waitFor('all 0', async () => Object.values(await inflight()).every((n) => n === 0), 5_000).catch(() => undefined);
    const end = await inflight();
    assert.deepEqual(Object.values(end), [0, 0], `in flight at the end ${JSON.stringify(end)}; a after re-add: ${seenA}`);
  } finally {
    await gw.close();
  }
});
