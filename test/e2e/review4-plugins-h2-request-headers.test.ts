// ctx.request.headers is the same over HTTP/2 as over HTTP/1.1. What was wrong: over HTTP/2 a plugin got node's
// header object as it is, with the pseudo-headers (":method", ":path", ":authority", ":scheme") and without `host`,
// which HTTP/2 carries as ":authority". A plugin keyed on the host (a tenant per host) read undefined over HTTP/2
// on the same TLS port where HTTP/1.1 worked (ALPN picks), and one copying the request's headers into
// ctx.upstreamHeaders got a TypeError for ":method" over HTTP/2 only; while the routes' header conditions and the
// upstream both see `host` as the :authority (README, "Routes and services"). What is right now: no pseudo-header,
// and `host` is the :authority, as the upstream receives it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { h2connect, h2request } from '../helpers/h2.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';

/** Answers with the request headers it was given, and whether copying them all upstream-style would throw. */
const PLUGIN = `
export default {
  name: 'headers-seen',
  create() {
    return {
      onRequest(ctx) {
        return ctx.respond(200, { headers: ctx.request.headers });
      },
    };
  },
};
`;

function h1get(port: number, ca: Buffer, host: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/p?a=1', servername: 'a.test', ca, agent: false, headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve((JSON.parse(body) as { headers: Record<string, unknown> }).headers));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('ctx.request.headers over HTTP/2', () => {
  const pki = pkiDir();
  const dir = mkdtempSync(join(tmpdir(), 'review4-plugins-h2-headers-'));
  let ca: TestCa;
  let gw: InProcessGateway;

  before(async () => {
    ca = createTestCa('Plugin h2 headers CA', pki.path);
    const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
    writeFileSync(join(dir, 'headers-seen.mjs'), PLUGIN);
    gw = await startInProcess({
      server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile, http2: true } },
      load_balancing: { upstreams: upstreams([9]) },
      plugins: [{ name: 'headers-seen', module: join(dir, 'headers-seen.mjs') }],
      middleware: { plugins: ['headers-seen'] },
    });
  });
  after(async () => {
    await gw?.close();
    pki.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  test('host is the :authority, and no pseudo-header is among the headers', async () => {
    const session = await h2connect(gw.gateway.port, ca.ca);
    session.on('error', () => undefined);
    try {
      const res = await h2request(session, { ':method': 'GET', ':path': '/p?a=1', ':authority': 'tenant.example.com', 'x-a': '1' });
      assert.equal(res.status, 200);
      const headers = (JSON.parse(res.body.toString('utf8')) as { headers: Record<string, unknown> }).headers;
      assert.equal(headers.host, 'tenant.example.com');
      assert.equal(headers['x-a'], '1');
      assert.deepEqual(Object.keys(headers).filter((name) => name.startsWith(':')), []);
    } finally {
      session.destroy();
    }
  });

  test('the control: HTTP/1.1 on the same port has host', async () => {
    const headers = await h1get(gw.gateway.port, ca.ca, 'tenant.example.com');
    assert.equal(headers.host, 'tenant.example.com');
  });
});
