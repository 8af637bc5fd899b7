// Whether a request carries a body, read from its head: the one rule the driver, the proxy, the body limit, the
// 100-continue listener and the gateway's own replies share.
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { RequestContext } from './context.js';
import { lingerOnClose } from './lingering-close.js';

/** An HTTP/1 request head that announces a body (RFC 9112 §6.3: Transfer-Encoding, or a non-zero Content-Length). */
export function declaresBody(headers: IncomingHttpHeaders): boolean {
  const length = headers['content-length'];
  return (length !== undefined && length !== '0') || headers['transfer-encoding'] !== undefined;
}

/**
 * True when the request carries a body: a Content-Length above 0, or chunked; over HTTP/2, any stream whose HEADERS
 * frame did not end it (gRPC and other streamed bodies come without a Content-Length).
 */
export function hasRequestBody(ctx: RequestContext): boolean {
  if (ctx.req.httpVersionMajor === 2) {
    return (ctx.req as unknown as { stream?: { endAfterHeaders?: boolean } }).stream?.endAfterHeaders === false;
  }
  return declaresBody(ctx.req.headers);
}

/**
 * True for no Transfer-Encoding or `chunked` alone (any case; repeated fields arrive joined or as a list): the one
 * coding the gateway can pass on. llhttp accepts any list that ends in chunked and removes the chunking only, so
 * another coding before it (gzip, deflate, identity) would be dropped with the header, unlabelled (RFC 9112 §6.1).
 */
export function onlyChunked(value: string | readonly string[] | undefined): boolean {
  if (value === undefined) return true;
  const text = typeof value === 'string' ? value : value.join(',');
  return text.trim().toLowerCase() === 'chunked';
}

/** An HTTP/1 request (a 0.9 request line's too, refused with 505) whose announced body has not all arrived yet. */
export function bodyStillArriving(req: Pick<IncomingMessage, 'httpVersionMajor' | 'complete' | 'headers'>): boolean {
  return req.httpVersionMajor <= 1 && !req.complete && declaresBody(req.headers);
}

/**
 * For an answer that will not read the request's body (a refusal, or an endpoint that takes none): a body still on
 * its way is left unread and the connection closes after the answer, as nginx does after a refusal; node would
 * otherwise read it to throw it away for as long as its timeouts allow. A body already in (or none) is drained, and
 * the connection stays usable.
 */
export function leaveBody(req: IncomingMessage, res: Pick<ServerResponse, 'setHeader' | 'headersSent'>): void {
  if (bodyStillArriving(req)) {
    if (!res.headersSent) res.setHeader('connection', 'close');
    lingerOnClose(req);
  } else req.resume();
}
