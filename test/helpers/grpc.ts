// A real @grpc/grpc-js Echo server (cleartext HTTP/2 or TLS) and client factory for the gRPC end-to-end tests.
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

const PROTO = new URL('../fixtures/echo.proto', import.meta.url).pathname;

export interface Msg {
  text: string;
  n: number;
  user: string;
}

type EchoClientCtor = new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => grpc.Client &
  Record<'Unary' | 'ServerStream' | 'ClientStream' | 'Bidi', (...args: unknown[]) => unknown>;

function loadEcho(): { service: grpc.ServiceDefinition; Client: EchoClientCtor } {
  const definition = loadSync(PROTO, { keepCase: true, defaults: true });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as { portcullis: { test: { Echo: EchoClientCtor & { service: grpc.ServiceDefinition } } } };
  const Echo = loaded.portcullis.test.Echo;
  return { service: Echo.service, Client: Echo };
}

/**
 * Starts the Echo service on 127.0.0.1. Unary echoes `text` with the x-user-id metadata the gateway added; "fail"
 * answers NOT_FOUND before any message (a trailers-only response); "slow" answers after 2 s. ServerStream sends
 * `n` messages, ClientStream counts, Bidi answers each message as it arrives.
 */
export async function startEchoServer(credentials = grpc.ServerCredentials.createInsecure()): Promise<{ port: number; close(): Promise<void> }> {
  const { service } = loadEcho();
  const server = new grpc.Server();
  const userOf = (metadata: grpc.Metadata) => String(metadata.get('x-user-id')[0] ?? '');
  server.addService(service, {
    Unary(call: grpc.ServerUnaryCall<Msg, Msg>, callback: grpc.sendUnaryData<Msg>) {
      const { text } = call.request;
      if (text === 'fail') return callback({ code: grpc.status.NOT_FOUND, details: 'no such echo' });
      const answer = () => callback(null, { text, n: 1, user: userOf(call.metadata) });
      if (text === 'slow') setTimeout(answer, 2_000);
      else answer();
    },
    ServerStream(call: grpc.ServerWritableStream<Msg, Msg>) {
      for (let i = 0; i < call.request.n; i++) call.write({ text: `${call.request.text}-${i}`, n: i, user: '' });
      call.end();
    },
    ClientStream(call: grpc.ServerReadableStream<Msg, Msg>, callback: grpc.sendUnaryData<Msg>) {
      const texts: string[] = [];
      call.on('data', (m: Msg) => texts.push(m.text));
      call.on('end', () => callback(null, { text: texts.join(','), n: texts.length, user: '' }));
    },
    Bidi(call: grpc.ServerDuplexStream<Msg, Msg>) {
      call.on('data', (m: Msg) => call.write({ text: `echo:${m.text}`, n: m.n, user: '' }));
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', credentials, (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    port,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

/** An Echo client for the gateway at 127.0.0.1:port over TLS (trusting `ca`, SNI and authority `a.test`). */
export function echoClient(port: number, ca: Buffer) {
  const { Client } = loadEcho();
  return new Client(`127.0.0.1:${port}`, grpc.credentials.createSsl(ca), {
    'grpc.ssl_target_name_override': 'a.test',
    'grpc.default_authority': 'a.test',
  });
}

export { grpc };
