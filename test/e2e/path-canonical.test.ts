// Every spelling of a path trick behind a public prefix gets 400 and never reaches the backend; canonical paths pass.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rawRequest } from '../helpers/raw.js';
import { startAuthStack, type AuthStack } from '../helpers/auth-gateway.js';

let stack: AuthStack;
let port: number;
before(async () => {
  stack = await startAuthStack({ auth: { public_paths: ['/public/*'] } });
  port = Number(new URL(stack.url).port);
});
after(() => stack.close());

/** Sends `target` byte for byte (an HTTP library would normalize it first). */
function get(target: string, method = 'GET') {
  return rawRequest(port, `${method} ${target} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`);
}

/** Tricks that Tomcat/Jetty/Spring, nginx or IIS would read as /admin (or another path than the one matched). */
const TRICKS = [
  '/public/..;/admin',
  '/public/%2e%2e;/admin',
  '/public/.%2e/admin',
  '/public/%2E./admin',
  '/public/%2e%2e/admin',
  '/public/..#',
  '/public/..%23/../admin',
  '/public/%252e%252e/admin',
  '/public/..%252fadmin',
  '/public/..%2fadmin',
  '/public/..%5cadmin',
  '/public/..\\admin',
  '/public\\..\\admin',
  '/public/;/../admin',
  '/public;x=1/../admin',
  '/public/..%3B/admin',
  '/public/%2e%2e%2fadmin',
  '/public//../admin',
  '/public/x/..%00/admin',
  '/public/%00/../admin',
  '/public/%61dmin',
  '/public/%c0%ae%c0%ae/admin',
];

test('each spelling of a dot-segment, parameter, encoded separator or fragment trick gets a 400 JSON error', async () => {
  const before = stack.backend.hits;
  for (const target of TRICKS) {
    const res = await get(target);
    assert.equal(res.status, 400, target);
    const body = JSON.parse(res.body) as { request_id: string; details: string };
    assert.equal(body.request_id, res.headers['x-request-id'], target);
    assert.match(body.details, /^request target not canonical: /, target);
  }
  assert.equal(stack.backend.hits, before, 'no trick reached the backend');
});

test('absolute-form, authority-form and * targets get 400 before any phase (also OPTIONS *)', async () => {
  const before = stack.backend.hits;
  for (const [method, target] of [
    ['OPTIONS', '*'],
    ['GET', '*'],
    ['GET', `http://127.0.0.1:${port}/public/page`],
    ['GET', 'http://evil.example/admin'],
  ] as const) {
    assert.equal((await get(target, method)).status, 400, `${method} ${target}`);
  }
  assert.equal(stack.backend.hits, before);
});

test('canonical paths behind the public prefix still reach the backend unchanged', async () => {
  for (const target of ['/public/page', '/public/a..b', '/public/.well-known', '/public/caf%C3%A9?x=..;%2e', '/public/dir/']) {
    const res = await get(target);
    assert.equal(res.status, 200, target);
    assert.equal(res.headers['x-echo-url'], target);
  }
});

test('a protected path without a token is still 401, and the gateway routes (/health) are guarded the same way', async () => {
  assert.equal((await get('/admin')).status, 401);
  assert.equal((await get('/health')).status, 200);
  assert.equal((await get('/health;x')).status, 400);
  assert.equal((await get('/auth/%2e%2e/admin')).status, 400);
});
