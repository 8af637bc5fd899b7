// A gRPC response that breaks off after it began, through no fault of the client: the gateway's own upstream_body
// timeout, or an upstream connection that went away mid-stream. The client's stream was reset with INTERNAL_ERROR,
// which every gRPC client reads as INTERNAL (13): not retried, and not what happened. The call now ends with
// trailers carrying the status the gateway gives the same failure before the response began (upstream timeout: 4
// DEADLINE_EXCEEDED, a lost upstream: 14 UNAVAILABLE), after the messages that did arrive.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Http2Server, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { createTestCa, pkiDir, type TestCa } from '../helpers/tls.js';

const raw = (b: Buffer): Buffer => b;
const SERVICE = {
  Watch: { path: '/p.S/Watch', requestStream: false, responseStream: true, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw, originalName: 'Watch' },
} as unknown as grpc.ServiceDefinition;
const Client = grpc.makeGenericClientConstructor(SERVICE, 'S');
type RawClient = grpc.Client & { Watch(req: Buffer, md: grpc.Metadata, opts: grpc.CallOptions): grpc.ClientReadableStream<Buffer> };

/** One length-prefixed gRPC message. */
function frame(text: string): Buffer {
  const body = Buffer.from(text);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** Runs a server-streaming call; resolves with the messages received and the call's final status. */
function watch(client: RawClient, path: string): Promise<{ messages: string[]; status: grpc.StatusObject }> {
  return new Promise((resolve) => {
    const messages: string[] = [];
    const call = client.Watch(Buffer.from(path), new grpc.Metadata(), { deadline: Date.now() + 20_000 });
    call.on('data', (m: Buffer) => messages.push(m.toString()));
    call.on('error', () => undefined);
    call.on('status', (status: grpc.StatusObject) => resolve({ messages, status }));
  });
}

describe('a gRPC response broken off by the upstream side', () => {
  const pki = pkiDir();
  let ca: TestCa;
  let upstream: Http2Server | undefined;
  let gw: InProcessGateway | undefined;
  let client: RawClient | undefined;
  const open = new Set<ServerHttp2Stream>();
  const sockets = new Set<Socket>();

  before(async () => {
    ca = createTestCa('gRPC midstream CA', pki.path);
    const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
    // A raw HTTP/2 gRPC server: one message, then what the request's text asks for.
    upstream = createServer();
    upstream.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    upstream.on('stream', (stream) => {
      stream.on('error', () => undefined);
      open.add(stream);
      stream.on('close', () => open.delete(stream));
      let text = '';
      stream.on('data', (d: Buffer) => (text += d.subarray(5).toString()));
      stream.on('end', () => {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.write(frame('first'));
        // 'gone': the upstream's connection is cut (a crash, a restart without GOAWAY).
        if (text === 'gone') setTimeout(() => { for (const socket of sockets) socket.destroy(); }, 50);
        // 'silent': nothing more until the test ends (the gateway's upstream_body fires first).
      });
    });
    await new Promise<void>((resolve) => upstream!.listen(0, '127.0.0.1', resolve));
    const port = (upstream.address() as AddressInfo).port;
    gw = await startInProcess({
      server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile } },
      routes: [{ name: 'watch', service: 'default', match: { path_prefix: '/p.S/' }, timeouts: { upstream_body: '1s' } }],
      load_balancing: { http2: true, retries: 0, upstreams: [{ name: 'g1', address: '127.0.0.1', port }] },
    });
    client = new Client(`127.0.0.1:${gw.gateway.port}`, grpc.credentials.createSsl(ca.ca), {
      'grpc.ssl_target_name_override': 'a.test',
      'grpc.default_authority': 'a.test',
    }) as unknown as RawClient;
  });

  after(async () => {
    client?.close();
    for (const stream of open) stream.close();
    for (const socket of sockets) socket.destroy();
    await gw?.close();
    await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
    pki.remove();
  });

  test("the gateway's upstream_body timeout mid-stream: the messages so far, then DEADLINE_EXCEEDED", async () => {
    const { messages, status } = await watch(client!, 'silent');
    assert.deepEqual(messages, ['first']);
    assert.equal(status.code, grpc.status.DEADLINE_EXCEEDED, `${status.code} ${status.details}`);
    assert.match(status.details, /Gateway Timeout/);
    const line = gw!.logs.find((l) => l.msg === 'Request Completed' && l.path === '/p.S/Watch' && l.error !== undefined);
    assert.equal(line?.error, 'UPSTREAM_TIMEOUT');
  });

  test('an upstream connection lost mid-stream: the messages so far, then UNAVAILABLE', async () => {
    const { messages, status } = await watch(client!, 'gone');
    assert.deepEqual(messages, ['first']);
    assert.equal(status.code, grpc.status.UNAVAILABLE, `${status.code} ${status.details}`);
  });
});
