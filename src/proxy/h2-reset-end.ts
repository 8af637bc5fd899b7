// An HTTP/2 request body that node ends because its stream closed, not because the client sent END_STREAM.
//
// node 20 ends a server stream's readable side when the stream closes (onStreamClose pushes null for a NO_ERROR close,
// and the compat request's own close handler pushes null on the request for any code), whether or not the client
// ever finished its body. Its 'aborted' tells a cut body only while the answer is not yet ending: once the gateway has
// ended an answer beside the driver (the 408 of timeouts.request, listeners/h2-guard.ts; the 408 of a silent body,
// forward.ts) and it waits on the client's flow-control window, a client's RST_STREAM(NO_ERROR) closes the stream with
// no 'aborted', and the request's 'end' reached undici before the response's 'close' aborted the attempt: undici took
// it for the body's end and sent the upstream the chunked terminator (HTTP/1.1) or END_STREAM (HTTP/2), so a
// truncated upload was processed as whole.
import type { ServerHttp2Stream } from 'node:http2';

const listeners = new WeakMap<ServerHttp2Stream, () => void>();

/**
 * Calls `onCut` (the latest one given for `stream`) when node ends `stream`'s readable side because the stream has
 * closed (a reset of either side, NO_ERROR included) rather than on the client's END_STREAM. It runs inside node's
 * onStreamClose, before any 'end' can reach a reader of the stream or of its compat request. Once per stream.
 */
export function onBodyCutByClose(stream: ServerHttp2Stream, onCut: () => void): void {
  const installed = listeners.has(stream);
  listeners.set(stream, onCut);
  if (installed) return;
  const push = stream.push;
  stream.push = function pushWatched(this: ServerHttp2Stream, chunk: unknown, encoding?: BufferEncoding): boolean {
    // A null pushed while the stream is already closed and its readable side not yet ended: the close's, not the
    // client's END_STREAM (whose null node pushes from the read of that frame, before it closes the stream).
    if (chunk === null && stream.closed && !(stream as unknown as { _readableState: { ended: boolean } })._readableState.ended) {
      listeners.get(stream)?.();
    }
    return push.call(this, chunk, encoding);
  };
  // The request's 'close' (compat: pushes null on the request for any close code, after the stream's 'close').
  // node emits the stream's 'close' and then the response's, whose listener aborts the attempt (pipeline/run.ts):
  // that order already covers a close with an error code, which destroys the stream without pushing on it.
}
