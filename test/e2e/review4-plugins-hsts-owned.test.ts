// With server.tls.hsts set, the gateway writes Strict-Transport-Security on every TLS response, in a response phase
// that runs after the plugins' onResponse hooks (tls/setup.ts). What was wrong: a plugin's
// ctx.responseHeaders.set('strict-transport-security', …) (or a route's response_headers.set of it) was accepted
// and then silently replaced by the config's value, the case README gives for owning tracing.response_header
// ("the tracing phase writes it after onResponse"). What is right now: while HSTS is on the header is the gateway's,
// so set and delete throw a TypeError in the hook, and a route rewrite of it is a config error; with TLS on and
// hsts empty a plugin may still send its own.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { configErrorOf } from '../helpers/config-error.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';

const HSTS = 'max-age=31536000';

/** onResponse tries to send its own HSTS and reports what set() did in x-hsts-set. */
const PLUGIN = `
export default {
  name: 'hsts-setter',
  create() {
    return {
      onResponse(ctx) {
        let outcome = 'accepted';
        try {
          ctx.responseHeaders.set('strict-transport-security', 'max-age=0');
        } catch (err) {
          outcome = err instanceof TypeError ? 'TypeError' : 'other';
        }
        ctx.responseHeaders.set('x-hsts-set', outcome);
      },
    };
  },
};
`;

function get(port: number, ca: Buffer): Promise<{ status: number; headers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/x', servername: 'a.test', ca, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('Strict-Transport-Security and plugins', () => {
  const pki = pkiDir();
  const dir = mkdtempSync(join(tmpdir(), 'review4-plugins-hsts-'));
  let ca: TestCa;
  let certFile: string;
  let keyFile: string;
  let backend: TestBackend;
  const gateways: InProcessGateway[] = [];

  const start = (hsts: string) =>
    startInProcess({
      server: { tls: { cert_file: certFile, key_file: keyFile, hsts } },
      load_balancing: { upstreams: upstreams([backend.port]) },
      plugins: [{ name: 'hsts-setter', module: join(dir, 'hsts-setter.mjs') }],
      middleware: { plugins: ['hsts-setter'] },
    }).then((gw) => (gateways.push(gw), gw));

  before(async () => {
    ca = createTestCa('Plugin HSTS CA', pki.path);
    ({ certFile, keyFile } = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] }));
    writeFileSync(join(dir, 'hsts-setter.mjs'), PLUGIN);
    backend = await startBackend('b1');
  });
  after(async () => {
    for (const gw of gateways) await gw.close();
    await backend?.stop();
    pki.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  test('with server.tls.hsts set, a plugin setting the header gets a TypeError instead of being overwritten silently', async () => {
    const gw = await start(HSTS);
    const res = await get(gw.gateway.port, ca.ca);
    assert.equal(res.status, 200);
    assert.equal(res.headers['strict-transport-security'], HSTS);
    assert.equal(res.headers['x-hsts-set'], 'TypeError');
  });

  test('with TLS on and hsts empty, the header is the plugin\'s to send', async () => {
    const gw = await start('');
    const res = await get(gw.gateway.port, ca.ca);
    assert.equal(res.headers['x-hsts-set'], 'accepted');
    assert.equal(res.headers['strict-transport-security'], 'max-age=0');
  });

  test('a route rewriting the header while hsts is set is a config error, as for any header the gateway sets', () => {
    const text = [
      `server: { tls: { cert_file: ${certFile}, key_file: ${keyFile}, hsts: "${HSTS}" } }`,
      'services: { s: { upstreams: [{ name: a, address: 127.0.0.1, port: 9 }] } }',
      'routes:',
      '  - { name: r, match: { path_prefix: / }, service: s, response_headers: { set: { strict-transport-security: max-age=0 } } }',
    ].join('\n');
    assert.equal(configErrorOf(text), 'routes[0].response_headers: "strict-transport-security" is set by the gateway and cannot be rewritten');
  });
});
