// Smoke: a request goes through the gateway to a backend and back with the gateway's headers.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { startInProcess, upstreams } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';

test('proxies a GET with method, path and query intact', async () => {
  const backend = await startBackend('one');
  const gw = await startInProcess({ load_balancing: { upstreams: upstreams([backend.port]) } });
  const client = createClient();
  after(async () => {
    await client.close();
    await gw.close();
    await backend.stop();
  });
  const res = await client.request(`${gw.url}/a/b?c=1&d=%20x`);
  assert.equal(res.status, 200);
  const body = res.json<{ url: string; method: string }>();
  assert.equal(body.url, '/a/b?c=1&d=%20x');
  assert.equal(res.headers['x-proxy-by'], 'Portcullis');
  assert.match(String(res.headers['x-request-id']), /^[0-9a-f-]{36}$/);
});
