// An upload to an HTTP/2 upstream that is cut short must not stop the gateway. undici resets and destroys the
// upstream stream at once, with request-body bytes still queued behind flow control; node 20 then forgot the stream
// while nghttp2 still held its DATA, and the next WINDOW_UPDATE from the upstream made nghttp2 send empty DATA frames
// for ever: the gateway's event loop never turned again and its memory grew by gigabytes. A gRPC call whose message
// goes over max_body_size did it, and so did a client that cancels a call while the upstream is still taking in its
// messages. The gateway runs as its own process here, so that a hang fails the test by the client's deadline.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { spawnGateway, upstreams, type GatewayProcess } from '../helpers/gateway.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';

const raw = (b: Buffer): Buffer => b;
function method(path: string, requestStream: boolean, responseStream: boolean) {
  return { path, requestStream, responseStream, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw, originalName: path };
}
/** Raw-bytes methods: Unary answers with the request's size; Slurp is a bidirectional call whose server reads slowly. */
const SERVICE = { Unary: method('/p.S/Unary', false, false), Slurp: method('/p.S/Slurp', true, true) } as unknown as grpc.ServiceDefinition;
const Client = grpc.makeGenericClientConstructor(SERVICE, 'S');
type RawClient = grpc.Client & {
  Unary(req: Buffer, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Buffer) => void): grpc.ClientUnaryCall;
  Slurp(md: grpc.Metadata, opts: grpc.CallOptions): grpc.ClientDuplexStream<Buffer, Buffer>;
};

const BIG = 64 << 20;

function unary(client: RawClient, body: Buffer, deadlineMs = 8_000): Promise<{ err: grpc.ServiceError | null; res?: Buffer }> {
  return new Promise((resolve) => {
    client.Unary(body, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) => resolve({ err, res }));
  });
}

describe('gRPC uploads cut short on an HTTP/2 upstream', () => {
  const pki = pkiDir();
  let ca: TestCa;
  let server: grpc.Server | undefined;
  let gw: GatewayProcess | undefined;
  let client: RawClient | undefined;

  before(async () => {
    ca = createTestCa('gRPC upload CA', pki.path);
    const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
    server = new grpc.Server({ 'grpc.max_receive_message_length': BIG });
    server.addService(SERVICE, {
      Unary(call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) {
        cb(null, Buffer.from(String(call.request.length)));
      },
      Slurp(call: grpc.ServerDuplexStream<Buffer, Buffer>) {
        // Takes one message every 100 ms: the rest waits in flow control, and each read opens the windows again.
        call.on('error', () => undefined);
        call.on('data', () => {
          call.pause();
          setTimeout(() => call.resume(), 100);
        });
        call.on('end', () => call.end());
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server!.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    gw = await spawnGateway({
      server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile } },
      routes: [
        { name: 'limited', service: 'default', match: { path_prefix: '/p.S/Unary' }, max_body_size: '1MB' },
        { name: 'open', service: 'default', match: { path_prefix: '/p.S/' } },
      ],
      load_balancing: { http2: true, retries: 0, upstreams: upstreams([port]) },
    });
    client = new Client(`127.0.0.1:${gw.port}`, grpc.credentials.createSsl(ca.ca), {
      'grpc.ssl_target_name_override': 'a.test',
      'grpc.default_authority': 'a.test',
      'grpc.max_send_message_length': BIG,
    }) as unknown as RawClient;
  });

  after(async () => {
    client?.close();
    await gw?.cleanup();
    server?.forceShutdown();
    pki.remove();
  });

  test('a message over max_body_size is answered trailers-only, and the gateway serves the next call', async () => {
    const over = await unary(client!, Buffer.alloc(2 << 20, 1));
    assert.equal(over.err?.code, grpc.status.RESOURCE_EXHAUSTED, `${over.err?.code} ${over.err?.details}`);
    assert.match(over.err.details, /Payload Too Large/);
    const next = await unary(client!, Buffer.from('hello'));
    assert.equal(next.err, null, `${next.err?.code} ${next.err?.details}`);
    assert.equal(next.res?.toString(), '5');
  });

  test('a call cancelled while the upstream still takes in its messages is released; the gateway serves on', async () => {
    for (let round = 0; round < 3; round++) {
      const call = client!.Slurp(new grpc.Metadata(), { deadline: Date.now() + 8_000 });
      const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
      call.on('error', () => undefined);
      call.on('data', () => undefined);
      for (let i = 0; i < 8; i++) call.write(Buffer.alloc(512 << 10, i));
      await new Promise((resolve) => setTimeout(resolve, 20));
      call.cancel();
      assert.equal((await status).code, grpc.status.CANCELLED);
      const next = await unary(client!, Buffer.from('still there'));
      assert.equal(next.err, null, `round ${round}: ${next.err?.code} ${next.err?.details}`);
    }
  });
});
