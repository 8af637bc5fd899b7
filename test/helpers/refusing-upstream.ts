// An h2c upstream (node:http2) that resets every stream it is sent with RST_STREAM REFUSED_STREAM, processing
// nothing (RFC 9113 §8.7): for what the gateway does with a refused request, retried or passed on to its client.
import { constants, createServer, type ServerHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';

export interface RefusingUpstream {
  readonly port: number;
  /** The streams it was sent so far. */
  streams(): number;
  /** Destroys its sessions, then closes the server. */
  close(): Promise<void>;
}

/**
 * Starts it on a free loopback port. `at`: 'headers' refuses each stream at its HEADERS; 'first-body-byte' once it has
 * read a first body byte (a request without a body at its HEADERS), so the gateway has begun to stream the body.
 */
export async function refusingUpstream(at: 'headers' | 'first-body-byte'): Promise<RefusingUpstream> {
  const server = createServer();
  const sessions = new Set<ServerHttp2Session>();
  let streams = 0;
  server.on('session', (session) => {
    sessions.add(session);
    session.on('error', () => {});
    session.once('close', () => sessions.delete(session));
  });
  server.on('stream', (stream) => {
    streams++;
    stream.on('error', () => {});
    const refuse = (): void => stream.close(constants.NGHTTP2_REFUSED_STREAM);
    if (at === 'headers' || stream.endAfterHeaders) refuse();
    else stream.once('data', refuse);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    streams: () => streams,
    async close() {
      for (const session of sessions) session.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
