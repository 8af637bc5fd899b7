// What was wrong: a request body without a declared length (chunked HTTP/1.1) over a route's max_body_size was not
// refused with 413 when its attempt could not take it:
// - waiting for a free upstream connection (connections_per_upstream all busy), the request sat in the pool's queue
//   with its body already over the limit; its 413 came only once a connection freed up, and a wait that outlasted
//   queue_timeout was answered 503 upstream_busy, Retry-After: 1, for a request no retry can ever pass;
// - to an upstream that refused the connection, a body already over the limit was answered 502.
// The body-limit phase counts the body as it streams and fails with 413, but undici hears that only while it holds
// the request (not in the queue in front of it), and an attempt's own failure won over it.
// What is right now: 413 PAYLOAD_TOO_LARGE at once, logged as such, and nothing of the request reaches the upstream.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type ServerResponse, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { closedPort } from '../helpers/backends.js';
import { waitFor } from '../helpers/wait.js';

const UPLOAD = 10 * 1024 * 1024;

/** The backend's requests under /small (its health probes left out), and the GETs it holds until released. */
const seen: string[] = [];
const held: ServerResponse[] = [];
let backend: Server;
let gw: InProcessGateway;
let dir: string;
let file: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'portcullis-body-limit-queued-'));
  file = join(dir, 'upload.bin');
  writeFileSync(file, Buffer.alloc(UPLOAD, 'u'));
  backend = createServer((req, res) => {
    if (req.url?.startsWith('/small') === true) seen.push(`${req.method} ${req.url}`);
    req.resume();
    if (req.url === '/small/hold') held.push(res);
    else res.end('ok');
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const port = (backend.address() as AddressInfo).port;
  const down = await closedPort();
  gw = await startInProcess({
    services: {
      // One connection; a wait for it shorter than the test's, so a request left waiting is told (503), not hung.
      api: { upstreams: [{ name: 'api', address: '127.0.0.1', port }], connections_per_upstream: 1, queue_timeout: '4s' },
      gone: { upstreams: [{ name: 'gone', address: '127.0.0.1', port: down }], retries: 0 },
    },
    routes: [
      { name: 'small', match: { path_prefix: '/small' }, service: 'api', max_body_size: '1KB' },
      { name: 'down', match: { path_prefix: '/down' }, service: 'gone', max_body_size: '1KB' },
    ],
  });
});

after(async () => {
  for (const res of held) res.end('released');
  await gw?.close();
  backend?.closeAllConnections();
  await new Promise<void>((resolve) => (backend ? backend.close(() => resolve()) : resolve()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** curl; resolves with the status it saw (000 when it got none). */
function curl(args: readonly string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '20', '-o', '/dev/null', '-w', '%{http_code}', ...args], (_err, stdout) => resolve(stdout));
  });
}

/** The gateway's access log line of `path`. */
function logged(path: string): Record<string, unknown> | undefined {
  return gw.logs.find((l) => l.msg === 'Request Completed' && l.path === path);
}

test('a chunked body over max_body_size, waiting for the only upstream connection, gets 413 at once and never goes upstream', { timeout: 60_000 }, async () => {
  let holderAnswered = false;
  const holder = curl([`${gw.url}/small/hold`]).then((status) => {
    holderAnswered = true;
    return status;
  });
  await waitFor(() => held.length === 1, 'the GET held at the backend');
  const upload = await curl(['-H', 'transfer-encoding: chunked', '--data-binary', `@${file}`, `${gw.url}/small/upload`]);
  assert.equal(upload, '413');
  assert.equal(holderAnswered, false, 'answered while the only connection was still taken');
  held.shift()!.end('released');
  assert.equal(await holder, '200');
  await waitFor(() => logged('/small/upload') !== undefined, 'the upload logged');
  const line = logged('/small/upload')!;
  assert.equal(line.status, 413);
  assert.equal(line.error, 'PAYLOAD_TOO_LARGE');
  assert.deepEqual(seen, ['GET /small/hold'], 'nothing of the upload reached the backend');
});

/** A chunked POST whose head and 16 KB body go in one write; resolves with the status line of the answer. */
function postWhole(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(new URL(gw.url).port), '127.0.0.1');
    let got = '';
    socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve(got.split('\r\n')[0] ?? ''));
    socket.setTimeout(10_000, () => socket.destroy());
    const body = Buffer.alloc(16 * 1024, 'u');
    const head = `POST ${path} HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`;
    socket.write(Buffer.concat([Buffer.from(`${head}${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]));
  });
}

test('a chunked body already over max_body_size, to an upstream that refuses connections, gets 413, not 502', { timeout: 60_000 }, async () => {
  for (let i = 0; i < 10; i++) {
    const path = `/down/u${i}`;
    assert.equal(await postWhole(path), 'HTTP/1.1 413 Payload Too Large', path);
    await waitFor(() => logged(path) !== undefined, `${path} logged`);
    assert.equal(logged(path)!.error, 'PAYLOAD_TOO_LARGE', path);
  }
});
