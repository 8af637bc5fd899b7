// HTTPS upstreams: verification on by default with a custom CA and SNI; unknown CA, wrong name and expired answers
// are 502 with a log line that says why, tried once; mutual TLS; verify: false works but is warned about; the TLS
// name is the configured one whatever Host the client sends.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import { createSecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { startInProcess, type ConfigInput, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { rawRequest } from '../helpers/raw.js';
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

// SNI and the name verified are the group's `tls.servername`, else the upstream's address when it is a name: never
// the client's Host. undici derives a servername from the Host header of any request dispatched without one, and
// used to verify the upstream's certificate against it (`Host: evil.example` was a 502 that took every upstream out
// of rotation), and to reconnect whenever two requests' Hosts differed.
describe('HTTPS upstreams: the TLS name is never the client Host', () => {
  const pki = pkiDir();
  const gateways: InProcessGateway[] = [];
  const servers: Array<{ close(): void; closeAllConnections?(): void }> = [];
  /** Hosts a client may send: an IP, the configured name (other case too), a foreign name, a name with a port. */
  const HOSTS = ['127.0.0.1', 'api.internal', 'API.Internal', 'shop.example.com', 'evil.example:8443', '[::1]:9'];
  let ca: TestCa;

  interface Handshakes {
    readonly port: number;
    /** The SNI of every TLS handshake the server completed (false: none sent). */
    readonly names: Array<string | false>;
  }

  /** Counts completed handshakes and their SNI on `server`, then listens. */
  async function watched(server: import('node:tls').Server): Promise<Handshakes> {
    const names: Array<string | false> = [];
    server.on('secureConnection', (socket: TLSSocket) => names.push((socket as TLSSocket & { servername: string | false }).servername));
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server as never);
    return { port: (server.address() as AddressInfo).port, names };
  }

  /** An HTTPS/1.1 backend answering its SNI, with WebSocket-style upgrades. */
  async function h1Backend(cert: IssuedCertificate): Promise<Handshakes> {
    const server = createServer({ cert: cert.cert, key: cert.key }, (req, res) => res.end(`ok ${(req.socket as TLSSocket & { servername: string | false }).servername}`));
    server.on('upgrade', (_req, socket) => {
      socket.on('error', () => undefined);
      socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    });
    return watched(server);
  }

  before(() => {
    ca = createTestCa('SNI CA', pki.path);
  });

  after(async () => {
    for (const gw of gateways) await gw.close();
    for (const s of servers) {
      s.closeAllConnections?.();
      s.close();
    }
    pki.remove();
  });

  async function gateway(group: ConfigInput): Promise<InProcessGateway> {
    const gw = await startInProcess({ load_balancing: { retries: 1, health_check: { enabled: false }, ...group } });
    gateways.push(gw);
    return gw;
  }

  /** GET / with `host` over a fresh client connection: status and body. */
  async function get(gw: InProcessGateway, host: string): Promise<{ status: number; body: string }> {
    const res = await rawRequest(gw.gateway.port, `GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    return { status: res.status, body: res.body };
  }

  function assertNoUpstreamBlamed(gw: InProcessGateway): void {
    const blamed = gw.logs.filter((l) => l.msg === 'Upstream Down' || l.msg === 'Upstream TLS Failed' || l.msg === 'Upstream Retry');
    assert.deepEqual(blamed, []);
  }

  test('servername api.internal: every client Host gets 200, over one handshake per upstream, SNI api.internal', async () => {
    const cert = ca.issue('api.internal'); // DNS:api.internal only: a name taken from a Host fails verification
    const [a, b] = [await h1Backend(cert), await h1Backend(cert)];
    const gw = await gateway({
      tls: { enabled: true, ca_file: ca.caFile, servername: 'api.internal' },
      upstreams: [{ name: 'a', address: '127.0.0.1', port: a.port }, { name: 'b', address: '127.0.0.1', port: b.port }],
    });
    for (const host of [...HOSTS, ...HOSTS]) {
      const res = await get(gw, host);
      assert.deepEqual(res, { status: 200, body: 'ok api.internal' }, `Host: ${host}`);
    }
    // Alternating Hosts used to tear down and rebuild the TLS connection on every change.
    assert.deepEqual(a.names, ['api.internal']);
    assert.deepEqual(b.names, ['api.internal']);
    assertNoUpstreamBlamed(gw);
  });

  test('no servername and an IP address: no SNI is sent whatever the Host, the certificate is checked against the IP', async () => {
    const backend = await h1Backend(ca.issue('ip-only', { san: ['IP:127.0.0.1'] }));
    const gw = await gateway({ tls: { enabled: true, ca_file: ca.caFile }, upstreams: [{ name: 'a', address: '127.0.0.1', port: backend.port }] });
    for (const host of HOSTS) assert.deepEqual(await get(gw, host), { status: 200, body: 'ok false' }, `Host: ${host}`);
    assert.deepEqual(backend.names, [false]);
    assertNoUpstreamBlamed(gw);
  });

  test('no servername and a name as address: the SNI is that name whatever the Host', async () => {
    const backend = await h1Backend(ca.issue('localhost'));
    const gw = await gateway({ tls: { enabled: true, ca_file: ca.caFile }, upstreams: [{ name: 'a', address: 'localhost', port: backend.port }] });
    for (const host of HOSTS) assert.deepEqual(await get(gw, host), { status: 200, body: 'ok localhost' }, `Host: ${host}`);
    assert.deepEqual(backend.names, ['localhost']);
    assertNoUpstreamBlamed(gw);
  });

  test('an HTTP/2 upstream (ALPN h2): every client Host gets 200 over one handshake with SNI api.internal', async () => {
    const cert = ca.issue('api.internal', { stem: 'h2' });
    const server = createSecureServer({ cert: cert.cert, key: cert.key }, (req, res) => {
      const body = `ok ${req.httpVersion} ${(req.socket as unknown as { servername: string | false }).servername}`;
      res.writeHead(200, { 'content-length': Buffer.byteLength(body) }); // relayed unchunked: the raw client reads it as is
      res.end(body);
    });
    const backend = await watched(server);
    const gw = await gateway({
      http2: true,
      tls: { enabled: true, ca_file: ca.caFile, servername: 'api.internal' },
      upstreams: [{ name: 'a', address: '127.0.0.1', port: backend.port }],
    });
    for (const host of HOSTS) assert.deepEqual(await get(gw, host), { status: 200, body: 'ok 2.0 api.internal' }, `Host: ${host}`);
    assert.deepEqual(backend.names, ['api.internal']);
    assertNoUpstreamBlamed(gw);
  });

  test('a WebSocket upgrade to an HTTPS upstream with a foreign Host verifies api.internal and switches protocols', async () => {
    const backend = await h1Backend(ca.issue('api.internal', { stem: 'ws' }));
    const gw = await gateway({
      tls: { enabled: true, ca_file: ca.caFile, servername: 'api.internal' },
      upstreams: [{ name: 'a', address: '127.0.0.1', port: backend.port }],
    });
    for (const host of ['evil.example', 'shop.example.com:443']) {
      const res = await rawRequest(gw.gateway.port, `GET /ws HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`);
      assert.equal(res.status, 101, `Host: ${host}`);
    }
    assert.ok(backend.names.length > 0 && backend.names.every((n) => n === 'api.internal'), JSON.stringify(backend.names));
    assertNoUpstreamBlamed(gw);
  });
});
