// Bytes after a request that ends its connection (Connection: close, or HTTP/1.0 without keep-alive). RFC 9112 §9.6
// has the server answer that request, then close, and process nothing after it. llhttp refuses such bytes
// (HPE_CLOSED_CONNECTION, again on each later chunk), and node's 'clientError' then fires while the request is still
// being answered: destroying the socket, or writing a 400 there, lost or spoiled the answer to a request whose work
// was already done. Shared by the proxy port's and the admin port's clientError handlers.
import type { Socket } from 'node:net';

/** Node's response in progress on a connection (its private `_httpMessage`), as far as the handlers read it. */
export type ResponseInProgress = { readonly headersSent?: boolean; readonly req?: { readonly complete?: boolean } } | null | undefined;

/** The response node is writing on `socket`, if any. */
export function responseInProgress(socket: Socket): ResponseInProgress {
  return (socket as Socket & { _httpMessage?: ResponseInProgress })._httpMessage;
}

/**
 * True when `err` only refuses bytes after the connection's last request, which is still being answered: leave the
 * socket alone, and node closes it once that answer is out.
 */
export function isAfterLastRequest(err: NodeJS.ErrnoException, socket: Socket): boolean {
  return err.code === 'HPE_CLOSED_CONNECTION' && responseInProgress(socket) != null && socket.writable;
}
