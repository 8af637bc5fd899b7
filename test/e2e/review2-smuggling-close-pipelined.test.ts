// Bytes after a request that ends its connection (found by review). A request with `Connection: close`, or an
// HTTP/1.0 request without keep-alive, is the client's last on that connection (RFC 9112 §9.6: the server MUST send
// the final response to it, then close, and SHOULD NOT process anything after it). llhttp refuses any byte that
// follows such a request (HPE_CLOSED_CONNECTION), and the gateway's clientError handler destroyed the socket because
// a request was still being answered: the request had already gone upstream (a POST was carried out), yet its client
// got no response at all, or a response cut in the middle when the stray bytes came while it streamed. A pipelined
// request was enough, or any byte sent while the response was on its way. Now those bytes are ignored: the request
// is answered whole, the connection closes after it, and nothing after it reaches an upstream.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, parseHead } from '../helpers/raw.js';

let upstream: Server;
const upstreamSockets = new Set<Socket>();
/** Every request line the upstream received. */
const received: string[] = [];
let gw: InProcessGateway;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

before(async () => {
  // Answers by path: /slow after 300 ms, /stream its head and half its body at once and the rest 400 ms later,
  // anything else at once (a body, if declared by Content-Length, is read first).
  upstream = createServer((socket) => {
    upstreamSockets.add(socket);
    socket.on('close', () => upstreamSockets.delete(socket));
    socket.on('error', () => undefined);
    let buffer = '';
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      for (;;) {
        const headEnd = buffer.indexOf('\r\n\r\n');
        if (headEnd === -1) return;
        const head = buffer.slice(0, headEnd);
        const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (buffer.length < headEnd + 4 + length) return;
        buffer = buffer.slice(headEnd + 4 + length);
        const line = head.split('\r\n')[0]!;
        received.push(line);
        const path = line.split(' ')[1]!;
        if (path === '/slow') setTimeout(() => socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow`), 300);
        else if (path === '/stream') {
          socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfirst');
          setTimeout(() => socket.write('-last'), 400);
        } else socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`);
      }
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const port = (upstream.address() as { port: number }).port;
  gw = await startInProcess({
    services: { api: { upstreams: [{ name: 'api', address: '127.0.0.1', port }], health_check: { enabled: false } } },
    routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'api', auth: 'off' }],
  });
});

after(async () => {
  await gw?.close();
  for (const socket of upstreamSockets) socket.destroy();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
});

/** Writes `parts` (waiting `gapMs` between them) and collects all the gateway sends until it closes the connection. */
async function exchange(parts: readonly string[], gapMs = 0): Promise<{ status: number; headers: Record<string, string>; body: string; raw: string }> {
  const socket = await openSocket(gw.gateway.port);
  socket.on('error', () => undefined);
  let raw = '';
  socket.on('data', (chunk: Buffer) => (raw += chunk.toString('latin1')));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  for (const part of parts) {
    if (!socket.destroyed) socket.write(part);
    if (gapMs > 0) await sleep(gapMs);
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    socket.destroy();
  }, 5_000);
  await closed;
  clearTimeout(timer);
  assert.equal(timedOut, false, 'the gateway closes the connection after the answer');
  const split = raw.indexOf('\r\n\r\n');
  if (split === -1) return { status: 0, headers: {}, body: '', raw };
  return { ...parseHead(raw.slice(0, split)), body: raw.slice(split + 4), raw };
}

test('a request pipelined behind one with Connection: close: the first is answered, the second never goes upstream', async () => {
  for (const [first, target] of [
    ['GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', '/a'],
    ['GET /b HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n', '/b'],
    ['GET /c HTTP/1.0\r\nHost: x\r\n\r\n', '/c'],
    ['POST /d HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc', '/d'],
  ] as const) {
    const before = received.length;
    const res = await exchange([`${first}GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n`]);
    assert.equal(res.status, 200, `${target}: ${JSON.stringify(res.raw)}`);
    assert.equal(res.body, target);
    assert.equal((res.raw.match(/HTTP\/1\.1 /g) ?? []).length, 1, 'one response only');
    assert.deepEqual(received.slice(before).map((line) => line.split(' ')[1]), [target], 'only the first request went upstream');
  }
});

test('stray bytes while a Connection: close request waits for its upstream, or while its response streams', async () => {
  const slow = await exchange(['GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 'GET /later HTTP/1.1\r\nHost: x\r\n\r\n', '\r\n'], 100);
  assert.equal(slow.status, 200, JSON.stringify(slow.raw));
  assert.equal(slow.body, 'slow');
  const streamed = await exchange(['GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 'junk', 'more junk\r\n\r\n'], 150);
  assert.equal(streamed.status, 200, JSON.stringify(streamed.raw));
  assert.equal(streamed.body, 'first-last', 'the response is whole, not cut when the stray bytes came');
  assert.ok(!received.some((line) => line.includes('/later')), 'nothing after the last request reached the upstream');
});
