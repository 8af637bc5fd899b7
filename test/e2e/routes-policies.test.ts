// Per-route policies end to end: auth mode, rate-limit policy, CORS, header rewrites both ways, max_body_size.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type EchoBody, type TestBackend } from '../helpers/backends.js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket } from '../helpers/raw.js';
import { FAST_ARGON2, TEST_SECRET, uniqueEmail } from '../helpers/auth-gateway.js';

describe('per-route policies', () => {
  let backend: TestBackend;
  let gw: InProcessGateway;
  let token: string;
  const ORIGIN = 'https://app.example.com';

  before(async () => {
    backend = await startBackend('echo');
    gw = await startInProcess({
      services: { api: { upstreams: [{ name: 'api', address: '127.0.0.1', port: backend.port }] } },
      jwt: { secret: TEST_SECRET },
      routes: [
        { name: 'private', match: { path_prefix: '/private' }, service: 'api' },
        { name: 'optional', match: { path_prefix: '/optional' }, service: 'api', auth: 'optional' },
        { name: 'open', match: { path_prefix: '/open' }, service: 'api', auth: 'off', rate_limit: 'off' },
        { name: 'strict', match: { path_prefix: '/strict' }, service: 'api', auth: 'off', rate_limit: 'strict' },
        {
          name: 'rewrite',
          match: { path_prefix: '/rewrite' },
          service: 'api',
          auth: 'off',
          request_headers: { set: { 'x-team': 'users' }, remove: ['x-debug'] },
          response_headers: { set: { 'cache-control': 'no-store' }, remove: ['x-backend'] },
        },
        { name: 'small', match: { path_prefix: '/upload' }, service: 'api', auth: 'off', max_body_size: '1KB' },
        { name: 'nocors', match: { path_prefix: '/nocors' }, service: 'api', auth: 'off', cors: 'off' },
      ],
      middleware: {
        auth: { enabled: true, argon2: FAST_ARGON2 },
        rate_limit: { enabled: false, policies: { strict: { requests_per_minute: 60, burst_size: 2 } } },
        cors: { allowed_origins: [ORIGIN], allowed_headers: ['authorization', 'content-type'], expose_headers: ['x-request-id'], max_age: 600 },
      },
    });
    const reg = await gw.gateway.inject({ method: 'POST', url: '/auth/register', body: { email: uniqueEmail('routes'), password: 'correct horse battery' } });
    assert.equal(reg.status, 201);
    token = reg.json<{ access_token: string }>().access_token;
  });
  after(async () => {
    await gw?.close();
    await backend?.stop();
  });

  const call = (url: string, headers: Record<string, string> = {}, method = 'GET', body?: string) =>
    gw.gateway.inject({ method, url, headers, ...(body !== undefined ? { body } : {}) });

  test('auth: required refuses without a token and forwards the identity with one', async () => {
    assert.equal((await call('/private/x')).status, 401);
    const ok = await call('/private/x', { authorization: `Bearer ${token}` });
    assert.equal(ok.status, 200);
    assert.ok(ok.json<EchoBody>().headers['x-user-id']);
  });

  test('auth: optional forwards the identity when a valid token is sent, none otherwise, and still refuses a bad one', async () => {
    const anon = await call('/optional/x', { 'x-user-id': 'spoofed' });
    assert.equal(anon.status, 200);
    assert.equal(anon.json<EchoBody>().headers['x-user-id'], undefined);
    const known = await call('/optional/x', { authorization: `Bearer ${token}` });
    assert.ok(known.json<EchoBody>().headers['x-user-id']);
    assert.equal((await call('/optional/x', { authorization: 'Bearer not-a-token' })).status, 401);
  });

  test('auth: off passes without a token and strips client-sent identity headers', async () => {
    const res = await call('/open/x', { 'x-user-id': 'admin', 'x-user-email': 'root@example.com' });
    assert.equal(res.status, 200);
    assert.equal(res.json<EchoBody>().headers['x-user-id'], undefined);
    assert.equal(res.json<EchoBody>().headers['x-user-email'], undefined);
  });

  test('a route naming a policy is limited by it even with middleware.rate_limit.enabled false', async () => {
    const from = { remoteAddress: '203.0.113.9' };
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await gw.gateway.inject({ url: '/strict/x', ...from })).status);
    assert.deepEqual(statuses, [200, 200, 429, 429]);
    const limited = await gw.gateway.inject({ url: '/strict/x', ...from });
    assert.equal(limited.json<{ code: string }>().code, 'rate_limited');
    assert.equal(limited.headers['ratelimit-policy'], '2;w=2');
    // Routes on the default policy are not limited (it is disabled), nor are routes with rate_limit: off.
    for (let i = 0; i < 5; i++) assert.equal((await gw.gateway.inject({ url: '/open/x', ...from })).status, 200);
  });

  test('request and response headers are set and removed as the route says', async () => {
    const res = await call('/rewrite/x', { 'x-debug': '1', 'x-team': 'spoofed' });
    const echo = res.json<EchoBody>();
    assert.equal(echo.headers['x-team'], 'users');
    assert.equal(echo.headers['x-debug'], undefined);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(res.headers['x-backend'], undefined);
  });

  test('max_body_size: a declared length over it is 413 before the upstream sees anything', async () => {
    const hits = backend.hits;
    const big = await call('/upload', { 'content-type': 'application/octet-stream' }, 'POST', 'x'.repeat(2048));
    assert.equal(big.status, 413);
    assert.equal(big.json<{ code: string }>().code, 'payload_too_large');
    assert.equal(backend.hits, hits);
    const small = await call('/upload', { 'content-type': 'application/octet-stream' }, 'POST', 'x'.repeat(512));
    assert.equal(small.status, 200);
    assert.equal(small.json<{ bytes: number }>().bytes, 512);
  });

  test('max_body_size: a chunked body is counted as it streams and cut with 413', async () => {
    const { request } = await import('undici');
    const { Readable } = await import('node:stream');
    const chunks = Readable.from(Array.from({ length: 8 }, () => Buffer.alloc(512, 'y')));
    const res = await request(`${gw.url}/upload`, { method: 'POST', body: chunks });
    assert.equal(res.statusCode, 413);
    await res.body.dump();
  });

  // Answered before the body arrived, the connection is closed: kept, node read and threw away whatever the client
  // sent (gigabytes past a 1 KB limit) for as long as timeouts.request allowed.
  for (const [what, head, first] of [
    ['a declared 10 GB', 'Content-Length: 10000000000\r\n', 'x'.repeat(100)],
    ['a chunked upload', 'Transfer-Encoding: chunked\r\n', `800\r\n${'y'.repeat(2048)}\r\n`],
  ] as const) {
    test(`max_body_size: ${what} gets 413 and the connection closes, never reading the rest`, async () => {
      const socket = await openSocket(gw.gateway.port);
      const closed = new Promise<'closed'>((resolve) => socket.once('close', () => resolve('closed')));
      socket.write(`POST /upload HTTP/1.1\r\nHost: a\r\n${head}\r\n${first}`);
      let received = '';
      socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
      // The client goes on sending, as an uploader does, until the gateway closes.
      const pump = setInterval(() => socket.writable && socket.write('z'.repeat(16_384)), 20);
      try {
        const outcome = await Promise.race([closed, new Promise<'open'>((resolve) => setTimeout(() => resolve('open'), 5_000).unref())]);
        assert.equal(outcome, 'closed', `the connection stayed open, reading the body: ${received.split('\r\n')[0]}`);
        assert.match(received, /^HTTP\/1\.1 413 /);
        assert.match(received, /\r\nconnection: close\r\n/i);
      } finally {
        clearInterval(pump);
        socket.destroy();
      }
    });
  }

  test('CORS preflight from an allowed origin is answered by the gateway, also for /auth/*', async () => {
    for (const url of ['/private/x', '/auth/login']) {
      const res = await call(url, { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' }, 'OPTIONS');
      assert.equal(res.status, 204, url);
      assert.equal(res.headers['access-control-allow-origin'], ORIGIN);
      assert.match(String(res.headers['access-control-allow-methods']), /POST/);
      assert.equal(res.headers['access-control-allow-headers'], 'authorization, content-type');
      assert.equal(res.headers['access-control-max-age'], '600');
      assert.ok(res.headers['x-request-id'], 'gateway headers on the preflight too');
    }
  });

  test('CORS: a disallowed origin gets no CORS headers, on preflights and requests alike', async () => {
    const pre = await call('/private/x', { origin: 'https://evil.example', 'access-control-request-method': 'GET' }, 'OPTIONS');
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['access-control-allow-origin'], undefined);
    const res = await call('/open/x', { origin: 'https://evil.example' });
    assert.equal(res.status, 200);
    assert.equal(res.headers['access-control-allow-origin'], undefined);
  });

  test("CORS headers ride on every response to an allowed origin: proxied, the gateway's 401, 404 and 429", async () => {
    const proxied = await call('/open/x', { origin: ORIGIN });
    assert.equal(proxied.headers['access-control-allow-origin'], ORIGIN);
    assert.equal(proxied.headers['access-control-expose-headers'], 'x-request-id');
    assert.match(String(proxied.headers.vary), /Origin/);
    const unauthorized = await call('/private/x', { origin: ORIGIN });
    assert.equal(unauthorized.status, 401);
    assert.equal(unauthorized.headers['access-control-allow-origin'], ORIGIN);
    const missing = await gw.gateway.inject({ url: '/auth/nope', headers: { origin: ORIGIN } });
    assert.equal(missing.status, 404);
    assert.equal(missing.headers['access-control-allow-origin'], ORIGIN);
    const from = { remoteAddress: '203.0.113.77', headers: { origin: ORIGIN } };
    let limited;
    for (let i = 0; i < 4; i++) limited = await gw.gateway.inject({ url: '/strict/y', ...from });
    assert.equal(limited!.status, 429);
    assert.equal(limited!.headers['access-control-allow-origin'], ORIGIN);
  });

  test('cors: off on a route leaves preflights to the upstream and adds no headers', async () => {
    const pre = await call('/nocors/x', { origin: ORIGIN, 'access-control-request-method': 'GET' }, 'OPTIONS');
    assert.equal(pre.status, 200, 'proxied to the echo backend');
    assert.equal(pre.json<EchoBody>().method, 'OPTIONS');
    assert.equal(pre.headers['access-control-allow-origin'], undefined);
  });
});
