// The admin listener's request bounds hold: a request head trickled a header line a second is cut at the 10 s header
// timeout, and a body trickled a byte a second (with a Content-Length, or chunked) at the 30 s request timeout. node
// enforces both only when its connection check runs, every 30 s by default: a slow client held an admin connection
// (and the users API's body read behind it) for 30 s with a 10 s header bound and for 60 s with a 30 s request bound.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_TOKEN } from '../helpers/identity.js';
import { startAuthStack, type AuthStack } from '../helpers/auth-gateway.js';
import { openSocket } from '../helpers/raw.js';

let stack: AuthStack;
let adminPort: number;

before(async () => {
  stack = await startAuthStack({ admin: { token: ADMIN_TOKEN } });
  adminPort = Number(new URL(stack.gw.adminUrl!).port);
});

after(async () => {
  await stack?.close();
});

/** Sends `head`, then `drip` once a second until the server closes; resolves with the seconds it took and its answer. */
async function trickle(head: string, drip: string): Promise<{ seconds: number; answer: string }> {
  const socket = await openSocket(adminPort);
  const started = Date.now();
  let answer = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (answer += d));
  socket.on('error', () => undefined);
  socket.write(head);
  const timer = setInterval(() => {
    if (!socket.destroyed && socket.writable) socket.write(drip);
  }, 1_000);
  const giveUp = setTimeout(() => socket.destroy(), 75_000);
  try {
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
  } finally {
    clearInterval(timer);
    clearTimeout(giveUp);
  }
  return { seconds: (Date.now() - started) / 1000, answer };
}

const auth = `Authorization: Bearer ${ADMIN_TOKEN}\r\n`;

test('slow heads and slow bodies on the admin port are cut near their bounds, not up to 30 s later', { timeout: 90_000 }, async () => {
  const [head, lengthBody, chunkedBody, keyBody] = await Promise.all([
    trickle('GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n', 'X-Slow: 1\r\n'),
    trickle(`POST /admin/users HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}Content-Type: application/json\r\nContent-Length: 10000\r\n\r\n`, ' '),
    trickle(`POST /admin/users HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`, '1\r\n \r\n'),
    trickle(`POST /admin/api-keys HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}Content-Type: application/json\r\nContent-Length: 10000\r\n\r\n`, ' '),
  ]);
  assert.ok(head.seconds >= 9 && head.seconds < 14, `head trickle cut after ${head.seconds} s (header bound 10 s)`);
  for (const [what, r] of [
    ['Content-Length body', lengthBody],
    ['chunked body', chunkedBody],
    ['API key body', keyBody],
  ] as const) {
    assert.ok(r.seconds >= 29 && r.seconds < 36, `${what} trickle cut after ${r.seconds} s (request bound 30 s)`);
    assert.match(r.answer, /^HTTP\/1\.1 408 /, `${what}: ${JSON.stringify(r.answer.slice(0, 80))}`);
  }
  // The listener still serves.
  const res = await fetch(`${stack.gw.adminUrl}/api/status`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  assert.equal(res.status, 200);
});
