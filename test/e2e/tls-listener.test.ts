// The TLS listener end to end: SNI between two certificates, h2 and http/1.1 by ALPN (node and curl), HSTS,
// X-Forwarded-Proto, the redirect listener, and what the access log and /api/status say about TLS.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import type { ClientHttp2Session } from 'node:http2';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';
import { curl, h2connect, h2request, httpsGet } from '../helpers/h2.js';

describe('TLS listener', () => {
  const pki = pkiDir();
  let ca: TestCa;
  let backend: TestBackend;
  let gw: InProcessGateway;
  let redirectPort: number;

  before(async () => {
    ca = createTestCa('Listener CA', pki.path);
    const a = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
    const b = ca.issue('b.test', { san: ['DNS:*.b.test'] });
    backend = await startBackend('tls-backend');
    gw = await startInProcess({
      server: {
        tls: { cert_file: a.certFile, key_file: a.keyFile, certificates: [{ cert_file: b.certFile, key_file: b.keyFile }], hsts: 'max-age=63072000' },
        http_redirect: { listen_port: 0 },
      },
      load_balancing: { upstreams: upstreams([backend.port]) },
    });
    const started = gw.logs.find((l) => l.msg === 'Gateway Started')!;
    redirectPort = started.redirect_port as number;
  });

  after(async () => {
    await gw?.close();
    await backend?.stop();
    pki.remove();
  });

  test('SNI picks the certificate whose SAN names the host; no SNI gets the first (default) certificate', async () => {
    const forB = await httpsGet(gw.gateway.port, ca.ca, 'api.b.test');
    assert.equal(forB.status, 200);
    assert.equal(forB.cert.subject.CN, 'b.test');
    const forA = await httpsGet(gw.gateway.port, ca.ca, 'a.test');
    assert.equal(forA.cert.subject.CN, 'a.test');
    const noSni = await httpsGet(gw.gateway.port, ca.ca, undefined);
    assert.equal(noSni.cert.subject.CN, 'a.test');
  });

  test('HTTPS/1.1: HSTS on proxied and gateway-made answers, X-Forwarded-Proto https upstream', async () => {
    const proxied = await httpsGet(gw.gateway.port, ca.ca, 'a.test', '/echo');
    assert.equal(proxied.headers['strict-transport-security'], 'max-age=63072000');
    const echo = JSON.parse(proxied.body) as { headers: Record<string, string> };
    assert.equal(echo.headers['x-forwarded-proto'], 'https');
    const health = await httpsGet(gw.gateway.port, ca.ca, 'a.test', '/health');
    assert.equal(health.status, 200);
    assert.equal(health.headers['strict-transport-security'], 'max-age=63072000');
  });

  describe('HTTP/2', () => {
    let session: ClientHttp2Session;
    before(async () => {
      session = await h2connect(gw.gateway.port, ca.ca);
    });
    after(() => session?.close());

    test('ALPN h2: :authority becomes Host upstream, no HTTP/1-only headers come back, access log says h2 + TLS version', async () => {
      const res = await h2request(session, { ':path': '/echo?x=1', ':method': 'GET', ':authority': `api.a.test:${gw.gateway.port}` });
      assert.equal(res.status, 200);
      const echo = JSON.parse(res.body.toString()) as { url: string; headers: Record<string, string> };
      assert.equal(echo.url, '/echo?x=1');
      assert.equal(echo.headers.host, `api.a.test:${gw.gateway.port}`);
      assert.equal(echo.headers['x-forwarded-host'], `api.a.test:${gw.gateway.port}`);
      assert.equal(echo.headers['x-forwarded-proto'], 'https');
      assert.ok(!Object.keys(echo.headers).some((h) => h.startsWith(':')), 'no pseudo-header upstream');
      for (const h of ['connection', 'keep-alive', 'transfer-encoding', 'upgrade']) assert.equal(res.headers[h], undefined, h);
      assert.equal(res.headers['strict-transport-security'], 'max-age=63072000');
      const id = res.headers['x-request-id'];
      const line = gw.logs.find((l) => l.msg === 'Request Completed' && l.request_id === id)!;
      assert.equal(line.protocol, 'h2');
      assert.match(String(line.tls), /^TLSv1\.[23]$/);
    });

    test('request bodies stream up and responses stream down over h2', async () => {
      const body = Buffer.alloc(3 * 1024 * 1024, 'h2-upload-');
      const up = await h2request(session, { ':path': '/upload', ':method': 'POST' }, body);
      assert.equal(up.status, 200);
      const { createHash } = await import('node:crypto');
      assert.deepEqual(JSON.parse(up.body.toString()), { sha256: createHash('sha256').update(body).digest('hex'), bytes: body.length });
      const down = await h2request(session, { ':path': '/download?bytes=2000000', ':method': 'GET' });
      assert.equal(down.status, 200);
      assert.equal(down.body.length, 2_000_000);
    });

    test('backpressure is per stream: a stalled download does not hold up another request on the same connection', async () => {
      const stalled = session.request({ ':path': '/download?bytes=20000000', ':method': 'GET' });
      await new Promise((resolve) => stalled.once('response', resolve));
      stalled.pause(); // read nothing: this stream's window fills, the session's other streams must still flow
      const other = await h2request(session, { ':path': '/echo', ':method': 'GET' }, undefined, 5_000);
      assert.equal(other.status, 200);
      stalled.destroy();
    });

    test('curl --http2 negotiates h2; curl --http1.1 gets HTTP/1.1 from the same port', async () => {
      const resolve = `a.test:${gw.gateway.port}:127.0.0.1`;
      const h2 = await curl(['--http2', '--cacert', ca.caFile, '--resolve', resolve, '-o', '/dev/null', '-w', '%{http_version} %{http_code}', `https://a.test:${gw.gateway.port}/echo`]);
      assert.equal(h2, '2 200');
      const h1 = await curl(['--http1.1', '--cacert', ca.caFile, '--resolve', resolve, '-o', '/dev/null', '-w', '%{http_version} %{http_code}', `https://a.test:${gw.gateway.port}/echo`]);
      assert.equal(h1, '1.1 200');
    });
  });

  test('the redirect listener answers 308 to https with the path and query, and the TLS port', async () => {
    const res = await new Promise<{ status: number; location: string | undefined }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: redirectPort, path: '/a/b?c=1', headers: { host: `a.test:${redirectPort}` } }, (r) => {
        r.resume();
        resolve({ status: r.statusCode ?? 0, location: r.headers.location });
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(res.status, 308);
    assert.equal(res.location, `https://a.test:${gw.gateway.port}/a/b?c=1`);
  });

  test('/api/status and /metrics show each certificate with its names and expiry', async () => {
    const status = (await (await fetch(`${gw.adminUrl}/api/status`)).json()) as { tls_certificates: Array<{ names: string[]; expires_in_s: number }> };
    assert.deepEqual(status.tls_certificates.map((c) => c.names), [['a.test', '127.0.0.1'], ['*.b.test']]);
    for (const c of status.tls_certificates) assert.ok(c.expires_in_s > 3600 && c.expires_in_s <= 86_400, String(c.expires_in_s));
    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    assert.match(metrics, /portcullis_tls_certificate_expiry_seconds\{cert_file="[^"]+a\.test\.pem",names="a\.test,127\.0\.0\.1"\} \d+/);
    assert.match(metrics, /portcullis_tls_certificate_expiry_seconds\{cert_file="[^"]+b\.test\.pem",names="\*\.b\.test"\} \d+/);
  });
});
