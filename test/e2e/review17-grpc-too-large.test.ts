// What was wrong: a gRPC call over a route's `max_body_size` got grpc-status 2 UNKNOWN "Payload Too Large": the
// mapping of gRPC's HTTP table sends every unlisted status to UNKNOWN, which tells a client's retry logic nothing.
// What is right now: a request the gateway refuses as too large (413, 431) ends with 8 RESOURCE_EXHAUSTED, what every
// gRPC server answers a message over its receive limit; the access log keeps the 413.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { aTestCertificateHooks } from '../helpers/tls.js';
import { echoClient, grpc, startEchoServer, type Msg } from '../helpers/grpc.js';

const tls = aTestCertificateHooks('gRPC too large CA');
let upstream: { port: number; close(): Promise<void> };
let gw: InProcessGateway;
let client: ReturnType<typeof echoClient>;

before(async () => {
  upstream = await startEchoServer();
  gw = await startInProcess({
    server: { tls: { cert_file: tls.certFile, key_file: tls.keyFile } },
    services: { echo: { upstreams: [{ name: 'grpc-1', address: '127.0.0.1', port: upstream.port }], http2: true } },
    routes: [{ name: 'echo', match: { path_prefix: '/' }, service: 'echo', max_body_size: '1KB' }],
  });
  tls.gateways.push(gw);
  client = echoClient(gw.gateway.port, tls.ca.ca);
});
after(async () => {
  client?.close();
  await upstream?.close();
});

function unary(text: string): Promise<Msg> {
  type Call = (req: Msg, metadata: grpc.Metadata, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Msg) => void) => unknown;
  return new Promise((resolve, reject) =>
    (client.Unary as unknown as Call)({ text, n: 0, user: '' }, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err, res) => (err ? reject(err) : resolve(res))),
  );
}

test('a call over max_body_size ends RESOURCE_EXHAUSTED; one under it passes', async () => {
  assert.equal((await unary('small')).text, 'small');
  const err = await unary('x'.repeat(4096)).then(
    () => assert.fail('the call went through'),
    (e: grpc.ServiceError) => e,
  );
  assert.equal(err.code, grpc.status.RESOURCE_EXHAUSTED, `${err.code} ${err.details}`);
  assert.equal(err.details, 'Payload Too Large');
  const line = gw.logs.find((l) => l.msg === 'Request Completed' && l.status === 413);
  assert.ok(line, 'the access log keeps the HTTP status');
});
