// Proxied requests to an HTTP/2 upstream whose connection died silently (a NAT, firewall or load balancer between
// them dropped it: no FIN, no RST) timed out for good: undici keeps an HTTP/2 session until its connection errors
// and sent every request on it, so each got 504 upstream_timeout and the pool never connected anew (a timed-out
// HTTP/1 request's socket is destroyed with it). A stream that ends in a reset now has its session PINGed, and a
// session that does not acknowledge within 5 s is destroyed: the next request goes out on a new connection.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import * as net from 'node:net';
import { startInProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/prometheus.js';

const client = createClient();
const closers: Array<() => void> = [];
after(async () => {
  for (const close of closers) close();
  await client.close();
});

/** A TCP forwarder to `target` whose open connections can be black-holed (bytes taken, never passed on). */
async function forwarder(target: number): Promise<{ port: number; blackHole(): void; connections(): number }> {
  const port = await freePort();
  const links: Array<{ frozen: boolean }> = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((downstream) => {
    const upstream = net.connect(target, '127.0.0.1');
    const link = { frozen: false };
    links.push(link);
    for (const s of [downstream, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    downstream.on('data', (d: Buffer) => void (link.frozen || upstream.write(d)));
    upstream.on('data', (d: Buffer) => void (link.frozen || downstream.write(d)));
    downstream.on('close', () => upstream.destroy());
    upstream.on('close', () => downstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  closers.push(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { port, blackHole: () => links.forEach((l) => (l.frozen = true)), connections: () => links.length };
}

test('an h2c upstream connection that went dead is replaced: requests are served again on a new one', async () => {
  const upstreamPort = await freePort();
  const server = http2.createServer();
  server.on('stream', (stream) => {
    stream.respond({ ':status': 200 });
    stream.end('served');
  });
  server.on('session', (session) => closers.push(() => session.destroy()));
  await new Promise<void>((resolve) => server.listen(upstreamPort, '127.0.0.1', resolve));
  closers.push(() => server.close());
  const link = await forwarder(upstreamPort);
  const gw = await startInProcess({
    services: {
      h2c: {
        http2: true,
        retries: 0,
        upstreams: [{ name: 'u', address: '127.0.0.1', port: link.port }],
        health_check: { enabled: false, passive_cooldown: '200ms' },
        timeouts: { upstream_response: '1s' },
      },
    },
    routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'h2c' }],
  });
  try {
    assert.equal((await client.request(`${gw.url}/a`)).status, 200);
    assert.equal(link.connections(), 1);
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
    assert.ok(link.connections() >= 2, `${link.connections()} connections`);
  } finally {
    await gw.close();
  }
});
