// What was wrong: an answer the gateway writes beside its request driver, to a request the driver is already
// running, carried an X-Request-ID of its own (a fresh UUID, also in the body's request_id) that no log line held,
// and X-Response-Time "0ms" (HTTP/1) or none at all (HTTP/2). Two such answers: over HTTP/1.1, the 400 (or 408) node's
// parser gives a request whose body it then refuses (a bad chunk size), and over HTTP/2 the 408 of
// server.timeouts.request to a stream whose body never ends. The access log wrote the request under its own id,
// and as 499 with no error, although the client got a 400 or 408: the id the client reports found nothing.
// What is right now: the answer carries the request's own id (header and body) and its time since arrival, and the
// request's Request Completed line has that id, the status the client got and its error (BAD_REQUEST,
// REQUEST_TIMEOUT), over HTTP/1.1 and HTTP/2 alike; a client that ended its side inside its body (its FIN) has left,
// and is logged 499 as before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TestBackend } from '../helpers/backends.js';
import type { GatewayProcess } from '../helpers/gateway.js';
import { h2connect } from '../helpers/h2.js';
import { openSocket, responseUntilClose } from '../helpers/raw.js';
import { tlsStackHooks } from '../helpers/tls-stack.js';
import { waitFor } from '../helpers/wait.js';

const stack = tlsStackHooks('Request Id Review CA');
const { ca, cert, cleanups, backend } = stack;
const gateway = stack.gateway;

function upstreamsOf(b: TestBackend): Record<string, unknown> {
  return { upstreams: [{ name: 'api', address: '127.0.0.1', port: b.port }], health_check: { enabled: false } };
}

/** The one Request Completed line of `path`, once written. */
async function completedLine(gw: GatewayProcess, path: string): Promise<Record<string, unknown>> {
  await waitFor(() => gw.logs.some((l) => l.msg === 'Request Completed' && l.path === path), `the Request Completed line of ${path}`, 5_000);
  const lines = gw.logs.filter((l) => l.msg === 'Request Completed' && l.path === path);
  assert.equal(lines.length, 1);
  return lines[0]!;
}

test('HTTP/1.1: the 400 to a request body node refuses has the request\'s own id, and the log says 400', async () => {
  const b = await backend();
  const gw = await gateway({ load_balancing: upstreamsOf(b) });
  const socket = await openSocket(gw.port);
  // The head is whole: the driver runs the request (forwarding its body) when the bad chunk size arrives.
  socket.write('POST /upload?kind=chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n');
  await waitFor(() => gw.logs.some((l) => l.msg === 'Select Upstream'), 'the request sent upstream', 5_000);
  socket.write('zz\r\nabc\r\n');
  const res = await responseUntilClose(socket);
  assert.equal(res.status, 400);
  const id = res.headers['x-request-id'];
  assert.equal((JSON.parse(res.body) as { request_id: string }).request_id, id);
  assert.match(res.headers['x-response-time'] ?? '', /^\d+ms$/);
  const line = await completedLine(gw, '/upload');
  assert.equal(line.request_id, id, 'the id the client got is the one in the log');
  assert.equal(line.status, 400);
  assert.equal(line.error, 'BAD_REQUEST');
  assert.ok(gw.logs.filter((l) => l.request_id === id).some((l) => l.msg === 'Request Start'));
});

test('HTTP/1.1: a client that ends its side inside its body has left: logged 499, any answer it reads has its id', async () => {
  const b = await backend();
  const gw = await gateway({ load_balancing: upstreamsOf(b) });
  const socket = await openSocket(gw.port);
  socket.write('POST /upload?kind=fin HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc');
  await waitFor(() => gw.logs.some((l) => l.msg === 'Select Upstream'), 'the request sent upstream', 5_000);
  socket.end(); // a FIN 97 bytes short of the body: node's parser reports HPE_INVALID_EOF_STATE
  const res = await responseUntilClose(socket);
  assert.equal(res.status, 400);
  const line = await completedLine(gw, '/upload');
  assert.equal(line.request_id, res.headers['x-request-id']);
  assert.equal(line.status, 499, 'an upload the client gave up is the client gone, not a 400');
  assert.equal(line.error, undefined);
});

test('HTTP/2: the 408 of timeouts.request to a stream whose body never ends has the request\'s own id and X-Response-Time', async () => {
  const b = await backend();
  const gw = await gateway({
    server: { timeouts: { header: '1s', request: '1s' }, tls: { cert_file: cert.certFile, key_file: cert.keyFile } },
    load_balancing: upstreamsOf(b),
  });
  const session = await h2connect(gw.port, ca.ca);
  cleanups.push(async () => void session.close());
  const stream = session.request({ ':method': 'POST', ':path': '/upload?kind=h2', 'content-length': '100' }, { endStream: false });
  stream.write('abc');
  const answer = await new Promise<{ headers: Record<string, unknown>; body: string }>((resolve, reject) => {
    let headers: Record<string, unknown> = {};
    let body = '';
    stream.on('response', (h) => (headers = h));
    stream.on('data', (d: Buffer) => (body += d.toString()));
    stream.on('error', reject);
    stream.on('close', () => resolve({ headers, body }));
  });
  assert.equal(answer.headers[':status'], 408);
  const id = answer.headers['x-request-id'];
  assert.equal((JSON.parse(answer.body) as { request_id: string }).request_id, id);
  assert.equal(answer.headers['x-proxy-by'], 'Portcullis');
  assert.match(String(answer.headers['x-response-time']), /^\d+ms$/);
  const line = await completedLine(gw, '/upload');
  assert.equal(line.request_id, id, 'the id the client got is the one in the log');
  assert.equal(line.status, 408);
  assert.equal(line.error, 'REQUEST_TIMEOUT');
});
