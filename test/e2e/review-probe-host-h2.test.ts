// Probes of HTTP/2 upstreams (h2c and TLS h2) with a probe Host: health_check.host and tls.servername reach the
// upstream as :authority, and the probe succeeds.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/prometheus.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';

const pki = pkiDir();
const ca = createTestCa('Probe Host H2 CA', pki.path);
const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const close of closers.reverse()) await close();
  pki.remove();
});

function onStream(name: string, seen: string[]) {
  return (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void => {
    if (headers['user-agent'] === 'portcullis-health-check') seen.push(`${String(headers[':authority'])}|${String(headers.host)}`);
    stream.on('error', () => undefined);
    stream.respond({ ':status': headers[':authority'] === name || headers.host === name ? 200 : 503 });
    stream.end();
  };
}

async function listening(server: http2.Http2Server | http2.Http2SecureServer): Promise<number> {
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => { sessions.add(s); s.on('close', () => sessions.delete(s)); s.on('error', () => undefined); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(async () => {
    for (const s of sessions) s.destroy();
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

const checks = { enabled: true, interval: '100ms', timeout: '500ms', healthy_threshold: 1, unhealthy_threshold: 1 };

test('h2c upstream probed with health_check.host', async () => {
  const seen: string[] = [];
  const server = http2.createServer();
  server.on('stream', onStream('status.example', seen));
  const port = await listening(server);
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
  const port = await listening(server);
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
