// An /auth/* request whose body stalls is cut after server.timeouts.request_body_chunk, as a forwarded body is: 408
// request_body_timeout and the connection closed, instead of being held until timeouts.request (5 min by default,
// never with 0).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, responseUntilClose } from '../helpers/raw.js';
import type { IncomingHttpHeaders } from 'node:http2';
import { h2connect } from '../helpers/h2.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';

const CHUNK_MS = 600;

describe('a stalled /auth/* body', () => {
  let backend: TestBackend;
  let gw: InProcessGateway | undefined;
  before(async () => {
    backend = await startBackend('echo');
    gw = await startInProcess({
      server: { timeouts: { request_body_chunk: `${CHUNK_MS}ms`, request: 0 } },
      load_balancing: { upstreams: upstreams([backend.port]) },
      jwt: { secret: TEST_SECRET },
      middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { auth: { enabled: false } } },
      admin: { enabled: false },
    });
  });
  after(async () => {
    await gw?.close();
    await backend.stop();
  });

  for (const path of ['/auth/login', '/auth/register', '/auth/refresh', '/auth/logout']) {
    test(`${path}: 408 request_body_timeout after request_body_chunk, and the connection closed`, async () => {
      const socket = await openSocket(gw!.gateway.port);
      const started = performance.now();
      socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"email":`);
      // responseUntilClose resolves only once the gateway has closed the connection.
      const res = await responseUntilClose(socket, CHUNK_MS + 5_000);
      const elapsed = performance.now() - started;
      assert.equal(res.status, 408, res.body);
      assert.equal(JSON.parse(res.body).code, 'request_body_timeout');
      assert.ok(elapsed >= CHUNK_MS - 50, `answered after ${Math.round(elapsed)} ms, before the bound`);
    });
  }

  test('a body that keeps coming, slower than the whole bound but never silent for it, is read', async () => {
    const socket = await openSocket(gw!.gateway.port);
    const body = JSON.stringify({ email: 'slow@example.com', password: 'whatever-1' });
    socket.write(`POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
    const pieces = [body.slice(0, 10), body.slice(10, 20), body.slice(20)];
    const answer = responseUntilClose(socket, 10_000);
    for (const piece of pieces) {
      await new Promise((r) => setTimeout(r, CHUNK_MS / 2));
      socket.write(piece);
    }
    const res = await answer;
    assert.equal(res.status, 401, res.body);
  });
});

describe('a stalled /auth/* body over HTTP/2', () => {
  const pki = pkiDir();
  let backend: TestBackend | undefined;
  let gw: InProcessGateway | undefined;
  let ca: TestCa;
  before(async () => {
    ca = createTestCa('Auth Body Stall CA', pki.path);
    const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
    backend = await startBackend('echo');
    gw = await startInProcess({
      server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile }, timeouts: { request_body_chunk: `${CHUNK_MS}ms`, request: 0 } },
      load_balancing: { upstreams: upstreams([backend.port]) },
      jwt: { secret: TEST_SECRET },
      middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { auth: { enabled: false } } },
      admin: { enabled: false },
    });
  });
  after(async () => {
    await gw?.close();
    await backend?.stop();
    pki.remove();
  });

  test('/auth/login: 408 request_body_timeout, then the stream is closed', async () => {
    const session = await h2connect(gw!.gateway.port, ca.ca);
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/auth/login', 'content-type': 'application/json', 'content-length': '100' });
      stream.write('{"email":');
      const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
      const head = await Promise.race([
        new Promise<IncomingHttpHeaders>((resolve) => stream.once('response', resolve)),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer within 5 s')), CHUNK_MS + 5_000).unref()),
      ]);
      let body = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (body += chunk));
      assert.equal(head[':status'], 408);
      await Promise.race([closed, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('stream not closed')), 5_000).unref())]);
      assert.equal(JSON.parse(body).code, 'request_body_timeout');
    } finally {
      session.destroy();
    }
  });
});
