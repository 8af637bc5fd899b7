// CONNECT on the HTTP→HTTPS redirect listener (server.http_redirect) gets the https listener's 405 (found by review).
// node hands a CONNECT to the server's 'connect' listeners with the raw socket, and closes the socket without a word
// when nobody listens: the redirect listener had none, so a client got no answer at all, where the https listener
// answers 405 with Allow (protocol-check.ts). Now the redirect listener answers it alike, in the shape of its other
// refusals (the catalogue body without request_id, X-Proxy-By, no X-Request-ID), then closes the connection.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { rawRequest, responseUntilClose, type RawResponse } from '../helpers/raw.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';

const CONNECT = 'CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n';

describe('redirect listener: CONNECT', () => {
  const pki = pkiDir();
  let ca: TestCa;
  let gw: InProcessGateway;
  let redirectPort: number;

  before(async () => {
    ca = createTestCa('Redirect CONNECT CA', pki.path);
    const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
    gw = await startInProcess({
      server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile }, http_redirect: { listen_port: 0 } },
      // Nothing listens on port 9: no request in this suite may get to a route.
      load_balancing: { upstreams: [{ name: 'nowhere', address: '127.0.0.1', port: 9 }] },
    });
    redirectPort = gw.logs.find((l) => l.msg === 'Gateway Started')!.redirect_port as number;
  });

  after(async () => {
    await gw?.close();
    pki.remove();
  });

  /** What the https listener answers `request` (HTTP/1.1 by ALPN), read until it closes the connection. */
  function toProxy(request: string): Promise<RawResponse> {
    const socket = tlsConnect({ host: '127.0.0.1', port: gw.gateway.port, ca: ca.ca, servername: 'a.test', ALPNProtocols: ['http/1.1'] }, () =>
      socket.write(request),
    );
    return responseUntilClose(socket);
  }

  test('405 with the https listener\'s Allow and code, the redirect listener\'s headers and body, then the close', async () => {
    // rawRequest resolves once the server has closed the connection (rejects when it closes without an answer).
    const [redirect, proxy] = [await rawRequest(redirectPort, CONNECT), await toProxy(CONNECT)];
    assert.equal(redirect.status, 405, JSON.stringify(redirect));
    assert.equal(redirect.headers.allow, proxy.headers.allow);
    assert.equal(redirect.headers.allow, 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS');
    assert.equal(redirect.headers.connection, 'close');
    assert.equal(redirect.headers['x-proxy-by'], 'Portcullis');
    assert.equal(redirect.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(Number(redirect.headers['content-length']), Buffer.byteLength(redirect.body));
    assert.equal(redirect.headers.location, undefined);
    // As the redirect listener's 400s: no request id (it keeps no per-request state and writes no access log).
    assert.equal(redirect.headers['x-request-id'], undefined);
    assert.deepEqual(JSON.parse(redirect.body), { error: 'Method Not Allowed', code: 'method_not_allowed' });
    const proxyBody = JSON.parse(proxy.body) as Record<string, unknown>;
    assert.equal(proxyBody.code, 'method_not_allowed');
    assert.equal(proxyBody.error, 'Method Not Allowed');
  });

  test('bytes sent after the CONNECT head (a tunnel\'s first bytes, a pipelined request) get nothing more', async () => {
    const res = await rawRequest(redirectPort, `${CONNECT}\x16\x03\x01\x00\x05hello` + 'GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n');
    assert.equal(res.status, 405);
    assert.equal(res.body.match(/HTTP\/1\.1 /g), null, `one answer only: ${res.body}`);
  });

  test('the listener still redirects other requests', async () => {
    const res = await rawRequest(redirectPort, 'GET /x HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n');
    assert.equal(res.status, 308);
    assert.equal(res.headers.location, `https://a.test:${gw.gateway.port}/x`);
  });
});
