// Observability review (4), the family of server.proxy_by: a config value the gateway writes into a header must be
// one HTTP can carry. What was wrong: middleware.auth.user_id_header, user_email_header, consumer_id_header and
// consumer_name_header took any string. "X User" (a space) passed check-config and start-up, and then every
// authenticated request was answered 400 request_not_forwardable, blaming the client, since the upstream request
// carrying that header name could not be sent. What is right now: a name that is not an HTTP token is a config
// error naming the key; a valid one still reaches the upstream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { configErrorOf } from '../helpers/config-error.js';
import { startInProcess } from '../helpers/gateway.js';

const BASE = `jwt:\n  secret: ${'k'.repeat(40)}\nload_balancing:\n  upstreams: [{ name: a, address: 127.0.0.1, port: 3000 }]\n`;

test('an identity header name that is not an HTTP token is a config error, naming the key', () => {
  for (const key of ['user_id_header', 'user_email_header', 'consumer_id_header', 'consumer_name_header']) {
    for (const value of ['"X User"', '"X-User:"', '"X-User\\n"', '"X-Üser"']) {
      const message = configErrorOf(`${BASE}middleware:\n  auth:\n    enabled: true\n    ${key}: ${value}\n`);
      assert.match(message, new RegExp(`middleware\\.auth\\.${key}`), `${key}: ${value}: ${message}`);
    }
  }
});

test('a valid custom user_id_header reaches the upstream on an authenticated request', async () => {
  let seen: IncomingHttpHeaders = {};
  const upstream = createServer((req, res) => {
    seen = req.headers;
    res.end('ok');
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const port = (upstream.address() as AddressInfo).port;
  const gw = await startInProcess({
    jwt: { secret: 'k'.repeat(40) },
    middleware: { auth: { enabled: true, user_id_header: 'X-Caller_Id.v2', argon2: { memory_kib: 1024, iterations: 1 } } },
    load_balancing: { upstreams: [{ name: 'a', address: '127.0.0.1', port }] },
  });
  try {
    const reg = await fetch(`${gw.url}/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'header-name@example.com', password: 'Correct-horse-9' }),
    });
    assert.equal(reg.status, 201);
    const { access_token, user_id } = (await reg.json()) as { access_token: string; user_id: string };
    const res = await fetch(`${gw.url}/x`, { headers: { authorization: `Bearer ${access_token}` } });
    assert.equal(res.status, 200, await res.text());
    assert.equal(seen['x-caller_id.v2'], String(user_id));
  } finally {
    await gw.close();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  }
});
