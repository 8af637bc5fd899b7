// When nghttp2 is done with an HTTP/2 session that node keeps open: both sides of the proxy (the client's sessions,
// listeners/h2-guard.ts; the upstreams', balancer/connection-watch.ts).
import type { Http2Session } from 'node:http2';

/** node's private handle of a session: the native Http2Session (node 20.19+, 22.15+, 24). */
interface NativeSession {
  setGracefulClose?: () => void;
  ongracefulclosecomplete?: () => void;
}

/**
 * Calls `done` once nghttp2 wants neither to read nor to write on `session` and no stream is left, while node has
 * neither closed nor destroyed it: nghttp2's own word that the connection should be dropped (nghttp2_session_want_read
 * and _want_write both 0). That is so after a connection error of the peer's (RFC 9113 §5.4.1: a malformed or
 * misplaced frame, a SETTINGS value out of range, a CONTINUATION out of place): nghttp2 sends GOAWAY with the error
 * code and reads no more, and node, which raises no event for it (only errors nghttp2 returns from its read surface
 * as 'error'), stops reading the socket, the peer's FIN included. The connection stayed open, and its streams
 * waited, until some timeout; §5.4.1 has the endpoint close the connection after that GOAWAY, as nginx and Envoy do.
 *
 * The only signal node has is the one its own session.close() uses: the native handle's graceful-close flag, on
 * which node calls `ongracefulclosecomplete` after each write once nghttp2 wants nothing more and no stream is open.
 * The flag is set from the start (node reads it nowhere else), and the callback goes to node's own once
 * session.close() has run (node's own close, or a peer's GOAWAY NO_ERROR, which node answers with close()).
 * Private API: on a node without it, nothing changes. Returns whether the watch is in place.
 */
export function whenNghttp2Done(session: Http2Session, done: () => void): boolean {
  const kHandle = Object.getOwnPropertySymbols(session).find((s) => s.description === 'kHandle');
  const handle = kHandle === undefined ? undefined : (session as unknown as Record<symbol, NativeSession | undefined>)[kHandle];
  if (handle === undefined || typeof handle.setGracefulClose !== 'function' || typeof handle.ongracefulclosecomplete !== 'function') return false;
  const nodes = handle.ongracefulclosecomplete;
  handle.ongracefulclosecomplete = () => {
    if (session.closed) nodes.call(handle);
    else if (!session.destroyed) done();
  };
  handle.setGracefulClose();
  return true;
}
