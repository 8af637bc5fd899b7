// The HTTP/2 end of an answer the gateway gives while the client may still be sending its body (a 413 past
// max_body_size, a 401, 429 or 404 before the upload, a 502 after a failed attempt): nothing will read the rest of
// that body, yet node ends only its own half of the stream (END_STREAM) once it has read some of it, and a client
// that waits for its whole upload to be taken (node:http2's) stalled on flow control for good, its stream and the
// request held open. RFC 9113 §8.1: a server that answers before the request is complete may then reset the stream
// with NO_ERROR, which tells the client to stop sending and keep the answer (nginx and Envoy do). The HTTP/1 side of
// the same answer is lingering-close.ts.
import type { ServerHttp2Stream } from 'node:http2';
import { H2_NO_ERROR } from '../proxy/h2-codes.js';
import type { RequestContext } from './context.js';

/** How often a stream whose answer is written looks again for nghttp2 to have sent its END_STREAM: 20 ms, then
 * 20 ms more each time, up to a second. */
const END_STREAM_POLL_MS = 20;
const END_STREAM_POLL_MAX_MS = 1_000;

/**
 * Call once a gateway-made answer has been handed to an HTTP/2 stream (end() or a respond() that ends it): when
 * the answer is all out, the unread rest of the body is dropped and the stream reset (NO_ERROR) if the client is
 * still sending. Never before the answer's END_STREAM has been sent (resetAfterEnd): an answer is never cut, however
 * long it waits on the client's flow-control window. Nothing over HTTP/1, or for a request that ended with its
 * HEADERS (any GET: its stream closes by itself).
 */
export function closeAfterAnswer(ctx: RequestContext): void {
  if (ctx.req.httpVersionMajor !== 2) return;
  const stream = (ctx.res as unknown as { stream?: ServerHttp2Stream }).stream;
  if (stream === undefined || stream.endAfterHeaders) return;
  const req = ctx.req;
  const done = (): void => {
    dropUnreadBody(req, stream);
    resetAfterEnd(stream, 0);
  };
  // 'finish' of the stream itself: node has written every byte of the answer (the compat response's 'finish' comes
  // only when the stream closes).
  if (stream.writableFinished) done();
  else stream.once('finish', done);
}

/**
 * Reads and drops what is left of a body nobody will read now (a reader that stopped at max_body_size, or none).
 * Node ends a closed stream's readable side only once its buffered DATA has been read, and destroys the stream (its
 * 'close', which logs the request) only then: a stream left paused with bytes in its buffer was never destroyed,
 * after a reset of ours or the client's own END_STREAM alike, and the request stayed open and unlogged. The stream
 * itself is resumed, without node's compat handler that hands its DATA to the request: a request destroyed by the
 * reader that gave up on it (undici, after a failed attempt) refuses every chunk, and that handler pauses the
 * stream again at each refusal.
 */
export function dropUnreadBody(req: RequestContext['req'], stream: ServerHttp2Stream): void {
  req.removeAllListeners('data');
  stream.removeAllListeners('data');
  req.resume();
  stream.resume();
}

/**
 * Resets `stream` (NO_ERROR) once nghttp2 has sent the END_STREAM of its answer, unless the client's END_STREAM
 * has arrived meanwhile (read or not: the stream then closes by itself). The stream's 'finish' comes once the
 * answer's bytes are written, but the END_STREAM flag can follow in an empty DATA frame that nghttp2 sends on a later
 * write: a reset before it (measured) reached node's client without the end of the response, and that client then
 * never closed its stream. Node's own reset of a stream it never read from waits one turn for the same reason; here
 * the END_STREAM is looked for on the next turn, then on a timer until the stream closes (a client that reads nothing
 * at all holds it until timeouts.request closes the stream, or its session goes). A stream still open two seconds
 * after its answer has its session PINGed by the session guard (h2-guard.ts), which drops a session that cannot
 * write any more (node 20 wedges one whose socket write failed at once): it never sends this reset.
 */
function resetAfterEnd(stream: ServerHttp2Stream, tries: number): void {
  if (stream.closed || stream.destroyed) return;
  const state = stream.state;
  if (state.remoteClose === 1) return;
  if (state.localClose === 1) {
    stream.close(H2_NO_ERROR);
    return;
  }
  if (tries === 0) setImmediate(resetAfterEnd, stream, 1);
  else setTimeout(resetAfterEnd, Math.min(END_STREAM_POLL_MS * tries, END_STREAM_POLL_MAX_MS), stream, tries + 1).unref();
}
