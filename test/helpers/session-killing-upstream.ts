// An h2c upstream that destroys the session of every stream it is sent, before any answer: for what the gateway does
// with a request (and its body) when its HTTP/2 upstream's session closes under it.
import { createServer, type Http2Server, type ServerHttp2Session } from 'node:http2';

/** Starts it on a free loopback port; pushes its stop (its sessions destroyed, then the server closed) onto `cleanups`. */
export async function sessionKillingUpstream(cleanups: Array<() => Promise<void>>): Promise<Http2Server> {
  const server = createServer();
  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('error', () => {});
    session.once('close', () => sessions.delete(session));
  });
  server.on('stream', (stream) => {
    stream.on('error', () => {});
    stream.session?.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    for (const session of sessions) session.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return server;
}
