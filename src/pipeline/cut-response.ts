// Cutting a response that has begun: its status is out, so the only way left to tell the client it failed is how
// the connection ends. An HTTP/2 stream is reset by its caller. An HTTP/1 body framed by chunks or by its
// Content-Length already reads as cut when the connection closes early (no last chunk, too few bytes), so an
// orderly close is enough. A body framed by nothing, which node sends to an HTTP/1.0 client (it never chunks for
// one) when no Content-Length was given, ends where the connection ends: an orderly close (FIN) passes the cut-off
// body as a whole one, and `curl --http1.0` exits 0 on it. Such a connection is reset instead (RST), which every
// client reads as an error: the only signal such a body has.
import type { Socket } from 'node:net';
import type { ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';

/** Node's own record of how an HTTP/1 response's head framed its body (node:_http_outgoing, stable since Node 12). */
interface OutgoingFraming {
  readonly _hasBody?: boolean;
  readonly chunkedEncoding?: boolean;
  readonly _contentLength?: number | null;
}

/**
 * Whether `res` is an HTTP/1 response whose head went out with a body framed by nothing but the connection's end,
 * and whose body has not all been handed to the kernel (writableFinished: then it is whole, and an orderly close
 * delivers it, where a reset could drop its last bytes still in the socket's send buffer).
 */
function isCloseDelimited(res: ServerResponse | Http2ServerResponse): boolean {
  if ('stream' in res || !res.headersSent || res.writableFinished) return false;
  const framing = res as unknown as OutgoingFraming;
  return framing._hasBody !== false && framing.chunkedEncoding !== true && typeof framing._contentLength !== 'number';
}

/**
 * Destroys a begun response as a failure. An HTTP/1 response whose body is close-delimited has its connection reset
 * first. Not over TLS: there the destroy ends the stream without TLS's close_notify, which OpenSSL (curl, browsers)
 * reports as an unexpected EOF, where a complete body's close sends one. Resetting the TCP socket under node's
 * TLSSocket (its own refuses a reset) left node 20's https server a connection entry without a socket, and its
 * close() then threw in closeIdleConnections: a stop would have crashed.
 */
export function cutBegunResponse(res: ServerResponse | Http2ServerResponse): void {
  if (isCloseDelimited(res)) resetPlainConnection(res.socket as Socket | null);
  res.destroy();
}

function resetPlainConnection(socket: Socket | null): void {
  if (socket === null || socket.destroyed || 'encrypted' in socket) return;
  try {
    socket.resetAndDestroy();
  } catch {
    // A handle that is not TCP (a pipe, an in-memory pair): the destroy that follows closes it in order.
  }
}
