// A client that stops reading a response: the upstream is paused for it (backpressure), and undici suspends its body
// timeout while a request is paused, so nothing bounded the wait. A few such clients held every pool connection of
// an upstream for as long as they stayed connected, and everyone else got 503 upstream_busy. Now, after
// server.timeouts.request_body_chunk without the client taking a byte, the client's connection (HTTP/2: its stream,
// CANCEL) is closed, the upstream request aborted, the request logged CLIENT_SEND_TIMEOUT, the upstream not blamed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { constants } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { h2connect, h2request } from '../helpers/h2.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

const MIB = Buffer.alloc(1024 * 1024, 'x');
const pki = pkiDir();
let backend: Server;
let gw: InProcessGateway;
let ca: Buffer;

before(async () => {
  // /big: 64 MiB, far more than the socket buffers between the backend and a client that never reads.
  backend = createServer(async (req, res) => {
    res.on('error', () => undefined);
    if (req.url !== '/big') {
      res.end('small');
      return;
    }
    res.writeHead(200, { 'content-length': 64 * MIB.length });
    for (let i = 0; i < 64 && !res.destroyed; i++) if (!res.write(MIB)) await once(res, 'drain').catch(() => undefined);
    res.end();
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const testCa = createTestCa('Stall CA', pki.path);
  ca = testCa.ca;
  const cert = testCa.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
  gw = await startInProcess({
    server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile }, timeouts: { request_body_chunk: '1s' } },
    load_balancing: {
      connections_per_upstream: 2,
      queue_timeout: '300ms',
      health_check: { enabled: false },
      upstreams: upstreams([(backend.address() as AddressInfo).port]),
    },
  });
});

after(async () => {
  await gw?.close();
  backend?.closeAllConnections();
  backend?.close();
  pki.remove();
});

/** GET /big over TLS HTTP/1.1 on a raw socket, then never read. */
async function stalledClient(): Promise<TLSSocket> {
  const socket = connect({ port: gw.gateway.port, host: '127.0.0.1', ca, servername: 'a.test', ALPNProtocols: ['http/1.1'] });
  await once(socket, 'secureConnect');
  socket.on('error', () => undefined);
  socket.write('GET /big HTTP/1.1\r\nHost: a.test\r\n\r\n');
  socket.pause();
  return socket;
}

function completed(path: string): Array<Record<string, unknown>> {
  return gw.logs.filter((l) => l.msg === 'Request Completed' && l.path === path);
}

test('HTTP/1.1 clients that never read are cut after the bound; the pool is free again, the upstream not blamed', async () => {
  const stalled = [await stalledClient(), await stalledClient()];
  // Both pool connections are taken: with no bound, every other request waited out queue_timeout (503) from here on.
  await waitFor(() => completed('/big').length === 2, 'both stalled requests cut and logged', 8_000);
  for (const line of completed('/big')) {
    assert.equal(line.status, 200); // what the client was told; the cut is in `error`
    assert.equal(line.error, 'CLIENT_SEND_TIMEOUT');
  }
  // The gateway closed their connections: once they read what was buffered for them, they reach its end.
  await Promise.all(stalled.map((s) => (s.destroyed ? undefined : (s.resume(), once(s, 'close')))));
  // The pool has its connections back: a request is served, not queued into a 503.
  const h2 = await h2connect(gw.gateway.port, ca);
  try {
    assert.equal((await h2request(h2, { ':path': '/small' })).body.toString(), 'small');
  } finally {
    h2.close();
  }
  assert.deepEqual(gw.logs.filter((l) => l.msg === 'Upstream Down'), []);
});

test('an HTTP/2 stream that is never read is reset with CANCEL after the bound; its session goes on serving', async () => {
  const session = await h2connect(gw.gateway.port, ca);
  try {
    const before = completed('/big').length;
    const stream = session.request({ ':path': '/big' });
    stream.on('error', () => undefined);
    stream.pause(); // the client's flow-control window fills, and the gateway's stream buffer behind it
    await once(stream, 'close');
    assert.equal(stream.rstCode, constants.NGHTTP2_CANCEL);
    await waitFor(() => completed('/big').length === before + 1, 'the stalled stream logged');
    assert.equal(completed('/big').at(-1)?.error, 'CLIENT_SEND_TIMEOUT');
    assert.equal((await h2request(session, { ':path': '/small' })).body.toString(), 'small');
  } finally {
    session.close();
  }
  assert.deepEqual(gw.logs.filter((l) => l.msg === 'Upstream Down'), []);
});
