// The HTTP→HTTPS redirect listener drops one trailing dot from the Host's name before building Location (found by
// review): `Host: example.com.` was sent on to `https://example.com./...`. A fully-qualified name with its root dot
// names the same host, and the gateway already reads it so everywhere else: host-check.ts accepts one trailing dot,
// a route matches `example.com.` as `example.com` (routing/conditions.ts), and the SNI name is read alike
// (tls/sni.ts). Kept in Location, the https request's SNI would carry the dot (RFC 6066 §3 has none) and the browser
// would keep a separate origin for the dotted name. What host-check.ts refuses (two dots, a lone dot) is still 400.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rawRequest, type RawResponse } from '../helpers/raw.js';
import { redirectGatewayHooks } from '../helpers/redirect-gateway.js';

describe('redirect listener: a trailing dot on the Host', () => {
  const r = redirectGatewayHooks('Redirect dot CA');

  const toRedirect = (host: string, path = '/x?y=1'): Promise<RawResponse> =>
    rawRequest(r.redirectPort, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);

  const toProxy = (host: string): Promise<RawResponse> => r.toProxy(`GET /x HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);

  test('one trailing dot is dropped from the name; the port handling is unchanged', async () => {
    const port = r.gw.gateway.port;
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
