// Upstreams for the tests of what an in-process gateway does with an upstream that misbehaves (interim heads for ever,
// a request body left unread, heads of many fields, a paused upload): a raw HTTP/1.1 upstream that hands each
// connection to the test once it has the request's head, HTTP/2 upstreams over h2c and TLS on a stream handler of the
// test's, and the one-upstream service entry that reaches each of them.
import { createServer, type Server, type Socket } from 'node:net';
import { createSecureServer, createServer as createH2cServer, type Http2SecureServer, type Http2Server, type ServerHttp2Stream } from 'node:http2';
import { createTestCa } from './tls.js';

/** The port a listening server is on. */
export const portOf = (server: { address(): unknown }): number => (server.address() as { port: number }).port;

/**
 * A service of one upstream, 127.0.0.1:`port`: no retries, no active health checks, a passive cooldown of 50 ms (each
 * Upstream Down is logged, and the next request is sent); `extra`'s keys are added or replace these.
 */
export function oneUpstreamService(port: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    upstreams: [{ name: 'u', address: '127.0.0.1', port }],
    retries: 0,
    health_check: { enabled: false, passive_cooldown: '50ms' },
    ...extra,
  };
}

/**
 * A raw TCP HTTP/1.1 upstream on 127.0.0.1: once a connection has sent a whole request head, its 'data' listener goes
 * and `onHead` gets the socket, the bytes read past the head (the body's start) and the request's path. Socket errors
 * are ignored.
 */
export function startRawH1Upstream(onHead: (socket: Socket, rest: Buffer, path: string) => void): Promise<Server> {
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      const path = head.toString('latin1').split(' ')[1] ?? '';
      onHead(socket, head.subarray(end + 4), path);
    };
    socket.on('data', onData);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Listens an HTTP/2 server (h2c or TLS) on 127.0.0.1, port 0, with `onStream` on its streams if given; session errors ignored. */
export async function listenH2<S extends Http2Server | Http2SecureServer>(
  server: S,
  onStream?: (stream: ServerHttp2Stream, headers: Record<string, unknown>) => void,
): Promise<S> {
  if (onStream !== undefined) server.on('stream', onStream);
  server.on('session', (s) => s.on('error', () => undefined));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

export interface TlsH2Upstream {
  readonly server: Http2SecureServer;
  /** The service keys that reach it: http2, and TLS trusting its CA with servername api.internal. */
  readonly serviceKeys: Record<string, unknown>;
}

/**
 * An HTTP/2 upstream over TLS (listenH2), its certificate for api.internal issued by a CA `caName` made in `pkiPath`
 * (the test's pkiDir(), removed by the test).
 */
export async function startTlsH2Upstream(
  caName: string,
  pkiPath: string,
  onStream: (stream: ServerHttp2Stream, headers: Record<string, unknown>) => void,
): Promise<TlsH2Upstream> {
  const ca = createTestCa(caName, pkiPath);
  const cert = ca.issue('api.internal', { san: ['DNS:api.internal'] });
  const server = await listenH2(createSecureServer({ cert: cert.cert, key: cert.key }), onStream);
  return { server, serviceKeys: { http2: true, tls: { enabled: true, ca_file: ca.caFile, servername: 'api.internal' } } };
}

/**
 * For startRawH1Upstream's `onHead`: reads the request body as it comes until `total` bytes (`rest` counted), then
 * answers 200 with that count as the body.
 */
export function answerCountAt(socket: Socket, rest: Buffer, total: number): void {
  let got = rest.length;
  const answer = (): void => void socket.end(`HTTP/1.1 200 OK\r\nContent-Length: ${String(got).length}\r\n\r\n${got}`);
  if (got >= total) return answer();
  socket.on('data', (chunk: Buffer) => {
    got += chunk.length;
    if (got >= total) answer();
  });
}

/** An h2c upstream that counts the streams reaching it (see startCountingH2cUpstream). */
export interface CountingH2cUpstream {
  readonly port: number;
  /** Streams that reached the server. */
  streams: number;
  /** Ends its sessions (and so any held stream) and closes it. */
  close(): Promise<void>;
}

/**
 * An h2c upstream answering its name, advertising `maxConcurrentStreams` when given (SETTINGS_MAX_CONCURRENT_STREAMS);
 * a stream to /hold is never answered: it ends when the upstream is closed.
 */
export async function startCountingH2cUpstream(name: string, maxConcurrentStreams?: number): Promise<CountingH2cUpstream> {
  const server: Http2Server = createH2cServer(maxConcurrentStreams === undefined ? {} : { settings: { maxConcurrentStreams } });
  const sessions = new Set<{ destroy(): void }>();
  const state = {
    port: 0,
    streams: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
  server.on('stream', (stream, headers) => {
    state.streams++;
    stream.on('error', () => undefined);
    stream.resume();
    if (headers[':path'] === '/hold') return;
    stream.respond({ ':status': 200 });
    stream.end(name);
  });
  server.on('session', (s) => sessions.add(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = portOf(server);
  return state;
}
