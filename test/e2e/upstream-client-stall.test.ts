// A client that stops reading a response: the upstream is paused for it (backpressure), and undici suspends its body
// timeout while a request is paused, so nothing bounded the wait. A few such clients held every pool connection of
// an upstream for as long as they stayed connected, and everyone else got 503 upstream_busy. Now, after
// server.timeouts.request_body_chunk without the client taking a byte, the client's connection (HTTP/2: its stream,
// CANCEL) is closed, the upstream request aborted, the request logged CLIENT_SEND_TIMEOUT, the upstream not blamed.
// The bound is on progress, not on drains: a client that keeps taking bytes, however slowly, is not cut, and a
// pipelined response waiting its turn behind another is not timed until it has the connection.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { constants } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import { connect as h2rawConnect } from 'node:http2';
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
    if (req.url === '/256k') {
      res.end(Buffer.alloc(256 * 1024, 'y'));
      return;
    }
    if (req.url === '/4m') {
      res.end(Buffer.alloc(4 * MIB.length, 'z'));
      return;
    }
    if (req.url === '/drip') {
      // 15 bytes over ~3 s: three bounds of the gateway's 1 s, which a response queued behind it must not count.
      res.writeHead(200, { 'content-type': 'text/plain' });
      for (let i = 0; i < 15 && !res.destroyed; i++) {
        res.write('.');
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      res.end();
      return;
    }
    if (req.url !== '/big') {
      res.end('small');
      return;
    }
    res.writeHead(200, { 'content-length': 64 * MIB.length });
    for (let i = 0; i < 64 && !res.destroyed; i++) if (!res.write(MIB)) await once(res, 'drain').catch(() => undefined);
    res.end();
  });
  // Node's 5 s keep-alive timer starts once a response is in the kernel, and /256k is, long before a slow reader has
  // it: the close that followed cut the relay still paused on it (a separate matter, not the bound tested here).
  backend.keepAliveTimeout = 60_000;
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

test('an HTTP/2 client that reads steadily but slower than one chunk per bound is not cut and gets the whole body', async () => {
  // 6 KB every 200 ms (~30 KB/s): a 64 KB chunk of the HTTP/1 upstream takes ~2 s to go out, twice the bound, so a
  // bound that waited for whole drains cut it. A 16 KB stream window makes the client say what it took every ~8 KB
  // (WINDOW_UPDATE at half the window), which is the progress the gateway sees: several times per bound.
  const session = h2rawConnect(`https://127.0.0.1:${gw.gateway.port}`, { ca, servername: 'a.test', settings: { initialWindowSize: 16 * 1024 } });
  session.on('error', () => undefined);
  await once(session, 'connect');
  try {
    const before = completed('/256k').length;
    const stream = session.request({ ':path': '/256k' });
    stream.on('error', () => undefined);
    stream.pause();
    let received = 0;
    const reader = setInterval(() => {
      // At most 6 KB of what has arrived; read(n) for no more than is buffered, else it waits for all n.
      const want = Math.min(stream.readableLength, 6 * 1024);
      const chunk = want > 0 ? (stream.read(want) as Buffer | null) : null;
      if (chunk !== null) received += chunk.length;
      else stream.read(0); // nothing buffered: ask for more (a paused stream reads only when asked)
    }, 200);
    stream.on('end', () => clearInterval(reader));
    stream.on('close', () => clearInterval(reader));
    await once(stream, 'close');
    clearInterval(reader);
    assert.equal(stream.rstCode, constants.NGHTTP2_NO_ERROR);
    assert.equal(received, 256 * 1024);
    await waitFor(() => completed('/256k').length === before + 1, 'the slow read logged');
    assert.equal(completed('/256k').at(-1)?.error, undefined);
  } finally {
    session.close();
  }
});

test('an HTTP/1.1 response pipelined behind a slow one is not timed while it waits its turn: both arrive whole', async () => {
  const socket = connect({ port: gw.gateway.port, host: '127.0.0.1', ca, servername: 'a.test', ALPNProtocols: ['http/1.1'] });
  await once(socket, 'secureConnect');
  socket.on('error', () => undefined);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c)); // read promptly throughout
  // /4m is asked for at once: node buffers its response (no socket yet, write() false, the upstream paused) until
  // /drip, ~3 s of bounds, has ended.
  socket.write('GET /drip HTTP/1.1\r\nHost: a.test\r\n\r\nGET /4m HTTP/1.1\r\nHost: a.test\r\n\r\n');
  try {
    await waitFor(() => completed('/4m').length === 1, 'the pipelined response logged', 15_000);
    assert.equal(completed('/drip').at(-1)?.error, undefined);
    assert.equal(completed('/4m').at(-1)?.error, undefined);
    const length = 4 * MIB.length;
    await waitFor(() => chunks.reduce((n, c) => n + c.length, 0) >= length, 'the pipelined body received', 10_000);
    const all = Buffer.concat(chunks);
    const second = all.indexOf('HTTP/1.1 200', 1);
    assert.ok(second > 0, 'a second response');
    const first = all.subarray(0, second).toString('latin1'); // chunked: each byte of /drip in a chunk of its own
    assert.equal(first.split('\r\n.\r\n').length - 1, 15);
    assert.ok(first.endsWith('\r\n0\r\n\r\n'), 'the first response ended');
    const bodyStart = all.indexOf('\r\n\r\n', second) + 4;
    assert.equal(all.length - bodyStart, length);
    assert.equal(socket.destroyed, false); // not closed by a cut
  } finally {
    socket.destroy();
  }
});
