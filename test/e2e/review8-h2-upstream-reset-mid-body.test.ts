// An HTTP/2 upstream that resets a stream (RST_STREAM with an error code other than REFUSED_STREAM) in the middle of
// its response body, or before its head, is an upstream reset: the access log says UPSTREAM_RESET, with the code
// (UpstreamStreamReset(HTTP2_RST_STREAM_INTERNAL_ERROR)), not PROXY_ERROR ("an upstream failure of no known kind"),
// which node's ERR_HTTP2_STREAM_ERROR fell through to. A GOAWAY with an error code mid-body already was one. A reset of
// one stream does not count against the upstream's health (its answer to one request, as a 5xx would be); a GOAWAY
// with an error code before the head does. And the gateway's own CANCEL of an upstream stream (the client left
// mid-body, request_body_chunk ended the call) keeps its own classification: never logged as the upstream's reset.
// Not covered: the upstream's CANCEL, which node reports as no error (the stream's end, or, before the head, undici's
// "stream half-closed (remote)"): see the README's limits.
// Real sockets throughout: an h2c node:http2 upstream, a TLS gateway offering h2 and http/1.1, HTTP/1.1 and HTTP/2
// clients, gRPC and not.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpsRequest } from 'node:https';
import { constants, createServer, type Http2Server, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { h2connect } from '../helpers/h2.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

/** One length-prefixed gRPC message of 2 bytes: the part of the body sent before the reset. */
const MESSAGE = Buffer.from([0, 0, 0, 0, 2, 8, 1]);
const C = constants;
const pki = pkiDir();
let ca: TestCa;
let upstream: Http2Server;
const sessions = new Set<ServerHttp2Session>();
/** The RST_STREAM code each upstream stream closed with, by path (what the gateway sent it, for /hold). */
const upstreamRst = new Map<string, number | undefined>();
let gw: InProcessGateway;

/**
 * `/rst/<code>/...`: the head and one message, then RST_STREAM(code) with no END_STREAM before it. node's
 * stream.close(code) ends the stream's writable side first (END_STREAM, and the RST_STREAM is dropped), unless the
 * response waits for trailers: then that end is an empty DATA frame without END_STREAM and the RST_STREAM follows.
 * `/goaway/<code>/...`: the head and one message, then GOAWAY(code) covering the stream (it was processed).
 * `/rst-head/<code>/...`, `/goaway-head/<code>/...`: the same before any response head.
 * `/hold/...`: the head and one message, then nothing: the gateway's side ends it.
 */
function answer(stream: ServerHttp2Stream, path: string, contentType: string): void {
  const [, kind, code] = path.split('/');
  if (kind === 'rst-head') return void stream.close(Number(code));
  if (kind === 'goaway-head') return void stream.session?.goaway(Number(code), stream.id);
  stream.respond({ ':status': 200, 'content-type': contentType }, { waitForTrailers: true });
  stream.on('wantTrailers', () => undefined); // never sends them
  stream.write(MESSAGE);
  if (kind === 'hold') return;
  if (kind === 'rst-big') {
    // A body the client is slow to take: the gateway has paused the upstream stream when the reset comes.
    stream.write(Buffer.alloc(1024 * 1024));
    setTimeout(() => stream.close(Number(code)), 300);
    return;
  }
  setTimeout(() => {
    if (kind === 'rst') stream.close(Number(code));
    else stream.session?.goaway(Number(code), stream.id);
  }, 50);
}

before(async () => {
  ca = createTestCa('Reset Codes CA', pki.path);
  const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
  upstream = createServer();
  upstream.on('session', (session) => {
    sessions.add(session);
    session.on('error', () => undefined);
    session.once('close', () => sessions.delete(session));
  });
  upstream.on('stream', (stream, headers) => {
    const path = String(headers[':path']);
    stream.on('error', () => undefined);
    stream.once('close', () => upstreamRst.set(path, stream.rstCode));
    const go = (): void => answer(stream, path, String(headers['content-type'] ?? 'application/octet-stream'));
    // A held call answers at once and keeps reading; the others read the request body whole first, so that their
    // reset comes mid-response, not mid-upload.
    stream.resume();
    if (path.startsWith('/hold/') || stream.readableEnded) go();
    else stream.once('end', go);
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  gw = await startInProcess({
    server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile }, timeouts: { request_body_chunk: '1s' } },
    load_balancing: {
      http2: true,
      retries: 0,
      // Short, so that each case's health report is its own (a cooling-down upstream is still tried).
      health_check: { enabled: false, passive_cooldown: '1ms' },
      upstreams: upstreams([(upstream.address() as AddressInfo).port]),
    },
  });
});

after(async () => {
  await gw?.close();
  for (const session of sessions) session.destroy();
  await new Promise<void>((resolve) => upstream?.close(() => resolve()));
  pki.remove();
});

interface Outcome {
  readonly status: number;
  readonly body: number;
  /** HTTP/2: the stream's RST_STREAM code; HTTP/1.1: how the response ended (complete, aborted, error). */
  readonly cut: string;
  readonly grpcStatus: string | undefined;
}

type Client = 'h1' | 'h2';

/**
 * One POST with one message. `leave`: the client goes away once the first body bytes arrived (HTTP/2: RST_STREAM
 * CANCEL; HTTP/1.1: the connection destroyed); `silent`: the client sends its message and then nothing, not ending
 * its body (request_body_chunk ends it).
 */
async function viaH2(path: string, grpc: boolean, how: 'whole' | 'leave' | 'silent' | 'slow' = 'whole'): Promise<Outcome> {
  const session = await h2connect(gw.gateway.port, ca.ca);
  try {
    const contentType = grpc ? 'application/grpc' : 'application/octet-stream';
    const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': contentType, ...(grpc ? { te: 'trailers' } : {}) });
    let status = 0;
    let body = 0;
    let grpcStatus: string | undefined;
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('trailers', (t) => (grpcStatus = t['grpc-status'] as string | undefined));
    stream.on('data', (d: Buffer) => {
      body += d.length;
      if (how === 'leave') stream.close(C.NGHTTP2_CANCEL);
    });
    stream.on('error', () => undefined);
    if (how === 'slow') {
      // Reads nothing for a second (the flow-control windows fill up), then all of it.
      stream.pause();
      setTimeout(() => stream.resume(), 1_000);
    }
    if (how === 'whole' || how === 'slow') stream.end(MESSAGE);
    else stream.write(MESSAGE);
    await new Promise((resolve) => stream.once('close', resolve));
    return { status, body, cut: `rst ${stream.rstCode}`, grpcStatus };
  } finally {
    session.close();
  }
}

function viaH1(path: string, grpc: boolean, how: 'whole' | 'leave' = 'whole'): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port: gw.gateway.port,
        path,
        method: 'POST',
        ca: ca.ca,
        servername: 'a.test',
        agent: false,
        headers: { host: 'a.test', 'content-type': grpc ? 'application/grpc' : 'application/octet-stream', 'content-length': MESSAGE.length },
      },
      (res) => {
        let body = 0;
        let settled = false;
        const done = (cut: string): void => {
          if (settled) return;
          settled = true;
          resolve({ status: res.statusCode ?? 0, body, cut, grpcStatus: (res.trailers['grpc-status'] ?? res.headers['grpc-status']) as string | undefined });
        };
        res.on('data', (d: Buffer) => {
          body += d.length;
          if (how === 'leave') {
            res.socket.destroy();
            done('left');
          }
        });
        res.once('end', () => done(res.complete ? 'complete' : 'incomplete'));
        res.once('aborted', () => done('aborted'));
        res.once('error', () => done('error'));
      },
    );
    req.on('error', (err) => (how === 'leave' ? undefined : reject(err)));
    req.end(MESSAGE);
  });
}

function completed(path: string): Record<string, unknown> | undefined {
  return gw.logs.find((l) => l.msg === 'Request Completed' && l.path === path);
}

/** The upstream's passive-health failures so far (admin /api/status). */
async function failures(): Promise<number> {
  const res = await fetch(`${gw.adminUrl}/api/status`);
  const body = (await res.json()) as { upstreams: Array<{ failures: number }> };
  return body.upstreams[0]!.failures;
}

interface Seen {
  readonly outcome: Outcome;
  readonly line: Record<string, unknown>;
  /** Passive-health failures this request added. */
  readonly health: number;
}

let serial = 0;

async function run(kind: string, code: number, client: Client, grpc: boolean): Promise<Seen & { path: string }> {
  const path = `/${kind}/${code}/${client}-${grpc ? 'grpc' : 'plain'}-${serial++}`;
  const before = await failures();
  const outcome = client === 'h2' ? await viaH2(path, grpc) : await viaH1(path, grpc);
  await waitFor(() => completed(path) !== undefined, `the access log line of ${path}`);
  return { path, outcome, line: completed(path)!, health: (await failures()) - before };
}

const MID_BODY_RESETS: ReadonlyArray<readonly [string, number, string]> = [
  ['rst', C.NGHTTP2_INTERNAL_ERROR, 'UpstreamStreamReset(HTTP2_RST_STREAM_INTERNAL_ERROR)'],
  ['rst', C.NGHTTP2_PROTOCOL_ERROR, 'UpstreamStreamReset(HTTP2_RST_STREAM_PROTOCOL_ERROR)'],
  ['rst', C.NGHTTP2_ENHANCE_YOUR_CALM, 'UpstreamStreamReset(HTTP2_RST_STREAM_ENHANCE_YOUR_CALM)'],
  ['rst', C.NGHTTP2_STREAM_CLOSED, 'UpstreamStreamReset(HTTP2_RST_STREAM_STREAM_CLOSED)'],
  // A name with digits in it (review21: it was logged PROXY_ERROR, the name unread).
  ['rst', C.NGHTTP2_HTTP_1_1_REQUIRED, 'UpstreamStreamReset(HTTP2_RST_STREAM_HTTP_1_1_REQUIRED)'],
  ['goaway', C.NGHTTP2_INTERNAL_ERROR, 'SocketError(UND_ERR_SOCKET)'],
  ['goaway', C.NGHTTP2_ENHANCE_YOUR_CALM, 'SocketError(UND_ERR_SOCKET)'],
];

test('an upstream reset mid-body is logged UPSTREAM_RESET with its code, for HTTP/1.1 and HTTP/2 clients, gRPC or not', async () => {
  for (const [kind, code, cause] of MID_BODY_RESETS) {
    for (const client of ['h2', 'h1'] as const) {
      for (const grpc of [false, true]) {
        const { path, outcome, line, health } = await run(kind, code, client, grpc);
        const what = `${path}: ${JSON.stringify({ outcome, error: line.error, cause: line.cause, health })}`;
        assert.equal(outcome.status, 200, what);
        assert.equal(outcome.body, MESSAGE.length, `${what}: the bytes that came are relayed`);
        if (client === 'h1') assert.equal(outcome.cut, 'aborted', `${what}: the connection is cut`);
        // gRPC over HTTP/2 ends with trailers carrying UNAVAILABLE; anything else is cut with INTERNAL_ERROR.
        else if (grpc) assert.deepEqual([outcome.cut, outcome.grpcStatus], ['rst 0', '14'], what);
        else assert.equal(outcome.cut, `rst ${C.NGHTTP2_INTERNAL_ERROR}`, what);
        assert.equal(line.status, 200, what);
        assert.equal(line.error, 'UPSTREAM_RESET', what);
        assert.equal(line.cause, cause, what);
        assert.equal(health, 0, `${what}: a failure after the response head never counts against the upstream`);
      }
    }
  }
});

test('an upstream reset mid-body while the gateway waits on a slow client is UPSTREAM_RESET too', async () => {
  for (const [code, cause] of [
    [C.NGHTTP2_INTERNAL_ERROR, 'UpstreamStreamReset(HTTP2_RST_STREAM_INTERNAL_ERROR)'],
    [C.NGHTTP2_ENHANCE_YOUR_CALM, 'UpstreamStreamReset(HTTP2_RST_STREAM_ENHANCE_YOUR_CALM)'],
  ] as const) {
    const path = `/rst-big/${code}/h2-slow-${serial++}`;
    const outcome = await viaH2(path, false, 'slow');
    await waitFor(() => completed(path) !== undefined, `the access log line of ${path}`);
    const line = completed(path)!;
    const what = `${path}: ${JSON.stringify({ outcome, error: line.error, cause: line.cause })}`;
    assert.equal(outcome.status, 200, what);
    assert.ok(outcome.body < MESSAGE.length + 1024 * 1024, `${what}: cut short`);
    assert.equal(outcome.cut, `rst ${C.NGHTTP2_INTERNAL_ERROR}`, what);
    assert.equal(line.error, 'UPSTREAM_RESET', what);
    assert.equal(line.cause, cause, what);
  }
});

test("before the response head: 502 UPSTREAM_RESET; a stream reset spares the upstream's health, a GOAWAY with an error code does not", async () => {
  for (const [kind, code, counted, cause] of [
    ['rst-head', C.NGHTTP2_INTERNAL_ERROR, 0, 'UpstreamStreamReset(HTTP2_RST_STREAM_INTERNAL_ERROR)'],
    ['rst-head', C.NGHTTP2_ENHANCE_YOUR_CALM, 0, 'UpstreamStreamReset(HTTP2_RST_STREAM_ENHANCE_YOUR_CALM)'],
    ['rst-head', C.NGHTTP2_PROTOCOL_ERROR, 0, 'UpstreamStreamReset(HTTP2_RST_STREAM_PROTOCOL_ERROR)'],
    ['rst-head', C.NGHTTP2_HTTP_1_1_REQUIRED, 0, 'UpstreamStreamReset(HTTP2_RST_STREAM_HTTP_1_1_REQUIRED)'],
    ['goaway-head', C.NGHTTP2_INTERNAL_ERROR, 1, 'SocketError(UND_ERR_SOCKET)'],
  ] as const) {
    for (const client of ['h2', 'h1'] as const) {
      const { path, outcome, line, health } = await run(kind, code, client, false);
      const what = `${path}: ${JSON.stringify({ outcome, error: line.error, cause: line.cause, health })}`;
      assert.equal(outcome.status, 502, what);
      assert.equal(line.status, 502, what);
      assert.equal(line.error, 'UPSTREAM_RESET', what);
      assert.equal(line.cause, cause, what);
      assert.equal(health, counted, what);
    }
  }
});

test("the gateway's own CANCEL when the client leaves mid-body is not logged as the upstream's reset", async () => {
  for (const client of ['h2', 'h1'] as const) {
    for (const grpc of [false, true]) {
      const path = `/hold/leave/${client}-${grpc ? 'grpc' : 'plain'}-${serial++}`;
      const before = await failures();
      const outcome = client === 'h2' ? await viaH2(path, grpc, 'leave') : await viaH1(path, grpc, 'leave');
      await waitFor(() => completed(path) !== undefined && upstreamRst.has(path), `the access log line of ${path}, and the upstream stream's end`);
      const line = completed(path)!;
      const what = `${path}: ${JSON.stringify({ outcome, status: line.status, error: line.error, cause: line.cause, upstreamRst: upstreamRst.get(path) })}`;
      assert.equal(outcome.body, MESSAGE.length, what);
      // The upstream was told: the gateway reset its stream (undici's abort sends RST_STREAM NO_ERROR; CANCEL when
      // the request body was still going out), while the upstream had sent no reset of its own.
      assert.ok([C.NGHTTP2_NO_ERROR, C.NGHTTP2_CANCEL].includes(upstreamRst.get(path)!), what);
      assert.notEqual(line.error, 'UPSTREAM_RESET', what);
      assert.notEqual(line.error, 'PROXY_ERROR', what);
      assert.equal(line.error, undefined, `${what}: the client left, no error of the gateway's or the upstream's`);
      assert.equal((await failures()) - before, 0, what);
    }
  }
});

test("request_body_chunk ending a call mid-body cancels the upstream stream, logged as its own timeout, not the upstream's reset", async () => {
  for (const grpc of [false, true]) {
    const path = `/hold/silent/h2-${grpc ? 'grpc' : 'plain'}-${serial++}`;
    const before = await failures();
    const outcome = await viaH2(path, grpc, 'silent');
    await waitFor(() => completed(path) !== undefined && upstreamRst.has(path), `the access log line of ${path}, and the upstream stream's end`);
    const line = completed(path)!;
    const what = `${path}: ${JSON.stringify({ outcome, status: line.status, error: line.error, cause: line.cause, upstreamRst: upstreamRst.get(path) })}`;
    assert.equal(outcome.status, 200, what);
    assert.equal(outcome.cut, `rst ${C.NGHTTP2_CANCEL}`, `${what}: the client's stream is cut with CANCEL`);
    assert.equal(upstreamRst.get(path), C.NGHTTP2_CANCEL, `${what}: and so is the upstream's`);
    assert.equal(line.error, 'REQUEST_BODY_TIMEOUT', what);
    assert.equal((await failures()) - before, 0, what);
  }
});

