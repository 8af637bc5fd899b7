// An upstream that sends interim (1xx) heads for ever and never a final one (found by review). undici starts its wait
// for an HTTP/1 response head over at every 1xx (client-h1.js onHeadersComplete refreshes the headers timer), so 103
// Early Hints or 102 Processing every 100 ms held the request, its client and a connection of the upstream's pool for
// as long as the upstream kept on: upstream_response never ended it, and a client that gave up was logged 499, never
// the upstream's fault. Now the final head is held to upstream_response (the route's own when it sets one) from the
// first interim head, or from the end of a request body still being sent then: 504 upstream_timeout, logged
// UPSTREAM_TIMEOUT with cause InterimResponsesTimeout(UND_ERR_HEADERS_TIMEOUT), counted against the upstream's health
// as a response timeout is. HTTP/2 upstreams (h2c and TLS) were already bound (undici's HTTP/2 client never sees a
// 1xx, and node's stream timer is not restarted by one): checked alike. An interim head followed by a final one, or
// by a slow upload the upstream reads before it answers, is relayed as before.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Server, Socket } from 'node:net';
import { createServer as createH2cServer, type Http2Server, type ServerHttp2Stream } from 'node:http2';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, rawRequest, responseUntilClose, type RawResponse } from '../helpers/raw.js';
import { pkiDir } from '../helpers/tls.js';
import { answerCountAt, listenH2, oneUpstreamService as service, portOf as port, startRawH1Upstream, startTlsH2Upstream, type TlsH2Upstream } from '../helpers/upstream-fault.js';
import { sleep, waitFor } from '../helpers/wait.js';

/** The bound under test: short, so each case ends in about a second. */
const RESPONSE_MS = 1_000;
/** Far beyond the bound: a request still unanswered then was held by the upstream. */
const CLIENT_WAIT_MS = 8_000;

const timers = new Set<NodeJS.Timeout>();
/** Runs `send` every 100 ms while `alive()` holds. */
function every100ms(alive: () => boolean, send: () => void): void {
  const timer = setInterval(() => (alive() ? send() : clearInterval(timer)), 100);
  timers.add(timer);
}

/** HTTP/1.1 upstream: what it does once it has a request's head, by path. */
const H1: Record<string, (socket: Socket, rest: Buffer) => void> = {
  '/ok': (s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'),
  '/h1/103': (s) => every100ms(() => !s.destroyed, () => s.write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n')),
  '/h1/102': (s) => every100ms(() => !s.destroyed, () => s.write('HTTP/1.1 102 Processing\r\n\r\n')),
  '/h1/ws': (s) => every100ms(() => !s.destroyed, () => s.write('HTTP/1.1 103 Early Hints\r\n\r\n')),
  '/fast/103': (s) => every100ms(() => !s.destroyed, () => s.write('HTTP/1.1 103 Early Hints\r\n\r\n')),
  '/h1/103-then-200': (s) => {
    s.write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n');
    setTimeout(() => s.end('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal'), 300);
  },
  // 103 at once, then the whole upload (UPLOAD_BYTES, arriving for longer than the bound) read before the answer.
  '/h1/103-then-upload': (s, rest) => {
    s.write('HTTP/1.1 103 Early Hints\r\n\r\n');
    answerCountAt(s, rest, UPLOAD_BYTES);
  },
};
const UPLOAD_BYTES = 5 * 1_000;

/** HTTP/2 upstream (h2c or TLS): 103 every 100 ms on /h2c/103 and /h2tls/103, else 200 ok. */
function onH2Stream(stream: ServerHttp2Stream, headers: Record<string, unknown>): void {
  stream.on('error', () => undefined);
  if (String(headers[':path']).endsWith('/103')) {
    every100ms(() => !stream.destroyed && !stream.closed, () => stream.additionalHeaders({ ':status': 103, link: '</a.css>; rel=preload' }));
    return;
  }
  stream.respond({ ':status': 200 });
  stream.end('ok');
}

const pki = pkiDir();
let h1: Server;
let h2c: Http2Server;
let h2tls: TlsH2Upstream;
let gw: InProcessGateway;

before(async () => {
  h1 = await startRawH1Upstream((socket, rest, path) => (H1[path] ?? H1['/ok']!)(socket, rest));
  h2c = await listenH2(createH2cServer(), onH2Stream);
  h2tls = await startTlsH2Upstream('Interim Flood CA', pki.path, onH2Stream);
  gw = await startInProcess({
    server: { timeouts: { upstream_response: `${RESPONSE_MS}ms` } },
    services: {
      h1: service(port(h1)),
      // A service bound far beyond the test: only its route's own bound can end /fast/*.
      slow: service(port(h1), { timeouts: { upstream_response: '60s' } }),
      h2c: service(port(h2c), { http2: true }),
      h2tls: service(port(h2tls.server), h2tls.serviceKeys),
    },
    routes: [
      { name: 'h1', match: { path_prefix: '/h1' }, service: 'h1' },
      { name: 'fast', match: { path_prefix: '/fast' }, service: 'slow', timeouts: { upstream_response: `${RESPONSE_MS}ms` } },
      { name: 'h2c', match: { path_prefix: '/h2c' }, service: 'h2c' },
      { name: 'h2tls', match: { path_prefix: '/h2tls' }, service: 'h2tls' },
      { name: 'rest', match: { path_prefix: '/' }, service: 'h1' },
    ],
  });
});

after(async () => {
  for (const t of timers) clearInterval(t);
  await gw?.close();
  h1?.close();
  h2c?.close();
  h2tls?.server.close();
  pki.remove();
});

/** A GET on its own connection; `extra` head lines (each ending in CRLF) replace Connection: close. */
function get(path: string, extra = 'Connection: close\r\n'): Promise<RawResponse> {
  return rawRequest(gw.gateway.port, `GET ${path} HTTP/1.1\r\nHost: a.test\r\n${extra}\r\n`, CLIENT_WAIT_MS);
}

function completed(res: RawResponse): Record<string, unknown> | undefined {
  return gw.logs.find((l) => l.msg === 'Request Completed' && l.request_id === res.headers['x-request-id']);
}

const WEBSOCKET = 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';

const FLOODS: ReadonlyArray<{ readonly name: string; readonly path: string; readonly service: string; readonly extra?: string; readonly cause: RegExp }> = [
  { name: 'HTTP/1.1, 103 Early Hints', path: '/h1/103', service: 'h1', cause: /^InterimResponsesTimeout\(UND_ERR_HEADERS_TIMEOUT\)$/ },
  { name: 'HTTP/1.1, 102 Processing', path: '/h1/102', service: 'h1', cause: /^InterimResponsesTimeout\(UND_ERR_HEADERS_TIMEOUT\)$/ },
  { name: 'HTTP/1.1, to a WebSocket handshake', path: '/h1/ws', service: 'h1', extra: WEBSOCKET, cause: /^InterimResponsesTimeout\(UND_ERR_HEADERS_TIMEOUT\)$/ },
  { name: "HTTP/1.1, the route's own upstream_response", path: '/fast/103', service: 'slow', cause: /^InterimResponsesTimeout\(UND_ERR_HEADERS_TIMEOUT\)$/ },
  { name: 'HTTP/2 over h2c', path: '/h2c/103', service: 'h2c', cause: /\(UND_ERR_HEADERS_TIMEOUT\)$/ },
  { name: 'HTTP/2 over TLS', path: '/h2tls/103', service: 'h2tls', cause: /\(UND_ERR_HEADERS_TIMEOUT\)$/ },
];

for (const c of FLOODS) {
  test(`interim heads every 100 ms and never a final one (${c.name}): 504 upstream_timeout, the upstream's fault`, async () => {
    const downBefore = gw.logs.filter((l) => l.msg === 'Upstream Down' && l.upstream_service === c.service).length;
    const res = await get(c.path, c.extra);
    assert.equal(res.status, 504);
    assert.equal(JSON.parse(res.body).code, 'upstream_timeout');
    const line = completed(res);
    assert.equal(line?.status, 504);
    assert.equal(line?.error, 'UPSTREAM_TIMEOUT');
    assert.match(String(line?.cause), c.cause);
    // Counted against the upstream's health, as any response timeout (passive_cooldown 50 ms: each one is logged).
    await waitFor(() => gw.logs.filter((l) => l.msg === 'Upstream Down' && l.upstream_service === c.service).length > downBefore, 'Upstream Down');
    await sleep(100); // the cooldown over
    const next = await get(c.path.replace(/\/[^/]*$/, '/ok'));
    assert.equal(next.status, 200, 'the next request is served');
  });
}

test('an interim head then the final one: relayed as before', async () => {
  const res = await get('/h1/103-then-200');
  assert.equal(res.status, 200);
  assert.equal(res.body, 'final');
});

test('an interim head at once, then an upload longer than upstream_response the upstream reads before answering: 200', async () => {
  const socket = await openSocket(gw.gateway.port);
  socket.write(`POST /h1/103-then-upload HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\nContent-Length: ${UPLOAD_BYTES}\r\n\r\n`);
  const answer = responseUntilClose(socket, CLIENT_WAIT_MS);
  // Five pieces 400 ms apart: the body takes about 1.6 s to arrive, over the 1 s bound, never silent for long.
  for (let i = 0; i < 5; i++) {
    await sleep(400);
    socket.write(Buffer.alloc(UPLOAD_BYTES / 5, 0x61));
  }
  const res = await answer;
  assert.equal(res.status, 200);
  assert.equal(res.body, String(UPLOAD_BYTES));
});
