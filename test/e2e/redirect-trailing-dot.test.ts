// The HTTP→HTTPS redirect listener drops one trailing dot from the Host's name before building Location (found by
// review): `Host: example.com.` was sent on to `https://example.com./...`. A fully-qualified name with its root dot
// names the same host, and the gateway already reads it so everywhere else: host-check.ts accepts one trailing dot,
// a route matches `example.com.` as `example.com` (routing/conditions.ts), and the SNI name is read alike
// (tls/sni.ts). Kept in Location, the https request's SNI would carry the dot (RFC 6066 §3 has none) and the browser
// would keep a separate origin for the dotted name. What host-check.ts refuses (two dots, a lone dot) is still 400.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { rawRequest, responseUntilClose, type RawResponse } from '../helpers/raw.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';

describe('redirect listener: a trailing dot on the Host', () => {
  const pki = pkiDir();
  let ca: TestCa;
  let gw: InProcessGateway;
  let redirectPort: number;

  before(async () => {
    ca = createTestCa('Redirect dot CA', pki.path);
    const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
    gw = await startInProcess({
      server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile }, http_redirect: { listen_port: 0 } },
      // Nothing listens on port 9: a request the https listener accepts gets 502, never a 400.
      load_balancing: { upstreams: [{ name: 'nowhere', address: '127.0.0.1', port: 9 }] },
    });
    redirectPort = gw.logs.find((l) => l.msg === 'Gateway Started')!.redirect_port as number;
  });

  after(async () => {
    await gw?.close();
    pki.remove();
  });

  const toRedirect = (host: string, path = '/x?y=1'): Promise<RawResponse> =>
    rawRequest(redirectPort, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);

  function toProxy(host: string): Promise<RawResponse> {
    const socket = tlsConnect({ host: '127.0.0.1', port: gw.gateway.port, ca: ca.ca, servername: 'a.test', ALPNProtocols: ['http/1.1'] }, () =>
      socket.write(`GET /x HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
    );
    return responseUntilClose(socket);
  }

  test('one trailing dot is dropped from the name; the port handling is unchanged', async () => {
    const port = gw.gateway.port;
    for (const [host, location] of [
      ['example.com.', `https://example.com:${port}/x?y=1`],
      ['Example.COM.:8080', `https://example.com:${port}/x?y=1`],
      ['a.test.:80', `https://a.test:${port}/x?y=1`],
      // Unchanged: no dot, an address.
      ['example.com', `https://example.com:${port}/x?y=1`],
      ['127.0.0.1:8080', `https://127.0.0.1:${port}/x?y=1`],
      ['[::1]:8080', `https://[::1]:${port}/x?y=1`],
    ]) {
      const res = await toRedirect(host!);
      assert.equal(res.status, 308, host);
      assert.equal(res.headers.location, location, host);
    }
  });

  test('the https listener accepts the same dotted Host (no 400), as the redirect must not send a client where it is refused', async () => {
    const res = await toProxy('a.test.');
    assert.notEqual(res.status, 400, res.body);
  });

  test('what host-check refuses is still refused with the https listener\'s 400, never redirected', async () => {
    for (const [host, details] of [
      ['example.com..', 'invalid Host: empty label in the host name'],
      ['.', 'invalid Host: empty host name'],
    ]) {
      const [redirect, proxy] = [await toRedirect(host!), await toProxy(host!)];
      for (const res of [redirect, proxy]) {
        assert.equal(res.status, 400, host);
        assert.equal(res.headers.location, undefined, host);
        assert.equal((JSON.parse(res.body) as { details?: string }).details, details, host);
      }
    }
  });
});
