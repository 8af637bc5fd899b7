// The HTTP/2 send bound counts each stream's own progress (server.timeouts.request_body_chunk, nginx's send_timeout).
// It counted the bytes its session's connection took, and node 20 has no count per stream, so a client could hold a
// stream it never read, with its upstream request and pool connection, for as long as it kept the connection busy:
// answering the gateway's PING acknowledgements (a stream window of 0 and a PING now and then), or reading another
// stream on the same connection. A stream's progress is now its own writes completing (each a DATA frame the
// client's window let out), the upstream's chunks handed over in 16 KB pieces so a slow but steady reader still counts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { h2request } from '../helpers/h2.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

const MIB = Buffer.alloc(1024 * 1024, 'x');
const pki = pkiDir();
let backend: Server;
let gw: InProcessGateway;
let ca: Buffer;

before(async () => {
  // /big: 64 MiB, more than every buffer between the backend and a client that never reads.
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
  backend.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const testCa = createTestCa('Stream Bound CA', pki.path);
  ca = testCa.ca;
  const cert = testCa.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
  gw = await startInProcess({
    server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile }, timeouts: { request_body_chunk: '1s' } },
    load_balancing: { health_check: { enabled: false }, upstreams: upstreams([(backend.address() as AddressInfo).port]) },
  });
});

after(async () => {
  await gw?.close();
  backend?.closeAllConnections();
  backend?.close();
  pki.remove();
});

async function session(initialWindowSize?: number): Promise<ClientHttp2Session> {
  const s = connect(`https://127.0.0.1:${gw.gateway.port}`, {
    ca,
    servername: 'a.test',
    ...(initialWindowSize === undefined ? {} : { settings: { initialWindowSize } }),
  });
  s.on('error', () => undefined);
  await once(s, 'connect');
  return s;
}

function cutBigStreams(): number {
  return gw.logs.filter((l) => l.msg === 'Request Completed' && l.path === '/big' && l.error === 'CLIENT_SEND_TIMEOUT').length;
}

/** Waits for `stream` to close, for at most `ms`: its RST code, or undefined if it was still open. */
async function closedWithin(stream: ClientHttp2Stream, ms: number): Promise<number | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const open = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  const closed = once(stream, 'close').then(() => stream.rstCode);
  try {
    return await Promise.race([closed, open]);
  } finally {
    clearTimeout(timer);
  }
}

test('a stream whose window stays 0 is cut after the bound, though its client answers PINGs all along', async () => {
  const s = await session(0);
  const pinger = setInterval(() => s.ping(() => undefined), 100);
  try {
    const before = cutBigStreams();
    const stream = s.request({ ':path': '/big' });
    stream.on('error', () => undefined);
    // The bound is 1 s: a stall is cut between one and two periods after it began.
    assert.equal(await closedWithin(stream, 6_000), constants.NGHTTP2_CANCEL, 'the stream is reset with CANCEL');
    await waitFor(() => cutBigStreams() === before + 1, 'logged CLIENT_SEND_TIMEOUT');
  } finally {
    clearInterval(pinger);
    s.close();
  }
});

test('a stream never read is cut while its client reads other streams on the same connection, which go on', async () => {
  const s = await session();
  let reading = true;
  let served = 0;
  const reader = (async () => {
    while (reading) {
      assert.equal((await h2request(s, { ':path': '/small' })).body.toString(), 'small');
      served++;
    }
  })();
  try {
    const before = cutBigStreams();
    const stream = s.request({ ':path': '/big' });
    stream.on('error', () => undefined);
    stream.pause(); // its window fills, then the gateway's stream buffer behind it
    assert.equal(await closedWithin(stream, 6_000), constants.NGHTTP2_CANCEL, 'the unread stream is reset with CANCEL');
    await waitFor(() => cutBigStreams() === before + 1, 'logged CLIENT_SEND_TIMEOUT');
    assert.ok(served > 0, 'the other streams were served meanwhile');
  } finally {
    reading = false;
    await reader;
    s.close();
  }
  assert.deepEqual(gw.logs.filter((l) => l.msg === 'Upstream Down'), []);
});
