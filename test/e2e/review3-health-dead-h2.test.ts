// An HTTP/2 upstream whose connection died silently (a NAT, firewall or load balancer between them dropped it: no FIN,
// no RST). undici keeps an HTTP/2 session until its connection errors and sends every request on it:
// - proxied requests each got 504 upstream_timeout for good, and the pool never connected anew (a timed-out HTTP/1
//   request's socket is destroyed with it). A stream that ends in a reset now has its session PINGed, and a session
//   that does not acknowledge within 5 s is destroyed: the next request goes out on a new connection;
// - every later health probe went out on the dead session and timed out, so the upstream stayed out of rotation while
//   new connections to it worked (an HTTP/1 probe's socket is destroyed with it, and the next probe connects anew).
//   A probe that gets no answer now drops its connection.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/prometheus.js';
import { startTcpForwarder, type TcpForwarder } from '../helpers/tcp-forwarder.js';

const client = createClient();
const closers: Array<() => unknown> = [];
after(async () => {
  for (const close of closers) await close();
  await client.close();
});

/** An h2c upstream answering `body`, behind a forwarder whose open connections the test can black-hole. */
async function deadableH2cUpstream(body: string): Promise<TcpForwarder> {
  const upstreamPort = await freePort();
  const server = http2.createServer();
  server.on('stream', (stream) => {
    stream.respond({ ':status': 200 });
    stream.end(body);
  });
  server.on('session', (session) => closers.push(() => session.destroy()));
  await new Promise<void>((resolve) => server.listen(upstreamPort, '127.0.0.1', resolve));
  closers.push(() => server.close());
  const link = await startTcpForwarder('127.0.0.1', upstreamPort);
  closers.push(() => link.close());
  return link;
}

function gatewayTo(link: TcpForwarder, service: Record<string, unknown>): Promise<InProcessGateway> {
  return startInProcess({
    services: { h2c: { http2: true, upstreams: [{ name: 'u', address: '127.0.0.1', port: link.port }], ...service } },
    routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'h2c' }],
  });
}

test('an h2c upstream connection that went dead is replaced: requests are served again on a new one', async () => {
  const link = await deadableH2cUpstream('served');
  const gw = await gatewayTo(link, {
    retries: 0,
    health_check: { enabled: false, passive_cooldown: '200ms' },
    timeouts: { upstream_response: '1s' },
  });
  try {
    assert.equal((await client.request(`${gw.url}/a`)).status, 200);
    assert.equal(link.accepted, 1);
    link.blackHole(); // the pool's connection now swallows everything, silently
    assert.equal((await client.request(`${gw.url}/a`)).status, 504);
    let last = 0;
    await waitFor(
      'a request served again',
      async () => (last = (await client.request(`${gw.url}/a`)).status) === 200,
      10_000,
      200,
    );
    assert.equal(last, 200);
    assert.ok(link.accepted >= 2, `${link.accepted} connections`);
  } finally {
    await gw.close();
  }
});

test('an h2c upstream whose probe connection went dead is probed on a new one and comes back', async () => {
  const link = await deadableH2cUpstream('ok');
  const gw = await gatewayTo(link, {
    health_check: { enabled: true, path: '/hc', interval: '100ms', timeout: '400ms', unhealthy_threshold: 1, healthy_threshold: 1 },
  });
  try {
    const said = (msg: string) => gw.logs.some((l) => l.msg === msg);
    await waitFor('a probe connection', () => link.accepted === 1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    link.blackHole(); // the connection the probes use now swallows everything, silently
    await waitFor('Upstream Unhealthy', () => said('Upstream Unhealthy'), 3_000);
    await waitFor('Upstream Up, over a new connection', () => said('Upstream Up'), 4_000);
    assert.ok(link.accepted >= 2, `${link.accepted} connections`);
  } finally {
    await gw.close();
  }
});
