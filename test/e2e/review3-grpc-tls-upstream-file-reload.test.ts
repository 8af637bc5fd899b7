// HTTPS upstreams across a reload that rewrote their TLS files in place. Certificates are rotated by rewriting the
// same paths (cert-manager, an ACME hook, a mounted secret), then SIGHUP. What was wrong: a service was given a new
// pool only when its tls keys changed as text, so a reload with the same ca_file / cert_file paths kept the old pool
// with the files as first read: the rotated CA was never trusted (the upstream's new certificate 502 upstream_tls
// "unknown CA" after the reload) and the rotated client certificate never presented (the old one, until it expired).
// What is right now: a reload reads the files and a changed content gives the upstreams new pools.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { parseConfigObject } from '../../src/config/load.js';
import { startInProcess, type ConfigInput, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { createTestCa, pkiDir, type IssuedCertificate } from '../helpers/tls.js';

const pki = pkiDir();
const client = createClient();
const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const close of closers.reverse()) await close();
  await client.close();
  pki.remove();
});

/** An HTTPS backend answering the CN of the client certificate it was shown (or null). */
async function httpsBackend(cert: IssuedCertificate, clientCa?: Buffer, port = 0): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer({ cert: cert.cert, key: cert.key, ...(clientCa ? { ca: clientCa, requestCert: true, rejectUnauthorized: true } : {}) }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ client_cn: peer?.subject?.CN ?? null }));
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  closers.push(close);
  return { port: (server.address() as AddressInfo).port, close };
}

function config(port: number, tls: Record<string, unknown>): ConfigInput {
  return {
    server: { listen_host: '127.0.0.1', listen_port: 0 },
    admin: { listen_host: '127.0.0.1', listen_port: 0 },
    logging: { format: 'json', level: 'info' },
    load_balancing: { upstreams: [{ name: 'b1', address: '127.0.0.1', port }], health_check: { enabled: false }, tls: { enabled: true, ...tls } },
  };
}

async function start(input: ConfigInput): Promise<InProcessGateway> {
  const gw = await startInProcess(input);
  closers.push(() => gw.close());
  return gw;
}

test('a CA file rewritten in place is trusted after a reload', async () => {
  const oldCa = createTestCa('Old upstream CA', pki.path);
  const newCa = createTestCa('New upstream CA', pki.path);
  const caFile = join(pki.path, 'upstream-ca.pem');
  copyFileSync(oldCa.caFile, caFile);
  const first = await httpsBackend(oldCa.issue('127.0.0.1', { san: ['IP:127.0.0.1'] }));
  const gw = await start(config(first.port, { ca_file: caFile }));
  assert.equal((await client.request(`${gw.url}/x`)).status, 200);

  // The upstream moves to a certificate of the new CA on the same port (its restart closes the gateway's keep-alive
  // connection), and the operator installs the new CA at the same path, then reloads the same config.
  await first.close();
  await httpsBackend(newCa.issue('127.0.0.1', { san: ['IP:127.0.0.1'], stem: 'rotated' }), undefined, first.port);
  copyFileSync(newCa.caFile, caFile);
  await gw.gateway.reload(parseConfigObject(config(first.port, { ca_file: caFile })));
  const res = await client.request(`${gw.url}/x`);
  assert.equal(res.status, 200, res.text);
});

test('a client certificate rewritten in place is presented after a reload', async () => {
  const upstreamCa = createTestCa('mTLS upstream CA', pki.path);
  const backend = await httpsBackend(upstreamCa.issue('127.0.0.1', { san: ['IP:127.0.0.1'], stem: 'mtls-server' }), upstreamCa.ca);
  const certFile = join(pki.path, 'gateway-client.pem');
  const keyFile = join(pki.path, 'gateway-client.key');
  const old = upstreamCa.issue('gateway-2025', { stem: 'client-old' });
  copyFileSync(old.certFile, certFile);
  copyFileSync(old.keyFile, keyFile);
  const tls = { ca_file: upstreamCa.caFile, cert_file: certFile, key_file: keyFile };
  const gw = await start(config(backend.port, tls));
  assert.equal((await client.request(`${gw.url}/x`)).json<{ client_cn: string }>().client_cn, 'gateway-2025');

  const renewed = upstreamCa.issue('gateway-2026', { stem: 'client-new' });
  copyFileSync(renewed.certFile, certFile);
  copyFileSync(renewed.keyFile, keyFile);
  await gw.gateway.reload(parseConfigObject(config(backend.port, tls)));
  assert.equal((await client.request(`${gw.url}/x`)).json<{ client_cn: string }>().client_cn, 'gateway-2026');
});
