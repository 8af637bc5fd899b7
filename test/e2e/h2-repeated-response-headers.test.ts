// An upstream response repeating a single-value header (here an HTTP/1 upstream's two ETag lines, or two
// X-Content-Type-Options) reaches an HTTP/2 client as one field holding the distinct values joined with ", ", as a
// browser reads the two lines over HTTP/1.1, whether the route's response hooks are synchronous or a plugin's async
// one. Node's HTTP/2 layer refuses to send such a header twice: the response was first an unhandled rejection that
// ended the process (async hooks), then a 502 for HTTP/2 clients only, while HTTP/1.1 clients got it whole.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';
import { h2connect, h2request } from '../helpers/h2.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';
import { fixture } from '../plugins/helpers.js';

const pki = pkiDir();
let ca: TestCa;
let upstream: Server;
const sockets = new Set<Socket>();
let gw: InProcessGateway;

/**
 * Repeats single-value headers, over HTTP/1.1 (fine there): `/location` two different Locations, `/trailers` a
 * chunked body whose trailers repeat ETag, any other path two ETags, X-Content-Type-Options twice, Content-Encoding
 * `gzip` twice (two codings) and a header that may repeat.
 */
function startRepeatingUpstream(port: number): Promise<Server> {
  const answers: Record<string, string> = {
    '/location': 'HTTP/1.1 302 Found\r\ncontent-length: 0\r\nlocation: /a\r\nlocation: https://elsewhere.example/\r\n\r\n',
    '/trailers':
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: etag, x-checksum\r\n\r\n2\r\nok\r\n0\r\n' +
      'etag: "a"\r\netag: "b"\r\nx-checksum: 1\r\n\r\n',
  };
  const usual =
    'HTTP/1.1 200 OK\r\ncontent-length: 2\r\netag: "a"\r\netag: "b"\r\n' +
    'x-content-type-options: nosniff\r\nx-content-type-options: nosniff\r\ncontent-encoding: gzip\r\ncontent-encoding: gzip\r\n' +
    'x-other: 1\r\nx-other: 2\r\n\r\nok';
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    let head = '';
    socket.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      while (head.includes('\r\n\r\n')) {
        const path = /^[A-Z]+ (\S+)/.exec(head)?.[1] ?? '/';
        head = head.slice(head.indexOf('\r\n\r\n') + 4);
        socket.write(answers[path] ?? usual);
      }
    });
    socket.on('error', () => undefined);
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

before(async () => {
  ca = createTestCa('Refused Head CA', pki.path);
  const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
  const port = await freePort();
  upstream = await startRepeatingUpstream(port);
  gw = await startInProcess({
    server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile } },
    load_balancing: { upstreams: upstreams([port]) },
    plugins: [{ name: 'late', module: fixture('recorder.mjs'), config: { tag: 'late', async: true, channel: 'refused-head' } }],
    routes: [
      { name: 'hooked', match: { path_prefix: '/hooked' }, service: 'default', plugins: ['late'] },
      { name: 'plain', match: { path_prefix: '/' }, service: 'default' },
    ],
  });
});

after(async () => {
  await gw?.close();
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => upstream?.close(() => resolve()));
  pki.remove();
});

function completed(path: string): Record<string, unknown> | undefined {
  return gw.logs.find((l) => l.msg === 'Request Completed' && l.path === path);
}

for (const path of ['/plain', '/hooked']) {
  test(`${path}: a repeated single-value header reaches an HTTP/2 client as one field, and the gateway keeps serving`, async () => {
    const session = await h2connect(gw.gateway.port, ca.ca);
    try {
      const res = await h2request(session, { ':path': path, ':method': 'GET' });
      assert.equal(res.status, 200);
      assert.equal(res.body.toString(), 'ok');
      assert.equal(res.headers.etag, '"a", "b"', 'distinct values joined');
      assert.equal(res.headers['x-content-type-options'], 'nosniff', 'the same value once');
      assert.equal(res.headers['content-encoding'], 'gzip, gzip', 'a list keeps every line: two codings to undo');
      // A header that may repeat is left as it came.
      assert.deepEqual(res.headers['x-other'], '1, 2');
      await waitFor(() => completed(path) !== undefined, 'the access log line');
      assert.equal(completed(path)!.status, 200);
      assert.equal((await h2request(session, { ':path': path, ':method': 'GET' })).status, 200);
    } finally {
      session.close();
    }
  });
}

test('repeated single-value trailers reach an HTTP/2 client joined: node threw them from a callback and the process ended', async () => {
  const session = await h2connect(gw.gateway.port, ca.ca);
  try {
    const res = await h2request(session, { ':path': '/trailers', ':method': 'GET' });
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'ok');
    assert.equal(res.trailers?.etag, '"a", "b"');
    assert.equal(res.trailers?.['x-checksum'], '1');
    assert.equal((await h2request(session, { ':path': '/plain', ':method': 'GET' })).status, 200, 'still serving');
  } finally {
    session.close();
  }
});

test('two different Locations are not joined into one URL: 502 for an HTTP/2 client', async () => {
  const session = await h2connect(gw.gateway.port, ca.ca);
  try {
    const res = await h2request(session, { ':path': '/location', ':method': 'GET' });
    assert.equal(res.status, 502);
    assert.equal((JSON.parse(res.body.toString()) as { code: string }).code, 'proxy_error');
    assert.equal(res.headers.location, undefined);
  } finally {
    session.close();
  }
});
