// An upstream that sends interim (1xx) heads while it leaves the request body unread (found by review of 380471a).
// undici's own wait for an HTTP/1 response head fires during a body write only when the upstream is not taking it
// (client-h1.js: the socket needs a drain), but every 1xx restarts that wait; 380471a's bound on interim heads
// counted from the end of the body, which never comes while the upstream reads none of it. So an upstream that sent
// 103 every 100 ms and stopped reading an upload held the request, its client and a pool connection for as long as
// it kept on: the client's silence bound (request_body_chunk) does not run while the gateway itself holds the body
// back, and nothing else ended it before server.timeouts.request. Now the interim bound also runs while the body is
// unfinished, and ends the attempt when a whole period passed with the body held back by the upstream and no byte of
// it taken: 504 upstream_timeout, the upstream's fault. A body the upstream reads (slowly, over longer than the
// bound) after an early 103, or a client that pauses its own upload, is not cut by it. Members: HTTP/1.1 with 103 and
// with 102, a chunked body through the max_body_size counter (the body undici reads is the gateway's own stream),
// HTTP/2 over h2c (whose stream timer a 1xx never restarts; checked alike).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Server, Socket } from 'node:net';
import { createServer as createH2cServer, type Http2Server, type ServerHttp2Stream } from 'node:http2';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, parseHead, type RawResponse } from '../helpers/raw.js';
import { answerCountAt, listenH2, oneUpstreamService as service, portOf as port, startRawH1Upstream } from '../helpers/upstream-fault.js';
import { sleep } from '../helpers/wait.js';

/** The bound under test: short, so each case ends in about two seconds. */
const RESPONSE_MS = 1_000;
/** Far beyond the bound: a request still unanswered then was held by the upstream. */
const CLIENT_WAIT_MS = 8_000;
/** The declared upload of a flood: more than every socket buffer between client and upstream holds. */
const BODY_BYTES = 256 * 1024 * 1024;

const timers = new Set<NodeJS.Timeout>();
function everyMs(ms: number, alive: () => boolean, send: () => void): void {
  const timer = setInterval(() => (alive() ? send() : clearInterval(timer)), ms);
  timers.add(timer);
}
const every100ms = (alive: () => boolean, send: () => void): void => everyMs(100, alive, send);
const every200ms = (alive: () => boolean, send: () => void): void => everyMs(200, alive, send);

/** HTTP/1.1 upstream, by path, once it has a request's head. */
const H1: Record<string, (socket: Socket, rest: Buffer) => void> = {
  // Interim heads for ever, the body never read.
  '/h1/103': (s) => {
    s.pause();
    every100ms(() => !s.destroyed, () => s.write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n'));
  },
  '/counted/103': (s) => H1['/h1/103']!(s, Buffer.alloc(0)),
  '/h1/102': (s) => {
    s.pause();
    every100ms(() => !s.destroyed, () => s.write('HTTP/1.1 102 Processing\r\n\r\n'));
  },
  // 103 at once, then the body read in bursts of 512 KB every 200 ms (five in each bound: a loaded machine's late timer
  // never leaves a whole bound without progress) for about 2.5 s while the rest waits in the gateway, then the rest as fast as it comes: answered with the count at its end.
  '/h1/slow-reader': (s, rest) => {
    s.write('HTTP/1.1 103 Early Hints\r\n\r\n');
    let got = rest.length;
    let burst = 0;
    s.pause();
    s.on('data', (chunk: Buffer) => {
      got += chunk.length;
      burst += chunk.length;
      if (got < SLOW_PHASE_BYTES && burst >= 512 * 1024) s.pause();
      if (got >= SLOW_BYTES) s.end(`HTTP/1.1 200 OK\r\nContent-Length: ${String(got).length}\r\n\r\n${got}`);
    });
    every200ms(() => !s.destroyed && got < SLOW_PHASE_BYTES, () => {
      burst = 0;
      s.resume();
    });
  },
  // 103 at once, then the body read as it comes (the client pauses its own upload), then the answer.
  '/h1/client-pauses': (s, rest) => {
    s.write('HTTP/1.1 103 Early Hints\r\n\r\n');
    answerCountAt(s, rest, PAUSED_BYTES);
  },
};
/** /h1/slow-reader's upload, of which it reads the first SLOW_PHASE_BYTES slowly (more than the gateway buffers stay behind). */
const SLOW_BYTES = 32 * 1024 * 1024;
const SLOW_PHASE_BYTES = 6 * 1024 * 1024;
const PAUSED_BYTES = 3_000;

/** HTTP/2 upstream: 103 every 100 ms, the stream's body never read (its flow-control window closes). */
function onH2Stream(stream: ServerHttp2Stream): void {
  stream.on('error', () => undefined);
  stream.pause();
  every100ms(() => !stream.destroyed && !stream.closed, () => stream.additionalHeaders({ ':status': 103 }));
}

let h1: Server;
let h2c: Http2Server;
let gw: InProcessGateway;

before(async () => {
  h1 = await startRawH1Upstream((socket, rest, path) => H1[path]!(socket, rest));
  h2c = await listenH2(createH2cServer(), onH2Stream);
  gw = await startInProcess({
    server: { timeouts: { upstream_response: `${RESPONSE_MS}ms`, request_body_chunk: '3s' } },
    services: { h1: service(port(h1)), h2c: service(port(h2c), { http2: true }) },
    routes: [
      { name: 'h1', match: { path_prefix: '/h1' }, service: 'h1' },
      { name: 'h2c', match: { path_prefix: '/h2c' }, service: 'h2c' },
      // A chunked body on a route with max_body_size goes through the gateway's counter (a stream of its own).
      { name: 'counted', match: { path_prefix: '/counted' }, service: 'h1', max_body_size: '1GB' },
    ],
  });
});

after(async () => {
  for (const t of timers) clearInterval(t);
  await gw?.close();
  h1?.close();
  h2c?.close();
});

/**
 * The answer on `socket`: resolved once its head and Content-Length body are in (a gateway that answers mid-upload
 * reads and drops the rest for a while before it closes), or at the close. A write of the upload may fail meanwhile
 * (EPIPE): what was read still counts. Rejects after CLIENT_WAIT_MS.
 */
function answerOf(socket: Socket): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete response in ${CLIENT_WAIT_MS} ms: ${JSON.stringify(data.slice(0, 200))}`));
    }, CLIENT_WAIT_MS);
    const parsed = (): RawResponse | undefined => {
      const split = data.indexOf('\r\n\r\n');
      if (split === -1) return undefined;
      return { ...parseHead(data.slice(0, split)), body: data.slice(split + 4) };
    };
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      data += chunk;
      const res = parsed();
      if (res !== undefined && res.body.length >= Number(res.headers['content-length'] ?? Infinity)) {
        clearTimeout(timer);
        resolve(res);
      }
    });
    socket.once('close', () => {
      clearTimeout(timer);
      const res = parsed();
      if (res === undefined) reject(new Error(`connection closed without a response head: ${JSON.stringify(data)}`));
      else resolve(res);
    });
  });
}

/**
 * A POST of `length` bytes, written as fast as the gateway takes them until its answer comes; chunked (no declared
 * length) when `chunked`.
 */
async function upload(path: string, length = BODY_BYTES, chunked = false): Promise<RawResponse> {
  const socket = await openSocket(gw.gateway.port);
  socket.on('error', () => undefined);
  const framing = chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${length}`;
  socket.write(`POST ${path} HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n${framing}\r\n\r\n`);
  const answer = answerOf(socket);
  let answered = false;
  answer.then(
    () => (answered = true),
    () => (answered = true),
  );
  const piece = Buffer.alloc(64 * 1024, 0x61);
  const chunk = chunked ? Buffer.concat([Buffer.from('10000\r\n'), piece, Buffer.from('\r\n')]) : piece;
  void (async () => {
    for (let sent = 0; sent < length && !answered && !socket.destroyed; sent += piece.length) {
      if (!socket.write(chunk)) await new Promise((resolve) => socket.once('drain', resolve).once('close', resolve));
    }
  })();
  try {
    return await answer;
  } finally {
    socket.destroy();
  }
}

function completed(res: RawResponse): Record<string, unknown> | undefined {
  return gw.logs.find((l) => l.msg === 'Request Completed' && l.request_id === res.headers['x-request-id']);
}

for (const path of ['/h1/103', '/h1/102', '/h2c/103', '/counted/103']) {
  test(`${path}: interim heads while the upstream reads none of the body: 504 upstream_timeout, the upstream's fault`, async () => {
    const res = await upload(path, BODY_BYTES, path.startsWith('/counted/'));
    assert.equal(res.status, 504, `504 (got ${res.status}: ${res.body})`);
    assert.equal(JSON.parse(res.body).code, 'upstream_timeout');
    const line = completed(res);
    assert.equal(line?.error, 'UPSTREAM_TIMEOUT');
    assert.match(String(line?.cause), /\(UND_ERR_HEADERS_TIMEOUT\)$/);
  });
}

test('103 at once, then the body read slowly for longer than upstream_response: 200', async () => {
  const res = await upload('/h1/slow-reader', SLOW_BYTES);
  assert.equal(res.status, 200, `200 (got ${res.status}: ${res.body})`);
  assert.equal(res.body, String(SLOW_BYTES));
});

test('103 at once, then the client pauses its upload for longer than upstream_response: 200', async () => {
  const socket = await openSocket(gw.gateway.port);
  socket.write(`POST /h1/client-pauses HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\nContent-Length: ${PAUSED_BYTES}\r\n\r\n`);
  const answer = answerOf(socket);
  socket.write(Buffer.alloc(PAUSED_BYTES / 2, 0x61));
  await sleep(2_000); // twice the bound, within request_body_chunk
  socket.write(Buffer.alloc(PAUSED_BYTES / 2, 0x61));
  const res = await answer;
  assert.equal(res.status, 200, `200 (got ${res.status}: ${res.body})`);
  assert.equal(res.body, String(PAUSED_BYTES));
});
