// The gateway's own paths (/health, the auth API, the JWKS document) are answered before any user route, and the
// global CORS policy approved every preflight for them: a DELETE of /health or a POST to an /auth/ path that does not
// exist got a 204 approval, and the real request then failed (405, 404). A preflight is now approved only for a
// method the path takes; any other is answered as the plain OPTIONS it is.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend } from '../helpers/backends.js';
import { startInProcess } from '../helpers/gateway.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { AUTH_ENDPOINTS } from '../../src/auth/paths.js';

const APP = 'https://app.example.com';
const backend = await startBackend('echo');
const gw = await startInProcess({
  load_balancing: { upstreams: [{ name: 'app', address: '127.0.0.1', port: backend.port }] },
  jwt: { secret: TEST_SECRET },
  middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, cors: { allowed_origins: [APP] } },
});
after(async () => {
  await gw.close();
  await backend.stop();
});

function preflight(path: string, method: string, url = gw.url): Promise<{ status: number; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method: 'OPTIONS', headers: { origin: APP, 'access-control-request-method': method } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('a preflight for a method or path the gateway does not serve is no approval', async () => {
  const cases: [string, string, number][] = [
    ['/health', 'DELETE', 405],
    ['/health', 'POST', 405],
    ['/auth/nothing', 'POST', 404],
    ['/auth/', 'POST', 404],
    ['/auth/login', 'GET', 405],
    ['/auth/login', 'PUT', 405],
    // review16: HS256 publishes no JWKS (a GET there is 404), and its preflight was approved all the same.
    ['/.well-known/jwks.json', 'GET', 404],
  ];
  for (const [path, method, status] of cases) {
    const res = await preflight(path, method);
    assert.equal(res.status, status, `${method} ${path}`);
    assert.equal(res.headers['access-control-allow-origin'], undefined, `${method} ${path}: no approval`);
    assert.equal(res.headers['access-control-allow-methods'], undefined, `${method} ${path}`);
  }
});

test('a preflight for what the gateway serves is approved, as before', async () => {
  for (const [path, method] of [...AUTH_ENDPOINTS.map((p) => [p, 'POST']), ['/auth/login', 'post'], ['/health', 'GET']] as [string, string][]) {
    const res = await preflight(path, method);
    assert.equal(res.status, 204, `${method} ${path}`);
    assert.equal(res.headers['access-control-allow-origin'], APP, `${method} ${path}`);
  }
  // AUTH_ENDPOINTS is what the auth API answers: each is a known path taking POST (a refused body or a limit, never
  // 404 or 405).
  for (const path of AUTH_ENDPOINTS) {
    const res = await fetch(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    await res.arrayBuffer();
    assert.ok(res.status === 400 || res.status === 429, `${path}: ${res.status}`);
  }
});

test('with an asymmetric algorithm, the JWKS document is served and its GET preflight approved', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'review16-jwks-cors-'));
  const keyFile = join(dir, 'key.pem');
  writeFileSync(keyFile, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  const signed = await startInProcess({
    load_balancing: { upstreams: [{ name: 'app', address: '127.0.0.1', port: backend.port }] },
    jwt: { algorithm: 'EdDSA', private_key_file: keyFile },
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, cors: { allowed_origins: [APP] } },
  });
  try {
    const res = await preflight('/.well-known/jwks.json', 'GET', signed.url);
    assert.equal(res.status, 204);
    assert.equal(res.headers['access-control-allow-origin'], APP);
    assert.equal((await preflight('/.well-known/jwks.json', 'POST', signed.url)).status, 405);
  } finally {
    await signed.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
