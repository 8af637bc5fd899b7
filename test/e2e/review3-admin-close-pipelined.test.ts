// Bytes after an admin request that ends its connection (the proxy port's fix, 6dc4349, carried to the admin port).
// The admin listener had no 'clientError' handler, so node's default ran when llhttp refused bytes that followed a
// request with `Connection: close` (or an HTTP/1.0 one): it wrote `400 Bad Request` on the socket and destroyed it,
// while that request's handler was running. A POST /admin/users carried out (the user created) answered 400, and a
// GET answered 400 instead of its body. RFC 9112 §9.6: answer that request, then close, process nothing after it.
// Malformed heads still get node's own answers, and a bad request pipelined behind one being answered closes the
// connection rather than writing a 400 ahead of that answer.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_TOKEN, adminApi } from '../helpers/identity.js';
import { startAuthStack, uniqueEmail, type AuthStack } from '../helpers/auth-gateway.js';
import { openSocket } from '../helpers/raw.js';

let stack: AuthStack;
let admin: ReturnType<typeof adminApi>;
let adminPort: number;

before(async () => {
  stack = await startAuthStack({ admin: { token: ADMIN_TOKEN } });
  adminPort = Number(new URL(stack.gw.adminUrl!).port);
  admin = adminApi(stack.client, stack.gw.adminUrl!);
});

after(async () => {
  await stack?.close();
});

/** Writes `parts` to the admin port (`gapMs` apart) and returns everything it sends until it closes. */
async function exchange(parts: readonly string[], gapMs = 0): Promise<string> {
  const socket = await openSocket(adminPort);
  socket.on('error', () => undefined);
  let raw = '';
  socket.on('data', (chunk: Buffer) => (raw += chunk.toString('latin1')));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  for (const part of parts) {
    if (!socket.destroyed) socket.write(part);
    if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
  }
  const timer = setTimeout(() => socket.destroy(), 5_000);
  await closed;
  clearTimeout(timer);
  return raw;
}

const statusOf = (raw: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);

test('an action pipelined with more bytes behind its Connection: close is answered with its own result', async () => {
  for (const [connection, trailer] of [
    ['Connection: close\r\n', 'GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'],
    ['Connection: keep-alive, close\r\n', 'junk\r\n\r\n'],
  ] as const) {
    const email = uniqueEmail('close');
    const body = JSON.stringify({ email, password: 'correct horse battery staple' });
    const raw = await exchange([
      `POST /admin/users HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\n${connection}` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}${trailer}`,
    ]);
    assert.equal(statusOf(raw), 201, JSON.stringify(raw));
    assert.ok(raw.includes(email), 'the created user is in the answer');
    assert.equal((raw.match(/HTTP\/1\.1 /g) ?? []).length, 1, 'one response only: nothing after the last request is served');
    const listed = await admin.get(`/admin/users?email=${encodeURIComponent(email)}`);
    assert.equal(listed.status, 200);
  }
});

test('an HTTP/1.0 GET with stray bytes after it, sent at once or while it is answered, gets its whole answer', async () => {
  const atOnce = await exchange([`GET /metrics HTTP/1.0\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\n\r\nGET /ready HTTP/1.1\r\n\r\n`]);
  assert.equal(statusOf(atOnce), 200, JSON.stringify(atOnce.slice(0, 200)));
  assert.match(atOnce, /portcullis_/);
  const later = await exchange([`GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nConnection: close\r\n\r\n`, 'x', 'y'], 20);
  assert.equal(statusOf(later), 200, JSON.stringify(later.slice(0, 200)));
  assert.match(later, /portcullis_/);
});

test('malformed heads still get node\'s answers, and a bad request behind a good one closes the connection unanswered', async () => {
  assert.equal(statusOf(await exchange(['GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n'])), 400);
  assert.equal(statusOf(await exchange([`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`])), 431);
  const behind = await exchange([`GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\n\r\nBAD LINE\r\n\r\n`]);
  assert.ok(!behind.startsWith('HTTP/1.1 400'), 'no 400 written ahead of the first answer');
  assert.equal((behind.match(/HTTP\/1\.1 400/g) ?? []).length, 0);
});
