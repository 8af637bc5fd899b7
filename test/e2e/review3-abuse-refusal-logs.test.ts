// Connections the proxy port refuses with no request of the driver's behind them, through real sockets: each gets its
// `Connection Refused` line (the access log has none for them), with its client, status, code and the request id of
// the answer, and nothing the client sent: the parser's 400, 408 and 431, the per-client cap's 429, and a connection
// closed for too many pipelined requests waiting.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { MAX_WAITING_HEAD_BYTES, MAX_WAITING_REQUESTS } from '../../src/listeners/pipelining.js';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, rawRequest, responseUntilClose, type RawResponse } from '../helpers/raw.js';
import { waitFor } from '../helpers/wait.js';

const CAP = 3;
const SECRET = 'sk_live_refusal_secret_0123456789';

let backend: TestBackend;
let gw: InProcessGateway;
const sockets: Socket[] = [];

before(async () => {
  backend = await startBackend('refusal-logs');
  gw = await startInProcess({
    server: { max_connections_per_client: CAP, timeouts: { header: '1s' } },
    load_balancing: { upstreams: upstreams([backend.port]), retries: 0 },
    admin: { enabled: false },
  });
});

after(async () => {
  for (const s of sockets) s.destroy();
  await gw.close();
  await backend.stop();
});

const refusals = (): Array<Record<string, unknown>> => gw.logs.filter((l) => l.msg === 'Connection Refused');

/** The line of the refusal answered with `res` (by its request id), once written. */
async function lineOf(res: RawResponse): Promise<Record<string, unknown>> {
  const id = res.headers['x-request-id'];
  assert.ok(id, 'the answer has a request id');
  await waitFor(() => refusals().some((l) => l.request_id === id), `the Connection Refused line of ${id}`);
  return refusals().find((l) => l.request_id === id)!;
}

function assertNoSecret(): void {
  for (const line of gw.logs) assert.ok(!JSON.stringify(line).includes(SECRET), `a log line holds what the client sent: ${JSON.stringify(line)}`);
}

for (const [name, head, status, error] of [
  ['a head over 16 KiB', `GET /x HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${SECRET}\r\nX-Pad: ${'p'.repeat(17_000)}\r\n\r\n`, 431, 'HEADERS_TOO_LARGE'],
  ['a malformed request line', `GET /x?token=${SECRET} HTTP/1.1 junk\r\nHost: gw\r\n\r\n`, 400, 'BAD_REQUEST'],
  ['a malformed header', `GET /x HTTP/1.1\r\nHost: gw\r\nBad Header: ${SECRET}\r\n\r\n`, 400, 'BAD_REQUEST'],
] as const) {
  test(`${name}: ${status}, and a Connection Refused line with its client, status, code and id, nothing it sent`, async () => {
    const res = await rawRequest(gw.gateway.port, head);
    assert.equal(res.status, status);
    const line = await lineOf(res);
    assert.deepEqual(
      { client: line.client, status: line.status, error: line.error },
      { client: '127.0.0.1', status, error },
    );
    assertNoSecret();
    assert.ok(!gw.logs.some((l) => l.msg === 'Request Completed' && l.request_id === line.request_id), 'no request of the driver');
  });
}

test('a head unfinished at timeouts.header: 408 and its line', async () => {
  const socket = await openSocket(gw.gateway.port);
  sockets.push(socket);
  socket.write(`GET /x HTTP/1.1\r\nAuthorization: Bearer ${SECRET}\r\n`);
  const res = await responseUntilClose(socket, 5_000);
  assert.equal(res.status, 408);
  const line = await lineOf(res);
  assert.equal(line.error, 'REQUEST_TIMEOUT');
  assertNoSecret();
});

test('a connection over max_connections_per_client: 429 and its line', async () => {
  const held: Socket[] = [];
  try {
    for (let i = 0; i < CAP; i++) held.push(await openSocket(gw.gateway.port));
    const res = await rawRequest(gw.gateway.port, 'GET /x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
    assert.equal(res.status, 429);
    const line = await lineOf(res);
    assert.deepEqual({ client: line.client, status: line.status, error: line.error }, { client: '127.0.0.1', status: 429, error: 'TOO_MANY_CONNECTIONS' });
  } finally {
    for (const s of held) s.destroy();
  }
});

test(`a connection closed for more than ${MAX_WAITING_REQUESTS} pipelined requests waiting: its line, at warn`, async () => {
  // The cap's test held every slot: wait until the gateway has let them go.
  await waitFor(async () => (await rawRequest(gw.gateway.port, 'GET /x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n')).status === 200, 'a free slot');
  const before = refusals().filter((l) => l.error === 'PIPELINED_REQUESTS').length;
  const socket = await openSocket(gw.gateway.port);
  sockets.push(socket);
  socket.on('error', () => undefined);
  socket.write(`GET /slow?ms=300 HTTP/1.1\r\nHost: gw\r\n\r\n`.repeat(MAX_WAITING_REQUESTS + 10));
  await waitFor(() => refusals().filter((l) => l.error === 'PIPELINED_REQUESTS').length === before + 1, 'one PIPELINED_REQUESTS line');
  const line = refusals().filter((l) => l.error === 'PIPELINED_REQUESTS').at(-1)!;
  assert.equal(line.level, 40);
  assert.equal(line.client, '127.0.0.1');
  assert.equal(line.waiting, MAX_WAITING_REQUESTS + 1);
});

// review16: the count alone let 127 heads of 16 KB wait on each connection (2 MB; some 450 MB of heap from one client
// address's 250 connections). Their bytes are bounded too.
test(`a connection whose waiting heads pass ${MAX_WAITING_HEAD_BYTES} bytes is closed, with the same line`, async () => {
  await waitFor(async () => (await rawRequest(gw.gateway.port, 'GET /x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n')).status === 200, 'a free slot');
  const before = refusals().filter((l) => l.error === 'PIPELINED_REQUESTS').length;
  const socket = await openSocket(gw.gateway.port);
  sockets.push(socket);
  socket.on('error', () => undefined);
  const pad = 'p'.repeat(15_000);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(`GET /slow?ms=300 HTTP/1.1\r\nHost: gw\r\n\r\n` + `GET /q HTTP/1.1\r\nHost: gw\r\nX-Pad: ${pad}\r\n\r\n`.repeat(20));
  await waitFor(() => refusals().filter((l) => l.error === 'PIPELINED_REQUESTS').length === before + 1, 'one PIPELINED_REQUESTS line');
  const line = refusals().filter((l) => l.error === 'PIPELINED_REQUESTS').at(-1)!;
  assert.ok(Number(line.waiting) < MAX_WAITING_REQUESTS, `closed by the bytes, not the count (${String(line.waiting)} waiting)`);
  assert.ok(Number(line.waiting_bytes) > MAX_WAITING_HEAD_BYTES);
  await closed;
});
