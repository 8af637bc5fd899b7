// An HTTP/2 upstream that refuses a request whose body the gateway has already begun to stream (RST_STREAM
// REFUSED_STREAM, or a GOAWAY whose last stream id is below the request's): nothing was processed (RFC 9113 §8.7),
// but the body cannot be replayed (bodies are never buffered), so the gateway cannot retry it. An HTTP/2 client is
// told so the same way, its stream reset with REFUSED_STREAM (grpc-js then retries the call once by itself,
// replaying the messages it buffered); an HTTP/1.1 client, which has no such code, keeps its 502 upstream_reset.
// Either way the access log says what happened: status 502, error UPSTREAM_REFUSED_STREAM for a reset stream.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, type ClientHttp2Session } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { echoClient, grpc, startEchoServer, type Msg } from '../helpers/grpc.js';
import { h2connect } from '../helpers/h2.js';
import { FLAG, frame, FRAME, PREFACE } from '../helpers/h2-frames.js';
import { refusingUpstream, type RefusingUpstream } from '../helpers/refusing-upstream.js';
import { createTestCa, pkiDir, type IssuedCertificate, type TestCa } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

type Refuser = RefusingUpstream;

/**
 * An h2c upstream (node:http2) that resets every stream with REFUSED_STREAM once it has read a first body byte (a
 * request without a body at its HEADERS).
 */
const rstRefusingUpstream = (): Promise<Refuser> => refusingUpstream('first-body-byte');

/**
 * An h2c upstream written frame by frame that answers a stream's first body byte (or its HEADERS with END_STREAM)
 * with GOAWAY (NO_ERROR, last stream id 0): it processed nothing. node:http2's session.goaway() cannot say that:
 * it takes a last stream id of 0 for "the last stream processed", the stream itself (a graceful close the gateway
 * waits out). It leaves the connection to the gateway, which closes it.
 */
async function goawayRefusingUpstream(): Promise<Refuser> {
  const sockets = new Set<Socket>();
  let streams = 0;
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.write(frame(FRAME.SETTINGS, 0, 0));
    let received = Buffer.alloc(0);
    let prefaceRead = false;
    let refused = false;
    const refuse = (): void => {
      if (refused) return;
      refused = true;
      const payload = Buffer.alloc(8); // last stream id 0, error code 0 (NO_ERROR)
      socket.write(frame(FRAME.GOAWAY, 0, 0, payload));
    };
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (!prefaceRead) {
        if (received.length < PREFACE.length) return;
        received = received.subarray(PREFACE.length);
        prefaceRead = true;
      }
      while (received.length >= 9) {
        const length = received.readUIntBE(0, 3);
        if (received.length < 9 + length) return;
        const type = received[3]!;
        const flags = received[4]!;
        received = received.subarray(9 + length);
        if (type === FRAME.SETTINGS && (flags & FLAG.ACK) === 0) socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
        else if (type === FRAME.HEADERS) {
          streams++;
          if ((flags & FLAG.END_STREAM) !== 0) refuse();
        } else if (type === FRAME.DATA && length > 0) refuse();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    streams: () => streams,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The two ways an upstream says it processed nothing, each with its upstream and the cause the access log gives. */
const REFUSERS = [
  ['RST_STREAM REFUSED_STREAM', rstRefusingUpstream, 'RefusedStream(HTTP2_REFUSED_STREAM)'],
  ['GOAWAY with last stream id 0', goawayRefusingUpstream, 'UnprocessedGoaway(HTTP2_GOAWAY_UNPROCESSED)'],
] as const;

interface H2Outcome {
  /** The response status, or 0 when none came. */
  readonly status: number;
  readonly rstCode: number | undefined;
}

/**
 * A POST on `session` whose body is streamed: one chunk, then nothing more until the stream closes (the upstream
 * has the chunk and refuses). Resolves however the stream ends.
 */
function streamedPost(session: ClientHttp2Session, path: string): Promise<H2Outcome> {
  return new Promise((resolve) => {
    const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/octet-stream' }, { endStream: false });
    let status = 0;
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('error', () => {});
    stream.resume();
    stream.on('close', () => resolve({ status, rstCode: stream.rstCode }));
    stream.write(Buffer.alloc(1024, 1));
  });
}

/** A GET on `session` (no body), resolved however the stream ends. */
function h2Get(session: ClientHttp2Session, path: string): Promise<H2Outcome> {
  return new Promise((resolve) => {
    const stream = session.request({ ':method': 'GET', ':path': path });
    let status = 0;
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('error', () => {});
    stream.resume();
    stream.on('close', () => resolve({ status, rstCode: stream.rstCode }));
  });
}

/** The same over HTTPS/1.1: one chunk of a chunked body, the response's status and body once it has come. */
function https1StreamedPost(port: number, ca: Buffer, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, path, method: 'POST', ca, servername: 'a.test', agent: false, headers: { 'content-type': 'application/octet-stream' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body });
          req.destroy();
        });
      },
    );
    req.on('error', reject);
    req.write(Buffer.alloc(1024, 1));
  });
}

function completed(gw: InProcessGateway, path: string): Record<string, unknown> | undefined {
  return gw.logs.find((l) => l.msg === 'Request Completed' && l.path === path);
}

const pki = pkiDir();
let ca: TestCa;
let cert: IssuedCertificate;

before(() => {
  ca = createTestCa('Refused CA', pki.path);
  cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
});

after(() => pki.remove());

for (const [how, startRefuser, cause] of REFUSERS) {
  describe(`${how} from an HTTP/2 upstream to a request whose body is already streaming`, () => {
    let upstream: Refuser | undefined;
    let gw: InProcessGateway | undefined;

    before(async () => {
      upstream = await startRefuser();
      gw = await startInProcess({
        server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile } },
        load_balancing: { http2: true, upstreams: upstreams([upstream.port]) },
      });
    });

    after(async () => {
      await gw?.close();
      await upstream?.close();
    });

    test("an HTTP/2 client's stream is reset with REFUSED_STREAM, no response; logged 502 UPSTREAM_REFUSED_STREAM", async () => {
      assert.ok(gw);
      const session = await h2connect(gw.gateway.port, ca.ca);
      try {
        const outcome = await streamedPost(session, '/h2');
        assert.deepEqual(outcome, { status: 0, rstCode: constants.NGHTTP2_REFUSED_STREAM });
        // Only the stream was refused: the session still serves (the upstream refuses this one too, as a GET).
        assert.deepEqual(await h2Get(session, '/h2-after'), { status: 0, rstCode: constants.NGHTTP2_REFUSED_STREAM });
      } finally {
        session.close();
      }
      await waitFor(() => completed(gw!, '/h2') !== undefined, 'the Request Completed line of /h2');
      const line = completed(gw, '/h2')!;
      assert.deepEqual([line.status, line.error, line.cause], [502, 'UPSTREAM_REFUSED_STREAM', cause]);
    });

    test('an HTTP/1.1 client still gets 502 upstream_reset', async () => {
      assert.ok(gw);
      const res = await https1StreamedPost(gw.gateway.port, ca.ca, '/h1');
      assert.equal(res.status, 502);
      assert.equal((JSON.parse(res.body) as { code: string }).code, 'upstream_reset');
      await waitFor(() => completed(gw!, '/h1') !== undefined, 'the Request Completed line of /h1');
      const line = completed(gw, '/h1')!;
      assert.deepEqual([line.status, line.error, line.cause], [502, 'UPSTREAM_RESET', cause]);
    });

    test('a GET refused on every try (the retry too): the HTTP/2 client is told REFUSED_STREAM as well', async () => {
      assert.ok(gw && upstream);
      const sent = upstream.streams();
      const session = await h2connect(gw.gateway.port, ca.ca);
      try {
        assert.deepEqual(await h2Get(session, '/get'), { status: 0, rstCode: constants.NGHTTP2_REFUSED_STREAM });
      } finally {
        session.close();
      }
      assert.equal(upstream.streams() - sent, 2, 'the gateway retried it once (retries: 1) before it gave up');
      await waitFor(() => completed(gw!, '/get') !== undefined, 'the Request Completed line of /get');
      assert.deepEqual([completed(gw, '/get')!.status, completed(gw, '/get')!.error], [502, 'UPSTREAM_REFUSED_STREAM']);
    });
  });
}

for (const [how, startRefuser] of REFUSERS) {
  describe(`gRPC client streaming, ${how}: grpc-js retries the refused call itself and reaches a healthy upstream`, () => {
    let refuser: Refuser | undefined;
    let healthy: { port: number; close(): Promise<void> } | undefined;
    let gw: InProcessGateway | undefined;
    let client: ReturnType<typeof echoClient> | undefined;

    before(async () => {
      refuser = await startRefuser();
      healthy = await startEchoServer();
      gw = await startInProcess({
        server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile } },
        // Round robin over equal weights starts with the first: the call's first attempt goes to the refuser, the
        // next request (grpc-js's retry) to the Echo server.
        load_balancing: { http2: true, upstreams: upstreams([refuser.port, healthy.port]) },
      });
      client = echoClient(gw.gateway.port, ca.ca);
    });

    after(async () => {
      client?.close();
      await gw?.close();
      await refuser?.close();
      await healthy?.close();
    });

    test('ClientStream: messages streamed, refused after the first, answered whole by the second upstream', async () => {
      assert.ok(client && gw && refuser);
      const answer = new Promise<Msg>((resolve, reject) => {
        const call = (client!.ClientStream as unknown as (m: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Msg) => void) => grpc.ClientWritableStream<Msg>)(
          new grpc.Metadata(),
          { deadline: Date.now() + 10_000 },
          (err, res) => (err ? reject(err) : resolve(res)),
        );
        call.write({ text: 'a', n: 0, user: '' });
        // The rest only once the refuser has read the first message and refused it: the body was streaming.
        waitFor(() => refuser!.streams() === 1, 'the refuser to get the call').then(
          () => {
            call.write({ text: 'b', n: 0, user: '' });
            call.write({ text: 'c', n: 0, user: '' });
            call.end();
          },
          reject,
        );
      });
      const res = await answer;
      assert.deepEqual([res.text, res.n], ['a,b,c', 3]);
      assert.equal(refuser.streams(), 1);
      await waitFor(() => gw!.logs.filter((l) => l.msg === 'Request Completed').length === 2, 'two Request Completed lines');
      const lines = gw.logs.filter((l) => l.msg === 'Request Completed');
      assert.deepEqual(lines.map((l) => [l.status, l.error]), [
        [502, 'UPSTREAM_REFUSED_STREAM'],
        [200, undefined],
      ]);
    });
  });
}
