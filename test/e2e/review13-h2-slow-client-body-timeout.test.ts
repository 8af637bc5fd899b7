// A client slower than its HTTP/2 upstream was cut as the upstream's timeout: the gateway pauses the upstream's
// stream for the client, the upstream then sends nothing (flow control), and the stream's idle timer, undici's
// upstream_body bound, ran on: 504 upstream_timeout in the log, a truncated download, the upstream blamed. An
// HTTP/1 upstream is not timed while the gateway waits on the client; an HTTP/2 one is not either now.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Http2Server } from 'node:http2';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';

const BODY = 24 * 1024 * 1024; // more than the sockets between gateway and client hold: the gateway must pause
const CHUNK = Buffer.alloc(64 * 1024, 0x62);
let upstream: Http2Server;
let gw: InProcessGateway;
before(async () => {
  upstream = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BODY) });
    let sent = 0;
    const more = (): void => {
      while (sent < BODY) {
        sent += CHUNK.length;
        if (!res.write(CHUNK)) return void res.once('drain', more);
      }
      res.end();
    };
    more();
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  gw = await startInProcess({
    services: {
      h2: {
        http2: true,
        upstreams: [{ name: 'h2', address: '127.0.0.1', port: (upstream.address() as AddressInfo).port }],
        health_check: { enabled: false },
      },
    },
    routes: [{ name: 'download', match: { path_prefix: '/' }, service: 'h2', timeouts: { upstream_body: '1s' } }],
  });
});
after(async () => {
  await gw?.close();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
});

test('a client that stops reading for twice upstream_body still gets the whole body', async () => {
  const got = await new Promise<{ length: number; complete: boolean }>((resolve, reject) => {
    const req = request(`${gw.url}/big`, (res) => {
      let length = 0;
      res.pause();
      setTimeout(() => res.resume(), 2_000);
      res.on('data', (chunk: Buffer) => (length += chunk.length));
      res.on('end', () => resolve({ length, complete: res.complete }));
      res.on('error', () => resolve({ length, complete: false }));
      res.on('aborted', () => resolve({ length, complete: false }));
    });
    req.on('error', reject);
    req.end();
  });
  assert.deepEqual(got, { length: BODY, complete: true });
  assert.ok(!gw.logs.some((l) => l.error === 'upstream_timeout' || l.msg === 'Upstream Down'), 'the upstream is not blamed');
});
