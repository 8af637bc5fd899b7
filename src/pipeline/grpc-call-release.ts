// Where a gRPC call is let go of `server.timeouts.request`: the HTTP/2 listener holds every stream with a body to that
// bound (listeners/h2-guard.ts), and the proxy releases a gRPC call once it sends it to an HTTP/2 upstream, which can
// serve one (proxy/forward.ts). Client-streaming and bidirectional calls stay open by design for as long as they are
// used. Only then: the content type is the client's to claim, and an exemption granted on it alone let any HTTP/2
// upload that said application/grpc escape the bound, to any route and service.
import type { ServerHttp2Stream } from 'node:http2';

/** How each held stream is let go of its bound. */
const releases = new WeakMap<ServerHttp2Stream, () => void>();
/**
 * Streams released before the listener held them: node hands the compat request to the pipeline inside the same
 * 'stream' event the listener watches, and a call that needs no asynchronous phase is sent before the listener's turn.
 */
const releasedEarly = new WeakSet<ServerHttp2Stream>();

/** The listener holds `stream` to its request bound, `release` letting it go; false: already released, not held. */
export function holdUntilGrpcRelease(stream: ServerHttp2Stream, release: () => void): boolean {
  if (releasedEarly.has(stream)) return false;
  releases.set(stream, release);
  return true;
}

/** A gRPC call going to an HTTP/2 upstream: its stream is no longer held to `timeouts.request`. */
export function releaseGrpcCall(stream: ServerHttp2Stream): void {
  const release = releases.get(stream);
  if (release === undefined) releasedEarly.add(stream);
  else release();
}
