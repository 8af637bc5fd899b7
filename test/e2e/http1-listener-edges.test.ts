// What node's HTTP/1 server decides before the gateway sees a request: the version on the request line, the header
// count, the header timeout's check interval, and the replies node makes itself (Expect, a missing Host), which must
// carry the gateway's headers and a log line like every other response.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, parseHead, rawRequest, readUntil, type RawResponse } from '../helpers/raw.js';

let backend: TestBackend;
let gw: InProcessGateway;

before(async () => {
  backend = await startBackend('b1');
  gw = await startInProcess({
    server: { timeouts: { header: '1s' } },
    load_balancing: { upstreams: upstreams([backend.port]), retries: 0 },
  });
});

after(async () => {
  await gw.close();
  await backend.stop();
});

function send(request: string): Promise<RawResponse> {
  return rawRequest(gw.gateway.port, request);
}

/** The response carries the gateway's headers and has its Request Completed line. */
function assertGatewayMade(res: RawResponse, status: number): void {
  assert.equal(res.status, status);
  assert.equal(res.headers['x-proxy-by'] !== undefined, true, 'x-proxy-by');
  const id = res.headers['x-request-id'];
  assert.ok(id, 'x-request-id');
  const line = gw.logs.find((l) => l.msg === 'Request Completed' && l.request_id === id);
  assert.equal(line?.status, status, 'logged');
}

// The engine took httpVersionMajor 2 for an HTTP/2 stream: the body was dropped, and reading the absent stream when the
// response closed threw from a 'close' listener, which ended the process (the runner reports it as an uncaught error).
test('an HTTP/2.0 request line over HTTP/1 is refused with 505 before anything reaches the upstream', async () => {
  const hits = backend.hits;
  const res = await send('POST /upload HTTP/2.0\r\nHost: a.test\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello');
  assertGatewayMade(res, 505);
  assert.match(res.body, /"code":"http_version_not_supported"/);
  // Logged as what it claimed over HTTP/1, not as an HTTP/2 stream.
  const line = gw.logs.find((l) => l.msg === 'Request Completed' && l.request_id === res.headers['x-request-id']);
  assert.equal(line?.protocol, 'http/2.0');
  assert.equal((await send('POST /upload HTTP/3.0\r\nHost: a.test\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello')).status, 400);
  assert.equal(backend.hits, hits);
});

// An HTTP/0.9 request line, which llhttp takes with headers and a body, passed every check made for 1.x: a
// `Transfer-Encoding: gzip, chunked` that 1.1 gets 501 for and 1.0 gets 400 for reached the upstream de-chunked, its
// gzip label gone (review16).
test('an HTTP/0.9 request line is refused with 505 whatever it carries, and nothing reaches the upstream', async () => {
  const hits = backend.hits;
  for (const request of [
    'POST /upload HTTP/0.9\r\nHost: a.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nabcde\r\n0\r\n\r\n',
    'POST /upload HTTP/0.9\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello',
    'GET /page HTTP/0.9\r\nHost: a.test\r\n\r\n',
  ]) {
    const res = await send(request);
    assertGatewayMade(res, 505);
    assert.match(res.body, /"code":"http_version_not_supported"/);
    assert.equal(res.headers.connection, 'close');
  }
  assert.equal(backend.hits, hits);
});

test('a body framed by a Content-Length after 2,000 header lines reaches the upstream', async () => {
  const padding = 'x:1\r\n'.repeat(2_100);
  const res = await send(`POST /upload HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n${padding}Content-Length: 5\r\n\r\nhello`);
  assert.equal(res.status, 200);
  assert.equal((JSON.parse(res.body) as { bytes: number }).bytes, 5);
});

test('a client that never finishes its headers gets its 408 soon after timeouts.header, not after node\'s 30 s check', async () => {
  const socket = await openSocket(gw.gateway.port);
  const started = Date.now();
  socket.write('GET / HTTP/1.1\r\nHost: a.test\r\n');
  const drip = setInterval(() => socket.writable && socket.write('X'), 200);
  try {
    const data = await readUntil(socket, (d) => d.includes('\r\n\r\n'), 6_000);
    assert.equal(parseHead(data.toString('latin1').split('\r\n\r\n')[0]!).status, 408);
    assert.ok(Date.now() - started < 6_000);
  } finally {
    clearInterval(drip);
    socket.destroy();
  }
});

test('Expect other than 100-continue gets the gateway\'s 417, with its headers and a log line', async () => {
  const res = await send('GET /x HTTP/1.1\r\nHost: a.test\r\nExpect: foo\r\nConnection: close\r\n\r\n');
  assertGatewayMade(res, 417);
  assert.match(res.body, /"code":"expectation_failed"/);
});

test('HTTP/1.1 without Host gets the gateway\'s 400; HTTP/1.0 without Host is still served', async () => {
  const res = await send('GET /x HTTP/1.1\r\nConnection: close\r\n\r\n');
  assertGatewayMade(res, 400);
  assert.match(res.body, /"code":"bad_request"/);
  assert.equal((await send('GET /x HTTP/1.0\r\n\r\n')).status, 200);
});
