// least_conn across a reload that gives an upstream a new pool (its pool settings changed). What was wrong: the
// new pool's backend started counting in-flight requests from 0 while the requests running on the old pool still
// loaded the same upstream, so least_conn sent new requests to the busiest upstream (long requests, WebSockets and
// gRPC streams kept it that way), and /status and the in-flight gauge showed 0 for it. What is right now: the
// in-flight count (and the request and failure counts) belong to the upstream, not to its pool, and carry over:
// also across two reloads in a row, and to an upstream removed and re-added while its old requests run. The counts
// never go negative and return to 0 once every request ended, in /api/status and in the Prometheus gauge alike.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseConfigObject } from '../../src/config/load.js';
import { startInProcess, upstreams, type ConfigInput } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { sampleValue, waitFor } from '../helpers/prometheus.js';
import { closeServers } from '../helpers/servers.js';

const client = createClient({ connections: 64 });
const servers: ReturnType<typeof createServer>[] = [];
after(async () => {
  await closeServers(servers);
  await client.close();
});

/** A backend that answers `/hold` only when released, and counts every request. */
async function backend(): Promise<{ port: number; hits: number; held: ServerResponse[] }> {
  const state = { port: 0, hits: 0, held: [] as ServerResponse[] };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    state.hits++;
    if (req.url === '/hold') state.held.push(res);
    else res.end('ok');
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  return state;
}

test('a reload that changes pool settings keeps each upstream in-flight count: least_conn avoids the busy one', async () => {
  const busy = await backend();
  const idle = await backend();
  // The listeners as the in-process gateway binds them (a reload may not change them).
  const config = (connections: number): ConfigInput => ({
    server: { listen_host: '127.0.0.1', listen_port: 0 },
    admin: { listen_host: '127.0.0.1', listen_port: 0 },
    logging: { format: 'json', level: 'info' },
    load_balancing: { strategy: 'least_conn', upstreams: upstreams([busy.port, idle.port]), connections_per_upstream: connections, health_check: { enabled: false } },
  });
  const gw = await startInProcess(config(32));
  try {
    // Both start at 0 in flight: least_conn alternates between tied upstreams, so 8 requests load each with 4.
    // The idle one is then emptied by answering its share, leaving 4 in flight on the busy one.
    // Settled even when an assertion below fails first (the gateway's close then cuts them).
    const holds = Array.from({ length: 8 }, () => client.request(`${gw.url}/hold`).catch((err: unknown) => err));
    await waitFor('8 requests held', async () => busy.held.length + idle.held.length === 8, 5_000);
    assert.deepEqual([busy.held.length, idle.held.length], [4, 4]);
    for (const res of idle.held.splice(0)) res.end('done');

    await gw.gateway.reload(parseConfigObject(config(16))); // new pools for both upstreams
    const upstreamsNow = async () =>
      ((await (await client.request(`${gw.adminUrl}/api/status`)).json()) as { upstreams: Array<{ address: string; in_flight: number; requests: number }> }).upstreams;
    const byAddress = Object.fromEntries((await upstreamsNow()).map((u) => [u.address, u]));
    assert.equal(byAddress[`127.0.0.1:${busy.port}`]?.in_flight, 4, 'the busy upstream shows its 4 running requests after the reload');
    assert.equal(byAddress[`127.0.0.1:${busy.port}`]?.requests, 4, 'and the requests it was sent');

    // Four new short requests: each goes to the upstream with fewer in flight, the idle one.
    const hitsBefore = busy.hits;
    for (let i = 0; i < 4; i++) assert.equal((await client.request(`${gw.url}/short`)).status, 200);
    assert.equal(busy.hits - hitsBefore, 0, 'no new request went to the upstream with 4 in flight');

    for (const res of busy.held.splice(0)) res.end('done');
    for (const res of await Promise.all(holds)) assert.equal((res as { status?: number }).status, 200, String(res));
    // Released on the old pool, counted down on the upstream: both back at 0.
    await waitFor('both at 0 in flight', async () => (await upstreamsNow()).every((u) => u.in_flight === 0), 5_000);
  } finally {
    await gw.close();
  }
});

/** Two-reload cases: the listeners as the in-process gateway binds them, and a drain long enough for held requests. */
const reloadable = (ports: number[], connections: number): ConfigInput => ({
  server: { listen_host: '127.0.0.1', listen_port: 0, timeouts: { shutdown_drain: '30s' } },
  admin: { listen_host: '127.0.0.1', listen_port: 0 },
  logging: { format: 'json', level: 'info' },
  load_balancing: { strategy: 'least_conn', upstreams: upstreams(ports), connections_per_upstream: connections, health_check: { enabled: false } },
});

test('two reloads that each give the upstream a new pool: in flight is right throughout and ends at 0', async () => {
  const a = await backend();
  const gw = await startInProcess(reloadable([a.port], 32));
  try {
    const status = async () =>
      ((await (await client.request(`${gw.adminUrl}/api/status`)).json()) as { upstreams: Array<{ in_flight: number }> }).upstreams[0]!.in_flight;
    const gauge = async () => sampleValue((await client.request(`${gw.adminUrl}/metrics`)).text, 'portcullis_upstream_in_flight', { upstream: `127.0.0.1:${a.port}`, name: 'b1', service: 'default' });
    const first = Array.from({ length: 3 }, () => client.request(`${gw.url}/hold`).catch((e: unknown) => e));
    await waitFor('3 held', () => a.held.length === 3);
    await gw.gateway.reload(parseConfigObject(reloadable([a.port], 16)));
    const second = Array.from({ length: 2 }, () => client.request(`${gw.url}/hold`).catch((e: unknown) => e));
    await waitFor('5 held', () => a.held.length === 5);
    await gw.gateway.reload(parseConfigObject(reloadable([a.port], 8)));
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
  const gw = await startInProcess(reloadable([a.port, b.port], 32));
  try {
    const inflight = async () =>
      Object.fromEntries(((await (await client.request(`${gw.adminUrl}/api/status`)).json()) as { upstreams: Array<{ address: string; in_flight: number }> }).upstreams.map((u) => [u.address, u.in_flight]));
    const holds = Array.from({ length: 4 }, () => client.request(`${gw.url}/hold`).catch((e: unknown) => e));
    await waitFor('4 held', () => a.held.length + b.held.length === 4);
    await gw.gateway.reload(parseConfigObject(reloadable([b.port], 32)));
    await gw.gateway.reload(parseConfigObject(reloadable([a.port, b.port], 32)));
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
