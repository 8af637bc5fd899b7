// The Host an active health check sends. Backends behind one address often serve several names (a virtual host per
// service, a TLS ingress routing by Host): a probe sent with Host "address:port" reached the default virtual host,
// so it judged another application, or one that answers 5xx to names it does not serve, and the service was marked
// down while its requests (sent with the client's Host) were fine. Now the probe's Host is `health_check.host`
// when set, else the service's `tls.servername` (the name the upstream's certificate carries), else address:port;
// over HTTP/2 (h2c and TLS h2) it arrives as :authority, and an IPv6-literal servername is sent bracketed.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import http2 from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { parseConfigText } from '../../src/config/load.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { waitFor } from '../helpers/prometheus.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';

const pki = pkiDir();
const ca = createTestCa('Probe Host CA', pki.path);
const http = createClient();
const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const close of closers.reverse()) await close();
  await http.close();
  pki.remove();
});

/** Serves `name` only; any other Host is the default virtual host, which answers 503. Records each probe's Host. */
function virtualHost(name: string, seen: string[]) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (req.headers['user-agent'] === 'portcullis-health-check') seen.push(String(req.headers.host));
    res.writeHead(req.headers.host === name ? 200 : 503).end();
  };
}

async function listening(server: ReturnType<typeof createHttpServer>): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as AddressInfo).port;
}

async function gateway(services: Record<string, unknown>): Promise<InProcessGateway> {
  const gw = await startInProcess({
    services,
    routes: Object.keys(services).map((name) => ({ name, match: { path_prefix: `/${name}` }, service: name })),
  });
  closers.push(() => gw.close());
  return gw;
}

// A long probe timeout, as review-balancing-health-origin has: a wrong Host is a 503 at once whatever it is, while
// 500 ms for a probe (a new TLS handshake) is missed on a loaded machine and marks an upstream down these expect up.
const checks = { enabled: true, interval: '100ms', timeout: '5s', healthy_threshold: 1, unhealthy_threshold: 1 };

test('an HTTPS service with tls.servername is probed with that name as Host, and stays healthy', async () => {
  const seen: string[] = [];
  const cert = ca.issue('api.internal', { san: ['DNS:api.internal'] });
  const server = createHttpsServer({ cert: cert.cert, key: cert.key }, virtualHost('api.internal', seen));
  server.on('tlsClientError', () => undefined);
  const port = await listening(server);
  const gw = await gateway({
    secure: { upstreams: upstreams([port]), retries: 0, health_check: checks, tls: { enabled: true, ca_file: ca.caFile, servername: 'api.internal' } },
  });
  await waitFor('three probes', async () => seen.length >= 3, 10_000);
  assert.deepEqual(new Set(seen), new Set(['api.internal']));
  assert.equal(gw.logs.filter((l) => l.msg === 'Upstream Unhealthy').length, 0, 'no probe failed');
  const res = await http.request(`${gw.url}/secure`, { headers: { host: 'api.internal' } });
  assert.equal(res.status, 200);
});

test('health_check.host names the probe Host of a cleartext service; without it, address:port as before', async () => {
  const named: string[] = [];
  const plain: string[] = [];
  const namedPort = await listening(createHttpServer(virtualHost('status.example', named)));
  const plainPort = await listening(createHttpServer(virtualHost('nobody', plain)));
  const gw = await gateway({
    named: { upstreams: upstreams([namedPort]), retries: 0, health_check: { ...checks, host: 'status.example' } },
    plain: { upstreams: upstreams([plainPort]), retries: 0, health_check: { ...checks, healthy_threshold: 1 } },
  });
  await waitFor('probes of both', async () => named.length >= 3 && plain.length >= 1, 10_000);
  assert.deepEqual(new Set(named), new Set(['status.example']));
  assert.deepEqual(new Set(plain), new Set([`127.0.0.1:${plainPort}`]));
  assert.ok(!gw.logs.some((l) => l.msg === 'Upstream Unhealthy' && l.upstream === `127.0.0.1:${namedPort}`), 'the named service stays up');
  await waitFor('the plain one (503 on its default host) marked down', async () => gw.logs.some((l) => l.msg === 'Upstream Unhealthy' && l.upstream === `127.0.0.1:${plainPort}`), 5_000);
});

test('health_check.host is a host[:port] a request could carry; anything else is a config error', () => {
  const base = 'load_balancing: { upstreams: [{ name: a, address: 127.0.0.1, port: 1 }], health_check: { host: HOST } }\n';
  for (const bad of ['"a b"', '"a.test/x"', '"a.test:99999"', '"a.test\\r\\nx: 1"', '"user@a.test"']) {
    assert.throws(() => parseConfigText(base.replace('HOST', bad), {}), /^.*load_balancing\.health_check\.host: must be empty .*or a host\[:port\]/m, bad);
  }
  for (const good of ['"status.example"', '"status.example:8443"', '"[::1]:80"', '""']) {
    assert.doesNotThrow(() => parseConfigText(base.replace('HOST', good), {}), good);
  }
});

/** An HTTP/2 upstream that serves `name` only (by :authority or Host) and records each probe's. */
function onStream(name: string, seen: string[]) {
  return (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void => {
    if (headers['user-agent'] === 'portcullis-health-check') seen.push(`${String(headers[':authority'])}|${String(headers.host)}`);
    stream.on('error', () => undefined);
    stream.respond({ ':status': headers[':authority'] === name || headers.host === name ? 200 : 503 });
    stream.end();
  };
}

async function listeningH2(server: http2.Http2Server | http2.Http2SecureServer): Promise<number> {
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => { sessions.add(s); s.on('close', () => sessions.delete(s)); s.on('error', () => undefined); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(async () => {
    for (const s of sessions) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as AddressInfo).port;
}

test('h2c upstream probed with health_check.host', async () => {
  const seen: string[] = [];
  const server = http2.createServer();
  server.on('stream', onStream('status.example', seen));
  const port = await listeningH2(server);
  const gw = await gateway({ h2c: { upstreams: upstreams([port]), retries: 0, http2: true, health_check: { ...checks, host: 'status.example' } } });
  await waitFor('three probes', async () => seen.length >= 3, 10_000).catch(() => undefined);
  assert.ok(seen.length >= 3, `probes seen: ${JSON.stringify(seen)}; logs: ${JSON.stringify(gw.logs.filter((l) => /nhealthy|rror/.test(String(l.msg))).slice(0, 3))}`);
  assert.deepEqual(new Set(seen.map((s) => s.split('|')[0])), new Set(['status.example']), JSON.stringify(seen));
  assert.equal(gw.logs.filter((l) => l.msg === 'Upstream Unhealthy').length, 0);
});

test('TLS h2 upstream probed with tls.servername', async () => {
  const seen: string[] = [];
  const cert = ca.issue('api.internal', { san: ['DNS:api.internal'] });
  const server = http2.createSecureServer({ cert: cert.cert, key: cert.key });
  server.on('stream', onStream('api.internal', seen));
  server.on('tlsClientError', () => undefined);
  const port = await listeningH2(server);
  const gw = await gateway({ h2: { upstreams: upstreams([port]), retries: 0, http2: true, health_check: checks, tls: { enabled: true, ca_file: ca.caFile, servername: 'api.internal' } } });
  await waitFor('three probes', async () => seen.length >= 3, 10_000).catch(() => undefined);
  assert.ok(seen.length >= 3, `probes seen: ${JSON.stringify(seen)}; logs: ${JSON.stringify(gw.logs.filter((l) => /nhealthy|rror/.test(String(l.msg))).slice(0, 3))}`);
  assert.deepEqual(new Set(seen.map((s) => s.split('|')[0])), new Set(['api.internal']), JSON.stringify(seen));
  assert.equal(gw.logs.filter((l) => l.msg === 'Upstream Unhealthy').length, 0);
});

test('an IPv6-literal tls.servername gives the probe a valid Host (bracketed), not "::1"', async () => {
  const seen: string[] = [];
  const cert = ca.issue('v6', { san: ['IP:::1'] });
  const server = createHttpsServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    if (req.headers['user-agent'] === 'portcullis-health-check') seen.push(String(req.headers.host));
    // As Go's net/http and nginx do: a Host that is not a valid authority is a 400.
    res.writeHead(/^\[[0-9a-f:]+\](?::\d+)?$/i.test(String(req.headers.host)) ? 200 : 400).end();
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '::1', resolve));
  closers.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const port = (server.address() as AddressInfo).port;
  await gateway({
    v6: { upstreams: [{ name: 'b1', address: '::1', port }], retries: 0, health_check: checks, tls: { enabled: true, ca_file: ca.caFile, servername: '::1' } },
  });
  await waitFor('three probes', async () => seen.length >= 3, 10_000);
  for (const host of seen) assert.match(host, /^\[::1\](?::\d+)?$/, `probe Host ${host}`);
});
