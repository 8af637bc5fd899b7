// An answer written straight onto a connection's socket, with no request object behind it (a head node's parser
// refused, the per-client connection cap, plain HTTP on the TLS port): the bytes go out, then the connection is
// gone, within a bound even when the bytes never leave.

/**
 * The longest a written answer may take to leave before its connection is destroyed anyway. The answers are a few
 * hundred bytes, which a fresh connection's send buffer takes at once: only a peer that reads nothing (or a TLS
 * layer that cannot write) holds one back. nginx's lingering_timeout, its bound for the same wait, is 5 s as well.
 */
export const ANSWER_FLUSH_MS = 5_000;

/** What answerAndClose needs of a socket (net.Socket, tls.TLSSocket). */
export interface AnswerSocket {
  readonly destroyed: boolean;
  pause(): unknown;
  end(data: string): unknown;
  destroy(): unknown;
  once(event: 'finish' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: () => void): unknown;
}

/**
 * Writes `answer`, then destroys the socket once it has been handed to the kernel, or after ANSWER_FLUSH_MS if it
 * never is. Reading stops first: node's HTTP parser, still attached to the socket, would otherwise go on parsing
 * what the client sends next, so a request finished after its 408 (or pipelined after a refused one) still
 * reached the pipeline and its upstream. Destroyed rather than left half-closed: ending alone waited for the
 * client's FIN (node's servers allow half-open sockets), so a client that never sent one, or a socket whose bytes
 * never left, held its connection (and its max_connections_per_client slot) for good.
 */
export function answerAndClose(socket: AnswerSocket, answer: string): void {
  if (socket.destroyed) return;
  socket.pause();
  // A reset while the answer goes out: nothing more to do (and never an unhandled 'error').
  socket.on('error', () => socket.destroy());
  const bound = setTimeout(() => socket.destroy(), ANSWER_FLUSH_MS);
  bound.unref();
  socket.once('close', () => clearTimeout(bound));
  socket.once('finish', () => socket.destroy());
  socket.end(answer);
}
