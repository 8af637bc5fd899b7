// An HTTP/2 upstream that breaks the protocol on its connection (a connection error, RFC 9113 §5.4.1: a malformed
// or misplaced frame) fails the request on it at once with a 502, and the next request gets a new connection. node's
// client answered GOAWAY and stopped reading without a word: the request waited for upstream_response (504), the pool
// kept handing the next requests to the dead session (504 again, then 502s), and the connection stayed open. The
// upstream is raw frames over h2c: no HTTP/2 library sends these.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { FLAG, FRAME, frame } from '../helpers/h2-frames.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

/** Far beyond the test's bounds: a request still waiting when it ends waited for the upstream timeout. */
const RESPONSE_MS = 20_000;
const FAIL_BOUND_MS = 3_000;

/** What the upstream sends on a connection instead of an answer (undefined: a plain 200). */
let misbehaviour: (() => Buffer) | undefined;
const pki = pkiDir();
let upstream: Server;
const sockets = new Set<Socket>();
let gw: InProcessGateway;

/**
 * A minimal HTTP/2 server: SETTINGS, SETTINGS ACK, and per HEADERS either `misbehaviour` or `:status: 200`. Over
 * TLS (ALPN h2) when given a certificate, else h2c.
 */
function startRawUpstream(tls?: { cert: Buffer; key: Buffer }): Promise<Server> {
  const serve = (sock: Socket): void => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    const bad = misbehaviour;
    let buf = Buffer.alloc(0);
    let preface = false;
    sock.write(frame(FRAME.SETTINGS, 0, 0));
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!preface) {
        if (buf.length < 24) return;
        buf = buf.subarray(24);
        preface = true;
      }
      while (buf.length >= 9) {
        const length = buf.readUIntBE(0, 3);
        if (buf.length < 9 + length) return;
        const [type, flags] = [buf[3]!, buf[4]!];
        const stream = buf.readUInt32BE(5) & 0x7fffffff;
        buf = buf.subarray(9 + length);
        if (type === FRAME.SETTINGS && (flags & FLAG.ACK) === 0) sock.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
        // 0x88: ':status: 200' from HPACK's static table.
        if (type === FRAME.HEADERS) sock.write(bad ? bad() : frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, stream, Buffer.from([0x88])));
      }
    });
  };
  const server = tls === undefined ? createServer(serve) : createTlsServer({ ...tls, ALPNProtocols: ['h2'] }, serve);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

before(async () => {
  upstream = await startRawUpstream();
  gw = await startInProcess({
    server: { timeouts: { upstream_response: `${RESPONSE_MS}ms`, upstream_body: `${RESPONSE_MS}ms` } },
    load_balancing: { http2: true, retries: 0, health_check: { enabled: false }, upstreams: upstreams([(upstream.address() as AddressInfo).port]) },
  });
});

after(async () => {
  await gw?.close();
  for (const s of sockets) s.destroy();
  upstream?.close();
  pki.remove();
});

const CASES: ReadonlyArray<{ readonly name: string; readonly bytes: () => Buffer }> = [
  { name: 'a PING of 7 bytes', bytes: () => frame(FRAME.PING, 0, 0, Buffer.alloc(7)) },
  { name: 'a SETTINGS of a length not a multiple of 6', bytes: () => frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(5)) },
  { name: 'DATA on stream 0', bytes: () => frame(FRAME.DATA, 0, 0, Buffer.from('x')) },
  { name: 'a CONTINUATION without HEADERS', bytes: () => frame(FRAME.CONTINUATION, FLAG.END_HEADERS, 1, Buffer.from([0x88])) },
  { name: 'a WINDOW_UPDATE of 0 on the connection', bytes: () => frame(FRAME.WINDOW_UPDATE, 0, 0, Buffer.alloc(4)) },
  // The gateway's SETTINGS turn push off; a server that pushes anyway breaks the protocol. 0x82 0x84: GET, path /.
  { name: 'a PUSH_PROMISE with push off', bytes: () => frame(5, FLAG.END_HEADERS, 1, Buffer.from([0, 0, 0, 2, 0x82, 0x84])) },
];

describe('an HTTP/2 upstream that breaks the protocol', () => {
  let n = 0;
  for (const c of CASES) {
    test(c.name, async () => {
      // Any connection left from an earlier case is closed, so this one's request opens a misbehaving connection.
      for (const s of sockets) s.destroy();
      await waitFor(() => sockets.size === 0, 'no upstream connection left');
      misbehaviour = c.bytes;
      const path = `/broken/${++n}`;
      const started = Date.now();
      const res = await fetch(`${gw.url}${path}`, { signal: AbortSignal.timeout(RESPONSE_MS + 5_000) });
      await res.arrayBuffer();
      const took = Date.now() - started;
      assert.equal(res.status, 502, `502 (got ${res.status} after ${took} ms)`);
      assert.ok(took < FAIL_BOUND_MS, `answered within ${FAIL_BOUND_MS} ms (took ${took} ms)`);
      const line = () => gw.logs.find((l) => l.msg === 'Request Completed' && l.path === path);
      await waitFor(() => line() !== undefined, 'the access log line');
      assert.equal(line()?.error, 'UPSTREAM_PROTOCOL');
      // The broken connection is let go, and the next request is served on a new one.
      await waitFor(() => sockets.size === 0, 'the broken upstream connection closed', FAIL_BOUND_MS);
      misbehaviour = undefined;
      const next = await fetch(`${gw.url}/after/${n}`, { signal: AbortSignal.timeout(FAIL_BOUND_MS) });
      await next.arrayBuffer();
      assert.equal(next.status, 200);
    });
  }
});

test('over TLS (ALPN h2) too', async () => {
  const ca = createTestCa('Upstream Connection Error CA', pki.path);
  const cert = ca.issue('api.internal', { san: ['DNS:api.internal'] });
  const tlsUpstream = await startRawUpstream({ cert: cert.cert, key: cert.key });
  const tlsGw = await startInProcess({
    server: { timeouts: { upstream_response: `${RESPONSE_MS}ms`, upstream_body: `${RESPONSE_MS}ms` } },
    load_balancing: {
      http2: true,
      retries: 0,
      health_check: { enabled: false },
      tls: { enabled: true, ca_file: ca.caFile, servername: 'api.internal' },
      upstreams: upstreams([(tlsUpstream.address() as AddressInfo).port]),
    },
  });
  try {
    for (const s of sockets) s.destroy();
    misbehaviour = () => frame(FRAME.PING, 0, 0, Buffer.alloc(7));
    const started = Date.now();
    const res = await fetch(`${tlsGw.url}/broken/tls`, { signal: AbortSignal.timeout(RESPONSE_MS + 5_000) });
    await res.arrayBuffer();
    const took = Date.now() - started;
    assert.equal(res.status, 502, `502 (got ${res.status} after ${took} ms)`);
    assert.ok(took < FAIL_BOUND_MS, `answered within ${FAIL_BOUND_MS} ms (took ${took} ms)`);
    misbehaviour = undefined;
    const next = await fetch(`${tlsGw.url}/after/tls`, { signal: AbortSignal.timeout(FAIL_BOUND_MS) });
    await next.arrayBuffer();
    assert.equal(next.status, 200);
  } finally {
    await tlsGw.close();
    for (const s of sockets) s.destroy();
    tlsUpstream.close();
  }
});
