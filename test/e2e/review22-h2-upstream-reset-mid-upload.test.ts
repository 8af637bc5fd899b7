// An HTTP/2 upstream that resets a request's stream while the gateway is still sending the upload is an upstream
// reset, logged with its code (UpstreamStreamReset(HTTP2_RST_STREAM_INTERNAL_ERROR)) and answered 502 upstream_reset,
// as the same reset after the upload is (review8-h2-upstream-reset-mid-body). It was a 502 proxy_error logged
// Error(ERR_STREAM_PREMATURE_CLOSE), "an upstream failure of no known kind": node's pipeline reports the reset of a
// stream it is writing as its own premature close, and only REFUSED_STREAM was read back from the stream.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { createServer, type Http2Server, type ServerHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

let upstream: Http2Server;
const sessions = new Set<ServerHttp2Session>();
let gw: InProcessGateway;

before(async () => {
  // /<code>/...: the stream is reset with that code at the upload's first DATA frame, before any response head.
  upstream = createServer();
  upstream.on('session', (session: ServerHttp2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  upstream.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    const code = Number(String(headers[':path']).split('/')[1]);
    stream.once('data', () => stream.close(code));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  gw = await startInProcess({
    services: { api: { http2: true, upstreams: upstreams([(upstream.address() as AddressInfo).port]), health_check: { enabled: false } } },
    routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'api' }],
  });
});

after(async () => {
  await gw?.close();
  for (const session of sessions) session.destroy();
  upstream?.close();
});

/** POSTs 20 pieces of 16 KiB, 20 ms apart (chunked, or with their Content-Length); resolves with status and body. */
function upload(path: string, declared: boolean): Promise<{ status: number | undefined; body: string }> {
  const piece = Buffer.alloc(16_384, 'u');
  const headers = declared ? { 'content-length': String(piece.length * 20) } : { 'transfer-encoding': 'chunked' };
  return new Promise((resolve) => {
    const req = request({ port: gw.gateway.port, host: '127.0.0.1', method: 'POST', path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', () => resolve({ status: undefined, body: '' }));
    let sent = 0;
    const timer = setInterval(() => {
      if (req.destroyed) return clearInterval(timer);
      if (sent++ < 20) req.write(piece);
      else {
        clearInterval(timer);
        req.end();
      }
    }, 20);
  });
}

const completed = (path: string) => gw.logs.find((l) => l.msg === 'Request Completed' && l.path === path);

const CASES: ReadonlyArray<readonly [number, string]> = [
  [0x2, 'INTERNAL_ERROR'],
  [0x1, 'PROTOCOL_ERROR'],
  [0xd, 'HTTP_1_1_REQUIRED'],
  [0x20, '32'], // a code RFC 9113 does not name: its number, as node's own message gives it
];

for (const [code, name] of CASES) {
  for (const declared of [false, true]) {
    test(`RST_STREAM ${name} at the upload's first DATA (${declared ? 'Content-Length' : 'chunked'}): 502 upstream_reset, logged with its code`, async () => {
      const path = `/${code}/${declared ? 'length' : 'chunked'}`;
      const { status, body } = await upload(path, declared);
      assert.equal(status, 502);
      assert.equal(JSON.parse(body).code, 'upstream_reset');
      await waitFor(() => completed(path) !== undefined, 'the access line', 5_000);
      assert.equal(completed(path)!.error, 'UPSTREAM_RESET');
      assert.equal(completed(path)!.cause, `UpstreamStreamReset(HTTP2_RST_STREAM_${name})`);
    });
  }
}
