// Plain HTTP sent to the TLS port is answered 400 in cleartext whatever its method (README, TLS and HTTP/2:
// "Plain HTTP sent to the TLS port is answered 400 in cleartext"; nginx answers every such request, its
// "The plain HTTP request was sent to HTTPS port"). What was wrong: only GET, POST, HEAD, PUT and CONNECT got the
// 400, the five request lines OpenSSL names (ERR_SSL_HTTP_REQUEST, ERR_SSL_HTTPS_PROXY_REQUEST); a DELETE, OPTIONS,
// PATCH or TRACE, or an h2c prior-knowledge preface, was closed with no byte written (curl: "Empty reply from
// server"). OpenSSL reports those as ERR_SSL_WRONG_VERSION_NUMBER on the connection's first record, and writes no
// alert for them (the bytes do not look like TLS), so the cleartext 400 is the only answer the client reads.
// A real TLS client's bad record (first byte 0x16) still gets no HTTP answer.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { httpsGet } from '../helpers/h2.js';
import { rawRequest } from '../helpers/raw.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';

const pki = pkiDir();
let ca: TestCa;
let backend: TestBackend;
let gw: InProcessGateway;
let http1Only: InProcessGateway;

before(async () => {
  ca = createTestCa('Plain HTTP CA', pki.path);
  const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
  backend = await startBackend('plain-http');
  gw = await startInProcess({
    server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile, hsts: 'max-age=600' } },
    load_balancing: { upstreams: upstreams([backend.port]) },
    admin: { enabled: false },
  });
  http1Only = await startInProcess({
    server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile, http2: false } },
    load_balancing: { upstreams: upstreams([backend.port]) },
    admin: { enabled: false },
  });
});

after(async () => {
  await gw?.close();
  await http1Only?.close();
  await backend?.stop();
  pki.remove();
});

for (const method of ['DELETE', 'OPTIONS', 'PATCH', 'TRACE']) {
  test(`plain HTTP ${method} on the TLS port gets the cleartext 400`, async () => {
    const res = await rawRequest(gw.gateway.port, `${method} /x HTTP/1.1\r\nHost: a.test\r\n\r\n`, 3_000);
    assert.equal(res.status, 400);
    assert.equal(res.headers.connection, 'close');
    assert.equal(res.headers['strict-transport-security'], undefined, 'no HSTS over cleartext');
    const body = JSON.parse(res.body) as Record<string, unknown>;
    assert.equal(body.details, 'plain HTTP request sent to the HTTPS port');
    assert.equal(body.request_id, res.headers['x-request-id']);
  });
}

test('with tls.http2 false (the HTTPS/1.1 server) too', async () => {
  const res = await rawRequest(http1Only.gateway.port, 'DELETE /x HTTP/1.1\r\nHost: a.test\r\n\r\n', 3_000);
  assert.equal(res.status, 400);
});

test('an h2c prior-knowledge preface on the TLS port gets the cleartext 400', async () => {
  const res = await rawRequest(gw.gateway.port, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 3_000);
  assert.equal(res.status, 400);
});

test('a bad TLS record still gets no HTTP answer (at most an OpenSSL alert), and TLS clients are served', async () => {
  const received = await new Promise<string>((resolve) => {
    let n = '';
    const socket = netConnect(gw.gateway.port, '127.0.0.1', () => socket.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5])));
    socket.on('data', (c: Buffer) => (n += c.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(n));
    setTimeout(() => socket.destroy(), 3_000).unref();
  });
  assert.doesNotMatch(received, /HTTP\//);
  assert.equal((await httpsGet(gw.gateway.port, ca.ca, 'a.test', '/x')).status, 200);
});
