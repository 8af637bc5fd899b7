// What was wrong: a request running when a reload gave its upstream a new pool (changed connections_per_upstream,
// timeouts, queue or TLS settings) and then failed was retried on that same upstream, through its new pool: the
// request was recorded as sent to the old pool's backend object, and the new one at the same address:port passed for
// another upstream. With retries: 1 the client got 502 while the other upstream was idle. The failure's passive
// cooldown also went to the retired object only, so new requests kept being sent to the dead upstream (each one
// failing once before its retry) for the whole cooldown.
// What is right now: an upstream is the same upstream across its pools: a retry never goes back to it, and a failure
// on its old pool takes it out of rotation as one on its new pool does.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseConfigObject } from '../../src/config/load.js';
import { startInProcess, upstreams, type ConfigInput } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';
import { closeServers } from '../helpers/servers.js';

const client = createClient();
const servers: ReturnType<typeof createServer>[] = [];
after(async () => {
  await closeServers(servers);
  await client.close();
});

/** A backend that names itself, and holds `/hold` until the test lets go of it. */
async function backend(name: string, hold: boolean): Promise<{ port: number; held: ServerResponse[]; server: ReturnType<typeof createServer> }> {
  const held: ServerResponse[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (hold && req.url === '/hold') held.push(res);
    else res.end(name);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, held, server };
}

const config = (ports: number[], connections: number): ConfigInput => ({
  server: { listen_host: '127.0.0.1', listen_port: 0, timeouts: { shutdown_drain: '30s' } },
  admin: { listen_host: '127.0.0.1', listen_port: 0 },
  logging: { format: 'json', level: 'info' },
  load_balancing: {
    strategy: 'round_robin',
    upstreams: upstreams(ports),
    retries: 1,
    connections_per_upstream: connections,
    health_check: { enabled: false, passive_cooldown: '60s' },
  },
});

test('a request that fails on an upstream after a reload gave it a new pool is retried on another upstream', async () => {
  const dying = await backend('dying', true);
  const other = await backend('other', false);
  const gw = await startInProcess(config([dying.port, other.port], 32));
  try {
    // The first pick of round robin: the dying upstream.
    const pending = client.request(`${gw.url}/hold`);
    await waitFor(async () => dying.held.length === 1, 'the request held by the dying upstream');
    await gw.gateway.reload(parseConfigObject(config([dying.port, other.port], 16))); // new pools for both
    // The upstream goes away: its held request's connection is cut and nothing listens there any more.
    dying.server.close();
    dying.held[0]!.socket!.destroy();
    const res = await pending;
    assert.equal(res.status, 200, `${res.status} ${res.text}`);
    assert.equal(res.text, 'other');
    // Out of rotation for its cooldown: the next requests go to the other upstream at once, with no retry.
    const retriesBefore = gw.logs.filter((l) => l.msg === 'Upstream Retry').length;
    for (let i = 0; i < 4; i++) {
      const next = await client.request(`${gw.url}/n${i}`);
      assert.equal(next.status, 200, next.text);
      assert.equal(next.text, 'other');
    }
    assert.equal(gw.logs.filter((l) => l.msg === 'Upstream Retry').length, retriesBefore, 'no request was sent to the dead upstream');
  } finally {
    await gw.close();
  }
});
