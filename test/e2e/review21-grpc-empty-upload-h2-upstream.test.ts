// An upload that is empty without saying so (an HTTP/1.1 chunked body of just its last chunk; an HTTP/2 stream ended by
// an empty DATA frame, which is what a gRPC client-streaming call that half-closes with no message sends) to an
// `http2: true` service. When the body had ended by the time undici wrote the request (over HTTP/1.1 always; over
// HTTP/2 whenever the request waited for a new upstream connection), undici 7 sent `content-length: 0` on a stream it
// never ended. The upstream waited for a body end that never came, no timeout ended it, and each such request held an
// upstream connection until its client left: a pool of two then answered 503 to everyone else.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Http2Server } from 'node:http2';
import { connect as tcpConnect, type AddressInfo } from 'node:net';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';

let upstream: Http2Server;
let gw: InProcessGateway;
let tlsGw: InProcessGateway;
/** Body bytes each upstream stream received, in arrival order of their ends. */
const received: number[] = [];
const pki = pkiDir();
const ca = createTestCa('Empty Upload CA', pki.path);
const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });

before(async () => {
  // Answers once the upload has ended, as a client-streaming gRPC method or an ingestion endpoint does.
  upstream = createServer((req, res) => {
    let bytes = 0;
    req.on('data', (d: Buffer) => (bytes += d.length));
    req.on('end', () => {
      received.push(bytes);
      res.writeHead(200, { 'content-type': 'application/grpc', 'x-bytes': String(bytes) });
      res.addTrailers({ 'grpc-status': '0' });
      res.end();
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const port = (upstream.address() as AddressInfo).port;
  const balancing = { http2: true, retries: 0, connections_per_upstream: 2, queue_timeout: '1s', upstreams: [{ name: 'g1', address: '127.0.0.1', port }] };
  const routes = [{ name: 'g', service: 'default', match: { path_prefix: '/' }, timeouts: { upstream_response: '2s' } }];
  gw = await startInProcess({ routes, load_balancing: balancing });
  tlsGw = await startInProcess({ server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile } }, routes, load_balancing: balancing });
});
after(async () => {
  await gw?.close();
  await tlsGw?.close();
  pki.remove();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
});

/** A raw HTTP/1.1 exchange on the cleartext gateway: the status line and the head, or 'no answer' after `boundMs`. */
function rawExchange(request: string, boundMs = 5_000): Promise<string> {
  return new Promise((resolve) => {
    const socket = tcpConnect(gw.gateway.port, '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('no answer');
    }, boundMs);
    socket.on('data', (d: Buffer) => {
      out += d.toString('latin1');
      if (out.includes('\r\n\r\n')) {
        clearTimeout(timer);
        socket.destroy();
        resolve(out.slice(0, out.indexOf('\r\n\r\n')));
      }
    });
    socket.on('error', () => undefined);
    socket.write(request);
  });
}

const EMPTY_CHUNKED = 'POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n';

test('HTTP/1.1: an empty chunked POST is answered, and four at once do not hold a pool of two', async () => {
  const head = await rawExchange(EMPTY_CHUNKED);
  assert.match(head, /^HTTP\/1\.1 200/, head);
  assert.match(head, /\r\nx-bytes: 0\r\n/i);
  const heads = await Promise.all([1, 2, 3, 4].map(() => rawExchange(EMPTY_CHUNKED)));
  for (const h of heads) assert.match(h, /^HTTP\/1\.1 200/, h);
  // And a plain request after them finds a free connection.
  assert.match(await rawExchange('GET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 200/);
});

test('HTTP/1.1: a chunked upload with content still arrives whole', async () => {
  const head = await rawExchange('POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n');
  assert.match(head, /^HTTP\/1\.1 200/, head);
  assert.match(head, /\r\nx-bytes: 11\r\n/i);
});

/** A gRPC-shaped call over HTTP/2 that half-closes after `messages`: the grpc-status it ends with, or 'no answer'. */
function grpcCall(messages: Buffer[]): Promise<string> {
  const session = connect(`https://127.0.0.1:${tlsGw.gateway.port}`, { ca: ca.ca, servername: 'a.test' });
  session.on('error', () => undefined);
  return new Promise<string>((resolve) => {
    const req = session.request({ ':method': 'POST', ':path': '/p.S/ClientStream', 'content-type': 'application/grpc', te: 'trailers' });
    let status = 'no answer';
    req.on('trailers', (t) => (status = `grpc-status ${String(t['grpc-status'])}`));
    req.on('response', (h) => {
      if (h['grpc-status'] !== undefined) status = `grpc-status ${String(h['grpc-status'])}`;
    });
    req.on('data', () => undefined);
    req.on('error', () => undefined);
    const timer = setTimeout(() => req.close(8), 5_000);
    req.on('close', () => {
      clearTimeout(timer);
      session.close();
      resolve(status);
    });
    for (const m of messages) req.write(m);
    req.end(); // with no message: HEADERS, then an empty DATA frame with END_STREAM (grpc-js's call.end() with no write)
  });
}

test('HTTP/2: a gRPC call that half-closes with no message is answered, first on the pool and after', async () => {
  assert.equal(await grpcCall([]), 'grpc-status 0');
  assert.equal(await grpcCall([]), 'grpc-status 0');
  const statuses = await Promise.all([1, 2, 3, 4].map(() => grpcCall([])));
  assert.deepEqual(statuses, ['grpc-status 0', 'grpc-status 0', 'grpc-status 0', 'grpc-status 0']);
});

test('HTTP/2: a call with messages still delivers every byte', async () => {
  const before = received.length;
  const message = Buffer.concat([Buffer.from([0, 0, 0, 0, 3]), Buffer.from('abc')]);
  assert.equal(await grpcCall([message, message]), 'grpc-status 0');
  assert.equal(received[before], 16);
});

test('HTTP/2: a PUT declaring content-length 0 on a stream its client leaves open is answered', async () => {
  const session = connect(`https://127.0.0.1:${tlsGw.gateway.port}`, { ca: ca.ca, servername: 'a.test' });
  session.on('error', () => undefined);
  try {
    const status = await new Promise<string>((resolve) => {
      const req = session.request({ ':method': 'PUT', ':path': '/empty', 'content-length': '0' }, { endStream: false });
      const timer = setTimeout(() => resolve('no answer'), 5_000);
      req.on('error', () => undefined);
      req.on('response', (h) => {
        clearTimeout(timer);
        resolve(`${String(h[':status'])} ${String(h['x-bytes'])}`);
      });
      req.resume();
    });
    assert.equal(status, '200 0');
  } finally {
    session.destroy();
  }
});
