// Upstream answers that are valid HTTP but trip undici or node on the way back: a 304, 204 or HEAD answer carrying
// Content-Length (RFC 9110 §8.6 allows it for 304 and HEAD; IIS sends it), a reason phrase outside plain ASCII, and
// a failure before any byte of the response reached the client, which can still be answered with a status.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCannedUpstream, type CannedUpstream } from '../helpers/canned-upstream.js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, parseHead } from '../helpers/raw.js';

/** What the upstream answers, by request path (latin1 bytes). */
const ANSWERS: Record<string, string> = {
  '/304': 'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n',
  '/304-cl': 'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nContent-Length: 1234\r\n\r\n',
  '/204-cl': 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello',
  '/head-cl': 'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n',
  '/no-body-then-close': 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n',
  '/reason-utf8': Buffer.from('HTTP/1.1 200 OK \u2713\r\nContent-Length: 2\r\n\r\nok', 'utf8').toString('latin1'),
  '/reason-latin1': 'HTTP/1.1 404 N\xe3o \xff\r\nContent-Length: 2\r\n\r\nno',
  '/reason-custom': 'HTTP/1.1 200 Fine\tThanks\r\nContent-Length: 2\r\n\r\nok',
};

let upstream: CannedUpstream;
let gw: InProcessGateway;

before(async () => {
  upstream = await startCannedUpstream(ANSWERS);
  const port = upstream.port;
  gw = await startInProcess({ load_balancing: { upstreams: [{ name: 'raw', address: '127.0.0.1', port }], retries: 0 } });
});

after(async () => {
  await gw.close();
  await upstream.close();
});

interface Exchange {
  statusLine: string;
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** One request on its own connection (closed by the gateway), read raw: HTTP clients refuse a 304 with a length. */
async function exchange(method: string, path: string): Promise<Exchange> {
  const socket = await openSocket(gw.gateway.port);
  const data = await new Promise<string>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`no end of response: ${JSON.stringify(text)}`)), 5_000);
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.once('error', reject);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    socket.write(`${method} ${path} HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n`);
  });
  const split = data.indexOf('\r\n\r\n');
  assert.notEqual(split, -1, `${method} ${path}: a response head (got ${JSON.stringify(data)})`);
  return { statusLine: data.slice(0, data.indexOf('\r\n')), ...parseHead(data.slice(0, split)), body: data.slice(split + 4) };
}

/** The access log's Request Completed line for a response. */
function completed(res: Exchange): Record<string, unknown> | undefined {
  return gw.logs.find((l) => l.msg === 'Request Completed' && l.request_id === res.headers['x-request-id']);
}

test('a 304, with or without Content-Length, is relayed with its headers and no body', async () => {
  for (const path of ['/304', '/304-cl']) {
    const res = await exchange('GET', path);
    assert.equal(res.status, 304, path);
    assert.equal(res.headers.etag, '"x"', path);
    assert.equal(res.headers['x-proxy-by'] !== undefined, true, path);
    assert.equal(res.headers['transfer-encoding'], undefined, `${path}: no chunked framing`);
    assert.equal(res.body, '', path);
    assert.equal(completed(res)?.error, undefined, `${path}: not logged as an error`);
  }
  assert.equal((await exchange('GET', '/304-cl')).headers['content-length'], '1234', 'the length as the upstream sent it');
});

test('a 204 with Content-Length is relayed without it (RFC 9110 §8.6) and without the bytes after its head', async () => {
  const res = await exchange('GET', '/204-cl');
  assert.equal(res.status, 204);
  assert.equal(res.headers['content-length'], undefined);
  assert.equal(res.body, '');
  assert.equal(completed(res)?.status, 204);
});

test('the answer to HEAD keeps its Content-Length and has no body', async () => {
  const res = await exchange('HEAD', '/head-cl');
  assert.equal(res.status, 200);
  assert.equal(res.headers['content-length'], '50');
  assert.equal(res.body, '');
});

test('an upstream failure before any byte reached the client is answered with a status, not a cut connection', async () => {
  const res = await exchange('GET', '/no-body-then-close');
  assert.equal(res.status, 502);
  assert.match(res.body, /"code":"upstream_/);
  assert.equal(completed(res)?.status, 502);
});

test('a reason phrase node cannot send is replaced by the standard one; a plain custom one is relayed', async () => {
  const utf8 = await exchange('GET', '/reason-utf8');
  assert.equal(utf8.statusLine, 'HTTP/1.1 200 OK');
  assert.equal(utf8.body, 'ok');
  const latin1 = await exchange('GET', '/reason-latin1');
  assert.equal(latin1.statusLine, 'HTTP/1.1 404 Not Found');
  assert.equal(latin1.body, 'no');
  assert.equal(completed(latin1)?.status, 404);
  const custom = await exchange('GET', '/reason-custom');
  assert.equal(custom.statusLine, 'HTTP/1.1 200 Fine\tThanks');
  assert.equal(custom.body, 'ok');
});
