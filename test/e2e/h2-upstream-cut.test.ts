// An upstream that fails after its response has begun cannot be reported with a status any more: over HTTP/2 the
// client's stream is reset with INTERNAL_ERROR. Before, node's destroy() reset it with NO_ERROR, the code RFC 9113
// keeps for a response already complete, which a gRPC client reports as "Received RST_STREAM with code 0".
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:http2';
import { startCannedUpstream, type CannedUpstream } from '../helpers/canned-upstream.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';
import { h2connect } from '../helpers/h2.js';
import { waitFor } from '../helpers/wait.js';

const pki = pkiDir();
let ca: TestCa;
let upstream: CannedUpstream;
let gw: InProcessGateway;

before(async () => {
  ca = createTestCa('Upstream Cut CA', pki.path);
  const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
  // Promises 100 bytes, sends 7, closes.
  upstream = await startCannedUpstream({ '/short': 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial' });
  gw = await startInProcess({
    server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile } },
    load_balancing: { upstreams: upstreams([upstream.port]) },
  });
});

after(async () => {
  await gw?.close();
  await upstream?.close();
  pki.remove();
});

test('a response cut by its upstream resets the HTTP/2 stream with INTERNAL_ERROR, after the bytes that came', async () => {
  const session = await h2connect(gw.gateway.port, ca.ca);
  try {
    const stream = session.request({ ':method': 'GET', ':path': '/short' });
    let status = 0;
    let body = '';
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => (body += d));
    stream.on('error', () => undefined);
    await new Promise((resolve) => stream.once('close', resolve));
    assert.equal(status, 200);
    assert.equal(body, 'partial');
    assert.equal(stream.rstCode, constants.NGHTTP2_INTERNAL_ERROR);
    const completed = () => gw.logs.find((l) => l.msg === 'Request Completed' && l.path === '/short');
    await waitFor(() => completed() !== undefined, 'the access log line');
    const line = completed()!;
    // The status the client saw, and why it was cut.
    assert.equal(line.status, 200);
    assert.equal(typeof line.error, 'string');
  } finally {
    session.close();
  }
});
