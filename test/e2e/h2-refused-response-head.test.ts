// A response head node refuses to send (here: an HTTP/1 upstream's repeated ETag, which HTTP/2 allows only once) is
// answered 502 to the client, whether the route's response hooks are synchronous or a plugin's async one, and the
// process lives on: before, the async case was an unhandled rejection that ended the process.
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

/** Answers every request with two ETag fields: fine for HTTP/1.1, refused by node's HTTP/2 (a single-value header). */
function startTwoEtagUpstream(port: number): Promise<Server> {
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    let head = '';
    socket.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      while (head.includes('\r\n\r\n')) {
        head = head.slice(head.indexOf('\r\n\r\n') + 4);
        socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\netag: "a"\r\netag: "b"\r\n\r\nok');
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
  upstream = await startTwoEtagUpstream(port);
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
  test(`${path}: a response head node refuses becomes a 502, and the gateway keeps serving`, async () => {
    const session = await h2connect(gw.gateway.port, ca.ca);
    try {
      const res = await h2request(session, { ':path': path, ':method': 'GET' });
      assert.equal(res.status, 502);
      const body = JSON.parse(res.body.toString()) as { code: string };
      assert.equal(body.code, 'proxy_error');
      // Nothing of the refused head leaks into the error reply.
      assert.equal(res.headers.etag, undefined);
      await waitFor(() => completed(path) !== undefined, 'the access log line');
      assert.equal(completed(path)!.status, 502);
      // Still alive, and still answering on the same connection.
      assert.equal((await h2request(session, { ':path': path, ':method': 'GET' })).status, 502);
    } finally {
      session.close();
    }
  });
}
