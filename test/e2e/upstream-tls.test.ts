// HTTPS upstreams: verification on by default with a custom CA and SNI; unknown CA, wrong name and expired answers
// are 502 with a log line that says why, tried once; mutual TLS; verify: false works but is warned about.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { startInProcess, type ConfigInput, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { createTestCa, pkiDir, type IssuedCertificate, type TestCa } from '../helpers/tls.js';

interface HttpsBackend {
  readonly port: number;
  /** TCP connections accepted (each TLS attempt is one). */
  connections: number;
  close(): Promise<void>;
}

/** An HTTPS backend answering {client_cn} (the client certificate's CN when one was presented). */
async function httpsBackend(cert: IssuedCertificate, clientCa?: Buffer): Promise<HttpsBackend> {
  const server: Server = createServer(
    { cert: cert.cert, key: cert.key, ...(clientCa ? { ca: clientCa, requestCert: true, rejectUnauthorized: true } : {}) },
    (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ client_cn: peer?.subject?.CN ?? null, proto: req.headers['x-forwarded-proto'] }));
    },
  );
  const backend = {
    port: 0,
    connections: 0,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
  server.on('connection', () => backend.connections++);
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  backend.port = (server.address() as AddressInfo).port;
  return backend;
}

describe('HTTPS upstreams', () => {
  const pki = pkiDir();
  const client = createClient();
  let upstreamCa: TestCa;
  let otherCa: TestCa;
  let good: HttpsBackend;
  let expired: HttpsBackend;
  let mutual: HttpsBackend;
  let gatewayClient: IssuedCertificate;
  const gateways: InProcessGateway[] = [];

  before(async () => {
    upstreamCa = createTestCa('Upstream CA', pki.path);
    otherCa = createTestCa('Other CA', pki.path);
    good = await httpsBackend(upstreamCa.issue('billing.internal'));
    expired = await httpsBackend(upstreamCa.issue('billing.internal', { expired: true, stem: 'expired' }));
    gatewayClient = upstreamCa.issue('portcullis-gateway', { stem: 'client' });
    mutual = await httpsBackend(upstreamCa.issue('billing.internal', { stem: 'mutual' }), upstreamCa.ca);
  });

  after(async () => {
    for (const gw of gateways) await gw.close();
    await Promise.all([good, expired, mutual].map((b) => b?.close()));
    await client.close();
    pki.remove();
  });

  async function gatewayFor(port: number, tls: ConfigInput): Promise<InProcessGateway> {
    const gw = await startInProcess({
      load_balancing: { upstreams: [{ name: 'billing-1', address: '127.0.0.1', port }], tls: { enabled: true, ...tls } },
    });
    gateways.push(gw);
    return gw;
  }

  /** The one "Upstream TLS Failed" line of a request. */
  function tlsFailure(gw: InProcessGateway, requestId: unknown): Record<string, unknown> | undefined {
    return gw.logs.find((l) => l.msg === 'Upstream TLS Failed' && l.request_id === requestId);
  }

  test('a certificate from the configured CA, for the configured servername, is accepted', async () => {
    const gw = await gatewayFor(good.port, { ca_file: upstreamCa.caFile, servername: 'billing.internal' });
    const res = await client.request(`${gw.url}/x`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.json(), { client_cn: null, proto: 'http' });
  });

  for (const [title, port, tls, reason] of [
    ['an unknown CA', () => good.port, () => ({ ca_file: otherCa.caFile, servername: 'billing.internal' }), 'unknown CA'],
    ['a name mismatch', () => good.port, () => ({ ca_file: upstreamCa.caFile, servername: 'payments.internal' }), 'name mismatch'],
    ['an expired certificate', () => expired.port, () => ({ ca_file: upstreamCa.caFile, servername: 'billing.internal' }), 'expired'],
  ] as const) {
    test(`${title} is a 502 whose log line says "${reason}", and the upstream is tried once`, async () => {
      const gw = await gatewayFor(port(), tls());
      const backend = port() === good.port ? good : expired;
      const before = backend.connections;
      const res = await client.request(`${gw.url}/x`);
      assert.equal(res.status, 502);
      assert.equal(res.json().error, 'Bad Gateway');
      assert.equal(tlsFailure(gw, res.headers['x-request-id'])?.reason, reason);
      const completed = gw.logs.find((l) => l.msg === 'Request Completed' && l.request_id === res.headers['x-request-id']);
      assert.equal(completed?.error, 'UPSTREAM_TLS');
      assert.equal(backend.connections - before, 1, 'one TLS attempt, no retry against the same upstream');
    });
  }

  test('mutual TLS: without a client certificate the upstream refuses (502), with one it answers', async () => {
    const without = await gatewayFor(mutual.port, { ca_file: upstreamCa.caFile, servername: 'billing.internal' });
    const refused = await client.request(`${without.url}/x`);
    assert.equal(refused.status, 502);
    const withCert = await gatewayFor(mutual.port, {
      ca_file: upstreamCa.caFile,
      servername: 'billing.internal',
      cert_file: gatewayClient.certFile,
      key_file: gatewayClient.keyFile,
    });
    const res = await client.request(`${withCert.url}/x`);
    assert.equal(res.status, 200);
    assert.equal(res.json().client_cn, 'portcullis-gateway');
  });

  test('verify: false connects to an unknown CA, after a loud start-up warning', async () => {
    const gw = await gatewayFor(good.port, { verify: false });
    const warning = gw.logs.find((l) => l.msg === 'Upstream TLS Verification Off');
    assert.equal(warning?.level, 40);
    assert.equal(warning?.key, 'load_balancing.tls.verify');
    assert.equal((await client.request(`${gw.url}/x`)).status, 200);
  });
});
