// What was wrong: `allow_credentials: true` with "*" in `allowed_headers` or `expose_headers` loaded, and each
// preflight then answered `Access-Control-Allow-Headers: *`. For a credentialed request a browser takes "*" there
// as a header literally named "*" (Fetch, CORS-preflight fetch and CORS check), so every credentialed request with a
// header of its own (Authorization, Content-Type: application/json) failed its preflight, and no response header was
// ever exposed. The same pairing in `allowed_origins` was already refused at load for the same reason.
// What is right now: both are config errors naming the key, at start-up and on reload (check-config too); without
// credentials "*" stays accepted and is sent as is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import { startBackend } from '../helpers/backends.js';
import { startInProcess } from '../helpers/gateway.js';
import { rawRequest } from '../helpers/raw.js';
import { configErrorOf } from '../helpers/config-error.js';

const APP = 'https://app.example.com';

function configText(cors: Record<string, unknown>, where: 'middleware' | 'route'): string {
  return stringify({
    services: { app: { upstreams: [{ name: 'app', address: '127.0.0.1', port: 9 }] } },
    routes: [{ name: 'api', match: { path_prefix: '/api' }, service: 'app', ...(where === 'route' ? { cors } : {}) }],
    ...(where === 'middleware' ? { middleware: { cors } } : {}),
  });
}

test('"*" in allowed_headers or expose_headers with allow_credentials is a config error naming the key', () => {
  for (const where of ['middleware', 'route'] as const) {
    for (const key of ['allowed_headers', 'expose_headers']) {
      const message = configErrorOf(configText({ allowed_origins: [APP], allow_credentials: true, [key]: ['authorization', '*'] }, where));
      assert.match(message, new RegExp(`${key}`), `${where} ${key}: ${message}`);
      assert.match(message, /allow_credentials/, `${where} ${key}: ${message}`);
    }
  }
});

test('without credentials "*" still loads and is sent as the preflight answer', async () => {
  const backend = await startBackend('app');
  const gw = await startInProcess({
    services: { app: { upstreams: [{ name: 'app', address: '127.0.0.1', port: backend.port }], health_check: { enabled: false } } },
    routes: [{ name: 'api', match: { path_prefix: '/api' }, service: 'app' }],
    middleware: { cors: { allowed_origins: [APP], allowed_headers: ['authorization', '*'], expose_headers: ['*'] } },
  });
  try {
    const pre = await rawRequest(
      gw.gateway.port,
      `OPTIONS /api/x HTTP/1.1\r\nHost: api\r\nOrigin: ${APP}\r\nAccess-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: x-a\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['access-control-allow-headers'], 'authorization, *');
    const get = await rawRequest(gw.gateway.port, `GET /api/x HTTP/1.1\r\nHost: api\r\nOrigin: ${APP}\r\nConnection: close\r\n\r\n`);
    assert.equal(get.headers['access-control-expose-headers'], '*');
  } finally {
    await gw.close();
    await backend.stop();
  }
});
