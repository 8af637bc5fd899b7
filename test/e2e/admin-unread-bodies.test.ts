// The admin listener reads a request body only when a handler wants it, as the proxy listener does: a refused
// request (wrong or missing token, a non-loopback Host, an unknown path, an endpoint that takes no body) is answered
// without reading its upload, and a client that sent Expect: 100-continue gets its 100 only once the body is about
// to be read. Before, node sent the 100 as soon as the head was parsed and the refusal then read the whole upload to
// throw it away: any client that could reach the admin port could make it read gigabytes, token or not.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { ADMIN_TOKEN } from '../helpers/identity.js';
import { startAuthStack, uniqueEmail, type AuthStack } from '../helpers/auth-gateway.js';
import { openSocket, parseHead } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/wait.js';

let stack: AuthStack;
let adminPort: number;

before(async () => {
  // rateLimit {}: the configuration's own defaults, auth protections included.
  stack = await startAuthStack({ admin: { token: ADMIN_TOKEN }, rateLimit: {} });
  adminPort = Number(new URL(stack.gw.adminUrl!).port);
});

after(async () => {
  await stack?.close();
});

interface Wire {
  readonly socket: Socket;
  text(): string;
  ended(): boolean;
}

async function wire(): Promise<Wire> {
  const socket = await openSocket(adminPort);
  let data = '';
  let ended = false;
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (data += d));
  socket.on('close', () => (ended = true));
  socket.on('error', () => undefined);
  return { socket, text: () => data, ended: () => ended };
}

async function firstHead(w: Wire): Promise<{ status: number; headers: Record<string, string>; end: number }> {
  await waitFor(() => w.text().includes('\r\n\r\n'), 'a response head', 5_000);
  const end = w.text().indexOf('\r\n\r\n') + 4;
  return { ...parseHead(w.text().slice(0, end - 4)), end };
}

const BIG = 10 * 1024 * 1024 * 1024; // a declared 10 GB upload

describe('answered without reading the body', () => {
  const refusals: readonly { what: string; head: string; status: number }[] = [
    { what: 'no token', head: 'POST /admin/users HTTP/1.1\r\nHost: 127.0.0.1\r\n', status: 401 },
    { what: 'a wrong token', head: `POST /admin/users HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer wrong\r\n`, status: 401 },
    { what: 'an unknown admin path', head: `POST /admin/nope HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\n`, status: 404 },
    { what: 'a method the endpoint does not take', head: `PUT /admin/users HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\n`, status: 405 },
    { what: 'an endpoint that takes no body', head: `POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\n`, status: 405 },    { what: 'an API endpoint that takes no body, answered 200', head: `GET /admin/users HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\n`, status: 200 },
    { what: 'an API action that takes no body, answered 404', head: `POST /admin/users/00000000-0000-4000-8000-000000000000/disable HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\n`, status: 404 },
  ];

  for (const { what, head, status } of refusals) {
    test(`${what}: Expect 100-continue gets the ${status} alone, no 100, and the connection closes`, async () => {
      const w = await wire();
      w.socket.write(`${head}Content-Type: application/json\r\nContent-Length: ${BIG}\r\nExpect: 100-continue\r\n\r\n`);
      const res = await firstHead(w);
      assert.equal(res.status, status, w.text());
      assert.ok(!w.text().startsWith('HTTP/1.1 100'), 'no 100 Continue before the refusal');
      assert.equal(res.headers.connection, 'close');
      await waitFor(() => w.ended(), 'the connection closed', 5_000);
    });

    test(`${what}: an upload sent without Expect is not read on; the connection closes after the ${status}`, async () => {
      const w = await wire();
      w.socket.write(`${head}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`);
      const chunk = `10000\r\n${'x'.repeat(0x10000)}\r\n`;
      // Keep uploading: the gateway must answer and close rather than read on.
      let sent = 0;
      const pump = setInterval(() => {
        if (!w.ended() && sent < 2_000) {
          sent++;
          w.socket.write(chunk);
        }
      }, 1);
      pump.unref();
      try {
        const res = await firstHead(w);
        assert.equal(res.status, status, w.text());
        assert.equal(res.headers.connection, 'close');
        await waitFor(() => w.ended(), 'the connection closed', 5_000);
        assert.ok(sent < 2_000, 'the gateway closed the connection before the client had sent 128 MB');
      } finally {
        clearInterval(pump);
        w.socket.destroy();
      }
    });
  }
});

describe('a body the handler reads', () => {
  test('with the token, Expect 100-continue gets its 100, then the answer; the connection stays open', async () => {
    const w = await wire();
    const body = JSON.stringify({ email: uniqueEmail(), password: 'correct horse battery staple' });
    w.socket.write(
      `POST /admin/users HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\n\r\n`,
    );
    await waitFor(() => w.text().startsWith('HTTP/1.1 100 Continue\r\n\r\n'), 'a 100 Continue', 5_000);
    w.socket.write(body);
    await waitFor(() => w.text().indexOf('\r\n\r\n', 25) !== -1, 'the final answer', 10_000);
    const final = parseHead(w.text().slice(25, w.text().indexOf('\r\n\r\n', 25)));
    assert.equal(final.status, 201, w.text());
    assert.notEqual(final.headers.connection, 'close');
    await sleep(100);
    assert.equal(w.ended(), false, 'the connection stays usable');
    w.socket.destroy();
  });

  test('a refusal of a request without a body keeps the connection (a dashboard polling with a stale token)', async () => {
    const w = await wire();
    w.socket.write('GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer stale\r\n\r\n');
    const res = await firstHead(w);
    assert.equal(res.status, 401);
    assert.notEqual(res.headers.connection, 'close');
    await sleep(100);
    assert.equal(w.ended(), false);
    w.socket.destroy();
  });
});
