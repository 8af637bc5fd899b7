// A request with a body and an Upgrade the gateway does not tunnel (h2c, TLS/1.0, an HTTP/1.0 request's websocket)
// is served as the plain request it is, body and all, as RFC 9110 §7.8 has a server that ignores an Upgrade do.
// `curl --http2 -d x=1 http://gateway/` sends exactly that (POST, Content-Length, `Upgrade: h2c`, `Connection:
// Upgrade, HTTP2-Settings`), and so do other HTTP/2-preferring clients on cleartext; nginx and Envoy serve it as a
// plain POST. Before, the gateway answered it 400 "an Upgrade request has no body", a rule meant for WebSocket
// handshakes (node's parser hands an Upgrade's body over unparsed). Only a WebSocket Upgrade with a body is refused.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { parseHead, responseUntilClose } from '../helpers/raw.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';
import { sleep, waitFor } from '../helpers/wait.js';

/** What the upstream served: method, path, headers and the body it read, in order. */
interface Served {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}
const served: Served[] = [];
let upstream: Server;
let gw: InProcessGateway;

before(async () => {
  upstream = createServer((req, res) => {
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      served.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      res.end(`got ${body.length} bytes`);
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  gw = await startInProcess({
    load_balancing: { upstreams: [{ name: 'u', address: '127.0.0.1', port: (upstream.address() as { port: number }).port }] },
    routes: [
      { name: 'small', match: { path_prefix: '/small' }, service: 'default', max_body_size: '4B' },
      { name: 'all', match: { path_prefix: '/' }, service: 'default' },
    ],
  });
});

after(async () => {
  await gw?.close();
  upstream?.closeAllConnections();
  await new Promise((resolve) => upstream?.close(resolve));
});

/** Writes `parts` (a pause between them) and collects what comes back until the gateway closes, or `waitMs` after. */
async function exchange(parts: readonly string[], waitMs = 2_000): Promise<{ data: string; closed: boolean }> {
  const socket = netConnect(gw.gateway.port, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('connect', resolve));
  let data = '';
  let closed = false;
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (data += chunk));
  const done = new Promise<void>((resolve) => socket.once('close', () => resolve(void (closed = true))));
  try {
    for (const [i, part] of parts.entries()) {
      if (i > 0) await sleep(50);
      socket.write(part);
    }
    await Promise.race([done, sleep(waitMs)]);
  } finally {
    socket.destroy();
  }
  return { data, closed };
}

function response(data: string): { status: number; headers: Record<string, string>; body: string } {
  const split = data.indexOf('\r\n\r\n');
  assert.notEqual(split, -1, `a response head: ${JSON.stringify(data)}`);
  return { ...parseHead(data.slice(0, split)), body: data.slice(split + 4) };
}

const H2C = 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n';
const BODY = 'hello=1&world=2';
/** Bytes after the request: an HTTP/2 preface and a request that must never be served. */
const AFTER = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';

const cases: Array<[string, readonly string[], string]> = [
  ['curl --http2 -d: POST, Content-Length, Upgrade: h2c', [`POST /form HTTP/1.1\r\nHost: a.test\r\n${H2C}Content-Length: ${BODY.length}\r\n\r\n${BODY}`], BODY],
  ['the body in later packets, an HTTP/2 preface behind it', [`POST /form HTTP/1.1\r\nHost: a.test\r\n${H2C}Content-Length: ${BODY.length}\r\n\r\nhello`, BODY.slice(5) + AFTER], BODY],
  ['a chunked body', [`POST /form HTTP/1.1\r\nHost: a.test\r\n${H2C}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`, `9\r\n=1&world=\r\n0\r\n\r\n`], 'hello=1&world='],
  ['Upgrade: TLS/1.0 (RFC 2817)', [`PUT /form HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: TLS/1.0\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`], BODY],
  ['an HTTP/1.0 request naming websocket', [`POST /form HTTP/1.0\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`], BODY],
];

for (const [name, parts, body] of cases) {
  test(`${name}: served as a plain request with its body`, async () => {
    const mark = served.length;
    const { data, closed } = await exchange(parts);
    const res = response(data);
    assert.equal(res.status, 200, data);
    assert.equal(res.body, `got ${body.length} bytes`);
    assert.equal(closed, true, 'the connection is closed after the answer, as for any Upgrade not switched');
    const got = served.slice(mark);
    assert.equal(got.length, 1, 'one request upstream, nothing behind it');
    assert.equal(got[0]!.url, '/form');
    assert.equal(got[0]!.body, body);
    assert.equal(got[0]!.headers.upgrade, undefined, 'the Upgrade is not passed on');
    assert.equal(got[0]!.headers['http2-settings'], undefined, 'nor the header its Connection names');
    assert.equal(got[0]!.headers['x-request-id'], res.headers['x-request-id']);
    const lines = gw.logs.filter((l) => l.msg === 'Request Completed' && l.request_id === res.headers['x-request-id']);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.status, 200);
  });
}

test('a header the Connection field names is still removed; a WebSocket Upgrade with a body is still refused', async () => {
  const mark = served.length;
  const { data } = await exchange([`POST /form HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade, X-Hop\r\nX-Hop: secret\r\nUpgrade: h2c\r\nContent-Length: 2\r\n\r\nok`]);
  assert.equal(response(data).status, 200, data);
  assert.equal(served.length, mark + 1);
  assert.equal(served[mark]!.headers['x-hop'], undefined);
  assert.equal(served[mark]!.body, 'ok');
  const ws = await exchange([`POST /ws HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 2\r\n\r\nok`]);
  assert.equal(response(ws.data).status, 400, ws.data);
  assert.equal(served.length, mark + 1, 'nothing upstream');
});

test('Expect: 100-continue on an h2c POST: 100 Continue, then the body is read and served', async () => {
  const mark = served.length;
  const socket = netConnect(gw.gateway.port, '127.0.0.1');
  socket.on('error', () => undefined);
  try {
    await new Promise((resolve) => socket.once('connect', resolve));
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (data += chunk));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write(`POST /form HTTP/1.1\r\nHost: a.test\r\n${H2C}Expect: 100-continue\r\nContent-Length: ${BODY.length}\r\n\r\n`);
    const deadline = Date.now() + 3_000;
    while (!data.includes('\r\n\r\n') && Date.now() < deadline) await sleep(10);
    assert.match(data, /^HTTP\/1\.1 100 Continue\r\n\r\n$/, data);
    socket.write(BODY);
    await closed;
    assert.equal(response(data.slice(data.indexOf('\r\n\r\n') + 4)).status, 200, data);
    assert.equal(served.slice(mark).map((s) => s.body).join('|'), BODY);
  } finally {
    socket.destroy();
  }
});

test('the route\'s phases apply to the body (max_body_size: 413); the connection counts as one, and is let go of', async () => {
  const mark = served.length;
  const { data, closed } = await exchange([`POST /small HTTP/1.1\r\nHost: a.test\r\n${H2C}Content-Length: ${BODY.length}\r\n\r\n${BODY}`]);
  assert.equal(response(data).status, 413, data);
  assert.equal(closed, true);
  assert.equal(served.length, mark);
  const connections = async (): Promise<number> => ((await (await fetch(`${gw.adminUrl}/api/status`)).json()) as { connections: number }).connections;
  await waitFor(async () => (await connections()) === 0, 'no client connection left open');
});

for (const http2 of [true, false]) {
  test(`over TLS (http2: ${http2}, ALPN http/1.1): an h2c POST is served with its body`, async () => {
    const pki = pkiDir();
    let tlsGw: InProcessGateway | undefined;
    try {
      const ca = createTestCa('h2c body CA', pki.path);
      const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
      tlsGw = await startInProcess({
        server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile, http2 } },
        load_balancing: { upstreams: [{ name: 'u', address: '127.0.0.1', port: (upstream.address() as { port: number }).port }] },
      });
      const socket = tlsConnect({ port: tlsGw.gateway.port, host: '127.0.0.1', ca: ca.ca, servername: 'a.test', ALPNProtocols: ['http/1.1'] });
      socket.on('error', () => undefined);
      await new Promise((resolve) => socket.once('secureConnect', resolve));
      const mark = served.length;
      socket.write(`POST /form HTTP/1.1\r\nHost: a.test\r\n${H2C}Content-Length: ${BODY.length}\r\n\r\n${BODY}`);
      const res = await responseUntilClose(socket);
      assert.equal(res.status, 200, res.body);
      assert.equal(res.body, `got ${BODY.length} bytes`);
      assert.equal(served.slice(mark).map((s) => s.body).join('|'), BODY);
    } finally {
      await tlsGw?.close();
      pki.remove();
    }
  });
}

test('behind a request still being answered (pipelined): the connection is closed, as for a WebSocket Upgrade there', async () => {
  const mark = served.length;
  const first = 'GET /first HTTP/1.1\r\nHost: a.test\r\n\r\n';
  const { data, closed } = await exchange([first + `POST /form HTTP/1.1\r\nHost: a.test\r\n${H2C}Content-Length: ${BODY.length}\r\n\r\n${BODY}`], 4_000);
  assert.equal(closed, true, `the connection is closed, not left hanging: ${JSON.stringify(data)}`);
  assert.ok(served.slice(mark).every((s) => s.url !== '/form'), 'the pipelined request is never served');
  const health = await exchange(['GET /health HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n']);
  assert.equal(response(health.data).status, 200, 'the gateway goes on serving');
});

test('after an earlier request on the connection has been answered: served', async () => {
  const mark = served.length;
  const socket = netConnect(gw.gateway.port, '127.0.0.1');
  socket.on('error', () => undefined);
  try {
    await new Promise((resolve) => socket.once('connect', resolve));
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (data += chunk));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write('GET /first HTTP/1.1\r\nHost: a.test\r\n\r\n');
    await waitFor(() => data.includes('got 0 bytes'), 'the first answer');
    socket.write(`POST /form HTTP/1.1\r\nHost: a.test\r\n${H2C}Content-Length: ${BODY.length}\r\n\r\n${BODY}`);
    await closed;
    assert.match(data, new RegExp(`got ${BODY.length} bytes$`));
    assert.deepEqual(served.slice(mark).map((s) => `${s.url} ${s.body}`), ['/first ', `/form ${BODY}`]);
  } finally {
    socket.destroy();
  }
});
