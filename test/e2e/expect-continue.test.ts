// Expect: 100-continue: the gateway sends 100 Continue only when it is about to read the body (a request dispatched
// upstream, an /auth/* body read), never before a refusal (413 over max_body_size, 401, 429, 404, 415), so a refused
// client uploads nothing. Before, node sent the 100 itself as soon as the head was parsed, before any phase ran.
// HTTP/1.1 on raw sockets (what came first on the wire), HTTP/2 with node's client ('continue' event).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClientHttp2Session, IncomingHttpHeaders } from 'node:http2';
import type { Socket } from 'node:net';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { h2connect } from '../helpers/h2.js';
import { openSocket, parseHead } from '../helpers/raw.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';
import { sleep, waitFor } from '../helpers/wait.js';

const pki = pkiDir();
let ca: TestCa;
let backend: TestBackend;
let plain: InProcessGateway;
let secure: InProcessGateway;

function config(): Record<string, unknown> {
  return {
    services: { api: { upstreams: [{ name: 'api', address: '127.0.0.1', port: backend.port }] } },
    jwt: { secret: TEST_SECRET },
    routes: [
      { name: 'small', match: { path_prefix: '/small' }, service: 'api', auth: 'off', max_body_size: '1KB' },
      { name: 'private', match: { path_prefix: '/private' }, service: 'api' },
      { name: 'strict', match: { path_prefix: '/strict' }, service: 'api', auth: 'off', rate_limit: 'strict' },
      { name: 'open', match: { path_prefix: '/upload' }, service: 'api', auth: 'off' },
    ],
    middleware: {
      auth: { enabled: true, argon2: FAST_ARGON2 },
      rate_limit: { enabled: false, policies: { strict: { requests_per_minute: 1, burst_size: 1 } } },
    },
  };
}

before(async () => {
  ca = createTestCa('Expect CA', pki.path);
  const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
  backend = await startBackend('continue-backend');
  plain = await startInProcess(config());
  secure = await startInProcess({ ...config(), server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile } } });
});

after(async () => {
  await plain?.close();
  await secure?.close();
  await backend?.stop();
  pki.remove();
});

/** A raw HTTP/1.1 connection: what arrives, and whether the gateway has closed it. */
interface Wire {
  readonly socket: Socket;
  text(): string;
  readonly ended: () => boolean;
}

async function wire(): Promise<Wire> {
  const socket = await openSocket(plain.gateway.port);
  let data = '';
  let ended = false;
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (data += d));
  socket.on('end', () => (ended = true));
  socket.on('close', () => (ended = true));
  socket.on('error', () => undefined);
  return { socket, text: () => data, ended: () => ended };
}

/** The first response head on `w` after `from` characters: its status and headers, and where it ends. */
async function nextHead(w: Wire, from = 0): Promise<{ status: number; headers: Record<string, string>; end: number }> {
  await waitFor(() => w.text().indexOf('\r\n\r\n', from) !== -1, 'a response head', 5_000);
  const end = w.text().indexOf('\r\n\r\n', from) + 4;
  return { ...parseHead(w.text().slice(from, end - 4)), end };
}

const head = (method: string, path: string, headers: Record<string, string | number>) =>
  `${method} ${path} HTTP/1.1\r\nHost: a.test\r\n${Object.entries(headers)
    .map(([n, v]) => `${n}: ${v}\r\n`)
    .join('')}\r\n`;

describe('HTTP/1.1', () => {
  const refusals: Array<[string, string, Record<string, string | number>, number]> = [
    ['413 over max_body_size', '/small/x', { 'content-length': 5_000 }, 413],
    ['401 without a token', '/private/x', { 'content-length': 10 }, 401],
    ['404 without a route', '/nowhere', { 'content-length': 10 }, 404],
    ['415 on an /auth/* body that is not JSON', '/auth/login', { 'content-length': 10, 'content-type': 'text/plain' }, 415],
  ];
  for (const [name, path, headers, status] of refusals) {
    test(`${name}: the final status without 100 Continue, and the connection is closed`, async () => {
      const w = await wire();
      try {
        w.socket.write(head('POST', path, { ...headers, expect: '100-continue' }));
        const first = await nextHead(w);
        assert.equal(first.status, status, `the first answer was ${JSON.stringify(w.text().slice(0, 40))}`);
        assert.equal(first.headers.connection, 'close');
        // The body that may or may not follow can never be read as a request: the gateway closes.
        await waitFor(w.ended, 'the gateway to close the connection', 2_000);
      } finally {
        w.socket.destroy();
      }
    });
  }

  test('429 from the rate limit: no 100 Continue, while the request let through got its 100', async () => {
    const w = await wire();
    try {
      w.socket.write(head('POST', '/strict/a', { 'content-length': 3, expect: '100-continue' }));
      const first = await nextHead(w);
      assert.equal(first.status, 100);
      w.socket.write('abc');
      const ok = await nextHead(w, first.end);
      assert.equal(ok.status, 200);
      await sleep(100);
      const next = await wire();
      try {
        next.socket.write(head('POST', '/strict/b', { 'content-length': 3, expect: '100-continue' }));
        assert.equal((await nextHead(next)).status, 429);
      } finally {
        next.socket.destroy();
      }
    } finally {
      w.socket.destroy();
    }
  });

  test('a proxied request: 100 Continue, then the body goes upstream (without Expect), and the connection stays usable', async () => {
    const w = await wire();
    try {
      w.socket.write(head('POST', '/upload/echo', { 'content-length': 10, expect: '100-continue' }));
      const first = await nextHead(w);
      assert.equal(first.status, 100);
      w.socket.write('0123456789');
      const echo = await nextHead(w, first.end);
      assert.equal(echo.status, 200);
      assert.notEqual(echo.headers.connection, 'close');
      await waitFor(() => w.text().slice(echo.end).endsWith('}}'), 'the echo body');
      const seen = (JSON.parse(w.text().slice(echo.end)) as { headers: Record<string, string> }).headers;
      assert.equal(seen['content-length'], '10');
      assert.equal(seen.expect, undefined, 'Expect is not forwarded');
      // The same connection carries the next one, whose body the upstream reads whole.
      const mark = w.text().length;
      w.socket.write(head('POST', '/upload', { 'content-length': 10, expect: '100-continue' }));
      const again = await nextHead(w, mark);
      assert.equal(again.status, 100);
      w.socket.write('0123456789');
      assert.equal((await nextHead(w, again.end)).status, 200);
      await waitFor(() => w.text().includes('"bytes":10'), 'the upstream to have read the 10 bytes');
    } finally {
      w.socket.destroy();
    }
  });

  test('a request that declares no body (GET, or Content-Length: 0) keeps its connection, answered or refused', async () => {
    const w = await wire();
    try {
      let mark = 0;
      for (const [method, path, headers, status] of [
        ['GET', '/upload/a', {}, 200],
        ['POST', '/upload/b', { 'content-length': 0 }, 200],
        ['GET', '/private/c', {}, 401],
        ['GET', '/upload/d', {}, 200],
      ] as const) {
        w.socket.write(head(method, path, { ...headers, expect: '100-continue' }));
        let answer = await nextHead(w, mark);
        if (answer.status === 100) answer = await nextHead(w, answer.end);
        assert.equal(answer.status, status, `${method} ${path}`);
        assert.notEqual(answer.headers.connection, 'close', `${method} ${path} keeps the connection`);
        const length = Number(answer.headers['content-length'] ?? 0);
        await waitFor(() => w.text().length >= answer.end + length, 'the body');
        mark = answer.end + length;
      }
      assert.equal(w.ended(), false);
    } finally {
      w.socket.destroy();
    }
  });

  test('an /auth/* body is asked for once its checks pass', async () => {
    const w = await wire();
    try {
      const body = JSON.stringify({ email: 'nobody@example.com', password: 'wrong password here' });
      w.socket.write(head('POST', '/auth/login', { 'content-length': body.length, 'content-type': 'application/json', expect: '100-continue' }));
      const first = await nextHead(w);
      assert.equal(first.status, 100);
      w.socket.write(body);
      assert.equal((await nextHead(w, first.end)).status, 401);
    } finally {
      w.socket.destroy();
    }
  });

  test('a refused body sent anyway is never parsed as a request', async () => {
    const w = await wire();
    const hits = backend.hits;
    try {
      const smuggled = head('GET', '/upload/smuggled', {});
      w.socket.write(head('POST', '/small/x', { 'content-length': 2_000, expect: '100-continue' }));
      assert.equal((await nextHead(w)).status, 413);
      // A client that did not wait: its body, which reads like a request, arrives after the answer.
      w.socket.write(smuggled + 'x'.repeat(2_000 - smuggled.length));
      await waitFor(w.ended, 'the gateway to close the connection', 2_000);
      assert.equal(w.text().match(/HTTP\/1\.1 /g)?.length, 1, 'one answer only');
      assert.equal(backend.hits, hits, 'nothing reached the upstream');
    } finally {
      w.socket.destroy();
    }
  });
});

describe('HTTP/2', () => {
  let session: ClientHttp2Session;

  before(async () => {
    session = await h2connect(secure.gateway.port, ca.ca);
  });
  after(() => session?.close());

  /** A POST with Expect: 100-continue whose body is sent only on 100 Continue. */
  function post(path: string, body: Buffer): Promise<{ continued: boolean; status: number; text: string; rstCode: number | undefined }> {
    return new Promise((resolve, reject) => {
      const stream = session.request(
        { ':method': 'POST', ':path': path, 'content-length': String(body.length), expect: '100-continue' },
        { endStream: false },
      );
      let continued = false;
      let status = 0;
      let text = '';
      stream.on('continue', () => {
        continued = true;
        stream.end(body);
      });
      stream.on('response', (h: IncomingHttpHeaders) => (status = Number(h[':status'])));
      stream.setEncoding('utf8');
      stream.on('data', (d: string) => (text += d));
      stream.on('error', () => undefined);
      const timer = setTimeout(() => reject(new Error(`stream ${path} still open (status ${status}, continued ${continued})`)), 3_000);
      stream.on('close', () => {
        clearTimeout(timer);
        resolve({ continued, status, text, rstCode: stream.rstCode });
      });
    });
  }

  test('413 over max_body_size without 100 Continue; the stream is closed without its body', async () => {
    const res = await post('/small/x', Buffer.alloc(5_000, 'x'));
    assert.equal(res.continued, false);
    assert.equal(res.status, 413);
  });

  test('401 and 404 without 100 Continue', async () => {
    for (const [path, status] of [['/private/x', 401], ['/nowhere', 404]] as const) {
      const res = await post(path, Buffer.from('0123456789'));
      assert.equal(res.continued, false, path);
      assert.equal(res.status, status, path);
    }
  });

  test('a proxied request gets its 100 Continue and the body reaches the upstream', async () => {
    const res = await post('/upload', Buffer.from('0123456789'));
    assert.equal(res.continued, true);
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.text).bytes, 10);
  });
});
