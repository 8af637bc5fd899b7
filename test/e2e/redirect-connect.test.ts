// CONNECT on the HTTP→HTTPS redirect listener (server.http_redirect) gets the https listener's 405 (found by review).
// node hands a CONNECT to the server's 'connect' listeners with the raw socket, and closes the socket without a word
// when nobody listens: the redirect listener had none, so a client got no answer at all, where the https listener
// answers 405 with Allow (protocol-check.ts). Now the redirect listener answers it alike, in the shape of its other
// refusals (the catalogue body without request_id, X-Proxy-By, no X-Request-ID), then closes the connection.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rawRequest, type RawResponse } from '../helpers/raw.js';
import { redirectGatewayHooks } from '../helpers/redirect-gateway.js';

const CONNECT = 'CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n';

describe('redirect listener: CONNECT', () => {
  const r = redirectGatewayHooks('Redirect CONNECT CA');

  const toProxy = (request: string): Promise<RawResponse> => r.toProxy(request);

  test('405 with the https listener\'s Allow and code, the redirect listener\'s headers and body, then the close', async () => {
    // rawRequest resolves once the server has closed the connection (rejects when it closes without an answer).
    const [redirect, proxy] = [await rawRequest(r.redirectPort, CONNECT), await toProxy(CONNECT)];
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
    const res = await rawRequest(r.redirectPort, `${CONNECT}\x16\x03\x01\x00\x05hello` + 'GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n');
    assert.equal(res.status, 405);
    assert.equal(res.body.match(/HTTP\/1\.1 /g), null, `one answer only: ${res.body}`);
  });

  test('the listener still redirects other requests', async () => {
    const res = await rawRequest(r.redirectPort, 'GET /x HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n');
    assert.equal(res.status, 308);
    assert.equal(res.headers.location, `https://a.test:${r.gw.gateway.port}/x`);
  });
});
