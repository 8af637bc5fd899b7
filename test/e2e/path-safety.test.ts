// A public path must not open the way to a protected one: ambiguous paths are refused before auth runs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rawRequest } from '../helpers/raw.js';
import { startAuthStack, type AuthStack } from '../helpers/auth-gateway.js';

let stack: AuthStack;
before(async () => {
  stack = await startAuthStack({ auth: { public_paths: ['/public/*'] } });
});
after(() => stack.close());

test('the public prefix itself is reachable without a token', async () => {
  assert.equal((await stack.client.request(`${stack.url}/public/page`)).status, 200);
});

test('dot-segments and encoded separators behind a public prefix get 400 and never reach the backend', async () => {
  const port = Number(new URL(stack.url).port);
  const before = stack.backend.hits;
  for (const target of ['/public/../admin', '/public/%2e%2e/admin', '/public/%2E%2E%2Fadmin', '/public/..%2fadmin']) {
    // Raw request: an HTTP client library would normalize the path before sending it.
    const res = await rawRequest(port, `GET ${target} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`);
    assert.equal(res.status, 400, target);
    assert.equal(JSON.parse(res.body).request_id, res.headers['x-request-id'], target);
  }
  assert.equal(stack.backend.hits, before);
});

test('without a token a protected path is still 401', async () => {
  assert.equal((await stack.client.request(`${stack.url}/admin`)).status, 401);
});
