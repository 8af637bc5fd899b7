// An HTTP/2 upstream's response head with many small fields (found by review). The gateway bounds a response head at
// 16 KB of names and values, from an HTTP/1 or an HTTP/2 upstream alike (README, the 502 row). But node's HTTP/2
// client resets a stream whose head or trailer section has more than 128 fields, or more than 64 KB counted with 32
// bytes per field, with ENHANCE_YOUR_CALM, and undici passes node no option for either: a head of 300 fields, 1.5 KB
// in all, was relayed from an HTTP/1 upstream and answered 502 upstream_reset from an HTTP/2 one (h2c or TLS), logged
// as the upstream's own reset (UpstreamStreamReset(HTTP2_RST_STREAM_ENHANCE_YOUR_CALM)); its trailers were cut the
// same way. Now every head the 16 KB count passes is relayed whatever its number of fields, and one over it is 502
// upstream_protocol over either protocol, never counted against the upstream.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Server, Socket } from 'node:net';
import { createServer as createH2cServer, type Http2Server, type ServerHttp2Stream } from 'node:http2';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { rawRequest, type RawResponse } from '../helpers/raw.js';
import { pkiDir } from '../helpers/tls.js';
import { listenH2, oneUpstreamService, portOf as port, startRawH1Upstream, startTlsH2Upstream, type TlsH2Upstream } from '../helpers/upstream-fault.js';

/** `count` fields h0..h<count-1>, each with the value v: 300 are 1.4 KB, 2,000 are 11 KB, 3,000 are 17 KB (over 16 KB). */
function fields(count: number): Array<[string, string]> {
  return Array.from({ length: count }, (_, i) => [`h${i}`, 'v']);
}

/** The field count a path asks for: /<protocol>/head/<n> or /<protocol>/trailers/<n>. */
function countOf(path: string): number {
  return Number(path.split('/')[3]);
}

function onH2Stream(stream: ServerHttp2Stream, headers: Record<string, unknown>): void {
  stream.on('error', () => undefined);
  const path = String(headers[':path']);
  if (path.includes('/trailers/')) {
    stream.respond({ ':status': 200 }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers(Object.fromEntries(fields(countOf(path)))));
    stream.end('ok');
    return;
  }
  stream.respond({ ':status': 200, ...Object.fromEntries(fields(countOf(path))) });
  stream.end('ok');
}

/** HTTP/1.1 upstream: the fields the path asks for, then ok. */
function onH1Head(socket: Socket, _rest: Buffer, path: string): void {
  const lines = fields(countOf(path)).map(([n, v]) => `${n}: ${v}\r\n`).join('');
  socket.end(`HTTP/1.1 200 OK\r\n${lines}Content-Length: 2\r\n\r\nok`);
}

const pki = pkiDir();
let h1: Server;
let h2c: Http2Server;
let h2tls: TlsH2Upstream;
let gw: InProcessGateway;
/** This file's services keep the default passive cooldown (oneUpstreamService's is 50 ms). */
const service = (p: number, extra: Record<string, unknown> = {}): Record<string, unknown> => oneUpstreamService(p, { health_check: { enabled: false }, ...extra });

before(async () => {
  h1 = await startRawH1Upstream(onH1Head);
  h2c = await listenH2(createH2cServer(), onH2Stream);
  h2tls = await startTlsH2Upstream('Head Fields CA', pki.path, onH2Stream);
  gw = await startInProcess({
    services: {
      h1: service(port(h1)),
      h2c: service(port(h2c), { http2: true }),
      h2tls: service(port(h2tls.server), h2tls.serviceKeys),
    },
    routes: [
      { name: 'h1', match: { path_prefix: '/h1' }, service: 'h1' },
      { name: 'h2c', match: { path_prefix: '/h2c' }, service: 'h2c' },
      { name: 'h2tls', match: { path_prefix: '/h2tls' }, service: 'h2tls' },
    ],
  });
});

after(async () => {
  await gw?.close();
  h1?.close();
  h2c?.close();
  h2tls?.server.close();
  pki.remove();
});

function get(path: string): Promise<RawResponse> {
  return rawRequest(gw.gateway.port, `GET ${path} HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n`, 8_000);
}

function completed(res: RawResponse): Record<string, unknown> | undefined {
  return gw.logs.find((l) => l.msg === 'Request Completed' && l.request_id === res.headers['x-request-id']);
}

for (const protocol of ['h1', 'h2c', 'h2tls']) {
  for (const count of [300, 2_000]) {
    test(`${protocol}: a response head of ${count} small fields (under 16 KB) is relayed whole`, async () => {
      const res = await get(`/${protocol}/head/${count}`);
      assert.equal(res.status, 200, `200 (got ${res.status}: ${res.body})`);
      assert.match(res.body, /ok/);
      assert.equal(res.headers[`h${count - 1}`], 'v', 'the last field is there');
      assert.equal(completed(res)?.error, undefined);
    });
  }

  test(`${protocol}: a response head of 3,000 small fields (over 16 KB) is 502 upstream_protocol, not counted`, async () => {
    const res = await get(`/${protocol}/head/3000`);
    assert.equal(res.status, 502);
    assert.equal(JSON.parse(res.body).code, 'upstream_protocol');
    assert.equal(completed(res)?.cause, 'HeadersOverflowError(UND_ERR_HEADERS_OVERFLOW)');
    assert.equal(gw.logs.filter((l) => l.msg === 'Upstream Down').length, 0);
  });
}

for (const protocol of ['h2c', 'h2tls']) {
  test(`${protocol}: a trailer section of 300 small fields is relayed whole`, async () => {
    const res = await get(`/${protocol}/trailers/300`);
    assert.equal(res.status, 200);
    assert.match(res.body, /\r\nh299: v\r\n/, 'the last trailer is relayed after the last chunk');
    assert.equal(completed(res)?.error, undefined);
  });
}
