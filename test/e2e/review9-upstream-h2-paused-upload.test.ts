// A client that pauses its upload to an HTTP/2 upstream (found by review). undici times an HTTP/2 request's response
// head with the stream's idle timeout, which ran while the request body was still being sent: a client that paused
// its upload for upstream_response (within request_body_chunk, which bounds a client's silence) got 504
// upstream_timeout, and the upstream left rotation for it ("Upstream Down", reason UPSTREAM_TIMEOUT): any client could
// take an HTTP/2 upstream out with one such request per passive cooldown, where over HTTP/1.1 the same upload was
// answered. Now, until the response head, the stream's timeout skips while the gateway has sent all it was given of an
// unfinished body (it waits on the client); it runs again from the body's next write or end. Body bytes the upstream
// does not take (its flow-control window stays closed) are still the upstream's silence: 504 and counted.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createH2cServer, type Http2Server, type ServerHttp2Stream } from 'node:http2';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, responseUntilClose, type RawResponse } from '../helpers/raw.js';
import { pkiDir } from '../helpers/tls.js';
import { listenH2, oneUpstreamService as service, portOf as port, startTlsH2Upstream, type TlsH2Upstream } from '../helpers/upstream-fault.js';
import { sleep } from '../helpers/wait.js';

const RESPONSE_MS = 1_000;
/** Half the body of the closed-window case: more than node's stream buffer, so what the upstream leaves untaken shows. */
const HALF = 100_000;
/** The client's pause: twice upstream_response, well within request_body_chunk. */
const PAUSE_MS = 2_000;

/** /count: reads the body, answers its length; /silent: reads the body, never answers. */
function onStream(stream: ServerHttp2Stream, headers: Record<string, unknown>): void {
  stream.on('error', () => undefined);
  let bytes = 0;
  stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
  stream.on('end', () => {
    if (String(headers[':path']).endsWith('/silent') || stream.destroyed) return;
    stream.respond({ ':status': 200 });
    stream.end(String(bytes));
  });
}

const pki = pkiDir();
let h1: HttpServer;
let h2c: Http2Server;
let h2tls: TlsH2Upstream;
/** An h2c upstream whose streams' flow-control window starts at 0 and that never reads: no body byte can go out. */
let closedWindow: Http2Server;
let gw: InProcessGateway;

before(async () => {
  h1 = createHttpServer((req, res) => {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => (bytes += chunk.length));
    req.on('end', () => res.end(String(bytes)));
  });
  await new Promise<void>((resolve) => h1.listen(0, '127.0.0.1', resolve));
  h2c = await listenH2(createH2cServer(), onStream);
  h2tls = await startTlsH2Upstream('Paused Upload CA', pki.path, onStream);
  closedWindow = await listenH2(createH2cServer({ settings: { initialWindowSize: 0 } }), (stream) => stream.on('error', () => undefined));
  gw = await startInProcess({
    server: { timeouts: { upstream_response: `${RESPONSE_MS}ms`, request_body_chunk: '10s' } },
    services: {
      h1: service(port(h1)),
      h2c: service(port(h2c), { http2: true }),
      h2tls: service(port(h2tls.server), h2tls.serviceKeys),
      closed: service(port(closedWindow), { http2: true }),
    },
    routes: [
      { name: 'h1', match: { path_prefix: '/h1' }, service: 'h1' },
      { name: 'h2c', match: { path_prefix: '/h2c' }, service: 'h2c' },
      { name: 'h2tls', match: { path_prefix: '/h2tls' }, service: 'h2tls' },
      { name: 'closed', match: { path_prefix: '/closed' }, service: 'closed' },
    ],
  });
});

after(async () => {
  await gw?.close();
  for (const server of [h1, h2c, h2tls?.server, closedWindow]) server?.close();
  pki.remove();
});

/** A POST of 10 bytes: 5, a pause of `pauseMs`, 5. */
async function pausedPost(path: string, pauseMs: number): Promise<RawResponse> {
  const socket = await openSocket(gw.gateway.port);
  socket.write(`POST ${path} HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\nContent-Length: 10\r\n\r\nabcde`);
  const answer = responseUntilClose(socket, 10_000);
  await sleep(pauseMs);
  if (!socket.destroyed) socket.write('fghij');
  return answer;
}

function completed(res: RawResponse): Record<string, unknown> | undefined {
  return gw.logs.find((l) => l.msg === 'Request Completed' && l.request_id === res.headers['x-request-id']);
}

const downs = (service: string): number => gw.logs.filter((l) => l.msg === 'Upstream Down' && l.upstream_service === service).length;

for (const service of ['h1', 'h2c', 'h2tls']) {
  test(`${service}: an upload paused for twice upstream_response is answered, and the upstream stays in rotation`, async () => {
    const res = await pausedPost(`/${service}/count`, PAUSE_MS);
    assert.equal(res.status, 200, `200 (got ${res.status}: ${res.body})`);
    assert.match(res.body, /10/);
    assert.equal(completed(res)?.error, undefined);
    assert.equal(downs(service), 0, 'no Upstream Down');
  });
}

test('h2c: after a paused upload, an upstream that never answers still gets upstream_response from the body end', async () => {
  const res = await pausedPost('/h2c/silent', PAUSE_MS);
  assert.equal(res.status, 504);
  assert.equal(JSON.parse(res.body).code, 'upstream_timeout');
  assert.equal(completed(res)?.cause, 'HeadersTimeoutError(UND_ERR_HEADERS_TIMEOUT)');
  assert.equal(downs('h2c'), 1, 'the upstream is to blame');
});

test('h2c: an upstream whose flow-control window never opens is still cut at upstream_response, and blamed', async () => {
  const socket = await openSocket(gw.gateway.port);
  socket.on('error', () => undefined);
  // Half of the body, then the client waits (within request_body_chunk): what was sent is queued on the stream.
  socket.write(`POST /closed/upload HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\nContent-Length: ${2 * HALF}\r\n\r\n`);
  socket.write(Buffer.alloc(HALF, 0x61));
  const res = await responseUntilClose(socket, 8_000);
  assert.equal(res.status, 504);
  assert.equal(JSON.parse(res.body).code, 'upstream_timeout');
  assert.equal(downs('closed'), 1);
});
