// The gRPC fuzz target's backend: the Echo service of test/fixtures/echo.proto written on node:http2 by hand (h2c),
// so that it sees every stream, whatever grpc-js would refuse before a handler, and can say what became of each:
// arrived, request ended (the gateway half-closed it), answered, closed. The driver asks it about a call that
// stalled, to tell a stream the gateway holds from one the backend or the input itself keeps open.
import { createServer, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { decodeMsg, encodeMsg, grpcFrame, type EchoMsg } from './grpc-wire.js';

/** What the backend saw of one call, by the driver's x-fuzz-case header. */
export interface BackendCall {
  readonly path: string;
  /** The request's END_STREAM arrived (the client half-closed, and the gateway passed it on). */
  requestEnded: boolean;
  /** When the backend sent its status (trailers, or a trailers-only head), ms since the epoch. */
  answeredAt: number | undefined;
  /** When the stream closed (its answer all sent, or reset), ms since the epoch; rstCode as node reports it. */
  closedAt: number | undefined;
  rstCode: number | undefined;
}

export interface GrpcBackend {
  readonly port: number;
  /** The call with this x-fuzz-case value, if it ever arrived. */
  call(id: string): BackendCall | undefined;
  /** Calls that arrived. */
  readonly arrived: () => number;
  /** How the backend's sessions ended other than cleanly (node's error code, or GOAWAY-<code> it sent), counted. */
  readonly sessionEnds: () => Record<string, number>;
  stop(): Promise<void>;
}

/** Messages a ServerStream call may ask for; more are capped (a fuzz case asks for anything). */
const MAX_STREAMED = 200;

/** Reads length-prefixed messages from `stream`, calling `onMessage` per whole one; 'bad' on a malformed prefix. */
function readMessages(stream: ServerHttp2Stream, onMessage: (m: EchoMsg | 'bad') => void): void {
  let pending = Buffer.alloc(0);
  stream.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 5) {
      const compressed = pending[0]!;
      const length = pending.readUInt32BE(1);
      if (compressed > 1 || length > 4 * 1024 * 1024) {
        onMessage('bad');
        pending = Buffer.alloc(0);
        return;
      }
      if (pending.length < 5 + length) return;
      const body = pending.subarray(5, 5 + length);
      pending = pending.subarray(5 + length);
      onMessage(compressed === 1 ? 'bad' : (decodeMsg(body) ?? 'bad'));
    }
  });
}

export async function startGrpcBackend(): Promise<GrpcBackend> {
  const calls = new Map<string, BackendCall>();
  const sessions = new Set<ServerHttp2Session>();
  let arrived = 0;
  const server = createServer();
  const sessionEnds: Record<string, number> = {};
  const count = (key: string): void => void (sessionEnds[key] = (sessionEnds[key] ?? 0) + 1);
  server.on('session', (session) => {
    sessions.add(session);
    session.on('error', (err: Error & { code?: string }) => count(`error-${err.code ?? err.name}`));
    session.once('close', () => sessions.delete(session));
    session.on('frameError', (type: number, code: number) => count(`frame-error-${type}-${code}`));
    session.on('goaway', (code: number) => count(`goaway-received-${code}`));
  });
  server.on('stream', (stream, headers) => {
    arrived++;
    const id = String(headers['x-fuzz-case'] ?? `anon-${arrived}`);
    const path = String(headers[':path']);
    const call: BackendCall = { path, requestEnded: false, answeredAt: undefined, closedAt: undefined, rstCode: undefined };
    let pendingStatus: [number, string] | undefined;
    calls.set(id, call);
    stream.on('error', () => {});
    stream.once('close', () => {
      call.closedAt = Date.now();
      call.rstCode = stream.rstCode;
      if (stream.rstCode !== undefined && stream.rstCode !== 0 && stream.rstCode !== 8) count(`stream-rst-${stream.rstCode}`);
    });
    // Every write to the stream is guarded: the gateway may reset it at any moment (node throws on a closed stream).
    const gone = (): boolean => stream.destroyed || stream.closed;
    const status = (code: number, message = ''): void => {
      if (gone() || call.answeredAt !== undefined) return;
      call.answeredAt = Date.now();
      try {
        if (!stream.headersSent) {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(code), 'grpc-message': message }, { endStream: true });
          return;
        }
        // The head went out with waitForTrailers: the status goes in the trailers, sent on 'wantTrailers'.
        pendingStatus = [code, message];
        stream.end();
      } catch {
        // reset meanwhile
      }
    };
    const head = (): void => {
      if (stream.headersSent || gone()) return;
      try {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      } catch {
        // reset meanwhile
      }
    };
    stream.on('wantTrailers', () => {
      const [code, message] = pendingStatus ?? [0, ''];
      try {
        stream.sendTrailers({ 'grpc-status': String(code), 'grpc-message': message });
      } catch {
        // reset meanwhile
      }
    });
    const send = (m: EchoMsg): void => {
      head();
      if (!gone() && stream.headersSent) stream.write(grpcFrame(encodeMsg(m)));
    };
    const messages: EchoMsg[] = [];
    let bad = false;
    const method = path.split('/').pop();
    if (!['Unary', 'ServerStream', 'ClientStream', 'Bidi'].includes(method ?? '') || !path.startsWith('/portcullis.test.Echo/')) {
      status(12, 'unknown method');
      stream.resume();
      stream.once('end', () => (call.requestEnded = true));
      return;
    }
    readMessages(stream, (m) => {
      if (m === 'bad') {
        bad = true;
        status(13, 'malformed message');
        return;
      }
      messages.push(m);
      if (method === 'Bidi') send({ text: `echo:${m.text}`, n: m.n, user: '' });
    });
    stream.once('end', () => {
      call.requestEnded = true;
      if (bad || call.answeredAt !== undefined) return;
      if (method === 'Unary') {
        if (messages.length !== 1) return status(13, `${messages.length} messages for a unary call`);
        send({ text: messages[0]!.text, n: 1, user: String(headers['x-user-id'] ?? '') });
      } else if (method === 'ServerStream') {
        const n = Math.min(Math.max(messages[0]?.n ?? 0, 0), MAX_STREAMED);
        for (let i = 0; i < n; i++) send({ text: `${messages[0]?.text ?? ''}-${i}`, n: i, user: '' });
      } else if (method === 'ClientStream') {
        send({ text: messages.map((m) => m.text).join(','), n: messages.length, user: '' });
      }
      head();
      status(0);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    call: (id) => calls.get(id),
    arrived: () => arrived,
    sessionEnds: () => sessionEnds,
    async stop() {
      for (const session of sessions) session.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
