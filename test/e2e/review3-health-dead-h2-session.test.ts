// An HTTP/2 upstream whose probe connection died silently (a NAT, firewall or load balancer between them dropped it:
// no FIN, no RST) stayed out of rotation while new connections to it worked: undici keeps an HTTP/2 session until the
// connection errors and sends every later probe on it, so every probe timed out (an HTTP/1 probe's socket is
// destroyed with it, and the next probe connects anew). A probe that gets no answer now drops its connection.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import * as net from 'node:net';
import type { Server, Socket } from 'node:net';
import { startInProcess } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/prometheus.js';

const closers: Array<() => void> = [];
after(() => {
  for (const close of closers) close();
});

/** A TCP forwarder to `target` whose open connections can be black-holed (bytes taken, never passed on). */
async function forwarder(target: number): Promise<{ port: number; blackHole(): void; connections(): number }> {
  const port = await freePort();
  const links: Array<{ frozen: boolean }> = [];
  const sockets = new Set<Socket>();
  const server: Server = net.createServer((client) => {
    const upstream = new net.Socket();
    const link = { frozen: false };
    links.push(link);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    upstream.connect(target, '127.0.0.1');
    client.on('data', (d: Buffer) => void (link.frozen || upstream.write(d)));
    upstream.on('data', (d: Buffer) => void (link.frozen || client.write(d)));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  closers.push(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return {
    port,
    blackHole: () => links.forEach((l) => (l.frozen = true)),
    connections: () => links.length,
  };
}


test('an h2c upstream whose probe connection went dead is probed on a new one and comes back', async () => {
  const upstreamPort = await freePort();
  const server = http2.createServer();
  server.on('stream', (stream) => {
    stream.respond({ ':status': 200 });
    stream.end('ok');
  });
  server.on('session', (session) => closers.push(() => session.destroy()));
  await new Promise<void>((resolve) => server.listen(upstreamPort, '127.0.0.1', resolve));
  closers.push(() => server.close());
  const link = await forwarder(upstreamPort);
  const gw = await startInProcess({
    services: {
      h2c: {
        http2: true,
        upstreams: [{ name: 'u', address: '127.0.0.1', port: link.port }],
        health_check: { enabled: true, path: '/hc', interval: '100ms', timeout: '400ms', unhealthy_threshold: 1, healthy_threshold: 1 },
      },
    },
    routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'h2c' }],
  });
  try {
    const said = (msg: string) => gw.logs.some((l) => l.msg === msg);
    await waitFor('a probe connection', () => link.connections() === 1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    link.blackHole(); // the connection the probes use now swallows everything, silently
    await waitFor('Upstream Unhealthy', () => said('Upstream Unhealthy'), 3_000);
    await waitFor('Upstream Up, over a new connection', () => said('Upstream Up'), 4_000);
    assert.ok(link.connections() >= 2, `${link.connections()} connections`);
  } finally {
    await gw.close();
  }
});
