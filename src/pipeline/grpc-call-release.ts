// Where a gRPC call is let go of `server.timeouts.request`: the HTTP/2 listener holds every stream with a body to that
// bound (listeners/h2-guard.ts), and the proxy releases a gRPC call when it sends it to an HTTP/2 upstream, which can
// serve one (proxy/forward.ts). Client-streaming and bidirectional calls stay open by design for as long as they are
// used. Only then: the content type is the client's to claim, and an exemption granted on it alone let any HTTP/2
// upload that said application/grpc escape the bound, to any route and service. An attempt that fails before sending
// is retried, maybe on a service that is not HTTP/2 (a split): that attempt puts the stream back under its bound.
import type { ServerHttp2Stream } from 'node:http2';

/** What the listener does to a stream it holds: stop holding it, or hold it again, from its arrival as before. */
export interface RequestBoundHold {
  release(): void;
  restore(): void;
}

const holds = new WeakMap<ServerHttp2Stream, RequestBoundHold>();
/**
 * Streams released before the listener held them: node hands the compat request to the pipeline inside the same
 * 'stream' event the listener watches, and a call that needs no asynchronous phase is sent before the listener's turn.
 */
const releasedEarly = new WeakSet<ServerHttp2Stream>();

/** The listener holds `stream` to its request bound; false: released already, so not held now (restore() may). */
export function holdUntilGrpcRelease(stream: ServerHttp2Stream, hold: RequestBoundHold): boolean {
  holds.set(stream, hold);
  return !releasedEarly.has(stream);
}

/** A gRPC call going to an HTTP/2 upstream: its stream is no longer held to `timeouts.request`. */
export function releaseGrpcCall(stream: ServerHttp2Stream): void {
  const hold = holds.get(stream);
  if (hold === undefined) releasedEarly.add(stream);
  else hold.release();
}

/** A gRPC call going to an upstream that cannot serve it (after a failed attempt elsewhere): held to its bound again. */
export function restoreRequestBound(stream: ServerHttp2Stream): void {
  releasedEarly.delete(stream);
  holds.get(stream)?.restore();
}
