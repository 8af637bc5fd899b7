// Every bad input to /auth/* through the gateway: the right status, a safe JSON body, and nothing echoed or leaked.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { assertSafeError, register, startAuthStack, uniqueEmail, type AuthStack } from '../helpers/auth-gateway.js';

let stack: AuthStack;
before(async () => {
  stack = await startAuthStack();
});
after(() => stack.close());

const PASSWORD = 'Correct-Horse-42';

function post(path: string, body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }) {
  return stack.client.request(`${stack.url}${path}`, { method: 'POST', headers, body });
}

/** The `details` of a 400 as a field → message map. */
function detailsOf(body: Record<string, unknown>): Record<string, string> {
  assert.ok(Array.isArray(body.details), 'details is a list');
  return Object.fromEntries((body.details as Array<{ field: string; message: string }>).map((d) => [d.field, d.message]));
}

test('malformed JSON: 400 {"error","details"} without quoting the input', async () => {
  for (const path of ['/auth/register', '/auth/login', '/auth/refresh', '/auth/logout']) {
    const raw = '{"email": "leak-me@example.com", "password": "P4ssw0rd-secret",';
    const body = assertSafeError(await post(path, raw), 400, ['P4ssw0rd-secret', 'leak-me']);
    assert.ok(Array.isArray(body.details), `${path}: details`);
  }
  assertSafeError(await post('/auth/login', ''), 400);
  assertSafeError(await post('/auth/login', Buffer.from([0x7b, 0xff, 0xfe, 0x7d])), 400);
});

test('a JSON value that is not an object: 400', async () => {
  for (const raw of ['[]', '"text"', '42', 'null']) assertSafeError(await post('/auth/login', raw), 400);
});

test('missing fields: 400 naming each missing field', async () => {
  const reg = assertSafeError(await post('/auth/register', '{}'), 400);
  assert.deepEqual(Object.keys(detailsOf(reg)).sort(), ['email', 'password']);
  const login = assertSafeError(await post('/auth/login', JSON.stringify({ email: uniqueEmail() })), 400);
  assert.deepEqual(Object.keys(detailsOf(login)), ['password']);
  const refresh = assertSafeError(await post('/auth/refresh', '{}'), 400);
  assert.deepEqual(Object.keys(detailsOf(refresh)), ['refresh_token']);
  const logout = assertSafeError(await post('/auth/logout', '{}'), 400);
  assert.deepEqual(Object.keys(detailsOf(logout)), ['refresh_token']);
});

test('wrong field types: 400', async () => {
  assertSafeError(await post('/auth/register', JSON.stringify({ email: 42, password: PASSWORD })), 400);
  assertSafeError(await post('/auth/login', JSON.stringify({ email: uniqueEmail(), password: ['x'] })), 400);
  assertSafeError(await post('/auth/logout', JSON.stringify({ all_sessions: 'yes' })), 400);
});

test('invalid emails: 400 on the email field, the value not echoed', async () => {
  for (const email of ['not-an-email', 'a@b', '@example.com', 'a b@example.com', 'x@example.com\r\nX-User-Id: 1', '<a@example.com>']) {
    const res = await post('/auth/register', JSON.stringify({ email, password: PASSWORD }));
    const body = assertSafeError(res, 400, [PASSWORD]);
    assert.ok('email' in detailsOf(body), `${JSON.stringify(email)} refused on email`);
  }
  const long = `${'a'.repeat(250)}@example.com`;
  assert.ok('email' in detailsOf(assertSafeError(await post('/auth/register', JSON.stringify({ email: long, password: PASSWORD })), 400)));
});

test('a short password and a password equal to the email: 400 on the password field', async () => {
  const email = uniqueEmail();
  for (const password of ['Short1!', '', email, `  ${email.toUpperCase()} `]) {
    const res = await post('/auth/register', JSON.stringify({ email, password }));
    const body = assertSafeError(res, 400, password.trim() === '' ? [] : [password]);
    assert.ok('password' in detailsOf(body), `${JSON.stringify(password)} refused on password`);
  }
  // None of those attempts created the user.
  assert.equal((await post('/auth/register', JSON.stringify({ email, password: PASSWORD }))).status, 201);
});

test('a duplicate email, differing only in case and whitespace: 409', async () => {
  const email = uniqueEmail('dup');
  await register(stack, email);
  for (const variant of [email, email.toUpperCase(), `  ${email}\t`, `${email[0]!.toUpperCase()}${email.slice(1)} `]) {
    const res = await post('/auth/register', JSON.stringify({ email: variant, password: PASSWORD }));
    assertSafeError(res, 409, [PASSWORD]);
  }
  // Login normalises the same way.
  const login = await post('/auth/login', JSON.stringify({ email: `  ${email.toUpperCase()}`, password: 'wrong-password-1' }));
  assertSafeError(login, 401, ['wrong-password-1']);
});

test('wrong password and unknown email give the same 401 body', async () => {
  const user = await register(stack);
  const wrong = assertSafeError(await post('/auth/login', JSON.stringify({ email: user.email, password: 'Nope-12345' })), 401, ['Nope-12345']);
  const unknown = assertSafeError(await post('/auth/login', JSON.stringify({ email: uniqueEmail(), password: 'Nope-12345' })), 401);
  assert.equal(wrong.error, unknown.error);
  assert.deepEqual(Object.keys(wrong).sort(), Object.keys(unknown).sort());
});

test('a non-JSON content type: 415', async () => {
  const body = JSON.stringify({ email: uniqueEmail(), password: PASSWORD });
  for (const headers of [
    { 'content-type': 'text/plain' },
    { 'content-type': 'application/x-www-form-urlencoded' },
    { 'content-type': 'application/json; charset=latin1' },
    {},
  ] as Array<Record<string, string>>) {
    assertSafeError(await post('/auth/register', body, headers), 415, [PASSWORD]);
  }
  // A JSON media type with a UTF-8 charset parameter is fine.
  const ok = await post('/auth/register', body, { 'content-type': 'application/json; charset=UTF-8' });
  assert.equal(ok.status, 201, ok.text);
});

test('a body over 64 KB: 413, declared or streamed', async () => {
  const big = JSON.stringify({ email: uniqueEmail(), password: PASSWORD, pad: 'x'.repeat(70 * 1024) });
  assertSafeError(await post('/auth/register', big), 413, [PASSWORD]);

  // Chunked (no Content-Length): the limit is counted while reading.
  const chunks = [Buffer.from('{"pad":"'), ...Array.from({ length: 20 }, () => Buffer.alloc(4096, 'y')), Buffer.from('"}')];
  const res = await request(`${stack.url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: Readable.from(chunks),
  }).catch((err: unknown) => err as Error);
  if (res instanceof Error) {
    // The gateway may close the connection before the whole upload is sent; that is a refusal too.
    assert.match(res.message, /closed|reset|socket|EPIPE/i);
  } else {
    assert.equal(res.statusCode, 413);
    const text = await res.body.text();
    assert.ok(!text.includes('yyyy'));
  }

  // Just under the limit is read (and refused only for its content).
  const under = JSON.stringify({ email: uniqueEmail(), password: PASSWORD, pad: 'x'.repeat(60 * 1024) });
  assert.equal((await post('/auth/login', under)).status, 401);
});

test('GET /auth/login: 405 with Allow: POST', async () => {
  for (const path of ['/auth/login', '/auth/register', '/auth/refresh', '/auth/logout']) {
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const res = await stack.client.request(`${stack.url}${path}`, { method });
      assertSafeError(res, 405);
      assert.equal(res.headers.allow, 'POST', `${method} ${path}`);
    }
  }
});

test('unknown /auth/ paths: 404 from the gateway, never proxied', async () => {
  const hits = stack.backend.hits;
  for (const path of ['/auth/x', '/auth/', '/auth/login/extra', '/auth/LOGIN']) {
    assertSafeError(await stack.client.request(`${stack.url}${path}`, { method: 'POST' }), 404);
  }
  assert.equal(stack.backend.hits, hits);
});

test('with HS256 the JWKS path is 404', async () => {
  assertSafeError(await stack.client.request(`${stack.url}/.well-known/jwks.json`), 404);
});

test('nothing from the requests above reached the logs as a password', () => {
  const text = JSON.stringify(stack.gw.logs);
  for (const secret of [PASSWORD, 'P4ssw0rd-secret', 'Nope-12345', 'wrong-password-1']) assert.ok(!text.includes(secret), secret);
});
