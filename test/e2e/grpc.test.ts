// gRPC through the gateway: @grpc/grpc-js client → TLS h2 listener → cleartext h2 (h2c) upstream grpc-js server.
// All four streaming kinds with auth on (metadata authorization), trailers passed through, and the gateway's own
// errors answered the gRPC way (401 → UNAUTHENTICATED, 429 → UNAVAILABLE, upstream timeout → DEADLINE_EXCEEDED).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpsRequest } from 'node:https';
import { startInProcess, tempDataDir, type InProcessGateway } from '../helpers/gateway.js';
import { createTestCa, pkiDir, type IssuedCertificate, type TestCa } from '../helpers/tls.js';
import { echoClient, grpc, startEchoServer, type Msg } from '../helpers/grpc.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';

type Call<T> = (req: Msg, metadata: grpc.Metadata, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: T) => void) => unknown;
type AnyClient = ReturnType<typeof echoClient>;

function unary(client: AnyClient, req: Partial<Msg>, metadata = new grpc.Metadata()): Promise<Msg> {
  return new Promise((resolve, reject) =>
    (client.Unary as unknown as Call<Msg>)(req as Msg, metadata, { deadline: Date.now() + 10_000 }, (err, res) => (err ? reject(err) : resolve(res))),
  );
}

function bearer(token: string): grpc.Metadata {
  const m = new grpc.Metadata();
  m.set('authorization', `Bearer ${token}`);
  return m;
}

/** Registers a user over HTTPS and returns its access token. */
function register(port: number, ca: Buffer, email: string): Promise<string> {
  const body = JSON.stringify({ email, password: 'SecurePass123!' });
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, path: '/auth/register', method: 'POST', ca, servername: 'a.test', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => (res.statusCode === 201 ? resolve((JSON.parse(text) as { access_token: string }).access_token) : reject(new Error(`${res.statusCode} ${text}`))));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function expectStatus(promise: Promise<unknown>, code: number, details?: RegExp): Promise<grpc.ServiceError> {
  return promise.then(
    () => assert.fail(`expected gRPC status ${code}`),
    (err: grpc.ServiceError) => {
      assert.equal(err.code, code, `${err.code} ${err.details}`);
      if (details) assert.match(err.details, details);
      return err;
    },
  );
}

describe('gRPC through the gateway', () => {
  const pki = pkiDir();
  let ca: TestCa;
  let cert: IssuedCertificate;
  let upstream: { port: number; close(): Promise<void> };
  let gw: InProcessGateway;
  let client: AnyClient;
  let token: string;

  before(async () => {
    ca = createTestCa('gRPC CA', pki.path);
    cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
    upstream = await startEchoServer();
    gw = await startInProcess(
      {
        server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile }, timeouts: { upstream_response: '1s' } },
        jwt: { secret: TEST_SECRET },
        middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
        load_balancing: { upstreams: [{ name: 'grpc-1', address: '127.0.0.1', port: upstream.port }], http2: true },
      },
      tempDataDir(),
    );
    client = echoClient(gw.gateway.port, ca.ca);
    token = await register(gw.gateway.port, ca.ca, 'grpc@example.com');
  });

  after(async () => {
    client?.close();
    await gw?.close();
    await upstream?.close();
    pki.remove();
  });

  test('unary: the call reaches the upstream with the caller identity, logged as h2', async () => {
    const res = await unary(client, { text: 'hello' }, bearer(token));
    assert.equal(res.text, 'hello');
    assert.ok(res.user.length > 0, 'X-User-Id reached the gRPC server as metadata');
    const line = gw.logs.find((l) => l.msg === 'Request Completed' && l.path === '/portcullis.test.Echo/Unary' && l.status === 200);
    assert.equal(line?.protocol, 'h2');
  });

  test('server streaming, client streaming and bidirectional streaming pass through', async () => {
    const streamed: string[] = await new Promise((resolve, reject) => {
      const call = (client.ServerStream as unknown as (r: Msg, m: grpc.Metadata) => grpc.ClientReadableStream<Msg>)({ text: 's', n: 5, user: '' }, bearer(token));
      const out: string[] = [];
      call.on('data', (m: Msg) => out.push(m.text));
      call.on('error', reject);
      call.on('end', () => resolve(out));
    });
    assert.deepEqual(streamed, ['s-0', 's-1', 's-2', 's-3', 's-4']);

    const counted: Msg = await new Promise((resolve, reject) => {
      const call = (client.ClientStream as unknown as (m: grpc.Metadata, cb: (e: grpc.ServiceError | null, r: Msg) => void) => grpc.ClientWritableStream<Msg>)(
        bearer(token),
        (err, res) => (err ? reject(err) : resolve(res)),
      );
      for (const text of ['a', 'b', 'c']) call.write({ text, n: 0, user: '' });
      call.end();
    });
    assert.deepEqual([counted.text, counted.n], ['a,b,c', 3]);

    // Bidirectional, in lock step: each message is sent only after the answer to the previous one came back, which
    // works only if both directions stream through the gateway at the same time.
    const call = (client.Bidi as unknown as (m: grpc.Metadata) => grpc.ClientDuplexStream<Msg, Msg>)(bearer(token));
    const answers: string[] = [];
    for (let i = 0; i < 3; i++) {
      const next = new Promise<Msg>((resolve, reject) => {
        call.once('data', resolve);
        call.once('error', reject);
      });
      call.write({ text: `m${i}`, n: i, user: '' });
      answers.push((await next).text);
    }
    const ended = new Promise<void>((resolve) => call.on('end', () => resolve()));
    call.end();
    call.resume();
    await ended;
    assert.deepEqual(answers, ['echo:m0', 'echo:m1', 'echo:m2']);
  });

  test("the upstream's own gRPC errors (trailers-only) come through unchanged", async () => {
    await expectStatus(unary(client, { text: 'fail' }, bearer(token)), grpc.status.NOT_FOUND, /no such echo/);
  });

  test('no token: UNAUTHENTICATED, as HTTP 200 trailers-only; the access log keeps the 401', async () => {
    const err = await expectStatus(unary(client, { text: 'x' }), grpc.status.UNAUTHENTICATED, /Unauthorized/);
    const id = err.metadata.get('x-request-id')[0];
    assert.ok(id, 'gateway headers are on the gRPC error too');
    const line = gw.logs.find((l) => l.msg === 'Request Completed' && l.request_id === id);
    assert.equal(line?.status, 401);
  });

  test("the gateway's upstream timeout is DEADLINE_EXCEEDED", async () => {
    await expectStatus(unary(client, { text: 'slow' }, bearer(token)), grpc.status.DEADLINE_EXCEEDED, /Gateway Timeout/);
  });
});

describe('gRPC and the rate limit', () => {
  const pki = pkiDir();
  let upstream: { port: number; close(): Promise<void> };
  let gw: InProcessGateway;
  let client: AnyClient;

  before(async () => {
    const ca = createTestCa('gRPC limit CA', pki.path);
    const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
    upstream = await startEchoServer();
    gw = await startInProcess({
      server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile } },
      middleware: { rate_limit: { enabled: true, requests_per_minute: 1, burst_size: 2 } },
      load_balancing: { upstreams: [{ name: 'grpc-1', address: '127.0.0.1', port: upstream.port }], http2: true },
    });
    client = echoClient(gw.gateway.port, ca.ca);
  });

  after(async () => {
    client?.close();
    await gw?.close();
    await upstream?.close();
    pki.remove();
  });

  test('over the limit: UNAVAILABLE with Retry-After in the metadata', async () => {
    await unary(client, { text: '1' });
    await unary(client, { text: '2' });
    const err = await expectStatus(unary(client, { text: '3' }), grpc.status.UNAVAILABLE, /Too Many Requests/);
    assert.ok(Number(err.metadata.get('retry-after')[0]) > 0);
  });
});
