// An HTTP/2 upstream that answers before it has the whole upload (an ingestion endpoint's 202 that reads on) is still
// sent the body by undici after its answer (review16). Once that answer is relayed and the attempt is over, nothing
// of the gateway's ends the upload when the client goes:
// - node's HTTP/1 server lets go of a request whose answer has finished: the connection's close no longer reaches
//   it, and the request stays open, unended, for good;
// - node's HTTP/2 compat request is ended normally when its stream closes, reset or not.
// The upstream's stream then waited for bytes that would never come, holding an upstream connection (55 s in the
// review that found it), or, from an HTTP/2 client, could be ended as if the upload were whole. Here the body undici
// reads is destroyed with an AbortError instead, which undici's pipe hands to the upstream stream: RST_STREAM CANCEL.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import { addAbortSignal, type Readable } from 'node:stream';

/** NGHTTP2_NO_ERROR: an HTTP/2 stream that closed without a reset. */
const NO_ERROR = 0;

/** Ends `body` with an AbortError (node's own class, which node:http2 turns into CANCEL), unless it has ended. */
function abandon(body: Readable): void {
  if (body.readableEnded || body.destroyed) return;
  const controller = new AbortController();
  addAbortSignal(controller.signal, body);
  controller.abort();
}

/**
 * Called when an HTTP/2 upstream's answer has been relayed whole while undici still sends it `body` (the request
 * itself, or a body-limit counter piped from it): the client leaving before its upload ends cancels the upstream's
 * stream. An upload that ends first leaves it alone.
 */
export function cancelUploadWhenClientLeaves(req: IncomingMessage | Http2ServerRequest, res: ServerResponse, body: Readable): void {
  if (body.readableEnded || body.destroyed) return;
  const stream = (req as Http2ServerRequest).stream as Http2ServerRequest['stream'] | undefined;
  if (req.httpVersionMajor === 2 && stream !== undefined) {
    // The client's END_STREAM closes the stream with NO_ERROR once the answer is out; a reset, or a connection that
    // dropped, closes it with a code (CANCEL for the drop). node ends the compat request's body on either, after this
    // listener: the body's end must not reach undici as the upload's.
    if (stream.destroyed) {
      if (stream.rstCode !== NO_ERROR) abandon(body);
      return;
    }
    stream.prependOnceListener('close', () => {
      if (stream.rstCode !== NO_ERROR) abandon(body);
    });
    return;
  }
  // A request node has parsed whole is in the gateway's buffers: the connection's close loses none of it.
  const onClose = (): void => {
    if (!(req as IncomingMessage).complete) abandon(body);
  };
  const socket = (req as IncomingMessage).socket ?? res.socket;
  if (socket === null || socket.destroyed) {
    onClose();
    return;
  }
  socket.once('close', onClose);
  // A kept-alive connection outlives the upload: let go of it once the body is through.
  body.once('end', () => socket.off('close', onClose));
  body.once('close', () => socket.off('close', onClose));
}
