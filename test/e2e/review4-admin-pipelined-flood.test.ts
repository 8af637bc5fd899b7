// The admin port answered every request a client pipelined, however many, and held every answer for a client that
// never read them. node parses a whole read (64 KiB: some 2,500 short requests) before it can stop reading, and the
// admin listener ran each one at once: `GET /` (the dashboard page, open without the token) pipelined 10,000 times on
// 20 connections that read nothing grew the gateway by hundreds of MB in seconds, 4 KB of page per request, until the
// kernel killed it. Now, as on the proxy port (listeners/pipelining.ts), one request of a connection runs at a time,
// the next when its answer has the connection, and a connection with more than 128 waiting is closed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startAuthStack, type AuthStack } from '../helpers/auth-gateway.js';
import { ADMIN_TOKEN } from '../helpers/identity.js';
import { pipelineUnread } from '../helpers/raw.js';

let stack: AuthStack;
let adminPort: number;

before(async () => {
  stack = await startAuthStack({ admin: { token: ADMIN_TOKEN } });
  adminPort = Number(new URL(stack.gw.adminUrl!).port);
});
after(async () => {
  await stack?.close();
});

test('a connection pipelining thousands of requests without reading is closed, not answered in full', async () => {
  const result = await pipelineUnread(adminPort, 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'.repeat(3_000), 300);
  assert.ok(result.closed, 'the connection is closed');
  assert.ok(result.responses <= 130, `${result.responses} answers to 3,000 pipelined requests`);
});

test('authenticated requests pipelined a few at a time are all answered, in order', async () => {
  const request = `GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\n\r\n`;
  const result = await pipelineUnread(adminPort, request.repeat(20) + 'GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n', 100);
  assert.equal(result.responses, 21);
  assert.ok(result.closed);
});
