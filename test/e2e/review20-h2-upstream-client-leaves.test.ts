// An HTTP/2 upstream that answers at once (202) and reads the upload on, as an ingestion endpoint does: undici goes
// on sending it the body after the answer (review16). A client that leaves with its upload unfinished must cancel
// that upstream stream (RST_STREAM CANCEL). Before, from an HTTP/1.1 client the stream stayed open, waiting for bytes
// that never came, until the gateway stopped; from an HTTP/2 client that reset its stream, or whose connection
// dropped, the upstream stream was ended as if the upload were whole (16 KiB of 1 MiB).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2Connect, createServer, type Http2Server, type ServerHttp2Stream } from 'node:http2';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { addAbortSignal } from 'node:stream';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

const NGHTTP2_CANCEL = 8;
const pki = pkiDir();
let ca: TestCa;
let cert: { certFile: string; keyFile: string };
let upstream: Http2Server;
/** Every POST the upstream got: its bytes, whether its stream closed, and with which code. */
interface Upload {
  bytes: number;
  closed: boolean;
  rstCode: number | undefined;
}
const uploads: Upload[] = [];
const streams: ServerHttp2Stream[] = [];
const gateways: InProcessGateway[] = [];

before(async () => {
  ca = createTestCa('Client Leaves CA', pki.path);
  cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
  upstream = createServer();
  upstream.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    if (headers[':method'] === 'POST') {
      const upload: Upload = { bytes: 0, closed: false, rstCode: undefined };
      uploads.push(upload);
      streams.push(stream);
      stream.on('data', (d: Buffer) => (upload.bytes += d.length));
      // An endpoint that answers and then gives the upload up at once (RST_STREAM NO_ERROR), as node's and Go's do.
      if (headers[':path'] === '/ingest/refuse') setTimeout(() => stream.close(), 200);
      // An ingestion endpoint that answers first and only then reads the upload, a second later.
      if (headers[':path'] === '/ingest/later') {
        stream.pause();
        setTimeout(() => stream.resume(), 1_000);
      }
      stream.on('close', () => Object.assign(upload, { closed: true, rstCode: stream.rstCode }));
    } else stream.resume();
    stream.respond({ ':status': 202, 'content-type': 'text/plain' });
    stream.end('accepted\n');
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
});
after(async () => {
  for (const gw of gateways) await gw.close();
  for (const s of streams) s.close();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
  pki.remove();
});

/** The upstream as an h2c service behind one route; `route` adds to the route (max_body_size). */
async function gateway(route: Record<string, unknown> = {}, tls = false, server: Record<string, unknown> = {}): Promise<InProcessGateway> {
  const gw = await startInProcess({
    server: { ...(tls ? { tls: { cert_file: cert.certFile, key_file: cert.keyFile } } : {}), ...server },
    admin: { enabled: false },
    services: { ingest: { http2: true, retries: 0, upstreams: upstreams([(upstream.address() as AddressInfo).port]) } },
    routes: [{ name: 'ingest', match: { path_prefix: '/' }, service: 'ingest', ...route }],
  });
  gateways.push(gw);
  return gw;
}

/** The upload the upstream got last, once its stream has closed. */
async function lastUploadClosed(): Promise<Upload> {
  const upload = uploads.at(-1);
  assert.ok(upload, 'the upload reached the upstream');
  await waitFor(() => upload.closed, 'the upstream stream closed', 3_000);
  return upload;
}

/** An HTTP/1.1 upload of 1 MiB announced and 16 KiB sent; resolves with the socket once the 202 is read. */
async function uploadUntilAnswered(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write('POST /ingest HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1048576\r\nContent-Type: application/octet-stream\r\n\r\n');
  socket.write(Buffer.alloc(16_384, 'x'));
  let text = '';
  socket.setEncoding('latin1');
  await new Promise<void>((resolve, reject) => {
    const onData = (d: string): void => {
      text += d;
      if (!text.includes('accepted\n')) return;
      socket.off('data', onData);
      resolve();
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
  assert.match(text, /^HTTP\/1\.1 202 /);
  return socket;
}

for (const [name, route] of [
  ['no body limit', {}],
  ['a route body limit', { max_body_size: '4mb' }],
] as const) {
  test(`an HTTP/1.1 client that leaves mid-upload after the 202 cancels the upstream stream (${name})`, async () => {
    const gw = await gateway(route);
    (await uploadUntilAnswered(gw.gateway.port)).destroy();
    const upload = await lastUploadClosed();
    assert.equal(upload.rstCode, NGHTTP2_CANCEL);
  });
}

test('an HTTP/1.1 client that sends the rest after the 202 still gets it all to the upstream', async () => {
  const gw = await gateway({ max_body_size: '4mb' });
  const socket = await uploadUntilAnswered(gw.gateway.port);
  socket.end(Buffer.alloc(1_048_576 - 16_384, 'y'));
  const upload = await lastUploadClosed();
  assert.equal(upload.rstCode, 0);
  assert.equal(upload.bytes, 1_048_576);
  socket.destroy();
});

test('an HTTP/1.1 client that sends its whole upload with Connection: close gets it all to an upstream that reads it later', async () => {
  const gw = await gateway();
  const earlier = uploads.length;
  const socket = connect(gw.gateway.port, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write('POST /ingest/later HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\nContent-Length: 1048576\r\n\r\n');
  socket.end(Buffer.alloc(1_048_576, 'z'));
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (text += d));
  await waitFor(() => uploads.length > earlier, 'the upload to reach the upstream', 3_000);
  const upload = await lastUploadClosed();
  assert.match(text, /^HTTP\/1\.1 202 /);
  assert.equal(upload.rstCode, 0, 'ended as sent, not cancelled');
  assert.equal(upload.bytes, 1_048_576);
  socket.destroy();
});

test('an HTTP/1.1 upload on a connection its answer closes that stops after the 202 is closed at request_body_chunk', { timeout: 15_000 }, async () => {
  const gw = await gateway({}, false, { timeouts: { request_body_chunk: '1s' } });
  const earlier = uploads.length;
  const socket = connect(gw.gateway.port, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write('POST /ingest HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\nContent-Length: 100\r\n\r\nhalf');
  await waitFor(() => uploads.length > earlier, 'the upload to reach the upstream', 3_000);
  const upload = await lastUploadClosed(); // within 3 s: the 1 s bound, swept a quarter late at most
  assert.equal(upload.rstCode, NGHTTP2_CANCEL);
  socket.destroy();
});

test('an HTTP/1.1 upload on a connection its answer closes, given up by the upstream: the close lingers, no reset', async () => {
  const gw = await gateway();
  const socket = connect(gw.gateway.port, '127.0.0.1');
  const errors: string[] = [];
  socket.on('error', (err: NodeJS.ErrnoException) => errors.push(err.code ?? 'error'));
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write('POST /ingest/refuse HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\nContent-Length: 8388608\r\n\r\n');
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (text += d));
  // The client goes on sending for a second after the answer, as a client busy uploading does.
  const chunk = Buffer.alloc(65_536, 'r');
  for (let i = 0; i < 40 && !socket.destroyed; i++) {
    socket.write(chunk);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.match(text, /^HTTP\/1\.1 202 /);
  assert.match(text, /accepted\n/);
  assert.deepEqual(errors, [], 'the gateway read on and dropped the rest instead of resetting');
  socket.destroy();
});

for (const how of ['resets its stream', 'drops its connection'] as const) {
  test(`an HTTP/2 client that ${how} mid-upload after the 202 cancels the upstream stream`, async () => {
    const gw = await gateway({}, true);
    const session = h2Connect(`https://127.0.0.1:${gw.gateway.port}`, { ca: ca.ca, servername: 'a.test' });
    session.on('error', () => undefined);
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/ingest' });
      stream.on('error', () => undefined);
      stream.write(Buffer.alloc(16_384, 'x'));
      const status = await new Promise<number>((resolve) => stream.once('response', (h) => resolve(Number(h[':status']))));
      assert.equal(status, 202);
      await waitFor(() => (uploads.at(-1)?.bytes ?? 0) >= 16_384, 'the first bytes reached the upstream', 3_000);
      if (how === 'resets its stream') {
        // A bare RST_STREAM CANCEL: node's stream.close() would send END_STREAM first.
        const controller = new AbortController();
        addAbortSignal(controller.signal, stream);
        controller.abort();
      } else session.destroy(); // the socket closed, no GOAWAY
      const upload = await lastUploadClosed();
      assert.equal(upload.rstCode, NGHTTP2_CANCEL, 'cancelled, not ended as a whole upload');
      assert.ok(upload.bytes < 1_048_576);
    } finally {
      session.destroy();
    }
  });
}
